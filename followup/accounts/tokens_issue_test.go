package accounts

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/dermfollow/dermfollow/followup"
)

func TestIssueToken(t *testing.T) {
	t.Parallel()
	s, clock := newFactorService(t)
	ctx := testCtx(t)
	c := mustClinic(t, s, "Tokens "+uuid.NewString()[:8], "")
	admin, adminActor := mustUser(t, s, c.ID, followup.RoleAdmin)
	doc, docActor := mustUser(t, s, c.ID, followup.RoleClinician)
	res, _ := mustUser(t, s, c.ID, followup.RoleResearcher)
	sys := followup.SystemActor(uuid.Nil)

	// Defaults: the user's role, 90 days.
	tok, secret, err := s.IssueToken(ctx, docActor, NewToken{Email: doc.Email, Name: " CI upload "})
	if err != nil {
		t.Fatal(err)
	}
	if tok.Name != "CI upload" || tok.Role != followup.RoleClinician || !tok.ExpiresAt.Equal(clock.Now().Add(90*24*time.Hour)) || tok.UserID != doc.ID {
		t.Errorf("token %+v", tok)
	}
	// Bad input.
	for name, in := range map[string]NewToken{
		"no name":    {Email: doc.Email},
		"long name":  {Email: doc.Email, Name: strings.Repeat("n", MaxTokenName+1)},
		"too long":   {Email: doc.Email, Name: "x", Lifetime: MaxTokenLifetime + time.Hour},
		"too short":  {Email: doc.Email, Name: "x", Lifetime: time.Minute},
		"negative":   {Email: doc.Email, Name: "x", Lifetime: -time.Hour},
		"bad role":   {Email: doc.Email, Name: "x", Role: "root"},
		"higher":     {Email: doc.Email, Name: "x", Role: followup.RoleAdmin},
		"sideways":   {Email: doc.Email, Name: "x", Role: followup.RoleResearcher},
		"sideways 2": {Email: res.Email, Name: "x", Role: followup.RoleClinician},
	} {
		_, _, err := s.IssueToken(ctx, sys, in)
		wantCode(t, name, err, followup.EINVALID)
	}
	// An admin's token may act as a researcher only: it gets that role, not the user's.
	_, exportOnly, err := s.IssueToken(ctx, adminActor, NewToken{Email: admin.Email, Name: "Exports", Role: followup.RoleResearcher, Lifetime: MaxTokenLifetime})
	if err != nil {
		t.Fatal(err)
	}
	if a, err := s.AuthenticateToken(ctx, exportOnly, netip.Addr{}); err != nil || a.Role != followup.RoleResearcher || a.ID != admin.ID {
		t.Errorf("researcher token of an admin acts as %+v, %v", a, err)
	}
	_, full, err := s.IssueToken(ctx, sys, NewToken{Email: admin.Email, Name: "Everything"})
	if err != nil {
		t.Fatal(err)
	}
	// A user whose role no longer covers the token's loses it; a token of the user's own role follows the user.
	if _, err := s.pool.Exec(ctx, `update users set role = 'clinician' where id = $1`, admin.ID); err != nil {
		t.Fatal(err)
	}
	for _, tk := range []string{exportOnly, full} {
		if _, err := s.AuthenticateToken(ctx, tk, netip.Addr{}); followup.ErrorCode(err) != followup.EUNAUTHORIZED {
			t.Errorf("token beyond the user's new role: %v", err)
		}
	}
	if a, err := s.AuthenticateToken(ctx, secret, netip.Addr{}); err != nil || a.Role != followup.RoleClinician {
		t.Errorf("clinician token: %+v, %v", a, err)
	}
	// Expiry.
	clock.Add(90*24*time.Hour - time.Second)
	if _, err := s.AuthenticateToken(ctx, secret, netip.Addr{}); err != nil {
		t.Errorf("a second before expiry: %v", err)
	}
	clock.Add(time.Second)
	if _, err := s.AuthenticateToken(ctx, secret, netip.Addr{}); followup.ErrorCode(err) != followup.EUNAUTHORIZED {
		t.Errorf("at expiry: %v", err)
	}
	assertAuditClean(t, s, secret[4:], exportOnly[4:], full[4:])
}

