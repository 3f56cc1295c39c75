package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/netip"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/dermfollow/dermfollow/followup"
	"github.com/dermfollow/dermfollow/followup/pgtest"
)

type cmdFunc func(ctx context.Context, args []string, getenv env, stdin io.Reader, stdout, stderr io.Writer) error

// runAccountCmd runs runUser or runToken in-process, as run would.
func runAccountCmd(t *testing.T, fn cmdFunc, env map[string]string, stdin string, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var out, errOut bytes.Buffer
	err = fn(ctx, args, mapEnv(env), strings.NewReader(stdin), &out, &errOut)
	return out.String(), errOut.String(), err
}

func TestUserAddAndTokenCreate(t *testing.T) {
	t.Parallel()
	env := map[string]string{"DATABASE_URL": pgtest.NewDatabase(t)}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	svc, acc, closeDB, err := openAccountService(ctx, mapEnv(env))
	if err != nil {
		t.Fatal(err)
	}
	defer closeDB()

	// A generated password, printed once; the clinic is created in the given zone.
	out, _, err := runAccountCmd(t, runUser, env, "", "add", "--clinic", "Shanghai Skin", "--email", "Dr.Wang@Example.org",
		"--role", "admin", "--name", "Dr. Wang", "--time-zone", "Asia/Shanghai")
	if err != nil {
		t.Fatalf("user add: %v\n%s", err, out)
	}
	m := regexp.MustCompile(`(?m)^password \(shown only now; store it safely\): (\S+)$`).FindStringSubmatch(out)
	if m == nil || len(m[1]) != 24 || !strings.Contains(out, `created clinic "Shanghai Skin" (time zone Asia/Shanghai)`) ||
		!strings.Contains(out, "created admin dr.wang@example.org (Dr. Wang)") {
		t.Fatalf("user add printed:\n%s", out)
	}
	if strings.Count(out, m[1]) != 1 {
		t.Errorf("the password appears more than once:\n%s", out)
	}
	actor, u, err := acc.Authenticate(ctx, "dr.wang@example.org", m[1], netip.Addr{})
	if err != nil || u.Role != followup.RoleAdmin || actor.Kind != followup.ActorUser {
		t.Fatalf("sign in with the printed password: %v %+v", err, u)
	}
	clinic, err := svc.Clinic(ctx, u.ClinicID)
	if err != nil || clinic.Name != "Shanghai Skin" || clinic.TimeZone != "Asia/Shanghai" {
		t.Errorf("clinic %+v (%v)", clinic, err)
	}

	// A password from stdin (first line only) is used and not printed; the clinic is reused.
	const piped = "piped password with spaces"
	out, errOut, err := runAccountCmd(t, runUser, env, piped+"\r\nsecond line\n", "add", "-clinic", "Shanghai Skin",
		"-email", "li@example.org", "-role", "clinician", "-time-zone", "Europe/Berlin")
	if err != nil {
		t.Fatalf("user add with stdin: %v", err)
	}
	if strings.Contains(out, "password") || strings.Contains(out, piped) || strings.Contains(out, `created clinic "`) {
		t.Errorf("user add with stdin printed:\n%s", out)
	}
	if !strings.Contains(errOut, "time zone Asia/Shanghai; -time-zone Europe/Berlin was not applied") {
		t.Errorf("no note that -time-zone was ignored:\n%s", errOut)
	}
	li, err := acc.UserByEmail(ctx, followup.SystemActor(clinic.ID), "li@example.org")
	if err != nil || li.ClinicID != clinic.ID || li.Name != "li" {
		t.Fatalf("second user %+v (%v)", li, err)
	}
	if _, _, err := acc.Authenticate(ctx, "li@example.org", piped, netip.Addr{}); err != nil {
		t.Errorf("sign in with the piped password: %v", err)
	}

	// Application errors come back as their message, not as usage errors.
	_, _, err = runAccountCmd(t, runUser, env, "", "add", "-clinic", "Shanghai Skin", "-email", "LI@example.org", "-role", "researcher")
	if err == nil || !strings.Contains(err.Error(), "already exists") || followup.ErrorCode(err) != followup.ECONFLICT || isUsage(err) {
		t.Errorf("duplicate: %v", err)
	}
	_, _, err = runAccountCmd(t, runUser, env, "too short\n", "add", "-clinic", "Shanghai Skin", "-email", "x@example.org", "-role", "researcher")
	if err == nil || !strings.Contains(err.Error(), "password: must be 12 to 256 characters") {
		t.Errorf("short password: %v", err)
	}
	_, _, err = runAccountCmd(t, runUser, env, "", "add", "-clinic", "Shanghai Skin", "-email", "not an email", "-role", "researcher")
	if followup.ErrorCode(err) != followup.EINVALID {
		t.Errorf("bad email: %v", err)
	}
	_, _, err = runAccountCmd(t, runUser, env, "", "add", "-clinic", "Elsewhere", "-email", "y@example.org", "-role", "researcher", "-time-zone", "Mars/Base")
	if err == nil || !strings.Contains(err.Error(), "IANA time zone") {
		t.Errorf("bad time zone: %v", err)
	}

	// Tokens: printed alone on stdout, once, and they work.
	out, errOut, err = runAccountCmd(t, runToken, env, "", "create", "--email", "LI@example.org")
	if err != nil {
		t.Fatalf("token create: %v", err)
	}
	token := strings.TrimSpace(out)
	if !regexp.MustCompile(`^dft_[A-Za-z0-9_-]{43}$`).MatchString(token) || strings.Contains(errOut, token) {
		t.Fatalf("token create printed %q, stderr %q", out, errOut)
	}
	a, err := acc.AuthenticateToken(ctx, token, netip.Addr{})
	if err != nil || a.ID != li.ID || a.ClinicID != clinic.ID || a.Role != followup.RoleClinician {
		t.Errorf("the printed token: %+v (%v)", a, err)
	}
	_, _, err = runAccountCmd(t, runToken, env, "", "create", "-email", "nobody@example.org")
	if followup.ErrorCode(err) != followup.ENOTFOUND || !strings.Contains(err.Error(), "user not found") {
		t.Errorf("token for an unknown email: %v", err)
	}
}

