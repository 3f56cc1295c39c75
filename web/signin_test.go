package web

import (
	"html"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/dermfollow/dermfollow/followup"
)

// Signing in in steps over HTTP: the enrolment a user who must have a second factor meets
// first, the authenticator app's codes (each once), recovery codes (each once) and the
// gate that lets a sign-in in progress do nothing but its next step. The passkeys' side is
// in signin_browser_test.go.

var (
	totpSecretPattern   = regexp.MustCompile(`id="totp-secret"[^>]*>([A-Z2-7]+)<`)
	recoveryCodePattern = regexp.MustCompile(`<li class="recovery-code"><code>([^<]+)</code>`)
)

// addUser adds a user of role to clinic A with the fixture's password, and no second factor.
func (f *clinicFixture) addUser(t *testing.T, role string) string {
	t.Helper()
	email := role + "-new-" + uuid.NewString()[:8] + "@example.org"
	if _, err := f.srv.cfg.Pool.Exec(clinicCtx(t), `insert into users (clinic_id, email, name, role, password_hash)
		select clinic_id, $1, 'New user', $2, password_hash from users where email = $3`, email, role, f.clinician); err != nil {
		t.Fatal(err)
	}
	return email
}

// assertGated checks that a sign-in in progress reaches nothing of the clinic's: every page
// sends it to its step, every other request and every API route refuses it.
func (f *clinicFixture) assertGated(t *testing.T, b *clinicBrowser, step string) {
	t.Helper()
	for _, r := range f.srv.echo.Routes() {
		p := r.Path
		if strings.HasPrefix(r.Method, "echo_") || p == "/healthz" || p == "/readyz" || strings.HasPrefix(p, "/static/") ||
			strings.HasPrefix(p, "/p/") || strings.HasPrefix(p, "/login") {
			continue
		}
		path := regexp.MustCompile(`:[a-z]+`).ReplaceAllString(p, f.procedureID)
		api := strings.HasPrefix(p, "/api/")
		var got clinicResp
		if r.Method == http.MethodGet {
			got = b.get(path)
		} else {
			body, ctype := url.Values{"csrf_token": {b.csrf()}}.Encode(), "application/x-www-form-urlencoded"
			if api {
				body, ctype = "{}", "application/json"
			}
			req, _ := http.NewRequest(r.Method, f.url+path, strings.NewReader(body))
			req.Header.Set("Content-Type", ctype)
			req.Header.Set(csrfHeader, b.csrf())
			got = b.do(req)
		}
		switch {
		case r.Method == http.MethodGet && !api:
			if got.status != http.StatusSeeOther || got.header.Get("Location") != step {
				t.Errorf("signing in: %s %s = %d %s, want 303 to %s", r.Method, path, got.status, got.header.Get("Location"), step)
			}
		case got.status != http.StatusUnauthorized:
			t.Errorf("signing in: %s %s = %d, want 401", r.Method, path, got.status)
		}
	}
}

// enrolTOTP sets up an authenticator app at a sign-in's enrolment (or on /account, base),
// trying bad codes first, and returns its secret, the code that confirmed it and the
// recovery codes.
func enrolTOTP(t *testing.T, f *clinicFixture, b *clinicBrowser, base string) (secret, used string, codes []string) {
	t.Helper()
	p := b.post(base+"/totp", nil)
	m := totpSecretPattern.FindStringSubmatch(p.body)
	if p.status != http.StatusOK || m == nil || !strings.Contains(p.body, `src="data:image/png;base64,`) {
		t.Fatalf("begin authenticator app = %d, secret and QR code shown: %v\n%s", p.status, m != nil, p.body)
	}
	secret = m[1]
	wrong := totpCode(t, secret, f.clock.Now().Add(-time.Hour))
	for _, bad := range []struct {
		code string
		want int
	}{{"", 422}, {"12ab56", 422}, {"12345", 422}, {strings.Repeat("1", 200), 422}, {wrong, 401}} {
		if p := b.post(base+"/totp/confirm", url.Values{"code": {bad.code}}); p.status != bad.want || !strings.Contains(p.body, `id="totp-error"`) {
			t.Errorf("confirm with %.12q = %d, want %d with the reason", bad.code, p.status, bad.want)
		}
	}
	used = totpCode(t, secret, f.clock.Now())
	if p := b.post(base+"/totp/confirm", url.Values{"code": {used}, "csrf_token": {""}}); p.status != http.StatusForbidden {
		t.Errorf("confirm without a CSRF token = %d, want 403", p.status)
	}
	p = b.post(base+"/totp/confirm", url.Values{"code": {used}})
	for _, m := range recoveryCodePattern.FindAllStringSubmatch(p.body, -1) {
		codes = append(codes, m[1])
	}
	if p.status != http.StatusOK || len(codes) != 10 {
		t.Fatalf("confirm = %d with %d recovery codes, want 200 and 10", p.status, len(codes))
	}
	return secret, used, codes
}