func TestListAndRevokeTokens(t *testing.T) {
	t.Parallel()
	s, clock := newFactorService(t)
	ctx := testCtx(t)
	c := mustClinic(t, s, "Token list "+uuid.NewString()[:8], "")
	other := mustClinic(t, s, "Other "+uuid.NewString()[:8], "")
	doc, docActor := mustUser(t, s, c.ID, followup.RoleClinician)
	_, colleague := mustUser(t, s, c.ID, followup.RoleClinician)
	_, admin := mustUser(t, s, c.ID, followup.RoleAdmin)
	_, otherAdmin := mustUser(t, s, other.ID, followup.RoleAdmin)

	first, secret, err := s.IssueToken(ctx, docActor, NewToken{Email: doc.Email, Name: "First"})
	if err != nil {
		t.Fatal(err)
	}
	clock.Add(time.Hour)
	second, _, err := s.IssueToken(ctx, admin, NewToken{Email: doc.Email, Name: "Second", Lifetime: 7 * 24 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.AuthenticateToken(ctx, secret, netip.Addr{}); err != nil {
		t.Fatal(err)
	}
	list, err := s.ListTokens(ctx, docActor, doc.ID)
	if err != nil || len(list) != 2 || list[0].ID != second.ID || list[1].ID != first.ID {
		t.Fatalf("list = %+v, %v; want newest first", list, err)
	}
	if l := list[1]; l.Name != "First" || !l.LastUsedAt.Equal(clock.Now()) || !l.CreatedAt.Equal(first.CreatedAt) || !l.ExpiresAt.Equal(first.ExpiresAt) {
		t.Errorf("listed %+v, issued %+v", l, first)
	}
	if !list[0].LastUsedAt.IsZero() {
		t.Errorf("unused token has last use %v", list[0].LastUsedAt)
	}
	_, err = s.ListTokens(ctx, colleague, doc.ID)
	wantCode(t, "colleague lists", err, followup.EFORBIDDEN)
	_, err = s.ListTokens(ctx, otherAdmin, doc.ID)
	wantCode(t, "other clinic lists", err, followup.ENOTFOUND)
	if l, err := s.ListTokens(ctx, admin, doc.ID); err != nil || len(l) != 2 {
		t.Errorf("admin lists %d, %v", len(l), err)
	}

	wantCode(t, "colleague revokes", s.RevokeTokenByID(ctx, colleague, first.ID), followup.EFORBIDDEN)
	wantCode(t, "other clinic revokes", s.RevokeTokenByID(ctx, otherAdmin, first.ID), followup.ENOTFOUND)
	wantCode(t, "unknown id", s.RevokeTokenByID(ctx, admin, uuid.New()), followup.ENOTFOUND)
	if err := s.RevokeTokenByID(ctx, docActor, first.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := s.AuthenticateToken(ctx, secret, netip.Addr{}); followup.ErrorCode(err) != followup.EUNAUTHORIZED {
		t.Errorf("revoked token: %v", err)
	}
	wantCode(t, "revoke twice", s.RevokeTokenByID(ctx, docActor, first.ID), followup.ENOTFOUND)
	if err := s.RevokeTokenByID(ctx, followup.SystemActor(uuid.Nil), second.ID); err != nil {
		t.Errorf("system revokes: %v", err)
	}
	if l, _ := s.ListTokens(ctx, docActor, doc.ID); len(l) != 0 {
		t.Errorf("revoked tokens listed: %+v", l)
	}

	// At most MaxActiveTokens at once; expired ones do not count.
	for i := range MaxActiveTokens {
		if _, _, err := s.IssueToken(ctx, docActor, NewToken{Email: doc.Email, Name: "t", Lifetime: time.Duration(i+1) * time.Hour}); err != nil {
			t.Fatal(err)
		}
	}
	_, _, err = s.IssueToken(ctx, docActor, NewToken{Email: doc.Email, Name: "one too many"})
	wantCode(t, "one too many", err, followup.EINVALID)
	clock.Add(time.Hour)
	if _, _, err := s.IssueToken(ctx, docActor, NewToken{Email: doc.Email, Name: "after one expired"}); err != nil {
		t.Errorf("after one expired: %v", err)
	}
}
