package reminders

import (
	"context"
	"testing"

	"github.com/google/uuid"

	"github.com/dermfollow/dermfollow/followup"
	"github.com/dermfollow/dermfollow/followup/followuptest"
)

// The clock, context, clinics, users and photos of followuptest, under this package's names.
type testClock = followuptest.Clock

func testCtx(t testing.TB) context.Context    { return followuptest.Ctx(t) }
func testJPEG(t testing.TB, seed byte) []byte { return followuptest.JPEG(t, seed) }
func countRows(t *testing.T, s *Service, sql string, args ...any) int {
	return followuptest.Count(t, s.pool, sql, args...)
}
func mustClinic(t testing.TB, core *followup.Service, name, zone string) followup.Clinic {
	return followuptest.Clinic(t, core, name, zone)
}
func mustUser(t testing.TB, s *Service, clinic uuid.UUID, role string) (uuid.UUID, followup.Actor) {
	return followuptest.User(t, s.pool, clinic, role)
}

// coreFixture is followuptest's clinic in Shanghai with a clinician and a patient enrolled in
// the PWS protocol, on a fresh database: the core (core) and the reminders (svc) over it, on
// one clock the test controls.
type coreFixture struct {
	core      *followup.Service
	svc       *Service
	clock     *testClock
	clinic    followup.Clinic
	clinician followup.Actor
	patient   followup.Patient
	proc      followup.Enrolment
}

func newCoreFixture(t *testing.T) *coreFixture {
	t.Helper()
	base := followuptest.New(t)
	svc, err := New(Config{Pool: base.Pool, Now: base.Clock.Now, BaseURL: followuptest.BaseURL})
	if err != nil {
		t.Fatal(err)
	}
	return &coreFixture{core: base.Core, svc: svc, clock: base.Clock, clinic: base.Clinic, clinician: base.Clinician,
		patient: base.Patient, proc: base.Proc}
}

func (f *coreFixture) upload(t *testing.T, a followup.Actor, tp, view, uploadID string, body []byte) (followup.Photo, bool, error) {
	return followuptest.Upload(t, f.core, a, f.proc.ID, tp, view, uploadID, body)
}

func (f *coreFixture) parent(t *testing.T) followup.Actor {
	return followuptest.Parent(t, f.core, f.clinician, f.proc.ID)
}