func TestSignInEnrolsFirstThenTakesEachCodeOnce(t *testing.T) {
	t.Parallel()
	f := newClinicFixture(t)
	watchAuthz(f.srv)
	admin := f.addUser(t, followup.RoleAdmin) // admins always need a second factor
	b := f.client(t)
	if p := b.login(admin, clinicTestPassword); p.status != http.StatusSeeOther || p.header.Get("Location") != "/login/enrol" {
		t.Fatalf("password of an admin without a second factor = %d %s, want 303 to /login/enrol", p.status, p.header.Get("Location"))
	}
	f.assertGated(t, b, "/login/enrol")
	if p := b.get("/login/second-factor"); p.status != http.StatusSeeOther || p.header.Get("Location") != "/login/enrol" {
		t.Errorf("the other step = %d %s, want 303 to /login/enrol", p.status, p.header.Get("Location"))
	}
	if p := b.get("/login/enrol"); p.status != http.StatusOK || !strings.Contains(p.body, `id="totp-begin"`) {
		t.Fatalf("enrolment page = %d", p.status)
	}
	secret, used, codes := enrolTOTP(t, f, b, "/login/enrol")
	if p := b.get("/"); p.status != http.StatusOK {
		t.Fatalf("after enrolling: worklist = %d, want 200", p.status)
	}

	// The next sign-in asks for a code, and refuses the one that confirmed the app.
	signOutAndIn := func() {
		t.Helper()
		if p := b.post("/logout", nil); p.status != http.StatusSeeOther {
			t.Fatalf("logout = %d", p.status)
		}
		if p := b.login(admin, clinicTestPassword); p.status != http.StatusSeeOther || p.header.Get("Location") != "/login/second-factor" {
			t.Fatalf("password = %d %s, want 303 to /login/second-factor", p.status, p.header.Get("Location"))
		}
	}
	signOutAndIn()
	f.assertGated(t, b, "/login/second-factor")
	if p := b.get("/login/second-factor"); p.status != http.StatusOK || !strings.Contains(p.body, `id="code-form"`) {
		t.Fatalf("second-factor page = %d", p.status)
	}
	for _, bad := range []struct {
		name, code string
		want       int
	}{
		{"the code that confirmed the app", used, 401},
		{"malformed", "12-34-56-78", 422},
		{"over-long", strings.Repeat("7KQ2-", 100), 422},
		{"empty", "", 422},
	} {
		if p := b.post("/login/second-factor", url.Values{"code": {bad.code}}); p.status != bad.want || !strings.Contains(p.body, `id="factor-error"`) {
			t.Errorf("%s = %d, want %d with the reason", bad.name, p.status, bad.want)
		}
	}
	if p := b.post("/login/second-factor", url.Values{"code": {used}}); !strings.Contains(p.body, html.EscapeString(tr("en", "si_code_wrong"))) {
		t.Errorf("a used code's answer does not say why: %d", p.status)
	}
	next := totpCode(t, secret, f.clock.Now().Add(30*time.Second))
	if p := b.post("/login/second-factor", url.Values{"code": {next}, "csrf_token": {""}}); p.status != http.StatusForbidden {
		t.Errorf("second factor without a CSRF token = %d, want 403", p.status)
	}
	if p := b.post("/login/second-factor", url.Values{"code": {next}}); p.status != http.StatusSeeOther || p.header.Get("Location") != "/" {
		t.Fatalf("the next code = %d %s, want 303 to /", p.status, p.header.Get("Location"))
	}
	signOutAndIn()
	if p := b.post("/login/second-factor", url.Values{"code": {next}}); p.status != http.StatusUnauthorized {
		t.Errorf("the same code again = %d, want 401", p.status)
	}

	// A recovery code passes once.
	if p := b.post("/login/second-factor", url.Values{"code": {strings.ToLower(codes[0])}}); p.status != http.StatusSeeOther || p.header.Get("Location") != "/" {
		t.Fatalf("recovery code = %d %s, want 303 to /", p.status, p.header.Get("Location"))
	}
	signOutAndIn()
	if p := b.post("/login/second-factor", url.Values{"code": {codes[0]}}); p.status != http.StatusUnauthorized {
		t.Errorf("the same recovery code again = %d, want 401", p.status)
	}
	if p := b.post("/login/second-factor", url.Values{"code": {codes[1]}}); p.status != http.StatusSeeOther {
		t.Errorf("another recovery code = %d, want 303", p.status)
	}
	if p := b.get("/account"); p.status != http.StatusOK || !strings.Contains(p.body, trf("en", "si_codes_left", "8")) {
		t.Errorf("account page = %d, want the codes left", p.status)
	}
}

