package main

import (
	"context"
	"net/netip"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/pquerna/otp/totp"

	"github.com/dermfollow/dermfollow/followup"
	"github.com/dermfollow/dermfollow/followup/accounts"
	"github.com/dermfollow/dermfollow/followup/pgtest"
)

func TestClinicSet(t *testing.T) {
	t.Parallel()
	env := map[string]string{"DATABASE_URL": pgtest.NewDatabase(t)}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	const password = "a trial clinician's password"
	if _, _, err := runAccountCmd(t, runUser, env, password+"\n", "add", "-clinic", "Trial Skin", "-email", "doc@example.org", "-role", "clinician"); err != nil {
		t.Fatal(err)
	}
	svc, acc, closeDB, err := openAccountService(ctx, mapEnv(env))
	if err != nil {
		t.Fatal(err)
	}
	defer closeDB()
	clinic, err := svc.ClinicByName(ctx, "Trial Skin")
	if err != nil {
		t.Fatal(err)
	}
	policy := func() accounts.SignInPolicy {
		t.Helper()
		p, err := acc.ClinicSignInPolicy(ctx, followup.SystemActor(clinic.ID))
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	if p := policy(); !p.RequireSecondFactor || p.AllowPasswordless {
		t.Fatalf("a new clinic's policy: %+v", p)
	}

	out, _, err := runAccountCmd(t, runClinic, env, "", "set", "--clinic", "Trial Skin", "--require-second-factor=false")
	if err != nil || out != "clinic \"Trial Skin\": require-second-factor=false allow-passwordless=false\n" {
		t.Fatalf("set false: %v\n%s", err, out)
	}
	if p := policy(); p.RequireSecondFactor {
		t.Error("require-second-factor=false did not apply")
	}
	next := func() accounts.SignInStep {
		t.Helper()
		res, err := acc.SignIn(ctx, "doc@example.org", password, netip.Addr{})
		if err != nil {
			t.Fatal(err)
		}
		return res.Next
	}
	if n := next(); n != accounts.StepDone {
		t.Errorf("a clinician of a clinic without the requirement: next %q, want done", n)
	}
	out, _, err = runAccountCmd(t, runClinic, env, "", "set", "-clinic", "Trial Skin", "-require-second-factor", "-allow-passwordless=true")
	if err != nil || !strings.Contains(out, "require-second-factor=true allow-passwordless=true") {
		t.Fatalf("set true: %v\n%s", err, out)
	}
	if p := policy(); !p.RequireSecondFactor || !p.AllowPasswordless {
		t.Errorf("after setting both: %+v", p)
	}
	if n := next(); n != accounts.StepEnrol {
		t.Errorf("with the requirement back: next %q, want enrol", n)
	}
	var audited int
	if err := pgtest.OpenPool(t, env["DATABASE_URL"]).QueryRow(ctx, `select count(*) from audit_events where action = $1 and target_id = $2 and actor_kind = 'system'`,
		accounts.AuditSignInPolicy, clinic.ID).Scan(&audited); err != nil || audited != 3 {
		t.Errorf("%d policy changes audited (%v), want 3", audited, err)
	}

	_, _, err = runAccountCmd(t, runClinic, env, "", "set", "-clinic", "Nowhere", "-require-second-factor=false")
	if followup.ErrorCode(err) != followup.ENOTFOUND || isUsage(err) || !strings.Contains(err.Error(), "clinic set: ") {
		t.Errorf("unknown clinic: %v", err)
	}
}

func TestUserReset2FA(t *testing.T) {
	t.Parallel()
	url := pgtest.NewDatabase(t)
	env := map[string]string{"DATABASE_URL": url}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if _, _, err := runAccountCmd(t, runUser, env, "", "add", "-clinic", "Reset Skin", "-email", "lost@example.org", "-role", "admin"); err != nil {
		t.Fatal(err)
	}
	acc, err := accounts.New(accounts.Config{Pool: pgtest.OpenPool(t, url), SecretKey: []byte("0123456789abcdef0123456789abcdef")})
	if err != nil {
		t.Fatal(err)
	}
	u, err := acc.UserByEmail(ctx, followup.SystemActor(uuid.Nil), "lost@example.org")
	if err != nil {
		t.Fatal(err)
	}
	a := followup.Actor{Kind: followup.ActorUser, ID: u.ID, ClinicID: u.ClinicID, Role: u.Role}
	e, err := acc.BeginTOTP(ctx, a)
	if err != nil {
		t.Fatal(err)
	}
	code, err := totp.GenerateCode(e.Secret, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := acc.ConfirmTOTP(ctx, a, code); err != nil {
		t.Fatal(err)
	}

	out, _, err := runAccountCmd(t, runUser, env, "", "reset-2fa", "--email", "Lost@Example.org")
	if err != nil || !strings.Contains(out, "removed the second factors of lost@example.org (authenticator app: 1, passkeys: 0, recovery codes: 10)") {
		t.Fatalf("reset-2fa: %v\n%s", err, out)
	}
	st, err := acc.SecondFactorState(ctx, u.ID)
	if err != nil || st.Enrolled || st.Next() != accounts.StepEnrol {
		t.Errorf("after reset-2fa: %+v, %v; want enrolment next", st, err)
	}
	var audited int
	if err := pgtest.OpenPool(t, url).QueryRow(ctx, `select count(*) from audit_events where action = $1 and target_id = $2 and actor_kind = 'system'
		and clinic_id = $3`, accounts.AuditSecondFactorReset, u.ID, u.ClinicID).Scan(&audited); err != nil || audited != 1 {
		t.Errorf("%d resets audited (%v), want 1", audited, err)
	}
	// Nothing left to remove is not an error: the operator learns it from the counts.
	out, _, err = runAccountCmd(t, runUser, env, "", "reset-2fa", "-email", "lost@example.org")
	if err != nil || !strings.Contains(out, "(authenticator app: 0, passkeys: 0, recovery codes: 0)") {
		t.Errorf("reset-2fa again: %v\n%s", err, out)
	}
	_, _, err = runAccountCmd(t, runUser, env, "", "reset-2fa", "-email", "nobody@example.org")
	if followup.ErrorCode(err) != followup.ENOTFOUND || !strings.Contains(err.Error(), "user not found") {
		t.Errorf("unknown email: %v", err)
	}
	_, _, err = runAccountCmd(t, runUser, env, "", "reset-2fa", "-email", "not an email")
	if followup.ErrorCode(err) != followup.EINVALID {
		t.Errorf("bad email: %v", err)
	}
}

func TestTokenCreateNameAndExpiry(t *testing.T) {
	t.Parallel()
	env := map[string]string{"DATABASE_URL": pgtest.NewDatabase(t)}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if _, _, err := runAccountCmd(t, runUser, env, "", "add", "-clinic", "Token Skin", "-email", "ci@example.org", "-role", "researcher"); err != nil {
		t.Fatal(err)
	}
	out, errOut, err := runAccountCmd(t, runToken, env, "", "create", "-email", "ci@example.org", "-name", "Nightly export", "-days", "7")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`created API token "Nightly export" for ci@example.org as researcher, expiring (\S+);`).FindStringSubmatch(errOut)
	if m == nil {
		t.Fatalf("token create said %q", errOut)
	}
	expires, err := time.Parse(time.RFC3339, m[1])
	if d := time.Until(expires); err != nil || d < 7*24*time.Hour-time.Minute || d > 7*24*time.Hour {
		t.Errorf("expires %v (%v), want in 7 days", expires, err)
	}
	_, acc, closeDB, err := openAccountService(ctx, mapEnv(env))
	if err != nil {
		t.Fatal(err)
	}
	defer closeDB()
	a, err := acc.AuthenticateToken(ctx, strings.TrimSpace(out), netip.Addr{})
	if err != nil {
		t.Fatal(err)
	}
	list, err := acc.ListTokens(ctx, a, a.ID)
	if err != nil || len(list) != 1 || list[0].Name != "Nightly export" || list[0].ExpiresAt.UTC().Format(time.RFC3339) != m[1] {
		t.Errorf("listed %+v, %v", list, err)
	}
	_, _, err = runAccountCmd(t, runToken, env, "", "create", "-email", "ci@example.org", "-name", " ")
	if followup.ErrorCode(err) != followup.EINVALID || !strings.Contains(err.Error(), "name: ") {
		t.Errorf("blank name: %v", err)
	}
}
