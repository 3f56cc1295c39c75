package web

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/dermfollow/dermfollow/followup"
)

// The step-up: exports (starting one, downloading one) ask a session whose second factor
// passed more than 15 minutes ago for it again, and go on where they were once it passes.

func TestStepUpBeforeExport(t *testing.T) {
	t.Parallel()
	f := newClinicFixture(t)
	b := f.client(t)
	b.mustLogin(f.researcher)
	start := url.Values{"protocol": {"pws-hemoporfin-pdt"}}
	if p := b.post("/exports", start); p.status != http.StatusSeeOther || p.header.Get("Location") != "/exports" {
		t.Fatalf("export just after signing in = %d %s, want 303 to /exports", p.status, p.header.Get("Location"))
	}
	list := b.get("/api/v1/exports")
	var got struct {
		Exports []struct {
			ID string `json:"id"`
		} `json:"exports"`
	}
	if err := json.Unmarshal([]byte(list.body), &got); err != nil || len(got.Exports) != 1 {
		t.Fatalf("exports = %d %s (%v)", list.status, list.body, err)
	}
	download := "/api/v1/exports/" + got.Exports[0].ID + "/download"
	verifyDownload := "/verify?next=" + url.QueryEscape(download)

	f.clock.Advance(16 * time.Minute)
	if p := b.get(download); p.status != http.StatusSeeOther || p.header.Get("Location") != verifyDownload {
		t.Errorf("download 16 minutes on = %d %s, want 303 to %s", p.status, p.header.Get("Location"), verifyDownload)
	}
	if p := b.post("/exports", start); p.status != http.StatusSeeOther || p.header.Get("Location") != "/verify?next=%2Fexports" {
		t.Errorf("export 16 minutes on = %d %s, want 303 to the step-up", p.status, p.header.Get("Location"))
	}
	req, _ := http.NewRequest("POST", f.url+"/api/v1/exports", strings.NewReader(`{"protocol":"pws-hemoporfin-pdt"}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(csrfHeader, b.csrf())
	if p := b.do(req); p.status != http.StatusForbidden || !strings.Contains(p.body, "/verify") {
		t.Errorf("API export by cookie 16 minutes on = %d %s, want 403 naming /verify", p.status, p.body)
	}
	if p := b.get("/api/v1/exports"); p.status != http.StatusOK || strings.Count(p.body, `"id"`) != 1 {
		t.Errorf("exports after the refused starts = %d %s, want the one", p.status, p.body)
	}

	if p := b.get(verifyDownload); p.status != http.StatusOK || !strings.Contains(p.body, `id="code-form"`) ||
		!strings.Contains(p.body, url.QueryEscape(download)) && !strings.Contains(p.body, download) {
		t.Fatalf("step-up page = %d", p.status)
	}
	for _, bad := range []struct {
		name string
		form url.Values
		want int
	}{
		{"wrong code", url.Values{"code": {"0000-0000-0000-0000"}, "next": {download}}, 401},
		{"malformed", url.Values{"code": {"abc"}, "next": {download}}, 422},
		{"over-long", url.Values{"code": {strings.Repeat("1", 5000)}, "next": {download}}, 422},
		{"no CSRF token", url.Values{"code": {fixtureCode(t, f.researcher)}, "next": {download}, "csrf_token": {""}}, 403},
	} {
		if p := b.post("/verify", bad.form); p.status != bad.want {
			t.Errorf("step-up, %s = %d, want %d", bad.name, p.status, bad.want)
		}
	}
	if p := b.get(download); p.status != http.StatusSeeOther || p.header.Get("Location") != verifyDownload {
		t.Errorf("download after refused step-ups = %d, want the step-up again", p.status)
	}
	p := b.post("/verify", url.Values{"code": {fixtureCode(t, f.researcher)}, "next": {"https://evil.example.org" + download}})
	if p.status != http.StatusSeeOther || p.header.Get("Location") != "/" {
		t.Errorf("step-up with a foreign next = %d %s, want 303 to /", p.status, p.header.Get("Location"))
	}
	if p := b.get(download); p.status == http.StatusSeeOther || p.status >= 500 {
		t.Errorf("download after the step-up = %d %s", p.status, p.header.Get("Location"))
	}
	if p := b.post("/exports", start); p.status != http.StatusSeeOther || p.header.Get("Location") != "/exports" {
		t.Errorf("export after the step-up = %d %s, want 303 to /exports", p.status, p.header.Get("Location"))
	}
}

func TestStepUpNotAskedOfWhoHasNothingToCheck(t *testing.T) {
	t.Parallel()
	f := newClinicFixture(t)
	b := f.client(t)
	b.mustLogin(f.clinician) // the clinic lets clinicians in with a password alone
	f.clock.Advance(time.Hour)
	if p := b.post("/account/tokens", url.Values{"name": {"script"}, "role": {"clinician"}, "days": {"90"}}); p.status != http.StatusCreated {
		t.Errorf("token of a clinician without a second factor = %d, want 201", p.status)
	}
	if p := b.get("/verify?next=/account"); p.status != http.StatusOK || !strings.Contains(p.body, `id="verify-no-factor"`) {
		t.Errorf("step-up page without a factor = %d, want the way to set one up", p.status)
	}
}

// Managing users, the clinic's settings and API tokens ask again too, and do nothing first.
func TestStepUpBeforeAdminActions(t *testing.T) {
	t.Parallel()
	f := newClinicFixture(t)
	b := f.client(t)
	b.mustLogin(f.admin)
	f.clock.Advance(16 * time.Minute)
	id := f.userID(t, f.clinician)
	for _, a := range []struct {
		path string
		form url.Values
		back string
	}{
		{"/admin/users/" + id + "/disable", nil, "/admin/users"},
		{"/admin/users", url.Values{"email": {"new-" + id[:8] + "@example.org"}, "name": {"New"}, "role": {"clinician"}}, "/admin/users"},
		{"/admin/settings/sign-in", url.Values{"require_second_factor": {"on"}}, "/admin/settings"},
		{"/admin/settings/contact", url.Values{"contact_phone": {"+86 10 1234 5678"}}, "/admin/settings"},
		{"/account/tokens", url.Values{"name": {"script"}, "role": {"admin"}, "days": {"90"}}, "/account/tokens"},
	} {
		if p := b.post(a.path, a.form); p.status != http.StatusSeeOther || p.header.Get("Location") != "/verify?next="+url.QueryEscape(a.back) {
			t.Errorf("POST %s 16 minutes on = %d %s, want the step-up", a.path, p.status, p.header.Get("Location"))
		}
	}
	if u, err := f.acc.UserByEmail(clinicCtx(t), followup.SystemActor(f.clinicianActor.ClinicID), f.clinician); err != nil || u.Disabled {
		t.Errorf("clinician disabled before the step-up (%v)", err)
	}
	if p, err := f.acc.ClinicSignInPolicy(clinicCtx(t), followup.SystemActor(f.clinicianActor.ClinicID)); err != nil || p.RequireSecondFactor {
		t.Errorf("setting changed before the step-up (%v)", err)
	}
	if p := b.post("/verify", url.Values{"code": {fixtureCode(t, f.admin)}, "next": {"/admin/users"}}); p.status != http.StatusSeeOther || p.header.Get("Location") != "/admin/users" {
		t.Fatalf("step-up = %d %s", p.status, p.header.Get("Location"))
	}
	if p := b.post("/admin/users/"+id+"/disable", nil); p.status != http.StatusSeeOther || p.header.Get("Location") != "/admin/users" {
		t.Errorf("disable after the step-up = %d %s", p.status, p.header.Get("Location"))
	}
}

// Wrong codes are throttled per account: the 11th of a burst is refused without being
// checked (a right one too), with the wait shown; after the wait the account signs in.
func TestSecondFactorThrottle(t *testing.T) {
	t.Parallel()
	f := newClinicFixture(t)
	b := f.client(t)
	if p := b.login(f.admin, clinicTestPassword); p.header.Get("Location") != "/login/second-factor" {
		t.Fatalf("password = %d %s", p.status, p.header.Get("Location"))
	}
	for i := range 10 {
		if p := b.post("/login/second-factor", url.Values{"code": {"0000-0000-0000-0000"}}); p.status != http.StatusUnauthorized {
			t.Fatalf("wrong code %d = %d, want 401", i+1, p.status)
		}
	}
	p := b.post("/login/second-factor", url.Values{"code": {fixtureCode(t, f.admin)}})
	if p.status != http.StatusTooManyRequests || p.header.Get("Retry-After") == "" || !strings.Contains(p.body, "minutes") {
		t.Fatalf("11th code = %d (Retry-After %q), want 429 with the wait", p.status, p.header.Get("Retry-After"))
	}
	f.clock.Advance(16 * time.Minute)
	if p := b.post("/login/second-factor", url.Values{"code": {fixtureCode(t, f.admin)}}); p.status != http.StatusSeeOther || p.header.Get("Location") != "/" {
		t.Errorf("after the wait = %d %s, want 303 to /", p.status, p.header.Get("Location"))
	}
}
