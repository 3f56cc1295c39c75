package accounts

import (
	"crypto/sha256"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/dermfollow/dermfollow/followup"
)

func TestCreateUser(t *testing.T) {
	t.Parallel()
	s := newTestService(t)
	ctx := testCtx(t)
	clinic := mustClinic(t, s, "North", "")
	const password = "a long enough secret"

	u, err := s.CreateUser(ctx, followup.SystemActor(clinic.ID), NewUser{ClinicID: clinic.ID, Email: "  Ana.Li@Example.ORG ", Role: followup.RoleClinician, Password: password})
	if err != nil {
		t.Fatal(err)
	}
	if u.Email != "ana.li@example.org" || u.Name != "ana.li" || u.Role != followup.RoleClinician || u.ClinicID != clinic.ID || u.Disabled {
		t.Errorf("created %+v", u)
	}
	var hash string
	if err := s.pool.QueryRow(ctx, `select password_hash from users where id = $1`, u.ID).Scan(&hash); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(hash, "$argon2id$") || strings.Contains(hash, password) {
		t.Errorf("password_hash = %q, want an argon2id hash", hash)
	}

	_, err = s.CreateUser(ctx, followup.SystemActor(clinic.ID), NewUser{ClinicID: clinic.ID, Email: "ANA.LI@example.org", Role: followup.RoleAdmin, Password: password})
	wantCode(t, "duplicate email", err, followup.ECONFLICT)
	if msg := followup.ErrorMessage(err); !strings.Contains(msg, "ana.li@example.org") || !strings.Contains(msg, "already exists") {
		t.Errorf("duplicate message = %q", msg)
	}

	for name, in := range map[string]NewUser{
		"no email":           {Email: "", Role: followup.RoleClinician, Password: password},
		"bad email":          {Email: "not-an-email", Role: followup.RoleClinician, Password: password},
		"display name email": {Email: "Bob <bob@example.org>", Role: followup.RoleClinician, Password: password},
		"two emails":         {Email: "a@example.org, b@example.org", Role: followup.RoleClinician, Password: password},
		"short password":     {Email: "b@example.org", Role: followup.RoleClinician, Password: "elevenchars"},
		"long password":      {Email: "b@example.org", Role: followup.RoleClinician, Password: strings.Repeat("x", 257)},
		"bad role":           {Email: "b@example.org", Role: "superuser", Password: password},
		"no role":            {Email: "b@example.org", Password: password},
		"long name":          {Email: "b@example.org", Name: strings.Repeat("n", 201), Role: followup.RoleClinician, Password: password},
	} {
		in.ClinicID = clinic.ID
		_, err := s.CreateUser(ctx, followup.SystemActor(clinic.ID), in)
		wantCode(t, name, err, followup.EINVALID)
	}
	_, err = s.CreateUser(ctx, followup.SystemActor(uuid.Nil), NewUser{ClinicID: uuid.New(), Email: "c@example.org", Role: followup.RoleClinician, Password: password})
	wantCode(t, "unknown clinic", err, followup.ENOTFOUND)

	var n int
	if err := s.pool.QueryRow(ctx, `select count(*) from users`).Scan(&n); err != nil || n != 1 {
		t.Errorf("users = %d (%v), want only the first", n, err)
	}
	var actorKind string
	var detail string
	if err := s.pool.QueryRow(ctx, `select actor_kind, detail::text from audit_events where action = $1 and target_id = $2 and clinic_id = $3`,
		AuditUserCreated, u.ID, clinic.ID).Scan(&actorKind, &detail); err != nil {
		t.Fatalf("user_created audit row: %v", err)
	}
	if actorKind != followup.ActorSystem || !strings.Contains(detail, `"role": "clinician"`) {
		t.Errorf("audit row %s %s", actorKind, detail)
	}
	assertAuditClean(t, s, password)
}

