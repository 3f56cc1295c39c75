package conversation

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
	"github.com/dermfollow/dermfollow/protocols"
)

// testClock is a settable clock shared by the core and the conversation.
type testClock struct{ t atomic.Pointer[time.Time] }

func (c *testClock) Now() time.Time       { return *c.t.Load() }
func (c *testClock) Set(t time.Time)      { c.t.Store(&t) }
func (c *testClock) Add(d time.Duration)  { c.Set(c.Now().Add(d)) }
func newTestClock(t time.Time) *testClock { c := &testClock{}; c.Set(t); return c }

// fixture is a clinic with a clinician, an admin, a researcher and one procedure whose family
// holds a link; another clinic with a clinician; the core and the conversation over one
// database and one clock.
type fixture struct {
	pool      *pgxpool.Pool
	core      *followup.Service
	conv      *Service
	clock     *testClock
	clinic    followup.Clinic
	clinician followup.Actor
	admin     followup.Actor
	research  followup.Actor
	outsider  followup.Actor
	patient   followup.Patient
	proc      uuid.UUID
	parent    followup.Actor
}

func newFixture(t *testing.T, limit RateLimit) *fixture {
	t.Helper()
	store, err := imagestore.NewLocalStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	reg, err := protocols.LoadRegistry("")
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{pool: pgtest.NewPool(t), clock: newTestClock(time.Date(2026, 5, 4, 9, 0, 0, 0, time.UTC))}
	f.core, err = followup.New(followup.Config{Pool: f.pool, Store: store, Protocols: reg, Now: f.clock.Now, BaseURL: "https://followup.example"})
	if err != nil {
		t.Fatal(err)
	}
	f.conv, err = New(Config{Pool: f.pool, Now: f.clock.Now, Limit: limit})
	if err != nil {
		t.Fatal(err)
	}
	ctx := testCtx(t)
	f.clinic, err = f.core.CreateClinic(ctx, "Clinic "+uuid.NewString()[:8], "Asia/Shanghai")
	if err != nil {
		t.Fatal(err)
	}
	f.clinician = f.user(t, f.clinic.ID, followup.RoleClinician, "Dr Chen")
	f.admin = f.user(t, f.clinic.ID, followup.RoleAdmin, "Dr Admin")
	f.research = f.user(t, f.clinic.ID, followup.RoleResearcher, "R. Searcher")
	other, err := f.core.CreateClinic(ctx, "Other "+uuid.NewString()[:8], "UTC")
	if err != nil {
		t.Fatal(err)
	}
	f.outsider = f.user(t, other.ID, followup.RoleClinician, "Dr Elsewhere")
	f.patient, f.proc = f.enrol(t, "Lina Zhang", "2026-05-04T10:00:00+08:00")
	f.parent = f.link(t, f.proc)
	return f
}

// user writes a clinic user's row (users are package accounts'; only the row is needed).
func (f *fixture) user(t *testing.T, clinic uuid.UUID, role, name string) followup.Actor {
	t.Helper()
	var id uuid.UUID
	email := fmt.Sprintf("%s-%s@example.org", role, strings.ToLower(uuid.NewString()[:8]))
	if err := f.pool.QueryRow(testCtx(t), `insert into users (clinic_id, email, name, role, password_hash)
		values ($1, $2, $3, $4, 'not a hash') returning id`, clinic, email, name, role).Scan(&id); err != nil {
		t.Fatal(err)
	}
	return followup.Actor{Kind: followup.ActorUser, ID: id, ClinicID: clinic, Role: role}
}

// enrol adds a patient and a procedure of the PWS protocol.
func (f *fixture) enrol(t *testing.T, name, performed string) (followup.Patient, uuid.UUID) {
	t.Helper()
	ctx := testCtx(t)
	pt, err := f.core.CreatePatient(ctx, f.clinician, followup.NewPatient{DisplayName: name, BirthDate: "2025-06-01",
		GuardianEmail: "parent@example.org", PreferredLanguage: "zh-CN"})
	if err != nil {
		t.Fatal(err)
	}
	e, err := f.core.Enrol(ctx, f.clinician, followup.NewProcedure{PatientID: pt.ID.String(), Protocol: "pws-hemoporfin-pdt",
		BodySite: "face", PerformedAt: performed})
	if err != nil {
		t.Fatal(err)
	}
	return pt, e.ID
}

// link gives a procedure's family a link and returns its actor.
func (f *fixture) link(t *testing.T, proc uuid.UUID) followup.Actor {
	t.Helper()
	l, err := f.core.CreateLink(testCtx(t), f.clinician, proc, false)
	if err != nil {
		t.Fatal(err)
	}
	a, err := f.core.ResolveLink(testCtx(t), l.URL[len("https://followup.example/p/"):])
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// concern stores a concern photo through the core's upload path.
func (f *fixture) concern(t *testing.T, a followup.Actor, uploadID string, body []byte) (followup.Photo, error) {
	t.Helper()
	return f.photo(t, a, followup.PhotoUpload{Kind: followup.PhotoConcern, UploadID: uploadID}, body)
}

// photo stores a photo of the actor's procedure through the core's upload path.
func (f *fixture) photo(t *testing.T, a followup.Actor, up followup.PhotoUpload, body []byte) (followup.Photo, error) {
	t.Helper()
	p, _, err := f.core.AddPhoto(testCtx(t), a, a.Procedure, up, bytes.NewReader(body), int64(len(body)), imagestore.Limits{})
	return p, err
}

func (f *fixture) count(t *testing.T, sql string, args ...any) int {
	t.Helper()
	var n int
	if err := f.pool.QueryRow(testCtx(t), sql, args...).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func testCtx(t testing.TB) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

func wantCode(t *testing.T, what string, err error, code string) {
	t.Helper()
	if got := followup.ErrorCode(err); got != code {
		t.Errorf("%s: error %v (code %q), want code %q", what, err, got, code)
	}
}
