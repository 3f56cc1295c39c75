package accounts

import (
	"bytes"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/dermfollow/dermfollow/followup"
)

// The session store reads a session and its user's standing (clinic, role, disabled, epoch)
// in one query; what it reports about the user must be what SessionUser reads on its own.
func TestSessionStore(t *testing.T) {
	t.Parallel()
	s := newTestService(t)
	ctx := testCtx(t)
	c := mustClinic(t, s, "Session store "+uuid.NewString()[:8], "")
	u, a := mustUser(t, s, c.ID, followup.RoleClinician)
	token := "hash-" + uuid.NewString()
	later := time.Now().Add(time.Hour)

	if _, found, err := s.FindSession(ctx, token); err != nil || found {
		t.Fatalf("unknown token: found %v, %v", found, err)
	}
	// Anonymous: data, no user.
	if err := s.CommitSession(ctx, token, []byte("anon"), later, uuid.Nil); err != nil {
		t.Fatal(err)
	}
	if ss, found, err := s.FindSession(ctx, token); err != nil || !found || string(ss.Data) != "anon" || ss.UserID != uuid.Nil || ss.User != nil {
		t.Fatalf("anonymous session = %+v, %v, %v", ss, found, err)
	}
	// Signed in: the same row now names the user, with the user's standing.
	if err := s.CommitSession(ctx, token, []byte("user"), later, u.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := s.EndAllSessions(ctx, a); err != nil {
		t.Fatal(err)
	}
	ss, found, err := s.FindSession(ctx, token)
	if err != nil || !found || !bytes.Equal(ss.Data, []byte("user")) || ss.UserID != u.ID || ss.User == nil {
		t.Fatalf("signed-in session = %+v, %v, %v", ss, found, err)
	}
	if want := (SessionUserState{ClinicID: c.ID, Role: followup.RoleClinician, Epoch: 1}); *ss.User != want {
		t.Errorf("user standing = %+v, want %+v", *ss.User, want)
	}
	// A disabled user's session still loads, without a standing: the caller signs it out.
	if _, err := s.pool.Exec(ctx, `update users set disabled_at = now() where id = $1`, u.ID); err != nil {
		t.Fatal(err)
	}
	if ss, found, err := s.FindSession(ctx, token); err != nil || !found || ss.UserID != u.ID || ss.User != nil {
		t.Errorf("disabled user's session = %+v, %v, %v", ss, found, err)
	}
	// Expired sessions are not found and are removed by DeleteExpiredSessions; others stay.
	expired := "hash-" + uuid.NewString()
	if err := s.CommitSession(ctx, expired, []byte("old"), time.Now().Add(-time.Minute), uuid.Nil); err != nil {
		t.Fatal(err)
	}
	if _, found, err := s.FindSession(ctx, expired); err != nil || found {
		t.Errorf("expired session found: %v, %v", found, err)
	}
	if n, err := s.DeleteExpiredSessions(ctx); err != nil || n < 1 {
		t.Errorf("DeleteExpiredSessions = %d, %v", n, err)
	}
	if n := countRows(t, s, `select count(*) from sessions where token = $1`, expired); n != 0 {
		t.Errorf("expired row left: %d", n)
	}
	if err := s.DeleteSession(ctx, token); err != nil {
		t.Fatal(err)
	}
	if _, found, err := s.FindSession(ctx, token); err != nil || found {
		t.Errorf("deleted session found: %v, %v", found, err)
	}
}