func isUsage(err error) bool {
	var u usageError
	return errors.As(err, &u)
}

func TestAccountCommandsUsage(t *testing.T) {
	t.Parallel()
	env := map[string]string{} // every case fails before the database is needed
	for name, tc := range map[string]struct {
		fn   cmdFunc
		args []string
	}{
		"user alone":       {runUser, nil},
		"user unknown":     {runUser, []string{"remove"}},
		"no clinic":        {runUser, []string{"add", "-email", "a@example.org", "-role", "admin"}},
		"no email":         {runUser, []string{"add", "-clinic", "C", "-role", "admin"}},
		"no role":          {runUser, []string{"add", "-clinic", "C", "-email", "a@example.org"}},
		"unknown role":     {runUser, []string{"add", "-clinic", "C", "-email", "a@example.org", "-role", "superuser"}},
		"unknown flag":     {runUser, []string{"add", "-clinic", "C", "-email", "a@example.org", "-role", "admin", "-password", "x"}},
		"extra argument":   {runUser, []string{"add", "-clinic", "C", "-email", "a@example.org", "-role", "admin", "extra"}},
		"token alone":      {runToken, nil},
		"token unknown":    {runToken, []string{"revoke"}},
		"token no email":   {runToken, []string{"create"}},
		"token extra":      {runToken, []string{"create", "-email", "a@example.org", "x"}},
		"token empty mail": {runToken, []string{"create", "-email", " "}},
		"token no days":    {runToken, []string{"create", "-email", "a@example.org", "-days", "0"}},
		"token many days":  {runToken, []string{"create", "-email", "a@example.org", "-days", "366"}},
		"reset no email":   {runUser, []string{"reset-2fa"}},
		"reset extra":      {runUser, []string{"reset-2fa", "-email", "a@example.org", "x"}},
		"clinic alone":     {runClinic, nil},
		"clinic unknown":   {runClinic, []string{"delete"}},
		"clinic no name":   {runClinic, []string{"set", "-require-second-factor=false"}},
		"clinic nothing":   {runClinic, []string{"set", "-clinic", "C"}},
		"clinic bad bool":  {runClinic, []string{"set", "-clinic", "C", "-require-second-factor=maybe"}},
		"clinic extra":     {runClinic, []string{"set", "-clinic", "C", "-require-second-factor=false", "x"}},
	} {
		_, _, err := runAccountCmd(t, tc.fn, env, "", tc.args...)
		if !isUsage(err) {
			t.Errorf("%s: %v, want a usage error", name, err)
		}
	}
	if _, _, err := runAccountCmd(t, runUser, env, "", "add", "-h"); !errors.Is(err, errHelpShown) {
		t.Errorf("user add -h: %v", err)
	}
	out, _, err := runAccountCmd(t, runToken, env, "", "help")
	if !errors.Is(err, errHelpShown) || !strings.Contains(out, "Authorization: Bearer") {
		t.Errorf("token help: %v\n%s", err, out)
	}
	_, _, err = runAccountCmd(t, runUser, env, "", "add", "-clinic", "C", "-email", "a@example.org", "-role", "admin")
	if err == nil || !strings.Contains(err.Error(), "DATABASE_URL") {
		t.Errorf("without DATABASE_URL: %v", err)
	}
}

func TestAccountCommandsNeedMigratedDatabase(t *testing.T) {
	t.Parallel()
	env := map[string]string{"DATABASE_URL": pgtest.NewEmptyDatabase(t)}
	_, _, err := runAccountCmd(t, runUser, env, "", "add", "-clinic", "C", "-email", "a@example.org", "-role", "admin")
	if err == nil || !strings.Contains(err.Error(), "run dermfollow migrate first") {
		t.Errorf("user add: %v", err)
	}
	_, _, err = runAccountCmd(t, runToken, env, "", "create", "-email", "a@example.org")
	if err == nil || !strings.Contains(err.Error(), "run dermfollow migrate first") {
		t.Errorf("token create: %v", err)
	}
	_, _, err = runAccountCmd(t, runClinic, env, "", "set", "-clinic", "C", "-require-second-factor=false")
	if err == nil || !strings.Contains(err.Error(), "run dermfollow migrate first") {
		t.Errorf("clinic set: %v", err)
	}
	_, _, err = runAccountCmd(t, runUser, env, "", "reset-2fa", "-email", "a@example.org")
	if err == nil || !strings.Contains(err.Error(), "run dermfollow migrate first") {
		t.Errorf("user reset-2fa: %v", err)
	}
}

func TestGeneratedPasswords(t *testing.T) {
	t.Parallel()
	seen := map[string]bool{}
	for range 100 {
		p := generateUserPassword()
		if len(p) != 24 || strings.Trim(p, userPasswordAlphabet) != "" || seen[p] {
			t.Fatalf("generated %q", p)
		}
		seen[p] = true
	}
}
