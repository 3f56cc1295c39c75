package worklist

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

// testClock is a settable clock, the core's: the worklist reads the core's.
type testClock struct{ t atomic.Pointer[time.Time] }

func newTestClock(t time.Time) *testClock { c := &testClock{}; c.Set(t); return c }
func (c *testClock) Now() time.Time       { return *c.t.Load() }
func (c *testClock) Set(t time.Time)      { c.t.Store(&t) }

// testCtx is a per-test context with a timeout, cancelled when the test ends.
func testCtx(t testing.TB) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// coreFixture is a clinic in Shanghai with a clinician and a patient enrolled in the PWS
// protocol at 10:00 on 4 May 2026, seven hours before the clock, on a fresh database: the
// core (core) that makes every change and the worklist (wl) that reads them.
type coreFixture struct {
	core      *followup.Service
	wl        *Service
	pool      *pgxpool.Pool
	clock     *testClock
	clinic    followup.Clinic
	clinician followup.Actor
	patient   followup.Patient
	proc      followup.Enrolment
}

func newCoreFixture(t *testing.T) *coreFixture {
	t.Helper()
	clock := newTestClock(time.Date(2026, 5, 4, 9, 0, 0, 0, time.UTC))
	store, err := imagestore.NewLocalStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	reg, err := protocols.LoadRegistry("")
	if err != nil {
		t.Fatal(err)
	}
	pool := pgtest.NewPool(t)
	core, err := followup.New(followup.Config{Pool: pool, Store: store, Protocols: reg, Now: clock.Now, BaseURL: "https://followup.example"})
	if err != nil {
		t.Fatal(err)
	}
	f := &coreFixture{core: core, wl: New(core, pool), pool: pool, clock: clock}
	ctx := testCtx(t)
	if f.clinic, err = core.CreateClinic(ctx, "Clinic "+uuid.NewString()[:8], "Asia/Shanghai"); err != nil {
		t.Fatal(err)
	}
	_, f.clinician = mustUser(t, pool, f.clinic.ID, followup.RoleClinician)
	f.patient, err = core.CreatePatient(ctx, f.clinician, followup.NewPatient{DisplayName: "Lina Zhang", BirthDate: "2025-06-01",
		GuardianEmail: "parent@example.org", PreferredLanguage: "zh-CN", ResearchConsent: true})
	if err != nil {
		t.Fatal(err)
	}
	f.proc, err = core.Enrol(ctx, f.clinician, followup.NewProcedure{PatientID: f.patient.ID.String(), Protocol: "pws-hemoporfin-pdt",
		BodySite: "face", PerformedAt: "2026-05-04T10:00:00+08:00"})
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// mustUser writes a user row with the role in the clinic (users are package accounts'; a
// row is all the worklist needs) and returns its id with its Actor, as if it had signed in.
func mustUser(t testing.TB, pool *pgxpool.Pool, clinic uuid.UUID, role string) (uuid.UUID, followup.Actor) {
	t.Helper()
	email := fmt.Sprintf("%s-%s@example.org", role, strings.ToLower(uuid.NewString()[:8]))
	var id uuid.UUID
	if err := pool.QueryRow(testCtx(t), `insert into users (clinic_id, email, name, role, password_hash)
		values ($1, $2, $3, $4, 'not a hash') returning id`, clinic, email, "Test "+role, role).Scan(&id); err != nil {
		t.Fatalf("create %s: %v", role, err)
	}
	return id, followup.Actor{Kind: followup.ActorUser, ID: id, ClinicID: clinic, Role: role}
}

// mustClinic creates a clinic named name in zone.
func mustClinic(t testing.TB, core *followup.Service, name, zone string) followup.Clinic {
	t.Helper()
	c, err := core.CreateClinic(testCtx(t), name, zone)
	if err != nil {
		t.Fatalf("create clinic %q: %v", name, err)
	}
	return c
}

func testJPEG(t testing.TB, seed byte) []byte {
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

func (f *coreFixture) upload(t *testing.T, a followup.Actor, tp, view, uploadID string, body []byte) (followup.Photo, bool, error) {
	t.Helper()
	return f.core.AddPhoto(testCtx(t), a, f.proc.ID, followup.PhotoUpload{Timepoint: tp, View: view, UploadID: uploadID},
		bytes.NewReader(body), int64(len(body)), imagestore.Limits{})
}

func countRows(t *testing.T, pool *pgxpool.Pool, sql string, args ...any) int {
	t.Helper()
	var n int
	if err := pool.QueryRow(testCtx(t), sql, args...).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}
