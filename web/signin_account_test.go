package web

import (
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/dermfollow/dermfollow/followup"
	"github.com/dermfollow/dermfollow/followup/accounts"
)

// The account's pages: API tokens (issued with a name, shown once, revoked), the
// authenticator app set up and removed from the account page, and the clinic's sign-in
// settings.

var newTokenPattern = regexp.MustCompile(`id="new-token"[^>]*>([^<]+)<`)

// bearerStatus is the status of GET path with the bearer token.
func (f *clinicFixture) bearerStatus(t *testing.T, token, path string) int {
	t.Helper()
	req, _ := http.NewRequest("GET", f.url+path, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func TestAccountTokens(t *testing.T) {
	t.Parallel()
	f := newClinicFixture(t)
	watchAuthz(f.srv)
	b := f.client(t)
	b.mustLogin(f.clinician)
	if p := b.get("/account/tokens"); p.status != http.StatusOK || !strings.Contains(p.body, `id="token-form"`) {
		t.Fatalf("tokens page = %d", p.status)
	}
	good := url.Values{"name": {"Lab script"}, "role": {followup.RoleClinician}, "days": {"30"}}
	with := func(k, v string) url.Values {
		f := url.Values{}
		for key, vs := range good {
			f[key] = vs
		}
		f.Set(k, v)
		return f
	}
	for _, bad := range []struct {
		name string
		form url.Values
		want int
	}{
		{"no name", with("name", "  "), 422},
		{"over-long name", with("name", strings.Repeat("名", accounts.MaxTokenName+1)), 422},
		{"lifetime not offered", with("days", "1000"), 422},
		{"lifetime not a number", with("days", "ninety"), 422},
		{"role above the user's", with("role", followup.RoleAdmin), 422},
		{"unknown role", with("role", "root"), 422},
		{"no CSRF token", with("csrf_token", ""), 403},
	} {
		if p := b.post("/account/tokens", bad.form); p.status != bad.want || bad.want == 422 && !strings.Contains(p.body, `id="token-error"`) {
			t.Errorf("issue, %s = %d, want %d with the reason", bad.name, p.status, bad.want)
		}
	}
	if list, err := f.acc.ListTokens(clinicCtx(t), f.clinicianActor, f.clinicianActor.ID); err != nil || len(list) != 0 {
		t.Fatalf("tokens after bad forms = %d, %v; want none", len(list), err)
	}

	p := b.post("/account/tokens", good)
	m := newTokenPattern.FindStringSubmatch(p.body)
	if p.status != http.StatusCreated || m == nil || !strings.Contains(p.body, "Lab script") {
		t.Fatalf("issue = %d, token shown %v", p.status, m != nil)
	}
	token := m[1]
	if got := f.bearerStatus(t, token, "/api/v1/procedures/"+f.procedureID); got != http.StatusOK {
		t.Errorf("the new token on the API = %d, want 200", got)
	}
	if p := b.get("/account/tokens"); strings.Contains(p.body, token) || !strings.Contains(p.body, "Lab script") {
		t.Errorf("tokens page again: token shown again or not listed")
	}
	list, err := f.acc.ListTokens(clinicCtx(t), f.clinicianActor, f.clinicianActor.ID)
	if err != nil || len(list) != 1 {
		t.Fatalf("tokens = %d, %v", len(list), err)
	}
	id := list[0].ID.String()

	// Nobody else revokes it: another clinic's user, a wrong id.
	outsider := f.client(t)
	outsider.mustLogin(f.outsider)
	if p := outsider.post("/account/tokens/"+id+"/revoke", nil); p.status != http.StatusNotFound {
		t.Errorf("other clinic revokes = %d, want 404", p.status)
	}
	for _, bad := range []string{"not-a-uuid", uuid.NewString()} {
		if p := b.post("/account/tokens/"+bad+"/revoke", nil); p.status != http.StatusNotFound {
			t.Errorf("revoke %s = %d, want 404", bad, p.status)
		}
	}
	if p := b.post("/account/tokens/"+id+"/revoke", url.Values{"csrf_token": {""}}); p.status != http.StatusForbidden {
		t.Errorf("revoke without a CSRF token = %d, want 403", p.status)
	}
	if got := f.bearerStatus(t, token, "/api/v1/procedures/"+f.procedureID); got != http.StatusOK {
		t.Errorf("token after refused revocations = %d, want 200", got)
	}
	if p := b.post("/account/tokens/"+id+"/revoke", nil); p.status != http.StatusSeeOther {
		t.Fatalf("revoke = %d", p.status)
	}
	if got := f.bearerStatus(t, token, "/api/v1/procedures/"+f.procedureID); got != http.StatusUnauthorized {
		t.Errorf("revoked token on the API = %d, want 401", got)
	}
}

func TestAccountAuthenticatorApp(t *testing.T) {
	t.Parallel()
	f := newClinicFixture(t)
	watchAuthz(f.srv)
	b := f.client(t)
	b.mustLogin(f.clinician)
	if p := b.get("/account"); p.status != http.StatusOK || !strings.Contains(p.body, `id="signins"`) || !strings.Contains(p.body, `id="totp-begin"`) {
		t.Fatalf("account page = %d", p.status)
	}
	if p := b.post("/account/recovery-codes", nil); p.status != http.StatusUnprocessableEntity {
		t.Errorf("recovery codes without a factor = %d, want 422", p.status)
	}
	enrolTOTP(t, f, b, "/account")
	if p := b.get("/account"); !strings.Contains(p.body, `id="totp-remove"`) || !strings.Contains(p.body, trf("en", "si_codes_left", "10")) {
		t.Errorf("account page after enrolling shows no app or codes")
	}
	if p := b.post("/account/recovery-codes", nil); p.status != http.StatusOK || len(recoveryCodePattern.FindAllString(p.body, -1)) != 10 {
		t.Errorf("new recovery codes = %d", p.status)
	}
	// The next sign-in asks for it, though the clinic does not require one.
	c := f.client(t)
	if p := c.login(f.clinician, clinicTestPassword); p.header.Get("Location") != "/login/second-factor" {
		t.Errorf("sign-in of a clinician with an app = %d %s, want the second factor", p.status, p.header.Get("Location"))
	}
	if p := b.post("/account/totp/remove", url.Values{"csrf_token": {""}}); p.status != http.StatusForbidden {
		t.Errorf("remove without a CSRF token = %d, want 403", p.status)
	}
	if p := b.post("/account/totp/remove", nil); p.status != http.StatusSeeOther {
		t.Fatalf("remove = %d", p.status)
	}
	if p := b.post("/account/totp/remove", nil); p.status != http.StatusNotFound {
		t.Errorf("remove again = %d, want 404", p.status)
	}
	for _, action := range []string{"rename", "remove"} {
		for _, bad := range []string{"not-a-uuid", uuid.NewString()} {
			if p := b.post("/account/passkeys/"+bad+"/"+action, url.Values{"name": {"Desk"}}); p.status != http.StatusNotFound {
				t.Errorf("%s passkey %s = %d, want 404", action, bad, p.status)
			}
		}
	}
	if p := b.post("/account/passkeys/"+uuid.NewString()+"/rename", url.Values{"name": {strings.Repeat("x", accounts.MaxPasskeyName+1)}}); p.status != http.StatusUnprocessableEntity {
		t.Errorf("rename to an over-long name = %d, want 422", p.status)
	}

	// An admin keeps the last factor.
	a := f.client(t)
	a.mustLogin(f.admin)
	if p := a.post("/account/totp/remove", nil); p.status != http.StatusConflict || !strings.Contains(p.body, `id="account-error"`) {
		t.Errorf("admin removes the only factor = %d, want 409", p.status)
	}
}

func TestClinicSignInSettings(t *testing.T) {
	t.Parallel()
	f := newClinicFixture(t)
	watchAuthz(f.srv)
	for _, email := range []string{f.clinician, f.researcher, f.outsider} {
		b := f.client(t)
		b.mustLogin(email)
		if p := b.get("/admin/settings"); p.status != http.StatusForbidden {
			t.Errorf("%s: settings page = %d, want 403", email, p.status)
		}
		if p := b.post("/admin/settings/sign-in", url.Values{"require_second_factor": {"on"}}); p.status != http.StatusForbidden {
			t.Errorf("%s: save settings = %d, want 403", email, p.status)
		}
	}
	anon := f.client(t)
	if p := anon.get("/admin/settings"); p.status != http.StatusSeeOther || !strings.HasPrefix(p.header.Get("Location"), "/login?next=") {
		t.Errorf("anonymous settings page = %d", p.status)
	}
	policy := func() accounts.SignInPolicy {
		t.Helper()
		p, err := f.acc.ClinicSignInPolicy(clinicCtx(t), followup.SystemActor(f.clinicianActor.ClinicID))
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	admin := f.client(t)
	admin.mustLogin(f.admin)
	if p := admin.get("/admin/settings"); p.status != http.StatusOK || !strings.Contains(p.body, `id="require-second-factor"`) {
		t.Fatalf("settings page = %d", p.status)
	}
	for _, bad := range []url.Values{{"require_second_factor": {"yes"}}, {"allow_passwordless": {"on", "on"}}} {
		if p := admin.post("/admin/settings/sign-in", bad); p.status != http.StatusUnprocessableEntity || !strings.Contains(p.body, `id="settings-error"`) {
			t.Errorf("save %v = %d, want 422", bad, p.status)
		}
	}
	if p := admin.post("/admin/settings/sign-in", url.Values{"require_second_factor": {"on"}, "csrf_token": {""}}); p.status != http.StatusForbidden {
		t.Errorf("save without a CSRF token = %d, want 403", p.status)
	}
	if policy().RequireSecondFactor {
		t.Fatal("refused saves changed the setting")
	}
	if p := admin.post("/admin/settings/sign-in", url.Values{"require_second_factor": {"on"}}); p.status != http.StatusSeeOther || !policy().RequireSecondFactor {
		t.Fatalf("turn on = %d, setting %v", p.status, policy().RequireSecondFactor)
	}
	if p := admin.get("/admin/settings"); !strings.Contains(p.body, `id="require-second-factor" checked`) {
		t.Errorf("settings page does not show it on")
	}
	c := f.client(t)
	if p := c.login(f.clinician, clinicTestPassword); p.header.Get("Location") != "/login/enrol" {
		t.Errorf("clinician without a factor once required = %d %s, want the enrolment", p.status, p.header.Get("Location"))
	}
	if p := admin.post("/admin/settings/sign-in", url.Values{}); p.status != http.StatusSeeOther || policy().RequireSecondFactor {
		t.Errorf("turn off = %d, setting %v", p.status, policy().RequireSecondFactor)
	}
}

// Passkey forms over HTTP: answers that are not the browser's, or without a ceremony begun,
// are refused with a message and change nothing; beginning passwordless sign-ins is limited
// per address.
func TestPasskeyRoutesBadInput(t *testing.T) {
	t.Parallel()
	f := newClinicFixture(t, func(o *clinicOptions) { o.passkeys = true })
	watchAuthz(f.srv)
	b := f.client(t)
	b.mustLogin(f.admin)
	for _, bad := range []struct {
		name string
		form url.Values
	}{
		{"no ceremony", url.Values{"name": {"Desk"}, "credential": {`{"id":"x"}`}}},
		{"not JSON", url.Values{"name": {"Desk"}, "credential": {"not json"}}},
		{"over-long", url.Values{"name": {"Desk"}, "credential": {strings.Repeat("a", 100<<10)}}},
		{"no name", url.Values{"credential": {"{}"}}},
	} {
		if bad.name != "no ceremony" {
			if p := b.post("/account/passkey/options", nil); p.status != http.StatusOK || !strings.Contains(p.body, `"challenge"`) {
				t.Fatalf("options = %d %s", p.status, p.body)
			}
		}
		p := b.post("/account/passkey", bad.form)
		if p.status < 400 || p.status >= 500 || !strings.Contains(p.body, `"message"`) {
			t.Errorf("register, %s = %d %s, want a 4xx with a message", bad.name, p.status, p.body)
		}
	}
	if keys, err := f.acc.ListPasskeys(clinicCtx(t), f.actorOf(t, f.admin)); err != nil || len(keys) != 0 {
		t.Errorf("passkeys after bad answers = %d, %v", len(keys), err)
	}
	if p := b.post("/account/passkey/options", url.Values{"csrf_token": {""}}); p.status != http.StatusForbidden {
		t.Errorf("options without a CSRF token = %d, want 403", p.status)
	}

	anon := f.client(t)
	anon.get("/login")
	anon.xff = "203.0.113.9"
	if p := anon.post("/login/passkey/options", nil); p.status != http.StatusOK || !strings.Contains(p.body, `"challenge"`) {
		t.Fatalf("passwordless options = %d %s", p.status, p.body)
	}
	if p := anon.post("/login/passkey", url.Values{"credential": {`{"id":"AAAA","type":"public-key"}`}}); p.status < 400 || p.status >= 500 {
		t.Errorf("passwordless with a made-up answer = %d, want a 4xx", p.status)
	}
	limited := 0
	for range 25 {
		if p := anon.post("/login/passkey/options", nil); p.status == http.StatusTooManyRequests && p.header.Get("Retry-After") != "" {
			limited++
		}
	}
	if limited == 0 {
		t.Error("25 passwordless begins from one address were all answered")
	}
	if p := anon.get("/"); p.status != http.StatusSeeOther {
		t.Errorf("still signed out: GET / = %d", p.status)
	}
}

// actorOf is the user of email as the accounts see them.
func (f *clinicFixture) actorOf(t *testing.T, email string) followup.Actor {
	t.Helper()
	u, err := f.acc.UserByEmail(clinicCtx(t), followup.SystemActor(f.clinicianActor.ClinicID), email)
	if err != nil {
		t.Fatal(err)
	}
	return followup.Actor{Kind: followup.ActorUser, ID: u.ID, ClinicID: u.ClinicID, Role: u.Role}
}
