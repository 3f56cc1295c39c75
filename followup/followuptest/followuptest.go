// Package followuptest is what the tests of the capability packages (reminders, worklist,
// export, ...) need of the core to stand on: a settable clock, a per-test context, a core
// service over a fresh database, clinics and users, a small JPEG, and the fixture most of
// them start from, a clinic in Shanghai with a clinician and one child enrolled in the PWS
// protocol. The core's own tests cannot use it (it imports the core); they have theirs.
//
//	f := followuptest.New(t)
//	wl := worklist.New(f.Core, f.Pool)
package followuptest

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/dermfollow/dermfollow/followup"
	"github.com/dermfollow/dermfollow/followup/pgtest"
	"github.com/dermfollow/dermfollow/imagestore"
	"github.com/dermfollow/dermfollow/imagestore/imagetest"
	"github.com/dermfollow/dermfollow/protocols"
)

// BaseURL is the public address the fixture's services build links with.
const BaseURL = "https://followup.example"

// Clock is a settable clock, shared by the core and the package under test.
type Clock struct{ t atomic.Pointer[time.Time] }

// NewClock is a clock that reads t until set.
func NewClock(t time.Time) *Clock { c := &Clock{}; c.Set(t); return c }

func (c *Clock) Now() time.Time      { return *c.t.Load() }
func (c *Clock) Set(t time.Time)     { c.t.Store(&t) }
func (c *Clock) Add(d time.Duration) { c.Set(c.Now().Add(d)) }

// Ctx is a per-test context with a timeout, cancelled when the test ends.
func Ctx(t testing.TB) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// NewCore is a core service over pool, with photos in a folder of the test's, the protocols
// that ship and the clock now (time.Now when nil); opts adjust its Config after that (another
// store, say).
func NewCore(t testing.TB, pool *pgxpool.Pool, now func() time.Time, opts ...func(*followup.Config)) *followup.Service {
	t.Helper()
	store, err := imagestore.NewLocalStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	reg, err := protocols.LoadRegistry("")
	if err != nil {
		t.Fatal(err)
	}
	cfg := followup.Config{Pool: pool, Store: store, Protocols: reg, Now: now, BaseURL: BaseURL}
	for _, o := range opts {
		o(&cfg)
	}
	core, err := followup.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return core
}

// Clinic creates a clinic named name in zone (UTC when "").
func Clinic(t testing.TB, core *followup.Service, name, zone string) followup.Clinic {
	t.Helper()
	if zone == "" {
		zone = "UTC"
	}
	c, err := core.CreateClinic(Ctx(t), name, zone)
	if err != nil {
		t.Fatalf("create clinic %q: %v", name, err)
	}
	return c
}

// User writes a user row with the role in the clinic (users are package accounts'; a row is
// all the others need), with an email made from the role, and returns its id with its Actor,
// as if it had signed in.
func User(t testing.TB, pool *pgxpool.Pool, clinic uuid.UUID, role string) (uuid.UUID, followup.Actor) {
	t.Helper()
	return NamedUser(t, pool, clinic, role, fmt.Sprintf("%s-%s@example.org", role, strings.ToLower(uuid.NewString()[:8])), "Test "+role)
}

// NamedUser is User with the email and the name given.
func NamedUser(t testing.TB, pool *pgxpool.Pool, clinic uuid.UUID, role, email, name string) (uuid.UUID, followup.Actor) {
	t.Helper()
	var id uuid.UUID
	if err := pool.QueryRow(Ctx(t), `insert into users (clinic_id, email, name, role, password_hash)
		values ($1, $2, $3, $4, 'not a hash') returning id`, clinic, email, name, role).Scan(&id); err != nil {
		t.Fatalf("create %s: %v", role, err)
	}
	return id, followup.Actor{Kind: followup.ActorUser, ID: id, ClinicID: clinic, Role: role}
}

// JPEG is a 64x48 JPEG whose pixels follow seed (imagetest.JPEG).
func JPEG(t testing.TB, seed byte) []byte {
	t.Helper()
	return imagetest.JPEG(64, 48, seed)
}

// Count is the integer the statement selects.
func Count(t testing.TB, pool *pgxpool.Pool, sql string, args ...any) int {
	t.Helper()
	var n int
	if err := pool.QueryRow(Ctx(t), sql, args...).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// Fixture is a clinic in Shanghai with a clinician and a patient enrolled in the PWS protocol
// at 10:00 on 4 May 2026, seven hours before the clock (17:00 there), on a fresh database.
type Fixture struct {
	Core      *followup.Service
	Pool      *pgxpool.Pool
	Store     imagestore.Store // the core's
	Clock     *Clock
	Clinic    followup.Clinic
	Clinician followup.Actor
	Patient   followup.Patient
	Proc      followup.Enrolment
}

// New is the Fixture; opts adjust the core's Config (see NewCore).
func New(t *testing.T, opts ...func(*followup.Config)) *Fixture {
	t.Helper()
	clock := NewClock(time.Date(2026, 5, 4, 9, 0, 0, 0, time.UTC))
	pool := pgtest.NewPool(t)
	f := &Fixture{Core: NewCore(t, pool, clock.Now, opts...), Pool: pool, Clock: clock}
	f.Store = f.Core.Store()
	ctx := Ctx(t)
	f.Clinic = Clinic(t, f.Core, "Clinic "+uuid.NewString()[:8], "Asia/Shanghai")
	_, f.Clinician = User(t, pool, f.Clinic.ID, followup.RoleClinician)
	var err error
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

// Upload adds a photo of the fixture's procedure as a, through the core's upload path.
func (f *Fixture) Upload(t *testing.T, a followup.Actor, tp, view, uploadID string, body []byte) (followup.Photo, bool, error) {
	return Upload(t, f.Core, a, f.Proc.ID, tp, view, uploadID, body)
}

// User is a user of clinic with the role, as User.
func (f *Fixture) User(t *testing.T, clinic uuid.UUID, role string) followup.Actor {
	t.Helper()
	_, a := User(t, f.Pool, clinic, role)
	return a
}

// Count is the integer the statement selects, as Count.
func (f *Fixture) Count(t *testing.T, sql string, args ...any) int {
	t.Helper()
	return Count(t, f.Pool, sql, args...)
}

// Parent is the family of the fixture's procedure, signed in through a new link.
func (f *Fixture) Parent(t *testing.T) followup.Actor {
	return Parent(t, f.Core, f.Clinician, f.Proc.ID)
}

// Upload adds a photo of procedure as a, through the core's upload path.
func Upload(t testing.TB, core *followup.Service, a followup.Actor, procedure uuid.UUID, tp, view, uploadID string, body []byte) (followup.Photo, bool, error) {
	t.Helper()
	return core.AddPhoto(Ctx(t), a, procedure, followup.PhotoUpload{Timepoint: tp, View: view, UploadID: uploadID},
		bytes.NewReader(body), int64(len(body)), imagestore.Limits{})
}

// Parent is the family of procedure, signed in through a link the clinician makes.
func Parent(t testing.TB, core *followup.Service, clinician followup.Actor, procedure uuid.UUID) followup.Actor {
	t.Helper()
	l, err := core.CreateLink(Ctx(t), clinician, procedure, false)
	if err != nil {
		t.Fatal(err)
	}
	a, err := core.ResolveLink(Ctx(t), strings.TrimPrefix(l.URL, BaseURL+"/p/"))
	if err != nil {
		t.Fatal(err)
	}
	return a
}
