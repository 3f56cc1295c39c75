package conversation

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/dermfollow/dermfollow/followup"
	"github.com/dermfollow/dermfollow/followup/followuptest"
	"github.com/dermfollow/dermfollow/followup/pgtest"
	"github.com/dermfollow/dermfollow/imagestore"
)

// testClock is followuptest's clock, shared by the core and the conversation.
type testClock = followuptest.Clock

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
	f := &fixture{pool: pgtest.NewPool(t), clock: followuptest.NewClock(time.Date(2026, 5, 4, 9, 0, 0, 0, time.UTC))}
	f.core = followuptest.NewCore(t, f.pool, f.clock.Now)
	var err error
	if f.conv, err = New(Config{Pool: f.pool, Now: f.clock.Now, Limit: limit}); err != nil {
		t.Fatal(err)
	}
	f.clinic = followuptest.Clinic(t, f.core, "Clinic "+uuid.NewString()[:8], "Asia/Shanghai")
	f.clinician = f.user(t, f.clinic.ID, followup.RoleClinician, "Dr Chen")
	f.admin = f.user(t, f.clinic.ID, followup.RoleAdmin, "Dr Admin")
	f.research = f.user(t, f.clinic.ID, followup.RoleResearcher, "R. Searcher")
	other := followuptest.Clinic(t, f.core, "Other "+uuid.NewString()[:8], "UTC")
	f.outsider = f.user(t, other.ID, followup.RoleClinician, "Dr Elsewhere")
	f.patient, f.proc = f.enrol(t, "Lina Zhang", "2026-05-04T10:00:00+08:00")
	f.parent = f.link(t, f.proc)
	return f
}

// user writes a clinic user's row (users are package accounts'; only the row is needed).
func (f *fixture) user(t *testing.T, clinic uuid.UUID, role, name string) followup.Actor {
	t.Helper()
	_, a := followuptest.NamedUser(t, f.pool, clinic, role, fmt.Sprintf("%s-%s@example.org", role, strings.ToLower(uuid.NewString()[:8])), name)
	return a
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
	return followuptest.Parent(t, f.core, f.clinician, proc)
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
	return followuptest.Count(t, f.pool, sql, args...)
}

func testCtx(t testing.TB) context.Context { return followuptest.Ctx(t) }

func wantCode(t *testing.T, what string, err error, code string) {
	t.Helper()
	if got := followup.ErrorCode(err); got != code {
		t.Errorf("%s: error %v (code %q), want code %q", what, err, got, code)
	}
}
