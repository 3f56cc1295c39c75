package followup

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/dermfollow/dermfollow/followup/pgtest"
	"github.com/dermfollow/dermfollow/imagestore"
	"github.com/dermfollow/dermfollow/protocols"
)

// newTestService returns a Service over a fresh migrated database, a local store in a temp
// dir and the shipped protocols; opts adjust the Config (a test clock, say).
func newTestService(t testing.TB, opts ...func(*Config)) *Service {
	t.Helper()
	store, err := imagestore.NewLocalStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	reg, err := protocols.LoadRegistry("")
	if err != nil {
		t.Fatal(err)
	}
	cfg := Config{Pool: pgtest.NewPool(t), Store: store, Protocols: reg}
	for _, o := range opts {
		o(&cfg)
	}
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// testCtx is a per-test context with a timeout, cancelled when the test ends.
func testCtx(t testing.TB) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// mustClinic creates a clinic named name in zone (UTC when "").
func mustClinic(t testing.TB, s *Service, name, zone string) Clinic {
	t.Helper()
	if zone == "" {
		zone = "UTC"
	}
	c, err := s.CreateClinic(testCtx(t), name, zone)
	if err != nil {
		t.Fatalf("create clinic %q: %v", name, err)
	}
	return c
}

// testUser is a clinic user as the core's tests need one; package accounts owns the real type.
type testUser struct {
	ID          uuid.UUID
	Email, Name string
}

// mustUser creates a user with the role in the clinic (a unique email made from the role)
// and returns it with its Actor, as if it had signed in. Users are package accounts'; the
// core only needs the row, so it is written directly.
func mustUser(t testing.TB, s *Service, clinic uuid.UUID, role string) (testUser, Actor) {
	t.Helper()
	email := fmt.Sprintf("%s-%s@example.org", role, strings.ToLower(uuid.NewString()[:8]))
	return mustNamedUser(t, s, clinic, role, email, "Test "+role)
}

// mustNamedUser is mustUser with the email and name given.
func mustNamedUser(t testing.TB, s *Service, clinic uuid.UUID, role, email, name string) (testUser, Actor) {
	t.Helper()
	u := testUser{Email: email, Name: name}
	if err := s.pool.QueryRow(testCtx(t), `insert into users (clinic_id, email, name, role, password_hash)
		values ($1, $2, $3, $4, 'not a hash') returning id`, clinic, email, name, role).Scan(&u.ID); err != nil {
		t.Fatalf("create %s: %v", role, err)
	}
	return u, Actor{Kind: ActorUser, ID: u.ID, ClinicID: clinic, Role: role}
}
