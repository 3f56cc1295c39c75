package accounts

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/alexedwards/argon2id"
	"github.com/google/uuid"

	"github.com/dermfollow/dermfollow/followup"
	"github.com/dermfollow/dermfollow/followup/followuptest"
	"github.com/dermfollow/dermfollow/followup/pgtest"
)

// productionPasswordParams is what the service hashes with outside tests.
var productionPasswordParams = *passwordParams

func init() {
	// argon2id at production cost takes about a second under the race detector; tests need
	// many users, not expensive hashes. TestPasswordParams checks the production values.
	passwordParams = &argon2id.Params{Memory: 1024, Iterations: 1, Parallelism: 1, SaltLength: 16, KeyLength: 32}
}

// newTestService returns a Service over a fresh migrated database.
func newTestService(t testing.TB) *Service {
	t.Helper()
	s, err := New(Config{Pool: pgtest.NewPool(t)})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// testCtx is a per-test context with a timeout, cancelled when the test ends.
func testCtx(t testing.TB) context.Context { return followuptest.Ctx(t) }

// mustClinic creates a clinic named name in zone (UTC when "") the way the service does.
func mustClinic(t testing.TB, s *Service, name, zone string) followup.Clinic {
	t.Helper()
	return followuptest.Clinic(t, followuptest.NewCore(t, s.pool, nil), name, zone)
}

// testPassword is a valid password every mustUser user has.
const testPassword = "test password 1234"

// mustUser creates a user with the role in the clinic (a unique email made from the role)
// and returns it with its Actor, as if it had signed in.
func mustUser(t testing.TB, s *Service, clinic uuid.UUID, role string) (User, followup.Actor) {
	t.Helper()
	email := fmt.Sprintf("%s-%s@example.org", role, strings.ToLower(uuid.NewString()[:8]))
	u, err := s.CreateUser(testCtx(t), followup.SystemActor(clinic), NewUser{ClinicID: clinic, Email: email, Name: "Test " + role, Role: role, Password: testPassword})
	if err != nil {
		t.Fatalf("create %s: %v", role, err)
	}
	return u, followup.Actor{Kind: followup.ActorUser, ID: u.ID, ClinicID: clinic, Role: role}
}

// countRows runs a count query.
func countRows(t *testing.T, s *Service, sql string, args ...any) int {
	t.Helper()
	var n int
	if err := s.pool.QueryRow(testCtx(t), sql, args...).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func wantCode(t *testing.T, what string, err error, code string) {
	t.Helper()
	if got := followup.ErrorCode(err); got != code {
		t.Errorf("%s: error %v (code %q), want code %q", what, err, got, code)
	}
}
