package export

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/dermfollow/dermfollow/followup"
)

// testClock is a settable clock, shared by the core and the exports of a test.
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

// mustClinic creates a clinic named name in zone (UTC when "") through the core.
func mustClinic(t testing.TB, s *Service, name, zone string) followup.Clinic {
	t.Helper()
	if zone == "" {
		zone = "UTC"
	}
	c, err := s.core.CreateClinic(testCtx(t), name, zone)
	if err != nil {
		t.Fatalf("create clinic %q: %v", name, err)
	}
	return c
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

// mustNamedUser is mustUser with the email and name given. Users are package accounts'; a
// row is all the exports need, so it is written directly.
func mustNamedUser(t testing.TB, s *Service, clinic uuid.UUID, role, email, name string) (testUser, followup.Actor) {
	t.Helper()
	u := testUser{Email: email, Name: name}
	if err := s.pool.QueryRow(testCtx(t), `insert into users (clinic_id, email, name, role, password_hash)
		values ($1, $2, $3, $4, 'not a hash') returning id`, clinic, email, name, role).Scan(&u.ID); err != nil {
		t.Fatalf("create %s: %v", role, err)
	}
	return u, followup.Actor{Kind: followup.ActorUser, ID: u.ID, ClinicID: clinic, Role: role}
}

func countRows(t *testing.T, s *Service, sql string, args ...any) int {
	t.Helper()
	var n int
	if err := s.pool.QueryRow(testCtx(t), sql, args...).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}