func TestCreateUserAuthorization(t *testing.T) {
	t.Parallel()
	s := newTestService(t)
	ctx := testCtx(t)
	north := mustClinic(t, s, "North", "")
	south := mustClinic(t, s, "South", "")
	_, northAdmin := mustUser(t, s, north.ID, followup.RoleAdmin)
	_, southAdmin := mustUser(t, s, south.ID, followup.RoleAdmin)
	_, northClinician := mustUser(t, s, north.ID, followup.RoleClinician)
	_, northResearcher := mustUser(t, s, north.ID, followup.RoleResearcher)
	in := func(email string) NewUser {
		return NewUser{ClinicID: north.ID, Email: email, Name: "New", Role: followup.RoleClinician, Password: testPassword}
	}

	_, err := s.CreateUser(ctx, northClinician, in("x1@example.org"))
	wantCode(t, "clinician", err, followup.EFORBIDDEN)
	_, err = s.CreateUser(ctx, northResearcher, in("x2@example.org"))
	wantCode(t, "researcher", err, followup.EFORBIDDEN)
	_, err = s.CreateUser(ctx, southAdmin, in("x3@example.org"))
	wantCode(t, "admin of another clinic", err, followup.ENOTFOUND)
	_, err = s.CreateUser(ctx, followup.SystemActor(south.ID), in("x4@example.org"))
	wantCode(t, "system of another clinic", err, followup.ENOTFOUND)
	_, err = s.CreateUser(ctx, followup.Actor{Kind: followup.ActorParent, ClinicID: north.ID}, in("x5@example.org"))
	wantCode(t, "parent", err, followup.EFORBIDDEN)

	u, err := s.CreateUser(ctx, northAdmin, in("x6@example.org"))
	if err != nil {
		t.Fatalf("admin of the clinic: %v", err)
	}
	// A zero ClinicID means the admin's own clinic.
	if _, err := s.CreateUser(ctx, northAdmin, NewUser{Email: "x7@example.org", Role: followup.RoleResearcher, Password: testPassword}); err != nil {
		t.Errorf("admin without ClinicID: %v", err)
	}
	var actorID uuid.UUID
	if err := s.pool.QueryRow(ctx, `select actor_id from audit_events where action = $1 and target_id = $2`, AuditUserCreated, u.ID).Scan(&actorID); err != nil || actorID != northAdmin.ID {
		t.Errorf("audit actor = %v (%v), want the admin %v", actorID, err, northAdmin.ID)
	}
	var n int
	if err := s.pool.QueryRow(ctx, `select count(*) from users where email like 'x%'`).Scan(&n); err != nil || n != 2 {
		t.Errorf("users created = %d (%v), want 2", n, err)
	}
}

