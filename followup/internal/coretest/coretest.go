// Package coretest is what the tests of the core's capability packages (thumbnails, sweep,
// staging) stand on: the core over a fresh migrated database and a local store, with a clock
// the test sets, and a clinic in Shanghai with a clinician and a patient enrolled in the PWS
// protocol. The core's own tests keep their fixture (package followup cannot import this one).
//
//	f := coretest.New(t)
//	p, _, err := f.Upload(t, f.Clinician, "baseline", "front", "upload-1", coretest.JPEG(t, 1))
package coretest

import (
	"bytes"
	"context"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/dermfollow/dermfollow/followup"
	"github.com/dermfollow/dermfollow/followup/pgtest"
	"github.com/dermfollow/dermfollow/imagestore"
	"github.com/dermfollow/dermfollow/protocols"
)

// BaseURL is the fixture's public URL: parent links start with BaseURL + "/p/".
const BaseURL = "https://followup.example"

// Clock is a settable clock, shared by the core and the package under test.
type Clock struct{ t atomic.Pointer[time.Time] }

// NewClock returns a Clock set to t.
func NewClock(t time.Time) *Clock { c := &Clock{}; c.Set(t); return c }

// Now is the time the clock is set to.
func (c *Clock) Now() time.Time { return *c.t.Load() }

// Set sets the clock.
func (c *Clock) Set(t time.Time) { c.t.Store(&t) }

// Ctx is a per-test context with a timeout, cancelled when the test ends.
func Ctx(tb testing.TB) context.Context {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	tb.Cleanup(cancel)
	return ctx
}

// Fixture is a clinic in Shanghai with a clinician and a patient enrolled in the PWS protocol,
// on a core whose clock the test controls.
type Fixture struct {
	Pool      *pgxpool.Pool
	Core      *followup.Service
	Store     imagestore.Store
	Clock     *Clock
	Clinic    followup.Clinic
	Clinician followup.Actor
	Patient   followup.Patient
	Proc      followup.Enrolment
}

// New builds a Fixture; opts adjust the core's Config (another store, say) after the
// fixture's own settings.
func New(t *testing.T, opts ...func(*followup.Config)) *Fixture {
	t.Helper()
	store, err := imagestore.NewLocalStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	reg, err := protocols.LoadRegistry("")
	if err != nil {
		t.Fatal(err)
	}
	f := &Fixture{Pool: pgtest.NewPool(t), Clock: NewClock(time.Date(2026, 5, 4, 9, 0, 0, 0, time.UTC))}
	cfg := followup.Config{Pool: f.Pool, Store: store, Protocols: reg, Now: f.Clock.Now, BaseURL: BaseURL}
	for _, o := range opts {
		o(&cfg)
	}
	if f.Core, err = followup.New(cfg); err != nil {
		t.Fatal(err)
	}
	f.Store = f.Core.Store()
	ctx := Ctx(t)
	if f.Clinic, err = f.Core.CreateClinic(ctx, "Clinic "+uuid.NewString()[:8], "Asia/Shanghai"); err != nil {
		t.Fatal(err)
	}
	f.Clinician = f.User(t, f.Clinic.ID, followup.RoleClinician)
	f.Patient, err = f.Core.CreatePatient(ctx, f.Clinician, followup.NewPatient{DisplayName: "Lina Zhang", BirthDate: "2025-06-01",
		GuardianEmail: "parent@example.org", PreferredLanguage: "zh-CN", ResearchConsent: true})
	if err != nil {
		t.Fatal(err)
	}
	f.Proc, err = f.Core.Enrol(ctx, f.Clinician, followup.NewProcedure{PatientID: f.Patient.ID.String(), Protocol: "pws-hemoporfin-pdt",
		BodySite: "face", PerformedAt: "2026-05-04T10:00:00+08:00"})
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// User writes a clinic user's row with the role and returns its Actor, as if it had signed in
// (users are package accounts'; only the row is needed).
func (f *Fixture) User(t *testing.T, clinic uuid.UUID, role string) followup.Actor {
	t.Helper()
	var id uuid.UUID
	email := fmt.Sprintf("%s-%s@example.org", role, strings.ToLower(uuid.NewString()[:8]))
	if err := f.Pool.QueryRow(Ctx(t), `insert into users (clinic_id, email, name, role, password_hash)
		values ($1, $2, $3, $4, 'not a hash') returning id`, clinic, email, "Test "+role, role).Scan(&id); err != nil {
		t.Fatalf("create %s: %v", role, err)
	}
	return followup.Actor{Kind: followup.ActorUser, ID: id, ClinicID: clinic, Role: role}
}

// Upload adds a photo of the fixture's procedure through the core's one-request upload path.
func (f *Fixture) Upload(t *testing.T, a followup.Actor, tp, view, uploadID string, body []byte) (followup.Photo, bool, error) {
	t.Helper()
	return f.Core.AddPhoto(Ctx(t), a, f.Proc.ID, followup.PhotoUpload{Timepoint: tp, View: view, UploadID: uploadID},
		bytes.NewReader(body), int64(len(body)), imagestore.Limits{})
}

// Parent makes a parent link for the fixture's procedure and returns the family's Actor.
func (f *Fixture) Parent(t *testing.T) followup.Actor {
	t.Helper()
	l, err := f.Core.CreateLink(Ctx(t), f.Clinician, f.Proc.ID, false)
	if err != nil {
		t.Fatal(err)
	}
	a, err := f.Core.ResolveLink(Ctx(t), l.URL[len(BaseURL+"/p/"):])
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// Count runs a query that counts something and returns the count.
func (f *Fixture) Count(t *testing.T, sql string, args ...any) int {
	t.Helper()
	var n int
	if err := f.Pool.QueryRow(Ctx(t), sql, args...).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// JPEG is a small 64x48 photo, different for each seed.
func JPEG(t testing.TB, seed byte) []byte {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, 64, 48))
	for y := range 48 {
		for x := range 64 {
			img.Set(x, y, color.RGBA{byte(x*4) ^ seed, byte(y * 5), seed, 255})
		}
	}
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, img, &jpeg.Options{Quality: 90}); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}
