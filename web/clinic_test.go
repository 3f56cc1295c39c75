package web

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/alexedwards/argon2id"
	"github.com/google/uuid"
	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/dermfollow/dermfollow/followup"
	"github.com/dermfollow/dermfollow/followup/accounts"
	"github.com/dermfollow/dermfollow/followup/pgtest"
	"github.com/dermfollow/dermfollow/followup/thumbnails"
	"github.com/dermfollow/dermfollow/imagestore"
	"github.com/dermfollow/dermfollow/imagestore/imagetest"
	"github.com/dermfollow/dermfollow/imagestore/s3test"
	"github.com/dermfollow/dermfollow/protocols"
)

// clinicFixture is the whole server over real PostgreSQL and MinIO with two clinics: users of
// every role in A (emails below, one password) and a clinician of B, and in A a patient with
// a procedure and one photo.
type clinicFixture struct {
	url  string
	srv  *Server
	svc  *followup.Service
	acc  *accounts.Service
	logs *syncBuffer
	// clock is the accounts' clock: a test moves it on to make a second factor's check old.
	clock *testClock

	clinician, admin, researcher, outsider string // emails
	clinicianActor                         followup.Actor
	patientID, procedureID, photoID        string

	// thumbs makes the thumbnails that the server's background work would (cmd runs it).
	thumbs *thumbnails.Thumbnailer
}

const clinicTestPassword = "a long test password"

// clinicOptions adjust newClinicFixture.
type clinicOptions struct {
	// passkeys serves on http://localhost:PORT with passkeys on, localhost the relying party
	// (a browser's secure context without TLS).
	passkeys bool
}

func newClinicFixture(t testing.TB, opts ...func(*clinicOptions)) *clinicFixture {
	t.Helper()
	var o clinicOptions
	for _, fn := range opts {
		fn(&o)
	}
	store, _ := s3test.NewStore(t)
	pool := pgtest.NewPool(t)
	reg, err := protocols.LoadRegistry("")
	if err != nil {
		t.Fatal(err)
	}
	logs := newSyncBuffer()
	log := slog.New(slog.NewJSONHandler(logs, nil))
	svc, err := followup.New(followup.Config{Pool: pool, Store: store, Protocols: reg, Logger: log, BaseURL: "http://dermfollow.test"})
	if err != nil {
		t.Fatal(err)
	}
	clock := &testClock{}
	ln, origin := fixtureListener(t, o.passkeys)
	acc := newAccountsWith(t, fixtureAccounts(pool, log, clock, origin))
	srv, err := New(Config{Logger: log, DB: pool, Pool: pool, Store: store, Registry: prometheus.NewRegistry(), Service: svc, Accounts: acc,
		Reminders: newReminders(t, pool, log, "http://dermfollow.test", nil), Export: newExport(t, svc, pool, log, []byte("clinic test secret, 32 bytes long")),
		Limits: imagestore.Limits{MaxBytes: 4 << 20}})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewUnstartedServer(srv)
	hs.Listener.Close()
	hs.Listener = ln
	hs.Start()
	t.Cleanup(hs.Close)
	f := &clinicFixture{url: origin, srv: srv, svc: svc, acc: acc, logs: logs, clock: clock, thumbs: newThumbnailer(t, svc, pool, log)}
	ctx := clinicCtx(t)
	a, err := svc.CreateClinic(ctx, "Clinic A "+uuid.NewString()[:6], "Asia/Shanghai")
	if err != nil {
		t.Fatal(err)
	}
	b, err := svc.CreateClinic(ctx, "Clinic B "+uuid.NewString()[:6], "Europe/Berlin")
	if err != nil {
		t.Fatal(err)
	}
	// Users are inserted with a cheap argon2id hash: production parameters cost about a second
	// a hash under the race detector, and the parameters travel inside the hash, so signing in
	// with these is cheap too. CreateUser itself is tested in package accounts.
	hash, err := argon2id.CreateHash(clinicTestPassword, &argon2id.Params{Memory: 1024, Iterations: 1, Parallelism: 1, SaltLength: 16, KeyLength: 32})
	if err != nil {
		t.Fatal(err)
	}
	mk := func(clinic followup.Clinic, role string) string {
		email := role + "-" + uuid.NewString()[:8] + "@example.org"
		if _, err := pool.Exec(ctx, `insert into users (clinic_id, email, name, role, password_hash) values ($1, $2, $3, $4, $5)`,
			clinic.ID, email, "Test "+role, role, hash); err != nil {
			t.Fatal(err)
		}
		return email
	}
	relaxClinics(t, pool, a, b)
	f.clinician, f.admin, f.researcher = mk(a, followup.RoleClinician), mk(a, followup.RoleAdmin), mk(a, followup.RoleResearcher)
	f.outsider = mk(b, followup.RoleClinician)
	giveSecondFactor(t, acc, a, f.admin)
	giveSecondFactor(t, acc, a, f.researcher)
	u, err := acc.UserByEmail(ctx, followup.SystemActor(a.ID), f.clinician)
	if err != nil {
		t.Fatal(err)
	}
	f.clinicianActor = followup.Actor{Kind: followup.ActorUser, ID: u.ID, ClinicID: a.ID, Role: u.Role}

	p, err := svc.CreatePatient(ctx, f.clinicianActor, followup.NewPatient{DisplayName: "Xiaoming Wang", BirthDate: "2025-03-02",
		PreferredLanguage: "zh-CN", GuardianEmail: "guardian@example.org"})
	if err != nil {
		t.Fatal(err)
	}
	e, err := svc.Enrol(ctx, f.clinicianActor, followup.NewProcedure{PatientID: p.ID.String(), Protocol: "pws-hemoporfin-pdt",
		BodySite: "face", PerformedAt: time.Now().Add(-36 * time.Hour).Format(time.RFC3339)})
	if err != nil {
		t.Fatal(err)
	}
	f.patientID, f.procedureID = p.ID.String(), e.ID.String()
	f.photoID = f.addPhoto(t, "baseline", "front", 1)
	return f
}

func clinicCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// addPhoto stores a clinic photo of the fixture's procedure, with its thumbnails.
func (f *clinicFixture) addPhoto(t testing.TB, timepoint, view string, seed byte) string {
	t.Helper()
	ctx := clinicCtx(t)
	img := imagetest.JPEG(320, 240, seed)
	ph, _, err := f.svc.AddPhoto(ctx, f.clinicianActor, uuid.MustParse(f.procedureID),
		followup.PhotoUpload{Timepoint: timepoint, View: view, UploadID: "test-" + uuid.NewString()[:12]},
		bytes.NewReader(img), int64(len(img)), imagestore.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.thumbs.Make(ctx, 10); err != nil {
		t.Fatal(err)
	}
	return ph.ID.String()
}

// clinicBrowser is a client with a cookie jar that does not follow redirects.
type clinicBrowser struct {
	t   testing.TB
	f   *clinicFixture
	c   *http.Client
	jar *cookiejar.Jar
	xff string // the address a trusted proxy reports for this browser, if set
}

func (f *clinicFixture) client(t testing.TB) *clinicBrowser {
	jar, _ := cookiejar.New(nil)
	return &clinicBrowser{t: t, f: f, jar: jar, c: &http.Client{Jar: jar, Timeout: 30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

type clinicResp struct {
	status int
	header http.Header
	body   string
}

func (b *clinicBrowser) do(req *http.Request) clinicResp {
	if b.xff != "" {
		req.Header.Set("X-Forwarded-For", b.xff)
	}
	b.t.Helper()
	resp, err := b.c.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return clinicResp{status: resp.StatusCode, header: resp.Header, body: string(body)}
}

func (b *clinicBrowser) get(path string) clinicResp {
	b.t.Helper()
	req, _ := http.NewRequest("GET", b.f.url+path, nil)
	return b.do(req)
}

// post sends a form; the session's CSRF token is added unless form already has csrf_token
// (an empty one means: send none).
func (b *clinicBrowser) post(path string, form url.Values) clinicResp {
	b.t.Helper()
	form = maps.Clone(form)
	if form == nil {
		form = url.Values{}
	}
	if _, ok := form["csrf_token"]; !ok {
		form.Set("csrf_token", b.csrf())
	} else if form.Get("csrf_token") == "" {
		form.Del("csrf_token")
	}
	req, _ := http.NewRequest("POST", b.f.url+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return b.do(req)
}

var clinicCSRFPattern = regexp.MustCompile(`name="csrf_token" value="([^"]+)"`)

// csrf reads the session's CSRF token from the sign-in page or the worklist.
func (b *clinicBrowser) csrf() string {
	b.t.Helper()
	p := b.get("/login")
	if p.status == http.StatusSeeOther {
		p = b.get("/")
	}
	m := clinicCSRFPattern.FindStringSubmatch(p.body)
	if m == nil {
		b.t.Fatalf("no CSRF token on the page (%d)", p.status)
	}
	return m[1]
}

func (b *clinicBrowser) login(email, password string) clinicResp {
	b.t.Helper()
	return b.post("/login", url.Values{"email": {email}, "password": {password}, "next": {"/"}})
}

func (b *clinicBrowser) mustLogin(email string) {
	b.t.Helper()
	p := b.login(email, clinicTestPassword)
	if p.status == http.StatusSeeOther && p.header.Get("Location") == "/login/second-factor" {
		p = b.post("/login/second-factor", url.Values{"code": {fixtureCode(b.t, email)}})
	}
	if p.status != http.StatusSeeOther || p.header.Get("Location") != "/" {
		b.t.Fatalf("login %s = %d %s", email, p.status, p.header.Get("Location"))
	}
}

func (b *clinicBrowser) sessionCookie() *http.Cookie {
	u, _ := url.Parse(b.f.url)
	for _, c := range b.jar.Cookies(u) {
		if c.Name == sessionCookie {
			return c
		}
	}
	return nil
}

func TestClinicLoginAndLogout(t *testing.T) {
	t.Parallel()
	f := newClinicFixture(t)
	b := f.client(t)

	p := b.get("/")
	if p.status != http.StatusSeeOther || p.header.Get("Location") != "/login?next=%2F" {
		t.Fatalf("GET / signed out = %d %q, want a redirect to the sign-in page", p.status, p.header.Get("Location"))
	}
	p = b.get("/login")
	if p.status != 200 || p.header.Get("Content-Security-Policy") != pageCSP || p.header.Get("Cache-Control") == "" {
		t.Fatalf("login page = %d %v", p.status, p.header)
	}
	// Visiting the sign-in page makes no session: the form's token is bound to a cookie
	// with nothing stored behind it.
	if anon := b.sessionCookie(); anon != nil {
		t.Errorf("the sign-in page set a session cookie %v", anon)
	}
	var rows int
	if err := f.srv.cfg.Pool.QueryRow(clinicCtx(t), `select count(*) from sessions`).Scan(&rows); err != nil || rows != 0 {
		t.Errorf("%d session rows after visiting the sign-in page (%v), want none", rows, err)
	}

	p = b.login(f.clinician, "not the password")
	if p.status != http.StatusUnauthorized || !strings.Contains(p.body, "email or password is wrong") {
		t.Errorf("wrong password = %d", p.status)
	}
	p = b.login("nobody@example.org", clinicTestPassword)
	if p.status != http.StatusUnauthorized || !strings.Contains(p.body, "email or password is wrong") {
		t.Errorf("unknown email = %d", p.status)
	}
	p = b.post("/login", url.Values{"email": {""}, "password": {""}})
	if p.status != http.StatusUnprocessableEntity {
		t.Errorf("empty login = %d, want 422", p.status)
	}

	// The sign-in sets a new session token (no fixation) in a strict cookie.
	resp := b.login(f.clinician, clinicTestPassword)
	if resp.status != http.StatusSeeOther || resp.header.Get("Location") != "/" {
		t.Fatalf("login = %d %q", resp.status, resp.header.Get("Location"))
	}
	set := resp.header.Get("Set-Cookie")
	for _, want := range []string{sessionCookie + "=", "HttpOnly", "SameSite=Lax", "Path=/"} {
		if !strings.Contains(set, want) {
			t.Errorf("session cookie %q lacks %s", set, want)
		}
	}
	if signed := b.sessionCookie(); signed == nil {
		t.Error("no session cookie after sign-in")
	}
	p = b.get("/")
	if p.status != 200 || !strings.Contains(p.body, "Worklist") || !strings.Contains(p.body, "Xiaoming Wang") {
		t.Fatalf("worklist = %d", p.status)
	}
	// Signed in, the sign-in page goes on to the worklist.
	if p := b.get("/login"); p.status != http.StatusSeeOther {
		t.Errorf("login page when signed in = %d", p.status)
	}

	// Signing in again over a session rotates its id (no fixation).
	before := b.sessionCookie()
	if p := b.login(f.clinician, clinicTestPassword); p.status != http.StatusSeeOther {
		t.Fatalf("second sign-in = %d", p.status)
	}
	after := b.sessionCookie()
	if before == nil || after == nil || before.Value == after.Value {
		t.Error("the session id was not rotated at sign-in")
	}
	// Log out: refused without the CSRF token, then the session is gone, on the server too:
	// its old cookie, replayed, opens nothing.
	if p := b.post("/logout", url.Values{"csrf_token": {""}}); p.status != http.StatusForbidden {
		t.Errorf("logout without CSRF token = %d, want 403", p.status)
	}
	if p := b.post("/logout", nil); p.status != http.StatusSeeOther || p.header.Get("Location") != "/login" {
		t.Errorf("logout = %d", p.status)
	}
	if p := b.get("/"); p.status != http.StatusSeeOther {
		t.Errorf("GET / after logout = %d, want a redirect", p.status)
	}
	replay, _ := http.NewRequest("GET", f.url+"/", nil)
	replay.AddCookie(after)
	if resp, err := (&http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}).Do(replay); err != nil || resp.StatusCode != http.StatusSeeOther {
		t.Errorf("the logged-out session's cookie replayed = %v %v, want a redirect to sign in", resp, err)
	} else {
		resp.Body.Close()
	}

	var logins, failed, logouts int
	q := `select count(*) filter (where action = 'login'), count(*) filter (where action = 'login_failed'),
		count(*) filter (where action = 'logout') from audit_events`
	if err := f.srv.cfg.Pool.QueryRow(clinicCtx(t), q).Scan(&logins, &failed, &logouts); err != nil {
		t.Fatal(err)
	}
	if logins != 2 || failed != 2 || logouts != 1 {
		t.Errorf("audit: %d logins, %d failed, %d logouts; want 1, 2, 1", logins, failed, logouts)
	}
	if strings.Contains(f.logs.String(), clinicTestPassword) {
		t.Error("a password appears in the logs")
	}
}

// A signed-in session names its user in the store, and loading it re-reads that user's
// standing in the same query: a changed role or a disabled account counts on the next request.
func TestClinicSessionReadsItsUser(t *testing.T) {
	t.Parallel()
	f := newClinicFixture(t)
	ctx := clinicCtx(t)
	b := f.client(t)
	if p := b.login(f.clinician, clinicTestPassword); p.status != http.StatusSeeOther {
		t.Fatalf("login = %d", p.status)
	}
	var n int
	if err := f.srv.cfg.Pool.QueryRow(ctx, `select count(*) from sessions where user_id = $1`, f.clinicianActor.ID).Scan(&n); err != nil || n != 1 {
		t.Fatalf("sessions naming the clinician: %d, %v", n, err)
	}
	page := "/procedures/" + f.procedureID
	if p := b.get(page); p.status != http.StatusOK {
		t.Fatalf("timeline = %d", p.status)
	}
	if _, err := f.srv.cfg.Pool.Exec(ctx, `update users set role = 'researcher' where id = $1`, f.clinicianActor.ID); err != nil {
		t.Fatal(err)
	}
	if p := b.get(page); p.status == http.StatusOK {
		t.Errorf("timeline after the role became researcher = %d, want a refusal", p.status)
	}
	if _, err := f.srv.cfg.Pool.Exec(ctx, `update users set role = 'clinician', disabled_at = now() where id = $1`, f.clinicianActor.ID); err != nil {
		t.Fatal(err)
	}
	if p := b.get(page); p.status != http.StatusSeeOther || !strings.HasPrefix(p.header.Get("Location"), "/login") {
		t.Errorf("timeline after the user was disabled = %d %q, want a redirect to sign in", p.status, p.header.Get("Location"))
	}
}

// A session row the codec cannot read (another release's format, or damage) is no session:
// the user is asked to sign in, never answered 503 on every request.
func TestClinicUnreadableSessionSignsOut(t *testing.T) {
	t.Parallel()
	f := newClinicFixture(t)
	b := f.client(t)
	if p := b.login(f.clinician, clinicTestPassword); p.status != http.StatusSeeOther {
		t.Fatalf("login = %d", p.status)
	}
	if _, err := f.srv.cfg.Pool.Exec(clinicCtx(t), `update sessions set data = convert_to('not a session', 'UTF8') where user_id = $1`, f.clinicianActor.ID); err != nil {
		t.Fatal(err)
	}
	if p := b.get("/"); p.status != http.StatusSeeOther || !strings.HasPrefix(p.header.Get("Location"), "/login") {
		t.Errorf("GET / with an unreadable session = %d %q, want a redirect to sign in", p.status, p.header.Get("Location"))
	}
	if !strings.Contains(f.logs.String(), "unreadable session data") {
		t.Error("the unreadable session was not logged")
	}
	if p := b.login(f.clinician, clinicTestPassword); p.status != http.StatusSeeOther {
		t.Errorf("signing in again = %d", p.status)
	}
}

// openRedirects are the known ways to make a "local" redirect leave the host: browsers drop
// tabs and newlines, read backslashes as slashes, and some decode escapes or fold Unicode
// slashes before resolving a Location.
var openRedirects = []string{"//evil.example", "https://evil.example", `/\evil.example`, "/\t/evil.example", "/\n/evil.example",
	"/\r/evil.example", "/%2F/evil.example", "/%2f/evil.example", "/%5C/evil.example", "/%5c/evil.example", "/%09/evil.example",
	"/\u2215/evil.example", "/\uff0f/evil.example", "/\u29f8/evil.example", " //evil.example", "/ /evil.example",
	"\\\\evil.example", "/\x00/evil.example", "http:evil.example", "javascript:alert(1)", "/%00//evil.example", "/..//evil.example"}

func TestClinicNextIsLocal(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{"/procedures/x": "/procedures/x", "/?state=overdue&q=a": "/?state=overdue&q=a",
		"": "/", "/a\r\nSet-Cookie: x": "/"} {
		if got := localPath(in); got != want {
			t.Errorf("localPath(%q) = %q, want %q", in, got, want)
		}
	}
	for _, in := range openRedirects {
		got := localPath(in)
		if !staysOnHost(got) {
			t.Errorf("localPath(%q) = %q, which a browser may follow off the host", in, got)
		}
	}
}

// staysOnHost resolves a Location as browsers do (tabs and newlines dropped, backslashes
// read as slashes, one level of escapes undone) and reports whether it stays on the host.
func staysOnHost(loc string) bool {
	base, _ := url.Parse("https://clinic.example/login")
	for _, v := range []string{loc, strings.NewReplacer("\t", "", "\n", "", "\r", "", `\`, "/").Replace(loc)} {
		if un, err := url.PathUnescape(v); err == nil {
			for _, w := range []string{v, un} {
				u, err := url.Parse(w)
				if err != nil {
					return false
				}
				if r := base.ResolveReference(u); r.Host != "clinic.example" || r.Scheme != "https" || strings.HasPrefix(r.Path, "//") {
					return false
				}
			}
		}
	}
	return true
}

// TestSignInRedirectStaysOnHost sends each known bypass as next through the real sign-in and
// checks where the answer sends the browser.
func TestSignInRedirectStaysOnHost(t *testing.T) {
	t.Parallel()
	f := newClinicFixture(t)
	onHost, refused := 0, 0
	for _, next := range openRedirects {
		b := f.client(t)
		b.get("/login")
		p := b.post("/login", url.Values{"email": {f.clinician}, "password": {clinicTestPassword}, "next": {next}})
		if p.status == http.StatusUnprocessableEntity && p.header.Get("Location") == "" {
			refused++
			continue // refused as not text (a NUL): no redirect at all
		}
		if loc := p.header.Get("Location"); p.status != http.StatusSeeOther || !staysOnHost(loc) {
			t.Errorf("sign-in with next=%q = %d to %q", next, p.status, loc)
			continue
		}
		onHost++
	}
	t.Logf("%d known bypasses sent as next through the sign-in: %d redirected on the host, %d refused as not text, none off the host",
		len(openRedirects), onHost, refused)
}

func TestClinicCSRF(t *testing.T) {
	t.Parallel()
	f := newClinicFixture(t)
	b := f.client(t)
	// Even the sign-in form needs the token.
	if p := b.post("/login", url.Values{"csrf_token": {""}, "email": {f.clinician}, "password": {clinicTestPassword}}); p.status != http.StatusForbidden {
		t.Errorf("login without CSRF token = %d, want 403", p.status)
	}
	b.mustLogin(f.clinician)
	form := url.Values{"display_name": {"Li Na"}, "birth_date": {"2024-01-01"}, "preferred_language": {"en"}, "guardian_phone": {"+86 139 1234 5678"}}
	for name, token := range map[string]string{"none": "", "wrong": "x" + b.csrf()} {
		form.Set("csrf_token", token)
		if p := b.post("/patients", form); p.status != http.StatusForbidden {
			t.Errorf("POST /patients with %s CSRF token = %d, want 403", name, p.status)
		}
	}
	form.Del("csrf_token")
	if p := b.post("/patients", form); p.status != http.StatusSeeOther {
		t.Errorf("POST /patients with the token = %d, want 303: %s", p.status, p.body)
	}

	// The JSON API with the session cookie: reads need no token, changes need the header.
	body := `{"display_name":"Li Na","birth_date":"2024-01-01","preferred_language":"en","guardian_phone":"+86 139 1234 5678"}`
	api := func(method, path, token string) int {
		req, _ := http.NewRequest(method, f.url+path, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		if token != "" {
			req.Header.Set(csrfHeader, token)
		}
		return b.do(req).status
	}
	if code := api("GET", "/api/v1/procedures/"+f.procedureID, ""); code != 200 {
		t.Errorf("API GET with the session cookie = %d, want 200", code)
	}
	if code := api("POST", "/api/v1/patients", ""); code != http.StatusForbidden {
		t.Errorf("API POST with the session cookie and no CSRF header = %d, want 403", code)
	}
	if code := api("POST", "/api/v1/patients", "wrong"); code != http.StatusForbidden {
		t.Errorf("API POST with a wrong CSRF header = %d, want 403", code)
	}
	if code := api("POST", "/api/v1/patients", b.csrf()); code != http.StatusCreated {
		t.Errorf("API POST with the CSRF header = %d, want 201", code)
	}
	// Behind https the cookie is Secure.
	f.srv.clinic.sessions.Cookie.Secure = true
	if p := f.client(t).get("/login"); !strings.Contains(p.header.Get("Set-Cookie"), "; Secure") {
		t.Errorf("session cookie with Secure set = %q", p.header.Get("Set-Cookie"))
	}
	// Without any credential the API still answers 401.
	req, _ := http.NewRequest("GET", f.url+"/api/v1/procedures/"+f.procedureID, nil)
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != 401 {
		t.Errorf("API without credentials = %v %v", resp.StatusCode, err)
	} else {
		resp.Body.Close()
	}
}

func TestClinicLoginRateLimit(t *testing.T) {
	t.Parallel()
	f := newClinicFixture(t)
	// Clients at several addresses, as a trusted proxy reports them.
	f.srv.echo.IPExtractor = echo.ExtractIPFromXFFHeader(echo.TrustLoopback(true))
	// Small budgets, refilled slowly, keep the test short (each failure costs a password hash).
	f.srv.clinic.loginFailures = loginLimiter{byAddr: newFailureLimiter(5, time.Hour), byAccount: newFailureLimiter(3, time.Hour)}
	at := func(addr string) *clinicBrowser { b := f.client(t); b.xff = addr; return b }
	a := at("192.0.2.1")
	for i := 0; i < 3; i++ {
		if p := a.login(f.clinician, "wrong password "+string(rune('a'+i))); p.status != http.StatusUnauthorized {
			t.Fatalf("failure %d = %d", i, p.status)
		}
	}
	// From that address the account waits, even with the right password...
	if p := at("192.0.2.1").login(f.clinician, clinicTestPassword); p.status != http.StatusTooManyRequests || p.header.Get("Retry-After") == "" {
		t.Errorf("login after 3 failures from the address = %d, want 429 with Retry-After", p.status)
	}
	// ...but the clinician elsewhere is not locked out by them.
	if p := at("198.51.100.7").login(f.clinician, clinicTestPassword); p.status != http.StatusSeeOther {
		t.Errorf("the clinician from another address = %d, want signed in", p.status)
	}
	// The address's budget covers every account: two more failures spend it.
	for i := 0; i < 2; i++ {
		at("192.0.2.1").login("nobody-"+string(rune('a'+i))+"@example.org", "wrong")
	}
	if p := at("192.0.2.1").login(f.researcher, clinicTestPassword); p.status != http.StatusTooManyRequests {
		t.Errorf("login after 5 failures from the address = %d, want 429", p.status)
	}
	// Concurrent guesses cannot all pass a check made before any of them failed: of 40 at
	// once, no more than the account's budget are even tried.
	var mu sync.Mutex
	codes := map[int]int{}
	var wg sync.WaitGroup
	for i := range 40 {
		wg.Go(func() {
			p := at("203.0.113.9").login(f.admin, fmt.Sprintf("guess %d", i))
			mu.Lock()
			codes[p.status]++
			mu.Unlock()
		})
	}
	wg.Wait()
	if codes[http.StatusUnauthorized] > 3 || codes[http.StatusUnauthorized]+codes[http.StatusTooManyRequests] != 40 {
		t.Errorf("40 concurrent guesses: %v, want at most 3 tried (401) and the rest 429", codes)
	}
	t.Logf("40 concurrent guesses at one account from one address: %d tried, %d refused with 429", codes[401], codes[429])
}

func TestClinicSessionExpiry(t *testing.T) {
	t.Parallel()
	f := newClinicFixture(t)
	sm := f.srv.clinic.sessions

	b := f.client(t)
	b.mustLogin(f.clinician)
	if p := b.get("/"); p.status != 200 {
		t.Fatalf("worklist = %d", p.status)
	}
	// Idle: nothing for longer than the idle timeout ends the session.
	f.srv.clinic.idle = time.Second
	time.Sleep(1500 * time.Millisecond)
	if p := b.get("/"); p.status != http.StatusSeeOther {
		t.Errorf("after the idle timeout = %d, want a redirect to sign in", p.status)
	}
	// In use, the session stays (the last-seen time is refreshed).
	b.mustLogin(f.clinician)
	for i := 0; i < 4; i++ {
		time.Sleep(400 * time.Millisecond)
		if p := b.get("/"); p.status != 200 {
			t.Fatalf("a session in use ended after %d requests: %d", i, p.status)
		}
	}
	f.srv.clinic.idle = sessionIdle

	// Absolute: a busy session still ends at its lifetime.
	sm.Lifetime = 2 * time.Second
	b2 := f.client(t)
	b2.mustLogin(f.clinician)
	deadline := time.Now().Add(4 * time.Second)
	for time.Now().Before(deadline) {
		if p := b2.get("/"); p.status != 200 {
			sm.Lifetime = sessionLifetime
			return // ended while in use: as it should
		}
		time.Sleep(300 * time.Millisecond)
	}
	sm.Lifetime = sessionLifetime
	t.Error("a session in use outlived its absolute lifetime")
}

func TestClinicLogoutEverywhere(t *testing.T) {
	t.Parallel()
	f := newClinicFixture(t)
	laptop, desk, colleague := f.client(t), f.client(t), f.client(t)
	laptop.mustLogin(f.clinician)
	desk.mustLogin(f.clinician)
	colleague.mustLogin(f.admin)
	if p := laptop.post("/logout-everywhere", url.Values{"csrf_token": {""}}); p.status != http.StatusForbidden {
		t.Errorf("logout everywhere without CSRF token = %d", p.status)
	}
	if p := laptop.post("/logout-everywhere", nil); p.status != http.StatusSeeOther {
		t.Fatalf("logout everywhere = %d", p.status)
	}
	for name, b := range map[string]*clinicBrowser{"laptop": laptop, "desk": desk} {
		if p := b.get("/"); p.status != http.StatusSeeOther {
			t.Errorf("%s after logout everywhere = %d, want a redirect", name, p.status)
		}
	}
	req, _ := http.NewRequest("GET", f.url+"/api/v1/photos/"+f.photoID+"/thumbnail", nil)
	if p := desk.do(req); p.status != http.StatusUnauthorized {
		t.Errorf("API with an ended session = %d, want 401", p.status)
	}
	if p := colleague.get("/"); p.status != 200 {
		t.Errorf("another user's session = %d, want 200", p.status)
	}
	// Signing in again works.
	desk.mustLogin(f.clinician)
	if p := desk.get("/"); p.status != 200 {
		t.Errorf("after signing in again = %d", p.status)
	}
}

// Every page of clinic A: 404 for a clinician of B, 403 for A's researcher, 200 for A's
// clinician and admin, a redirect to sign in without a session.
func TestClinicAuthorization(t *testing.T) {
	t.Parallel()
	f := newClinicFixture(t)
	watchAuthz(f.srv)
	pr, pa, ph := f.procedureID, f.patientID, f.photoID
	gets := []string{"/patients/" + pa, "/patients/" + pa + "/enrol", "/patients/" + pa + "/enrol?preview=1&protocol=pws-hemoporfin-pdt&body_site=face&performed_at=2026-11-01T10:00",
		"/procedures/" + pr, "/procedures/" + pr + "/compare", "/procedures/" + pr + "/compare?b=" + ph}
	posts := map[string]url.Values{
		"/patients/" + pa + "/enrol":                                   {"protocol": {"pws-hemoporfin-pdt"}, "body_site": {"face"}, "performed_at": {time.Now().Format(time.RFC3339)}},
		"/procedures/" + pr + "/links":                                 {},
		"/procedures/" + pr + "/assessments":                           {"timepoint": {"baseline"}, "level": {"none"}},
		"/procedures/" + pr + "/retakes":                               {"photo_id": {ph}, "body": {"blurred"}},
		"/procedures/" + pr + "/links/" + uuid.NewString() + "/revoke": {},
		"/procedures/" + pr + "/photos/withdraw":                       {"photo_id": {ph}, "reason": {"sent by mistake"}},
	}
	apis := []string{"/api/v1/photos/" + ph + "/thumbnail", "/api/v1/photos/" + ph + "/original", "/api/v1/procedures/" + pr}

	outsider := f.client(t)
	outsider.mustLogin(f.outsider)
	for _, path := range append(append([]string{}, gets...), apis...) {
		if p := outsider.get(path); p.status != http.StatusNotFound {
			t.Errorf("outsider GET %s = %d, want 404", path, p.status)
		}
	}
	for path, form := range posts {
		if p := outsider.post(path, form); p.status != http.StatusNotFound {
			t.Errorf("outsider POST %s = %d, want 404", path, p.status)
		}
	}
	if p := outsider.get("/"); p.status != 200 || strings.Contains(p.body, "Xiaoming") {
		t.Errorf("outsider's worklist = %d, shows A's patient: %v", p.status, strings.Contains(p.body, "Xiaoming"))
	}

	researcher := f.client(t)
	researcher.mustLogin(f.researcher)
	for _, path := range append(append([]string{"/patients/new"}, gets...), apis...) {
		if p := researcher.get(path); p.status != http.StatusForbidden {
			t.Errorf("researcher GET %s = %d, want 403", path, p.status)
		}
	}
	for path, form := range posts {
		if p := researcher.post(path, form); p.status != http.StatusForbidden {
			t.Errorf("researcher POST %s = %d, want 403", path, p.status)
		}
	}
	if p := researcher.get("/"); p.status != 200 || strings.Contains(p.body, "Xiaoming") {
		t.Errorf("researcher's start page = %d, shows a patient: %v", p.status, strings.Contains(p.body, "Xiaoming"))
	}
	if p := researcher.post("/patients", url.Values{"display_name": {"R"}, "birth_date": {"2024-01-01"}}); p.status != http.StatusForbidden {
		t.Errorf("researcher creating a patient = %d, want 403", p.status)
	}
	// The clinic's own upload form: another clinic finds no procedure, a researcher may not.
	for who, b := range map[string]*clinicBrowser{"outsider": outsider, "researcher": researcher} {
		want := map[string]int{"outsider": http.StatusNotFound, "researcher": http.StatusForbidden}[who]
		p := b.uploadForm("/procedures/"+pr+"/photos", b.csrf(), map[string]string{"timepoint": "baseline", "view": "front",
			"upload_id": "authz-" + who + "-1"}, imagetest.JPEG(64, 48, 3))
		if p.status != want {
			t.Errorf("%s's clinic upload = %d, want %d", who, p.status, want)
		}
	}

	for _, email := range []string{f.clinician, f.admin} {
		b := f.client(t)
		b.mustLogin(email)
		for _, path := range gets {
			if p := b.get(path); p.status != 200 {
				t.Errorf("%s GET %s = %d, want 200", email, path, p.status)
			}
		}
	}

	anon := f.client(t)
	for _, path := range append([]string{"/", "/patients/new"}, gets...) {
		if p := anon.get(path); p.status != http.StatusSeeOther || !strings.HasPrefix(p.header.Get("Location"), "/login?next=") {
			t.Errorf("signed-out GET %s = %d %q, want a redirect to sign in", path, p.status, p.header.Get("Location"))
		}
	}
	anon.get("/login") // a signed-out browser has the sign-in page's form token, and no user
	for path, form := range posts {
		if p := anon.post(path, form); p.status != http.StatusUnauthorized {
			t.Errorf("signed-out POST %s = %d, want 401: %s", path, p.status, p.body)
		}
	}
	for _, path := range []string{"/logout", "/logout-everywhere", "/patients", "/account/language"} {
		if p := anon.post(path, url.Values{"display_name": {"x"}}); p.status != http.StatusUnauthorized {
			t.Errorf("signed-out POST %s = %d, want 401", path, p.status)
		}
	}
}

// uploadForm posts a photo the way the procedure page's form does: multipart, with the CSRF
// token in the query (the body is streamed, never parsed up front).
func (b *clinicBrowser) uploadForm(path, token string, fields map[string]string, file []byte) clinicResp {
	b.t.Helper()
	body, contentType := photoForm(fields, file)
	u := b.f.url + path
	if token != "" {
		u += "?csrf_token=" + url.QueryEscape(token)
	}
	req, _ := http.NewRequest("POST", u, body)
	req.Header.Set("Content-Type", contentType)
	return b.do(req)
}

func TestClinicPagesBadInput(t *testing.T) {
	t.Parallel()
	f := newClinicFixture(t)
	b := f.client(t)
	b.mustLogin(f.clinician)
	pr, pa := f.procedureID, f.patientID

	gets := map[string]int{
		"/?state=bogus":                                        422,
		"/?q=" + strings.Repeat("x", 300):                      422,
		"/patients/not-a-uuid":                                 404,
		"/patients/" + uuid.NewString():                        404,
		"/procedures/not-a-uuid":                               404,
		"/procedures/" + uuid.NewString():                      404,
		"/procedures/" + pr + "/compare?a=x":                   404,
		"/procedures/" + pr + "/compare?b=" + uuid.NewString(): 404,
		"/patients/" + pa + "/enrol?preview=1&protocol=nope&body_site=face&performed_at=2026-11-01T10:00":               422,
		"/patients/" + pa + "/enrol?preview=1&protocol=pws-hemoporfin-pdt&body_site=knee&performed_at=2026-11-01T10:00": 422,
		"/patients/" + pa + "/enrol?preview=1&protocol=pws-hemoporfin-pdt&body_site=face&performed_at=yesterday":        422,
	}
	for path, want := range gets {
		if p := b.get(path); p.status != want || !strings.Contains(p.body, "<html") {
			t.Errorf("GET %s = %d, want %d as a page", path, p.status, want)
		}
	}
	posts := []struct {
		path string
		form url.Values
		want int
	}{
		{"/patients", url.Values{"display_name": {""}, "birth_date": {"2024-01-01"}}, 422},
		{"/patients", url.Values{"display_name": {"A"}, "birth_date": {"someday"}, "guardian_phone": {"+86 139 1234 5678"}}, 422},
		{"/patients", url.Values{"display_name": {"A"}, "birth_date": {"2024-01-01"}, "guardian_email": {"not an email"}}, 422},
		{"/patients/" + pa + "/enrol", url.Values{"protocol": {"nope"}, "body_site": {"face"}, "performed_at": {time.Now().Format(time.RFC3339)}}, 422},
		{"/patients/" + pa + "/enrol", url.Values{"protocol": {"pws-hemoporfin-pdt"}, "body_site": {"face"}, "performed_at": {"soon"}}, 422},
		{"/procedures/" + pr + "/assessments", url.Values{"timepoint": {"baseline"}, "level": {"superb"}}, 422},
		{"/procedures/" + pr + "/assessments", url.Values{"timepoint": {"week-99"}, "level": {"none"}}, 422},
		{"/procedures/" + pr + "/assessments", url.Values{"timepoint": {"baseline"}, "level": {"none"}, "note": {strings.Repeat("n", 4001)}}, 422},
		{"/procedures/" + pr + "/retakes", url.Values{"photo_id": {f.photoID}, "body": {"  "}}, 422},
		{"/procedures/" + pr + "/retakes", url.Values{"photo_id": {"x"}, "body": {"again"}}, 422},
		{"/procedures/" + pr + "/retakes", url.Values{"photo_id": {uuid.NewString()}, "body": {"again"}}, 404},
		{"/procedures/" + pr + "/links/not-a-uuid/revoke", nil, 404},
		{"/procedures/" + pr + "/links/" + uuid.NewString() + "/revoke", nil, 404},
	}
	for _, c := range posts {
		if p := b.post(c.path, c.form); p.status != c.want {
			t.Errorf("POST %s %v = %d, want %d", c.path, c.form, p.status, c.want)
		}
	}

	second := f.addPhoto(t, "after-treatment", "front", 5)
	if p := b.get("/procedures/" + pr + "/compare?a=" + second + "&b=" + f.photoID); p.status != 200 ||
		!strings.Contains(p.body, `id="img-a" class="cmp-img" src="/api/v1/photos/`+second) || !strings.Contains(p.body, `id="img-b" class="cmp-img" src="/api/v1/photos/`+f.photoID) {
		t.Errorf("compare with both photos chosen = %d", p.status)
	}

	// A parent link: shown once with its QR code, then revoked from the timeline.
	p := b.post("/procedures/"+pr+"/links", nil)
	if p.status != http.StatusCreated || !strings.Contains(p.body, "http://dermfollow.test/p/") || !strings.Contains(p.body, `id="link-qr"`) {
		t.Fatalf("create link = %d", p.status)
	}
	revoke := regexp.MustCompile(`action="(/procedures/[^"]+/revoke)"`).FindStringSubmatch(b.get("/procedures/" + pr).body)
	if revoke == nil {
		t.Fatal("no revoke button on the timeline")
	}
	if p := b.post(revoke[1], nil); p.status != http.StatusSeeOther {
		t.Errorf("revoke = %d", p.status)
	}
	if p := b.get("/procedures/" + pr); !strings.Contains(p.body, "revoked") || strings.Contains(p.body, "/revoke") {
		t.Error("the timeline does not show the link revoked")
	}

	// The page's upload form: bad ones answer with a page, a good one goes back to the timeline.
	tok := b.csrf()
	jpeg := imagetest.JPEG(64, 48, 3)
	ok := map[string]string{"timepoint": "after-treatment", "view": "front", "upload_id": "web-upload-0001"}
	if p := b.uploadForm("/procedures/"+pr+"/photos", "", ok, jpeg); p.status != http.StatusForbidden {
		t.Errorf("upload without CSRF token = %d, want 403", p.status)
	}
	if p := b.uploadForm("/procedures/"+pr+"/photos", tok, map[string]string{"timepoint": "week-99", "view": "front", "upload_id": "web-upload-0002"}, jpeg); p.status != 422 {
		t.Errorf("upload to an unknown step = %d, want 422", p.status)
	}
	if p := b.uploadForm("/procedures/"+pr+"/photos", tok, ok, nil); p.status != 400 {
		t.Errorf("upload without a file = %d, want 400", p.status)
	}
	if p := b.uploadForm("/procedures/"+pr+"/photos", tok, ok, imagetest.HEIC()); p.status != 415 {
		t.Errorf("HEIC upload = %d, want 415", p.status)
	}
	p = b.uploadForm("/procedures/"+pr+"/photos", tok, ok, jpeg)
	if p.status != http.StatusSeeOther || p.header.Get("Location") != "/procedures/"+pr || p.header.Get("Content-Type") == "application/json" {
		t.Fatalf("upload = %d %q %q, want a redirect to the timeline", p.status, p.header.Get("Location"), p.body)
	}
	if p := b.get("/procedures/" + pr); !strings.Contains(p.body, "Photo received") {
		t.Error("the timeline does not confirm the upload")
	}
	var n int
	if err := f.srv.cfg.Pool.QueryRow(clinicCtx(t), `select count(*) from photos where procedure_id = $1 and source = 'clinic'`, pr).Scan(&n); err != nil || n != 3 {
		t.Errorf("clinic photos = %d, %v; want 3", n, err)
	}
}

// The worklist: counts per state, filters and search, one line per active procedure.
func TestClinicWorklist(t *testing.T) {
	t.Parallel()
	f := newClinicFixture(t)
	ctx := clinicCtx(t)
	// A second patient, enrolled today: nothing overdue, nothing received.
	p2, err := f.svc.CreatePatient(ctx, f.clinicianActor, followup.NewPatient{DisplayName: "Li Na", BirthDate: "2024-05-05", GuardianPhone: "+86 139 1234 5678"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.Enrol(ctx, f.clinicianActor, followup.NewProcedure{PatientID: p2.ID.String(), Protocol: "pws-hemoporfin-pdt",
		BodySite: "neck", PerformedAt: time.Now().Add(24 * time.Hour).Format(time.RFC3339)}); err != nil {
		t.Fatal(err)
	}
	b := f.client(t)
	b.mustLogin(f.clinician)
	count := func(body, state string) string {
		m := regexp.MustCompile(`data-state="` + state + `">[^<]*<span class="cl-count">(\d+)</span>`).FindStringSubmatch(body)
		if m == nil {
			return "?"
		}
		return m[1]
	}
	p := b.get("/")
	if count(p.body, "") != "2" || count(p.body, "overdue") != "1" || count(p.body, "unreviewed") != "1" {
		t.Errorf("counts: all %s, overdue %s, new %s; want 2, 1, 1", count(p.body, ""), count(p.body, "overdue"), count(p.body, "unreviewed"))
	}
	if strings.Count(p.body, `class="wl-row"`) != 2 {
		t.Errorf("worklist rows = %d, want 2", strings.Count(p.body, `class="wl-row"`))
	}
	p = b.get("/?state=overdue")
	if strings.Count(p.body, `class="wl-row"`) != 1 || !strings.Contains(p.body, "Xiaoming Wang") || strings.Contains(p.body, "Li Na") {
		t.Error("the overdue filter does not show just the overdue procedure")
	}
	p = b.get("/?q=li+n")
	if strings.Count(p.body, `class="wl-row"`) != 1 || !strings.Contains(p.body, "Li Na") || count(p.body, "") != "1" {
		t.Error("the search does not find just Li Na")
	}
	if p := b.get("/?q=%25"); strings.Count(p.body, `class="wl-row"`) != 0 {
		t.Error("a % in the search matches everything")
	}
	// Grading reviews the new photos.
	if p := b.post("/procedures/"+f.procedureID+"/assessments", url.Values{"timepoint": {"baseline"}, "level": {"none"}}); p.status != http.StatusSeeOther {
		t.Fatalf("assess = %d", p.status)
	}
	if p := b.get("/"); count(p.body, "unreviewed") != "0" {
		t.Errorf("new photos after grading = %s, want 0", count(p.body, "unreviewed"))
	}
}

func TestClinicAdmin(t *testing.T) {
	t.Parallel()
	f := newClinicFixture(t)
	watchAuthz(f.srv)
	auditPath := "/patients/" + f.patientID + "/audit"

	clinician := f.client(t)
	clinician.mustLogin(f.clinician)
	// A photo view, to be found in the audit log.
	req, _ := http.NewRequest("GET", f.url+"/api/v1/photos/"+f.photoID+"/thumbnail", nil)
	if p := clinician.do(req); p.status != 200 {
		t.Fatalf("thumbnail with the session cookie = %d", p.status)
	}
	for _, path := range []string{auditPath, "/admin/users"} {
		if p := clinician.get(path); p.status != http.StatusForbidden {
			t.Errorf("clinician GET %s = %d, want 403", path, p.status)
		}
	}
	if p := clinician.post("/admin/users", url.Values{"email": {"x@example.org"}, "role": {"admin"}, "password": {clinicTestPassword}}); p.status != http.StatusForbidden {
		t.Errorf("clinician creating a user = %d, want 403", p.status)
	}
	researcher := f.client(t)
	researcher.mustLogin(f.researcher)
	if p := researcher.get(auditPath); p.status != http.StatusForbidden {
		t.Errorf("researcher audit = %d, want 403", p.status)
	}
	outsider := f.client(t)
	outsider.mustLogin(f.outsider)
	if p := outsider.get(auditPath); p.status != http.StatusForbidden && p.status != http.StatusNotFound {
		t.Errorf("outsider audit = %d, want 403 or 404", p.status)
	}

	admin := f.client(t)
	admin.mustLogin(f.admin)
	p := admin.get(auditPath)
	if p.status != 200 || !strings.Contains(p.body, "patient_created") || !strings.Contains(p.body, "photo_viewed") || !strings.Contains(p.body, f.clinician) {
		t.Errorf("audit page = %d; want patient_created and photo_viewed by %s", p.status, f.clinician)
	}
	if p := admin.get("/patients/" + uuid.NewString() + "/audit"); p.status != http.StatusNotFound {
		t.Errorf("audit of an unknown patient = %d, want 404", p.status)
	}
	if p := admin.get("/admin/users"); p.status != 200 || !strings.Contains(p.body, f.clinician) || strings.Contains(p.body, f.outsider) {
		t.Errorf("users page = %d; want this clinic's users only", p.status)
	}
	bad := []url.Values{
		{"email": {"not an email"}, "role": {"clinician"}, "password": {clinicTestPassword}},
		{"email": {"new@example.org"}, "role": {"root"}, "password": {clinicTestPassword}},
		{"email": {"new@example.org"}, "role": {"clinician"}, "password": {"short"}},
		{"email": {f.clinician}, "role": {"clinician"}, "password": {clinicTestPassword}},
	}
	for _, form := range bad {
		if p := admin.post("/admin/users", form); p.status != http.StatusUnprocessableEntity || strings.Contains(p.body, clinicTestPassword) {
			t.Errorf("create user %v = %d, want 422 without the password echoed", form, p.status)
		}
	}
	email := "new-" + uuid.NewString()[:6] + "@example.org"
	if p := admin.post("/admin/users", url.Values{"email": {email}, "role": {"clinician"}, "password": {clinicTestPassword}}); p.status != http.StatusSeeOther {
		t.Fatalf("create user = %d", p.status)
	}
	f.client(t).mustLogin(email)
}

// TestClinicWithdrawsPhoto: from the timeline a clinician withdraws a photo with a reason: it
// leaves the grid and the retake list, is listed as withdrawn, stays downloadable, and the
// form's bad input (no reason, another procedure's photo, a made-up id) changes nothing.
func TestClinicWithdrawsPhoto(t *testing.T) {
	t.Parallel()
	f := newClinicFixture(t)
	b := f.client(t)
	b.mustLogin(f.clinician)
	path := "/procedures/" + f.procedureID
	if p := b.get(path); !strings.Contains(p.body, `id="withdraw-form"`) || !strings.Contains(p.body, f.photoID) {
		t.Fatalf("timeline lacks the withdraw form or the photo")
	}
	for _, bad := range []url.Values{
		{"photo_id": {f.photoID}, "reason": {""}},
		{"photo_id": {uuid.NewString()}, "reason": {"x"}},
		{"photo_id": {"not-an-id"}, "reason": {"x"}},
	} {
		if p := b.post(path+"/photos/withdraw", bad); p.status < 400 {
			t.Errorf("withdraw with %v = %d, want a refusal", bad, p.status)
		}
	}
	if p := b.post(path+"/photos/withdraw", url.Values{"photo_id": {f.photoID}, "reason": {"the family sent the wrong child's photo"}}); p.status != http.StatusSeeOther {
		t.Fatalf("withdraw = %d", p.status)
	}
	p := b.get(path)
	if strings.Contains(p.body, `/api/v1/photos/`+f.photoID+`/thumbnail`) || !strings.Contains(p.body, `id="withdrawn"`) {
		t.Errorf("after withdrawal the grid still shows the photo, or the withdrawn list is missing")
	}
	if code := b.get("/api/v1/photos/" + f.photoID + "/original").status; code != 200 {
		t.Errorf("the withdrawn photo's original = %d, want 200 (kept)", code)
	}
}