func TestAuthenticate(t *testing.T) {
	t.Parallel()
	s := newTestService(t)
	ctx := testCtx(t)
	clinic := mustClinic(t, s, "North", "")
	const password = "correct horse battery"
	u, err := s.CreateUser(ctx, followup.SystemActor(clinic.ID), NewUser{ClinicID: clinic.ID, Email: "doc@example.org", Name: "Doc", Role: followup.RoleAdmin, Password: password})
	if err != nil {
		t.Fatal(err)
	}
	addr := netip.MustParseAddr("203.0.113.7")

	a, got, err := s.Authenticate(ctx, " DOC@example.org", password, addr)
	if err != nil {
		t.Fatalf("right password: %v", err)
	}
	if a != (followup.Actor{Kind: followup.ActorUser, ID: u.ID, ClinicID: clinic.ID, Role: followup.RoleAdmin, Addr: addr}) || got != u {
		t.Errorf("got %+v %+v", a, got)
	}

	const unknownEmail = "nobody-here@example.org"
	for name, tc := range map[string]struct{ email, password string }{
		"wrong password":   {"doc@example.org", password + "!"},
		"empty password":   {"doc@example.org", ""},
		"unknown email":    {unknownEmail, password},
		"malformed email":  {"doc", password},
		"huge password":    {"doc@example.org", strings.Repeat("p", 100000)},
		"password as case": {"doc@example.org", strings.ToUpper(password)},
	} {
		_, _, err := s.Authenticate(ctx, tc.email, tc.password, addr)
		wantCode(t, name, err, followup.EUNAUTHORIZED)
		if msg := followup.ErrorMessage(err); msg != "email or password is wrong" {
			t.Errorf("%s: message %q", name, msg)
		}
	}

	if _, err := s.pool.Exec(ctx, `update users set disabled_at = now() where id = $1`, u.ID); err != nil {
		t.Fatal(err)
	}
	_, _, err = s.Authenticate(ctx, "doc@example.org", password, addr)
	wantCode(t, "disabled", err, followup.EUNAUTHORIZED)
	_, _, err = s.Authenticate(ctx, "doc@example.org", "wrong wrong wrong", addr)
	if followup.ErrorMessage(err) != "email or password is wrong" {
		t.Errorf("disabled with a wrong password: %v, want the usual message", err)
	}

	rows, err := s.pool.Query(ctx, `select action, coalesce(clinic_id::text, ''), coalesce(target_id::text, ''), host(client_addr), detail->>'reason', detail::text
		from audit_events where action in ($1, $2) order by id`, AuditLogin, AuditLoginFailed)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	counts := map[string]int{}
	for rows.Next() {
		var action, clinicID, target, host, reason, detail string
		var reasonPtr *string
		if err := rows.Scan(&action, &clinicID, &target, &host, &reasonPtr, &detail); err != nil {
			t.Fatal(err)
		}
		if reasonPtr != nil {
			reason = *reasonPtr
		}
		counts[action+"/"+reason]++
		if host != addr.String() {
			t.Errorf("%s: client_addr %s", action, host)
		}
		switch reason {
		case "unknown_email":
			if clinicID != "" || target != "" || strings.Contains(detail, "nobody") || strings.Contains(detail, "@") {
				t.Errorf("failed login of an unknown email records clinic %q target %q detail %s", clinicID, target, detail)
			}
		default:
			if clinicID != clinic.ID.String() || target != u.ID.String() {
				t.Errorf("%s/%s: clinic %q target %q", action, reason, clinicID, target)
			}
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	want := map[string]int{"login/": 1, "login_failed/wrong_password": 5, "login_failed/unknown_email": 2, "login_failed/disabled": 1}
	for k, n := range want {
		if counts[k] != n {
			t.Errorf("audit %s = %d, want %d (all: %v)", k, counts[k], n, counts)
		}
	}
	assertAuditClean(t, s, password, unknownEmail)
}

func TestSetPassword(t *testing.T) {
	t.Parallel()
	s := newTestService(t)
	ctx := testCtx(t)
	north := mustClinic(t, s, "North", "")
	south := mustClinic(t, s, "South", "")
	doc, docActor := mustUser(t, s, north.ID, followup.RoleClinician)
	_, northAdmin := mustUser(t, s, north.ID, followup.RoleAdmin)
	_, southAdmin := mustUser(t, s, south.ID, followup.RoleAdmin)
	const newPassword = "a brand new password"

	wantCode(t, "clinician", s.SetPassword(ctx, docActor, doc.Email, newPassword), followup.EFORBIDDEN)
	wantCode(t, "admin of another clinic", s.SetPassword(ctx, southAdmin, doc.Email, newPassword), followup.ENOTFOUND)
	wantCode(t, "unknown user", s.SetPassword(ctx, northAdmin, "nobody@example.org", newPassword), followup.ENOTFOUND)
	wantCode(t, "short", s.SetPassword(ctx, northAdmin, doc.Email, "short"), followup.EINVALID)
	if err := s.SetPassword(ctx, northAdmin, doc.Email, newPassword); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.Authenticate(ctx, doc.Email, testPassword, netip.Addr{}); followup.ErrorCode(err) != followup.EUNAUTHORIZED {
		t.Errorf("old password still works: %v", err)
	}
	if _, _, err := s.Authenticate(ctx, doc.Email, newPassword, netip.Addr{}); err != nil {
		t.Errorf("new password: %v", err)
	}
	if err := s.SetPassword(ctx, followup.SystemActor(uuid.Nil), doc.Email, newPassword+"!"); err != nil {
		t.Errorf("system: %v", err)
	}
	var n int
	if err := s.pool.QueryRow(ctx, `select count(*) from audit_events where action = $1 and target_id = $2 and clinic_id = $3`,
		AuditPasswordSet, doc.ID, north.ID).Scan(&n); err != nil || n != 2 {
		t.Errorf("password_set audit rows = %d (%v), want 2", n, err)
	}
	assertAuditClean(t, s, newPassword)
}

func TestTokens(t *testing.T) {
	t.Parallel()
	s := newTestService(t)
	ctx := testCtx(t)
	north := mustClinic(t, s, "North", "")
	south := mustClinic(t, s, "South", "")
	doc, docActor := mustUser(t, s, north.ID, followup.RoleClinician)
	other, _ := mustUser(t, s, north.ID, followup.RoleClinician)
	_, southAdmin := mustUser(t, s, south.ID, followup.RoleAdmin)
	_, northAdmin := mustUser(t, s, north.ID, followup.RoleAdmin)

	clock := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	s.now = func() time.Time { return clock }

	token, err := s.CreateToken(ctx, followup.SystemActor(uuid.Nil), strings.ToUpper(doc.Email))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(token, "dft_") || len(token) != 47 || strings.ContainsAny(token, "+/=") {
		t.Errorf("token %q: want dft_ and 43 base64url characters", token)
	}
	var stored []byte
	if err := s.pool.QueryRow(ctx, `select token_hash from api_tokens where user_id = $1`, doc.ID).Scan(&stored); err != nil {
		t.Fatal(err)
	}
	if sum := sha256.Sum256([]byte(token)); string(stored) != string(sum[:]) {
		t.Error("api_tokens.token_hash is not the SHA-256 of the token")
	}
	var dump string
	if err := s.pool.QueryRow(ctx, `select string_agg(t::text, ' ') from api_tokens t`).Scan(&dump); err != nil || strings.Contains(dump, token[4:]) {
		t.Errorf("api_tokens holds the token itself (%v)", err)
	}

	addr := netip.MustParseAddr("::ffff:198.51.100.9")
	a, err := s.AuthenticateToken(ctx, token, addr)
	if err != nil {
		t.Fatal(err)
	}
	if a != (followup.Actor{Kind: followup.ActorUser, ID: doc.ID, ClinicID: north.ID, Role: followup.RoleClinician, Addr: netip.MustParseAddr("198.51.100.9")}) {
		t.Errorf("actor %+v", a)
	}
	lastUsed := func() time.Time {
		t.Helper()
		var at time.Time
		if err := s.pool.QueryRow(ctx, `select last_used_at from api_tokens where user_id = $1`, doc.ID).Scan(&at); err != nil {
			t.Fatal(err)
		}
		return at
	}
	if got := lastUsed(); !got.Equal(clock) {
		t.Errorf("last_used_at = %v, want %v", got, clock)
	}
	first := clock
	clock = clock.Add(30 * time.Second)
	if _, err := s.AuthenticateToken(ctx, token, addr); err != nil {
		t.Fatal(err)
	}
	if got := lastUsed(); !got.Equal(first) {
		t.Errorf("last_used_at = %v after 30 s, want it unchanged (%v)", got, first)
	}
	clock = clock.Add(31 * time.Second)
	if _, err := s.AuthenticateToken(ctx, token, addr); err != nil {
		t.Fatal(err)
	}
	if got := lastUsed(); !got.Equal(clock) {
		t.Errorf("last_used_at = %v after 61 s, want %v", got, clock)
	}

	// Bad tokens all answer the same.
	for name, bad := range map[string]string{
		"empty":         "",
		"no prefix":     token[4:],
		"other prefix":  "xyz_" + token[4:],
		"one char off":  token[:40] + flip(token[40]) + token[41:],
		"truncated":     token[:46],
		"extra":         token + "A",
		"not base64url": token[:10] + "!" + token[11:],
		"random":        "dft_" + strings.Repeat("A", 43),
	} {
		_, err := s.AuthenticateToken(ctx, bad, addr)
		wantCode(t, name, err, followup.EUNAUTHORIZED)
	}

	// Who may create tokens: the user, an admin of the clinic, the system.
	_, err = s.CreateToken(ctx, docActor, other.Email)
	wantCode(t, "clinician for a colleague", err, followup.EFORBIDDEN)
	_, err = s.CreateToken(ctx, southAdmin, doc.Email)
	wantCode(t, "admin of another clinic", err, followup.ENOTFOUND)
	_, err = s.CreateToken(ctx, followup.SystemActor(south.ID), doc.Email)
	wantCode(t, "system of another clinic", err, followup.ENOTFOUND)
	_, err = s.CreateToken(ctx, followup.SystemActor(uuid.Nil), "nobody@example.org")
	wantCode(t, "unknown email", err, followup.ENOTFOUND)
	own, err := s.CreateToken(ctx, docActor, doc.Email)
	if err != nil {
		t.Fatalf("own token: %v", err)
	}
	byAdmin, err := s.CreateToken(ctx, northAdmin, doc.Email)
	if err != nil {
		t.Fatalf("admin's token: %v", err)
	}

	// Revoking.
	wantCode(t, "revoke by another clinic's admin", s.RevokeToken(ctx, southAdmin, own), followup.ENOTFOUND)
	if err := s.RevokeToken(ctx, docActor, own); err != nil {
		t.Fatalf("revoke own: %v", err)
	}
	_, err = s.AuthenticateToken(ctx, own, addr)
	wantCode(t, "revoked", err, followup.EUNAUTHORIZED)
	wantCode(t, "revoke twice", s.RevokeToken(ctx, docActor, own), followup.ENOTFOUND)
	if _, err := s.AuthenticateToken(ctx, token, addr); err != nil {
		t.Errorf("revoking one token broke another: %v", err)
	}

	// Expired tokens and disabled users.
	if _, err := s.pool.Exec(ctx, `update api_tokens set expires_at = $1 where token_hash = $2`, clock, tokenHash(byAdmin)); err != nil {
		t.Fatal(err)
	}
	_, err = s.AuthenticateToken(ctx, byAdmin, addr)
	wantCode(t, "expired", err, followup.EUNAUTHORIZED)
	if _, err := s.pool.Exec(ctx, `update users set disabled_at = now() where id = $1`, doc.ID); err != nil {
		t.Fatal(err)
	}
	_, err = s.AuthenticateToken(ctx, token, addr)
	wantCode(t, "disabled user", err, followup.EUNAUTHORIZED)
	_, err = s.CreateToken(ctx, followup.SystemActor(uuid.Nil), doc.Email)
	wantCode(t, "token for a disabled user", err, followup.EINVALID)

	var created, revoked int
	if err := s.pool.QueryRow(ctx, `select count(*) filter (where action = $1), count(*) filter (where action = $2)
		from audit_events where target_id = $3 and clinic_id = $4`, AuditTokenCreated, AuditTokenRevoked, doc.ID, north.ID).Scan(&created, &revoked); err != nil {
		t.Fatal(err)
	}
	if created != 3 || revoked != 1 {
		t.Errorf("audit: %d token_created, %d token_revoked; want 3 and 1", created, revoked)
	}
	assertAuditClean(t, s, token, token[4:], own[4:], byAdmin[4:], testPassword)
}

// assertAuditClean fails if any audit row contains one of the secrets.
func assertAuditClean(t *testing.T, s *Service, secrets ...string) {
	t.Helper()
	var dump string
	if err := s.pool.QueryRow(testCtx(t), `select coalesce(string_agg(a::text, E'\n'), '') from audit_events a`).Scan(&dump); err != nil {
		t.Fatal(err)
	}
	if dump == "" {
		t.Error("no audit rows at all")
	}
	for _, secret := range secrets {
		if strings.Contains(dump, secret) {
			t.Errorf("an audit row contains %q:\n%s", secret, dump)
		}
	}
}

func TestPasswordParams(t *testing.T) {
	t.Parallel()
	// OWASP's argon2id minimums: 19 MiB with 2 passes or 46 MiB with 1.
	p := productionPasswordParams
	if p.Memory < 46*1024 && !(p.Memory >= 19*1024 && p.Iterations >= 2) || p.SaltLength < 16 || p.KeyLength < 32 {
		t.Errorf("argon2id parameters %+v are below the OWASP minimum", p)
	}
}

// flip returns a different base64url character.
func flip(c byte) string {
	if c == 'A' {
		return "B"
	}
	return "A"
}
