package web

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// A clinician chooses Chinese for the pages: every page of theirs is Chinese from then on, on
// another device too, whatever the browser asks; a colleague's stay English; bad values and
// a foreign next are refused or ignored; clearing the choice follows the browser again.
func TestUserLanguage(t *testing.T) {
	t.Parallel()
	f := newClinicFixture(t)
	b := f.client(t)
	b.mustLogin(f.clinician)
	const zhWorklist, enWorklist = "<h1>工作列表</h1>", "<h1>Worklist</h1>"
	if p := b.get("/"); !strings.Contains(p.body, enWorklist) || !strings.Contains(p.body, `<html lang="en">`) {
		t.Fatalf("before choosing, the worklist is not English (%d)", p.status)
	}
	p := b.post("/account/language", url.Values{"lang": {"zh-CN"}, "next": {"/?state=overdue"}})
	if p.status != http.StatusSeeOther || p.header.Get("Location") != "/?state=overdue" {
		t.Fatalf("choosing Chinese = %d %q", p.status, p.header.Get("Location"))
	}
	if p := b.get("/"); !strings.Contains(p.body, zhWorklist) || !strings.Contains(p.body, `<html lang="zh-CN">`) {
		t.Errorf("after choosing Chinese the worklist is not Chinese: %.300s", p.body)
	}
	// Another device of the same user: Chinese, though its browser asks for English.
	other := f.client(t)
	other.mustLogin(f.clinician)
	req, _ := http.NewRequest("GET", f.url+"/", nil)
	req.Header.Set("Accept-Language", "en-GB,en;q=0.9")
	if p := other.do(req); !strings.Contains(p.body, zhWorklist) {
		t.Error("the user's language does not follow them to another device")
	}
	// A colleague is untouched.
	colleague := f.client(t)
	colleague.mustLogin(f.admin)
	if p := colleague.get("/"); !strings.Contains(p.body, enWorklist) {
		t.Error("a colleague's pages changed language with this user's choice")
	}
	// Bad input: refused with the field named, nothing changed.
	for _, bad := range []string{"fr", "zh", strings.Repeat("x", 5000), "en\x00"} {
		if p := b.post("/account/language", url.Values{"lang": {bad}}); p.status != http.StatusUnprocessableEntity && p.status != http.StatusBadRequest {
			t.Errorf("lang=%.20q = %d, want 422 or 400", bad, p.status)
		}
	}
	if p := b.post("/account/language", url.Values{"lang": {"en"}, "csrf_token": {""}}); p.status != http.StatusForbidden {
		t.Errorf("without the form token = %d, want 403", p.status)
	}
	if p := b.get("/"); !strings.Contains(p.body, zhWorklist) {
		t.Error("a refused change changed the language")
	}
	// next is a local path only.
	for _, next := range []string{"https://evil.example/", "//evil.example/", "/\\evil.example"} {
		p := b.post("/account/language", url.Values{"lang": {"zh-CN"}, "next": {next}})
		if loc := p.header.Get("Location"); p.status != http.StatusSeeOther || strings.Contains(loc, "evil") {
			t.Errorf("next=%q redirects to %q", next, loc)
		}
	}
	// Cleared: the browser's language again.
	if p := b.post("/account/language", url.Values{"lang": {""}}); p.status != http.StatusSeeOther {
		t.Fatalf("clearing = %d", p.status)
	}
	req, _ = http.NewRequest("GET", f.url+"/", nil)
	req.Header.Set("Accept-Language", "zh-CN,zh;q=0.9,en;q=0.1")
	if p := b.do(req); !strings.Contains(p.body, zhWorklist) {
		t.Error("with no choice, a Chinese browser does not get Chinese pages")
	}
	if p := b.get("/"); !strings.Contains(p.body, enWorklist) {
		t.Error("with no choice and no Accept-Language, the pages are not English")
	}
}
