package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dermfollow/dermfollow/followup"
	"github.com/dermfollow/dermfollow/followup/accounts"
	"github.com/dermfollow/dermfollow/scripts/balancer"
)

// newBalancer puts the balancer in front of the servers at urls for the test's life.
func newBalancer(t *testing.T, urls ...string) (*balancer.Balancer, string) {
	t.Helper()
	b := balancer.New(urls...)
	t.Cleanup(b.Close)
	srv := httptest.NewServer(b)
	t.Cleanup(srv.Close)
	return b, srv.URL
}

// waitReady waits until the balancer sees n ready servers.
func waitReady(t *testing.T, b *balancer.Balancer, n int) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for b.Ready() < n {
		if time.Now().After(deadline) {
			t.Fatalf("only %d of %d servers ready", b.Ready(), n)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestTwoServers runs two server processes against one database and one bucket behind the
// balancer: a clinician's session made on one works on the other; uploads alternate between
// them with nothing lost or duplicated; a due reminder is sent once and an export runs once;
// and a rolling restart (each server drained by /readyz, stopped and started again) during a
// stream of uploads fails none of them.
func TestTwoServers(t *testing.T) {
	t.Parallel()
	smtp, mailpit := os.Getenv("DERMFOLLOW_TEST_SMTP_ADDR"), os.Getenv("DERMFOLLOW_TEST_MAILPIT_URL")
	if smtp == "" || mailpit == "" {
		t.Fatal("DERMFOLLOW_TEST_SMTP_ADDR and DERMFOLLOW_TEST_MAILPIT_URL must be set (make test sets them)")
	}
	d := newDeployment(t, map[string]string{"DERMFOLLOW_SMTP_URL": "smtp://" + smtp, "DERMFOLLOW_DRAIN_DELAY": "1s"})
	a := d.start(t)
	b := d.start(t)
	d.open(t)
	lb, lbURL := newBalancer(t, a.URL, b.URL)
	waitReady(t, lb, 2)

	// A family whose step is due now, in a clinic whose local time is outside its quiet hours
	// (21:00 to 08:00): the scan at each server's start queues one reminder between them.
	guardian := "guardian-" + strings.ToLower(strings.ReplaceAll(time.Now().Format("150405.000000"), ".", "")) + "@example.org"
	f := d.newFamily(t, daytimeZone(t), guardian)

	// A session made through one server is good on the other.
	jar, _ := cookiejar.New(nil)
	browser := &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	email := d.clinicianEmail(t, f)
	signIn(t, browser, lbURL, email)
	for i := range 6 {
		resp, err := browser.Get(lbURL + "/")
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("worklist request %d through the balancer = %v %v, want 200 on both servers", i, resp, err)
		}
		resp.Body.Close()
	}

	// Uploads alternate between the servers.
	client := &http.Client{Timeout: time.Minute}
	var results []sent
	for i := range 12 {
		results = append(results, upload(client, lbURL, f, fmt.Sprintf("two-servers-%03d", i), photoFor(i)))
	}
	if lb.Served(0) == 0 || lb.Served(1) == 0 {
		t.Errorf("requests per server: %d and %d, want both used", lb.Served(0), lb.Served(1))
	}

	// An export runs once.
	var ex struct{ ID, Status string }
	if code := apiJSON(t, lbURL, "POST", "/api/v1/exports", d.researcherToken(t, f), `{"protocol":"pws-hemoporfin-pdt"}`, &ex); code != 202 {
		t.Fatalf("start export = %d", code)
	}

	// A rolling restart during a stream of uploads (another family's: a link takes 30 a minute).
	g := d.newFamily(t, "UTC", "")
	stop := make(chan struct{})
	var streamed []sent
	var streamWG sync.WaitGroup
	streamWG.Go(func() {
		for i := 100; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			streamed = append(streamed, upload(client, lbURL, g, fmt.Sprintf("rolling-%03d", i), photoFor(i)))
			time.Sleep(200 * time.Millisecond)
		}
	})
	procs := []*proc{a, b}
	for slot, p := range procs {
		if err := p.term(t, 30*time.Second); err != nil {
			t.Errorf("server %d after SIGTERM: %v", slot, err)
		}
		restarted := d.start(t)
		lb.Set(slot, restarted.URL)
		waitReady(t, lb, 2)
		procs[slot] = restarted
	}
	close(stop)
	streamWG.Wait()
	for _, r := range streamed {
		if r.status != 201 {
			t.Errorf("upload %s during the rolling restart = %d %v", r.uploadID, r.status, r.err)
		}
	}
	if len(streamed) < 5 {
		t.Errorf("only %d uploads during the rolling restart", len(streamed))
	}

	// The export finished once; the reminder went out once.
	deadline := time.Now().Add(2 * time.Minute)
	for ex.Status != "done" {
		if time.Now().After(deadline) {
			t.Fatalf("export still %q after 2 minutes", ex.Status)
		}
		time.Sleep(500 * time.Millisecond)
		apiJSON(t, lbURL, "GET", "/api/v1/exports/"+ex.ID, d.researcherToken(t, f), "", &ex)
	}
	var attempts, archives int
	d.pool.QueryRow(context.Background(), `select attempts from exports where id = $1`, ex.ID).Scan(&attempts)
	d.pool.QueryRow(context.Background(), `select count(*) from exports where object_key is not null`).Scan(&archives)
	if attempts != 1 || archives != 1 {
		t.Errorf("export attempts %d, archives %d; want it run once", attempts, archives)
	}
	waitMail(t, mailpit, guardian, 1)
	d.waitJobsDone(t)
	if n := mailCount(t, mailpit, guardian); n != 1 {
		t.Errorf("the guardian got %d reminder emails from two servers, want 1", n)
	}
	d.checkDeployment(t, lbURL, append(results, streamed...))

	// Nothing secret or personal in any server's log: links, tokens, the secret key, the
	// password, the patient's name, the guardian's address.
	secrets := []string{f.linkToken, g.linkToken, f.token, d.researcherToken(t, f), testSecret, "a long test password", "Process Patient", guardian}
	for i, p := range append([]*proc{a, b}, procs...) {
		logs := p.logs.String()
		for _, secret := range secrets {
			if strings.Contains(logs, secret) {
				t.Errorf("server %d's log holds %.12s…", i, secret)
			}
		}
		if !strings.Contains(logs, `"msg":"request"`) {
			t.Errorf("server %d logged no request: the scan saw nothing", i)
		}
	}
}

