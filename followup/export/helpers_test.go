package export

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/dermfollow/dermfollow/followup"
	"github.com/dermfollow/dermfollow/followup/followuptest"
)

// The clock, context, clinics and users of followuptest, under this package's names.
type testClock = followuptest.Clock

func newTestClock(t time.Time) *testClock  { return followuptest.NewClock(t) }
func testCtx(t testing.TB) context.Context { return followuptest.Ctx(t) }

// mustClinic creates a clinic named name in zone (UTC when "") through the core.
func mustClinic(t testing.TB, s *Service, name, zone string) followup.Clinic {
	return followuptest.Clinic(t, s.core, name, zone)
}

// testUser is a clinic user as the exports' tests need one; package accounts owns the real type.
type testUser struct {
	ID          uuid.UUID
	Email, Name string
}

// mustUser creates a user with the role in the clinic (a unique email made from the role)
// and returns it with its Actor, as if it had signed in.
func mustUser(t testing.TB, s *Service, clinic uuid.UUID, role string) (testUser, followup.Actor) {
	t.Helper()
	email := fmt.Sprintf("%s-%s@example.org", role, strings.ToLower(uuid.NewString()[:8]))
	return mustNamedUser(t, s, clinic, role, email, "Test "+role)
}

// mustNamedUser is mustUser with the email and name given.
func mustNamedUser(t testing.TB, s *Service, clinic uuid.UUID, role, email, name string) (testUser, followup.Actor) {
	t.Helper()
	id, a := followuptest.NamedUser(t, s.pool, clinic, role, email, name)
	return testUser{ID: id, Email: email, Name: name}, a
}

func countRows(t *testing.T, s *Service, sql string, args ...any) int {
	return followuptest.Count(t, s.pool, sql, args...)
}
