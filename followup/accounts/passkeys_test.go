package accounts

import (
	"bytes"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/dermfollow/dermfollow/followup"
)

// registerPasskey adds the authenticator's passkey for a under name.
func registerPasskey(t *testing.T, s *Service, a followup.Actor, auth *softAuthenticator, name string) Passkey {
	t.Helper()
	c, err := s.BeginRegistration(testCtx(t), a)
	if err != nil {
		t.Fatal(err)
	}
	p, err := s.FinishRegistration(testCtx(t), a, c.ID, name, auth.create(t, c.Options))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestPasskeyRegistrationAndLogin(t *testing.T) {
	t.Parallel()
	s, clock := newFactorService(t)
	ctx := testCtx(t)
	c := mustClinic(t, s, "Passkeys "+uuid.NewString()[:8], "")
	u, a := mustUser(t, s, c.ID, followup.RoleClinician)
	auth := newSoftAuthenticator(t)

	begun, err := s.BeginRegistration(ctx, a)
	if err != nil {
		t.Fatal(err)
	}
	o := parseOptions(t, begun.Options)
	if o.PublicKey.RP.ID != testRPID || o.PublicKey.User.Name != u.Email || len(o.PublicKey.Challenge) < 22 ||
		!begun.ExpiresAt.Equal(clock.Now().Add(CeremonyTTL)) {
		t.Errorf("registration options %s, expires %v", begun.Options, begun.ExpiresAt)
	}
	if h, _ := b64.DecodeString(o.PublicKey.User.ID); len(h) != 32 || bytes.Contains(h, u.ID[:]) {
		t.Errorf("user handle %q: want 32 random bytes, not the user's id", o.PublicKey.User.ID)
	}
	pk, err := s.FinishRegistration(ctx, a, begun.ID, "  Clinic laptop ", auth.create(t, begun.Options))
	if err != nil {
		t.Fatal(err)
	}
	if pk.Name != "Clinic laptop" || !slices.Equal(pk.Transports, []string{"internal", "hybrid"}) || pk.AAGUID != uuid.UUID(auth.aaguid) {
		t.Errorf("passkey %+v", pk)
	}
	list, err := s.ListPasskeys(ctx, a)
	if err != nil || len(list) != 1 || list[0].ID != pk.ID || !list[0].LastUsedAt.IsZero() {
		t.Fatalf("list = %+v, %v", list, err)
	}
	st, err := s.SecondFactorState(ctx, u.ID)
	if err != nil || !st.Required || !st.Enrolled || !slices.Equal(st.Methods, []string{MethodPasskey}) || st.Passkeys != 1 || !st.PasskeysAvailable {
		t.Errorf("state = %+v, %v", st, err)
	}
	// The same authenticator is not offered to register again.
	again, err := s.BeginRegistration(ctx, a)
	if err != nil {
		t.Fatal(err)
	}
	if ex := parseOptions(t, again.Options).PublicKey.Exclude; len(ex) != 1 || ex[0].ID != b64.EncodeToString(auth.credID) {
		t.Errorf("excludeCredentials = %+v", ex)
	}
	_, err = s.FinishRegistration(ctx, a, again.ID, "Twice", auth.create(t, again.Options))
	wantCode(t, "the same passkey twice", err, followup.ECONFLICT)

	// The second step of a sign-in.
	clock.Add(time.Minute)
	login, err := s.BeginLogin(ctx, u.ID)
	if err != nil {
		t.Fatal(err)
	}
	if allow := parseOptions(t, login.Options).PublicKey.Allow; len(allow) != 1 || allow[0].ID != b64.EncodeToString(auth.credID) {
		t.Errorf("allowCredentials = %+v", allow)
	}
	answer := auth.get(t, login.Options)
	addr := netip.MustParseAddr("192.0.2.33")
	v, err := s.FinishLogin(ctx, u.ID, login.ID, answer, addr)
	if err != nil || v.Method != MethodPasskey || !v.At.Equal(clock.Now()) {
		t.Fatalf("finish login = %+v, %v", v, err)
	}
	var count int64
	var used time.Time
	if err := s.pool.QueryRow(ctx, `select sign_count, last_used_at from passkeys where id = $1`, pk.ID).Scan(&count, &used); err != nil ||
		count != 1 || !used.Equal(clock.Now()) {
		t.Errorf("after use: sign_count %d, last_used_at %v (%v)", count, used, err)
	}
	// A ceremony is used once.
	_, err = s.FinishLogin(ctx, u.ID, login.ID, answer, addr)
	wantCode(t, "replayed ceremony", err, followup.EUNAUTHORIZED)

	// A counter that goes back means a copied key: refused, and remembered.
	login2, _ := s.BeginLogin(ctx, u.ID)
	auth.counter = 0 // get counts it up to 1, which was seen already
	_, err = s.FinishLogin(ctx, u.ID, login2.ID, auth.get(t, login2.Options), addr)
	wantCode(t, "counter went back", err, followup.EUNAUTHORIZED)
	if n := countRows(t, s, `select count(*) from passkeys where id = $1 and clone_warning`, pk.ID); n != 1 {
		t.Error("clone_warning not recorded")
	}

	var verified, failed int
	if err := s.pool.QueryRow(ctx, `select count(*) filter (where action = $1), count(*) filter (where action = $2)
		from audit_events where target_id = $3 and detail->>'method' = 'passkey'`, AuditSecondFactorVerified, AuditSecondFactorFailed, u.ID).
		Scan(&verified, &failed); err != nil {
		t.Fatal(err)
	}
	if verified != 1 || failed != 1 {
		t.Errorf("audit: %d verified, %d failed; want 1 and 1", verified, failed)
	}
	pub, _ := auth.key.PublicKey.Bytes()
	assertAuditClean(t, s, b64.EncodeToString(auth.credID), b64.EncodeToString(auth.handle), o.PublicKey.Challenge,
		string(b64.EncodeToString(pub[1:33])), begun.ID, login.ID)
}

// A ceremony belongs to its user and lives CeremonyTTL.
func TestPasskeyCeremonyBinding(t *testing.T) {
	t.Parallel()
	s, clock := newFactorService(t)
	ctx := testCtx(t)
	c := mustClinic(t, s, "Binding "+uuid.NewString()[:8], "")
	ua, a := mustUser(t, s, c.ID, followup.RoleClinician)
	ub, b := mustUser(t, s, c.ID, followup.RoleClinician)
	authA, authB := newSoftAuthenticator(t), newSoftAuthenticator(t)
	registerPasskey(t, s, a, authA, "A's key")
	registerPasskey(t, s, b, authB, "B's key")

	// B cannot finish A's registration, and that leaves A's ceremony alone.
	reg, _ := s.BeginRegistration(ctx, a)
	_, err := s.FinishRegistration(ctx, b, reg.ID, "Stolen", newSoftAuthenticator(t).create(t, reg.Options))
	wantCode(t, "another user's registration", err, followup.EUNAUTHORIZED)
	if msg := followup.ErrorMessage(err); !strings.Contains(msg, "another account") {
		t.Errorf("another user's registration: message %q does not say whose it is", msg)
	}
	if _, err := s.FinishRegistration(ctx, a, reg.ID, "Second key", newSoftAuthenticator(t).create(t, reg.Options)); err != nil {
		t.Errorf("A after B's attempt: %v", err)
	}

	loginA, _ := s.BeginLogin(ctx, ua.ID)
	// B's passkey answering A's challenge, as B or as A.
	_, err = s.FinishLogin(ctx, ub.ID, loginA.ID, authB.get(t, loginA.Options), netip.Addr{})
	wantCode(t, "A's ceremony finished as B", err, followup.EUNAUTHORIZED)
	_, err = s.FinishLogin(ctx, ua.ID, loginA.ID, authB.get(t, loginA.Options), netip.Addr{})
	wantCode(t, "B's passkey for A", err, followup.EUNAUTHORIZED)
	// That used A's ceremony up; a fresh one passes with A's passkey.
	loginA, _ = s.BeginLogin(ctx, ua.ID)
	if _, err := s.FinishLogin(ctx, ua.ID, loginA.ID, authA.get(t, loginA.Options), netip.Addr{}); err != nil {
		t.Errorf("A's passkey: %v", err)
	}
	// An answer to one challenge does not pass another.
	first, _ := s.BeginLogin(ctx, ua.ID)
	second, _ := s.BeginLogin(ctx, ua.ID)
	_, err = s.FinishLogin(ctx, ua.ID, second.ID, authA.get(t, first.Options), netip.Addr{})
	wantCode(t, "answer to another challenge", err, followup.EUNAUTHORIZED)
	// A used ceremony is gone, whoever asks.
	_, err = s.FinishLogin(ctx, ua.ID, second.ID, authA.get(t, second.Options), netip.Addr{})
	if msg := followup.ErrorMessage(err); followup.ErrorCode(err) != followup.EUNAUTHORIZED || !strings.Contains(msg, "used already") {
		t.Errorf("used ceremony: %v", err)
	}

	// A signature that does not verify.
	forged, _ := s.BeginLogin(ctx, ua.ID)
	otherKey := newSoftAuthenticator(t)
	otherKey.credID, otherKey.handle = authA.credID, authA.handle
	_, err = s.FinishLogin(ctx, ua.ID, forged.ID, otherKey.get(t, forged.Options), netip.Addr{})
	wantCode(t, "signed by another key", err, followup.EUNAUTHORIZED)

	// Expired.
	late, _ := s.BeginLogin(ctx, ua.ID)
	clock.Add(CeremonyTTL)
	_, err = s.FinishLogin(ctx, ua.ID, late.ID, authA.get(t, late.Options), netip.Addr{})
	wantCode(t, "expired", err, followup.EUNAUTHORIZED)
	if !strings.Contains(followup.ErrorMessage(err), "expired") {
		t.Errorf("expired: %q", followup.ErrorMessage(err))
	}
	if n, err := s.DeleteExpiredSignInState(ctx); err != nil || n == 0 {
		t.Errorf("DeleteExpiredSignInState = %d, %v", n, err)
	}

	// Bad input, before any ceremony is looked at.
	for name, tc := range map[string]struct {
		id       string
		response []byte
	}{
		"empty answer":    {loginA.ID, nil},
		"huge answer":     {loginA.ID, bytes.Repeat([]byte("x"), maxPasskeyResponse+1)},
		"not JSON":        {loginA.ID, []byte("{")},
		"bad ceremony id": {"not-a-ceremony", authA.get(t, loginA.Options)},
	} {
		_, err := s.FinishLogin(ctx, ua.ID, tc.id, tc.response, netip.Addr{})
		wantCode(t, name, err, followup.EINVALID)
	}
	reg, _ = s.BeginRegistration(ctx, a)
	for _, name := range []string{"", "   ", strings.Repeat("n", MaxPasskeyName+1), "tab\there"} {
		_, err := s.FinishRegistration(ctx, a, reg.ID, name, authA.create(t, reg.Options))
		wantCode(t, "name "+name, err, followup.EINVALID)
	}
	_, err = s.BeginLogin(ctx, uuid.New())
	wantCode(t, "unknown user", err, followup.EUNAUTHORIZED)
}

func TestPasskeyManagement(t *testing.T) {
	t.Parallel()
	s, _ := newFactorService(t)
	ctx := testCtx(t)
	c := mustClinic(t, s, "Manage "+uuid.NewString()[:8], "")
	u, a := mustUser(t, s, c.ID, followup.RoleClinician)
	_, other := mustUser(t, s, c.ID, followup.RoleAdmin)
	pk := registerPasskey(t, s, a, newSoftAuthenticator(t), "Phone")
	codes, err := s.RegenerateRecoveryCodes(ctx, a) // a passkey-only user gets codes this way
	if err != nil || len(codes) != RecoveryCodeCount {
		t.Fatalf("recovery codes: %d, %v", len(codes), err)
	}

	wantCode(t, "rename: too long", s.RenamePasskey(ctx, a, pk.ID, strings.Repeat("é", MaxPasskeyName+1)), followup.EINVALID)
	wantCode(t, "rename: someone else's", s.RenamePasskey(ctx, other, pk.ID, "Mine"), followup.ENOTFOUND)
	if err := s.RenamePasskey(ctx, a, pk.ID, strings.Repeat("é", MaxPasskeyName)); err != nil {
		t.Errorf("rename to 60 characters: %v", err)
	}
	if list, _ := s.ListPasskeys(ctx, a); len(list) != 1 || list[0].Name != strings.Repeat("é", MaxPasskeyName) {
		t.Errorf("after rename: %+v", list)
	}
	if list, _ := s.ListPasskeys(ctx, other); len(list) != 0 {
		t.Errorf("another user lists %+v", list)
	}
	wantCode(t, "remove: someone else's", s.RemovePasskey(ctx, other, pk.ID), followup.ENOTFOUND)
	if err := s.RemovePasskey(ctx, a, pk.ID); err != nil {
		t.Fatal(err)
	}
	wantCode(t, "remove twice", s.RemovePasskey(ctx, a, pk.ID), followup.ENOTFOUND)
	if st, _ := s.SecondFactorState(ctx, u.ID); st.Enrolled || st.RecoveryCodesLeft != 0 {
		t.Errorf("after removing the only passkey: %+v", st)
	}
	_, err = s.BeginLogin(ctx, u.ID)
	wantCode(t, "login without passkeys", err, followup.ENOTFOUND)

	// At most MaxPasskeys.
	for i := range MaxPasskeys {
		registerPasskey(t, s, a, newSoftAuthenticator(t), "Key "+string(rune('a'+i)))
	}
	_, err = s.BeginRegistration(ctx, a)
	wantCode(t, "one too many", err, followup.EINVALID)
}

func TestPasswordlessLogin(t *testing.T) {
	t.Parallel()
	s, _ := newFactorService(t)
	ctx := testCtx(t)
	c := mustClinic(t, s, "Passwordless "+uuid.NewString()[:8], "")
	u, a := mustUser(t, s, c.ID, followup.RoleClinician)
	_, admin := mustUser(t, s, c.ID, followup.RoleAdmin)
	auth := newSoftAuthenticator(t)
	registerPasskey(t, s, a, auth, "Laptop")
	addr := netip.MustParseAddr("192.0.2.90")

	begun, err := s.BeginPasswordlessLogin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if o := parseOptions(t, begun.Options).PublicKey; len(o.Allow) != 0 || o.UserVerification != "required" || o.RPID != testRPID {
		t.Errorf("passwordless options %s", begun.Options)
	}
	_, _, err = s.FinishPasswordlessLogin(ctx, begun.ID, auth.get(t, begun.Options), addr)
	wantCode(t, "clinic does not allow it", err, followup.EFORBIDDEN)

	if err := s.SetClinicPasswordless(ctx, admin, true); err != nil {
		t.Fatal(err)
	}
	begun, _ = s.BeginPasswordlessLogin(ctx)
	got, v, err := s.FinishPasswordlessLogin(ctx, begun.ID, auth.get(t, begun.Options), addr)
	if err != nil || got != (followup.Actor{Kind: followup.ActorUser, ID: u.ID, ClinicID: c.ID, Role: followup.RoleClinician, Addr: addr}) || v.Method != MethodPasskey {
		t.Fatalf("passwordless = %+v %+v, %v", got, v, err)
	}
	// A ceremony begun for one user's second step is not a passwordless one.
	login, _ := s.BeginLogin(ctx, u.ID)
	_, _, err = s.FinishPasswordlessLogin(ctx, login.ID, auth.get(t, login.Options), addr)
	wantCode(t, "second-step ceremony", err, followup.EUNAUTHORIZED)
	// An unknown passkey.
	begun, _ = s.BeginPasswordlessLogin(ctx)
	stranger := newSoftAuthenticator(t)
	stranger.handle = make([]byte, 32)
	_, _, err = s.FinishPasswordlessLogin(ctx, begun.ID, stranger.get(t, begun.Options), addr)
	wantCode(t, "unknown passkey", err, followup.EUNAUTHORIZED)
	// A disabled user.
	if err := s.SetUserDisabled(ctx, admin, u.ID, true); err != nil {
		t.Fatal(err)
	}
	begun, _ = s.BeginPasswordlessLogin(ctx)
	_, _, err = s.FinishPasswordlessLogin(ctx, begun.ID, auth.get(t, begun.Options), addr)
	wantCode(t, "disabled user", err, followup.EUNAUTHORIZED)

	var logins, refused int
	if err := s.pool.QueryRow(ctx, `select count(*) filter (where action = $1), count(*) filter (where action = $2)
		from audit_events where target_id = $3 and detail->>'method' = 'passkey'`, AuditLogin, AuditLoginFailed, u.ID).Scan(&logins, &refused); err != nil {
		t.Fatal(err)
	}
	if logins != 1 || refused != 1 {
		t.Errorf("audit: %d passkey logins, %d refused; want 1 and 1", logins, refused)
	}
}

func TestPasskeysOff(t *testing.T) {
	t.Parallel()
	s := newTestService(t) // no RPID
	c := mustClinic(t, s, "No passkeys "+uuid.NewString()[:8], "")
	u, a := mustUser(t, s, c.ID, followup.RoleClinician)
	_, err := s.BeginRegistration(testCtx(t), a)
	wantCode(t, "register", err, followup.EFORBIDDEN)
	_, err = s.BeginPasswordlessLogin(testCtx(t))
	wantCode(t, "passwordless", err, followup.EFORBIDDEN)
	if st, err := s.SecondFactorState(testCtx(t), u.ID); err != nil || st.PasskeysAvailable {
		t.Errorf("state = %+v, %v", st, err)
	}
	for _, bad := range []Config{
		{Pool: s.pool, RPID: "127.0.0.1", RPOrigins: []string{"http://127.0.0.1:8080"}},
		{Pool: s.pool, RPID: "followup.example.org"},
	} {
		if _, err := New(bad); err == nil {
			t.Errorf("New(%q, %q) accepted", bad.RPID, bad.RPOrigins)
		}
	}
}