// daytimeZone picks a time zone where it is now between 10:00 and 19:00, outside the default
// quiet hours, so that a scan sends at once whenever the test runs.
func daytimeZone(t *testing.T) string {
	for _, z := range []string{"UTC", "Asia/Shanghai", "Europe/Berlin", "America/New_York", "America/Los_Angeles", "Pacific/Auckland",
		"Asia/Kolkata", "America/Sao_Paulo", "Pacific/Honolulu", "Asia/Tokyo", "Europe/Moscow", "Pacific/Kiritimati"} {
		loc, err := time.LoadLocation(z)
		if err != nil {
			continue
		}
		if h := time.Now().In(loc).Hour(); h >= 10 && h < 19 {
			return z
		}
	}
	t.Fatal("no daytime zone found")
	return ""
}

var csrfInput = regexp.MustCompile(`name="csrf_token" value="([^"]+)"`)

// signIn signs the clinician in through base with the browser's cookie jar.
func signIn(t *testing.T, browser *http.Client, base, email string) {
	t.Helper()
	resp, err := browser.Get(base + "/login")
	if err != nil {
		t.Fatal(err)
	}
	page := new(strings.Builder)
	buf := make([]byte, 32<<10)
	for {
		n, err := resp.Body.Read(buf)
		page.Write(buf[:n])
		if err != nil {
			break
		}
	}
	resp.Body.Close()
	m := csrfInput.FindStringSubmatch(page.String())
	if m == nil {
		t.Fatalf("no form token on the sign-in page:\n%.500s", page)
	}
	resp, err = browser.PostForm(base+"/login", url.Values{"csrf_token": {m[1]}, "email": {email}, "password": {"a long test password"}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("sign in through the balancer = %d", resp.StatusCode)
	}
}

func (d *deployment) clinicianEmail(t *testing.T, f family) string {
	t.Helper()
	var email string
	if err := d.pool.QueryRow(context.Background(), `select email from users where clinic_id = $1 and role = 'clinician'`, f.clinic.ID).Scan(&email); err != nil {
		t.Fatal(err)
	}
	// The clinic lets its clinicians sign in with a password alone (a second factor is the
	// web tests' to try).
	if _, err := d.pool.Exec(context.Background(), `update clinics set require_second_factor = false where id = $1`, f.clinic.ID); err != nil {
		t.Fatal(err)
	}
	// The family's patient consents, so that the export has a photo to take.
	d.pool.Exec(context.Background(), `update patients set research_consent_at = now() where clinic_id = $1`, f.clinic.ID)
	return email
}

// researcherToken makes (once per family) a researcher of the family's clinic.
func (d *deployment) researcherToken(t *testing.T, f family) string {
	t.Helper()
	researchers.Lock()
	defer researchers.Unlock()
	if tok, ok := researchers.m[f.clinic.ID.String()]; ok {
		return tok
	}
	ctx := context.Background()
	email := "researcher-" + f.clinic.ID.String()[:8] + "@example.org"
	sys := followup.SystemActor(f.clinic.ID)
	if _, err := d.acc.CreateUser(ctx, sys, accounts.NewUser{ClinicID: f.clinic.ID, Email: email, Role: followup.RoleResearcher,
		Password: "a long test password"}); err != nil {
		t.Fatal(err)
	}
	tok, err := d.acc.CreateToken(ctx, sys, email)
	if err != nil {
		t.Fatal(err)
	}
	researchers.m[f.clinic.ID.String()] = tok
	return tok
}

var researchers = struct {
	sync.Mutex
	m map[string]string
}{m: map[string]string{}}

// apiJSON calls the API with a bearer token and decodes the answer into out.
func apiJSON(t *testing.T, base, method, path, token, body string, out any) int {
	t.Helper()
	req, _ := http.NewRequest(method, base+path, strings.NewReader(body))
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if out != nil {
		json.NewDecoder(resp.Body).Decode(out)
	}
	return resp.StatusCode
}

func mailCount(t *testing.T, mailpit, to string) int {
	t.Helper()
	resp, err := http.Get(mailpit + "/api/v1/search?limit=50&query=" + url.QueryEscape("to:"+to))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out struct {
		Messages []struct{ ID string }
	}
	json.NewDecoder(resp.Body).Decode(&out)
	return len(out.Messages)
}

func waitMail(t *testing.T, mailpit, to string, n int) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for mailCount(t, mailpit, to) < n {
		if time.Now().After(deadline) {
			t.Fatalf("no reminder email to %s after 2 minutes", to)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// waitJobsDone waits until no River job is left to run or retry: then a second send, if
// there were one, would have happened.
func (d *deployment) waitJobsDone(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		var open int
		d.pool.QueryRow(context.Background(), `select count(*) from river_job where kind <> 'reminder_scan'
			and state not in ('completed', 'cancelled', 'discarded')`).Scan(&open)
		if open == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d reminder jobs still open after 2 minutes", open)
		}
		time.Sleep(250 * time.Millisecond)
	}
}
