package accounts

import (
	"net/netip"
	"testing"

	"github.com/google/uuid"

	"github.com/dermfollow/dermfollow/followup"
)

// A user's language is theirs: set, read back with the session's user, cleared, audited;
// anything but en and zh-CN is refused and changes nothing.
func TestSetLanguage(t *testing.T) {
	t.Parallel()
	s := newTestService(t)
	ctx := testCtx(t)
	c := mustClinic(t, s, "Language "+uuid.NewString()[:8], "")
	u, a := mustUser(t, s, c.ID, followup.RoleClinician)
	other, _ := mustUser(t, s, c.ID, followup.RoleClinician)
	addr := netip.MustParseAddr("192.0.2.8")
	lang := func(id uuid.UUID) string {
		t.Helper()
		got, _, err := s.SessionUser(ctx, id, addr)
		if err != nil {
			t.Fatal(err)
		}
		return got.Lang
	}
	if got := lang(u.ID); got != "" {
		t.Errorf("a new user's language = %q, want none", got)
	}
	if err := s.SetLanguage(ctx, a, "zh-CN"); err != nil {
		t.Fatal(err)
	}
	if got := lang(u.ID); got != "zh-CN" {
		t.Errorf("language = %q, want zh-CN", got)
	}
	if got := lang(other.ID); got != "" {
		t.Errorf("another user's language = %q: it changed with this one's", got)
	}
	for _, bad := range []string{"fr", "zh", "EN", "zh-CN\x00", "<script>"} {
		if err := s.SetLanguage(ctx, a, bad); followup.ErrorCode(err) != followup.EINVALID {
			t.Errorf("SetLanguage(%q) = %v, want invalid", bad, err)
		}
	}
	if got := lang(u.ID); got != "zh-CN" {
		t.Errorf("after refused values the language = %q", got)
	}
	if err := s.SetLanguage(ctx, a, ""); err != nil || lang(u.ID) != "" {
		t.Errorf("clearing the language: %v, now %q", err, lang(u.ID))
	}
	if err := s.SetLanguage(ctx, followup.SystemActor(c.ID), "en"); followup.ErrorCode(err) != followup.EUNAUTHORIZED {
		t.Errorf("the system sets a language: %v", err)
	}
	if n := countRows(t, s, `select count(*) from audit_events where actor_id = $1 and action = 'language_set'`, u.ID); n != 2 {
		t.Errorf("audit events = %d, want 2", n)
	}
	// The session's load reads it in the same query as the user's standing.
	if err := s.SetLanguage(ctx, a, "en"); err != nil {
		t.Fatal(err)
	}
	token := "tok-" + uuid.NewString()
	if err := s.CommitSession(ctx, token, []byte("x"), s.now().Add(3600e9), u.ID); err != nil {
		t.Fatal(err)
	}
	ss, found, err := s.FindSession(ctx, token)
	if err != nil || !found || ss.User == nil || ss.User.Lang != "en" {
		t.Errorf("FindSession = %+v, %v, %v; want the user's language en", ss.User, found, err)
	}
}