func TestSignInPendingExpiresAndIsLocal(t *testing.T) {
	t.Parallel()
	f := newClinicFixture(t)
	b := f.client(t)
	p := b.post("/login", url.Values{"email": {f.admin}, "password": {clinicTestPassword}, "next": {"//evil.example.org/x"}})
	if p.status != http.StatusSeeOther || p.header.Get("Location") != "/login/second-factor" {
		t.Fatalf("password = %d %s", p.status, p.header.Get("Location"))
	}
	if p := b.post("/login/second-factor", url.Values{"code": {fixtureCode(t, f.admin)}}); p.status != http.StatusSeeOther || p.header.Get("Location") != "/" {
		t.Errorf("second factor after a foreign next = %d %s, want 303 to /", p.status, p.header.Get("Location"))
	}
	// A wrong password leaves nothing in progress.
	b2 := f.client(t)
	if p := b2.login(f.admin, "not the password"); p.status != http.StatusUnauthorized {
		t.Fatalf("wrong password = %d", p.status)
	}
	if p := b2.post("/login/second-factor", url.Values{"code": {fixtureCode(t, f.admin)}}); p.status != http.StatusUnauthorized {
		t.Errorf("second factor without a password = %d, want 401", p.status)
	}
}

// The sign-in's and the account's routes refuse who may not use them: nobody signed in, a
// signed-in user on a sign-in's steps, a sign-in at the other step.
func TestSignInRoutesAuthorization(t *testing.T) {
	t.Parallel()
	f := newClinicFixture(t)
	watchAuthz(f.srv)
	anon := f.client(t)
	anon.get("/login")
	signedIn := f.client(t)
	signedIn.mustLogin(f.clinician)
	enrolling := f.client(t)
	if p := enrolling.login(f.addUser(t, followup.RoleResearcher), clinicTestPassword); p.header.Get("Location") != "/login/enrol" {
		t.Fatalf("researcher without a factor = %d %s", p.status, p.header.Get("Location"))
	}
	id := uuid.NewString()
	pending := []string{"/login/second-factor", "/login/second-factor/passkey/options", "/login/second-factor/passkey",
		"/login/enrol", "/login/enrol/totp", "/login/enrol/totp/confirm", "/login/enrol/passkey/options", "/login/enrol/passkey"}
	account := []string{"/verify", "/verify/passkey/options", "/verify/passkey", "/account", "/account/totp", "/account/totp/confirm",
		"/account/totp/remove", "/account/recovery-codes", "/account/passkey/options", "/account/passkey",
		"/account/passkeys/" + id + "/rename", "/account/passkeys/" + id + "/remove", "/account/tokens",
		"/account/tokens/" + id + "/revoke", "/admin/settings", "/admin/settings/sign-in", "/admin/settings/contact"}
	gets := map[string]bool{"/login/second-factor": true, "/login/enrol": true, "/verify": true, "/account": true,
		"/account/tokens": true, "/admin/settings": true}
	getOnly := map[string]bool{"/login/enrol": true, "/account": true, "/admin/settings": true}
	for _, path := range append(pending, account...) {
		if gets[path] {
			if p := anon.get(path); p.status != http.StatusSeeOther || !strings.HasPrefix(p.header.Get("Location"), "/login?next=") {
				t.Errorf("anonymous GET %s = %d %s, want the sign-in", path, p.status, p.header.Get("Location"))
			}
		}
		if getOnly[path] {
			continue
		}
		if p := anon.post(path, nil); p.status != http.StatusUnauthorized {
			t.Errorf("anonymous POST %s = %d, want 401", path, p.status)
		}
	}
	for _, path := range pending {
		if gets[path] {
			if p := signedIn.get(path); p.status != http.StatusSeeOther || p.header.Get("Location") != "/" {
				t.Errorf("signed in: GET %s = %d %s, want 303 to /", path, p.status, p.header.Get("Location"))
			}
		}
		if getOnly[path] {
			continue
		}
		if p := signedIn.post(path, nil); p.status != http.StatusUnauthorized {
			t.Errorf("signed in: POST %s = %d, want 401", path, p.status)
		}
		if strings.HasPrefix(path, "/login/second-factor") {
			if p := enrolling.post(path, url.Values{"code": {"123456"}}); p.status != http.StatusUnauthorized {
				t.Errorf("enrolling: POST %s = %d, want 401", path, p.status)
			}
		}
	}
	// A passkey sign-in's answer without a ceremony begun is refused.
	if p := anon.post("/login/passkey", url.Values{"credential": {"{}"}}); p.status < 400 || p.status >= 500 {
		t.Errorf("passwordless answer without a ceremony = %d, want a refusal", p.status)
	}
	if p := anon.get("/"); p.status != http.StatusSeeOther {
		t.Errorf("anonymous still signed out: GET / = %d", p.status)
	}
}
