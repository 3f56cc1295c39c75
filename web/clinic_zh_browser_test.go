package web

import (
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/dermfollow/dermfollow/web/browsertest"
)

// The clinic's pages in Simplified Chinese, in a real browser whose own language is English:
// an admin signs in (password, then a recovery code), switches the pages to Chinese with the
// header's switch, and every page of the clinic is Chinese (the document's language, its
// text mostly Chinese, none of the English of the header or the headings), screenshot by
// screenshot; the choice stays with the user for the next sign-in, and switching back gives
// English again.
func TestClinicPagesInChinese(t *testing.T) {
	t.Parallel()
	f := newClinicFixture(t)
	f.addPhoto(t, "day-1", "front", 9)
	tab := browsertest.New(t, browsertest.Desktop)
	run := func(step string, actions ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(tab, actions...); err != nil {
			browsertest.Screenshot(t, tab, "failed-"+step)
			t.Fatalf("%s: %v", step, err)
		}
	}
	eval := func(js string) string {
		t.Helper()
		v, err := chromedp.Run(tab, chromedp.Evaluate[string](js))
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	signIn := func() {
		t.Helper()
		run("sign in",
			chromedp.Navigate(f.url+"/login"),
			chromedp.WaitVisible(`input[name=email]`),
			chromedp.SendKeys(`input[name=email]`, f.admin),
			chromedp.SendKeys(`input[name=password]`, clinicTestPassword),
			chromedp.Click(`#login-submit`),
			chromedp.WaitVisible(`#code`),
			chromedp.SendKeys(`#code`, fixtureCode(t, f.admin)),
			chromedp.Click(`#code-submit`),
			chromedp.WaitVisible(`#worklist`))
	}
	signIn()
	if lang := eval(`document.documentElement.lang`); lang != "en" {
		t.Fatalf("before the switch the pages are %q", lang)
	}
	run("switch to Chinese", chromedp.Click(`#lang-switch`), chromedp.WaitVisible(`html[lang="zh-CN"] #worklist`))

	proc, patient := "/procedures/"+f.procedureID, "/patients/"+f.patientID
	pages := []struct{ name, path string }{
		{"worklist", "/"},
		{"patient", patient},
		{"new-patient", "/patients/new"},
		{"enrol", patient + "/enrol?preview=1&protocol=pws-hemoporfin-pdt&body_site=face&performed_at=2026-11-01T10:00"},
		{"timeline", proc},
		{"compare", proc + "/compare"},
		{"reminders", proc + "/reminders"},
		{"audit", patient + "/audit"},
		{"users", "/admin/users"},
		{"settings", "/admin/settings"},
		{"exports", "/exports"},
		{"account", "/account"},
		{"tokens", "/account/tokens"},
		{"not-found", "/procedures/00000000-0000-4000-8000-000000000000"},
	}
	english := []string{"Worklist", "New patient", "Log out", "Sign in", "Reminders", "Back to", "Patient name", "Procedures",
		"Research exports", "Account"}
	for _, p := range pages {
		run(p.name, chromedp.Navigate(f.url+p.path), chromedp.WaitReady(`body`))
		if lang := eval(`document.documentElement.lang`); lang != "zh-CN" {
			t.Errorf("%s: the page is %q", p.name, lang)
		}
		text := eval(`document.body.innerText`)
		han := 0
		for _, r := range text {
			if r >= 0x4e00 && r <= 0x9fff {
				han++
			}
		}
		if han < 8 {
			t.Errorf("%s: %d Chinese characters on the page: %.300q", p.name, han, text)
		}
		for _, w := range english {
			if strings.Contains(text, w) {
				t.Errorf("%s: English %q on the Chinese page", p.name, w)
			}
		}
		browsertest.Screenshot(t, tab, "zh-"+p.name)
	}
	// The parent link, shown once after it is made.
	run("link", chromedp.Navigate(f.url+proc), chromedp.Click(`#link-create`), chromedp.WaitVisible(`#link-qr`))
	if text := eval(`document.body.innerText`); !strings.Contains(text, "家长链接") {
		t.Errorf("the link page is not Chinese: %.200q", text)
	}
	browsertest.Screenshot(t, tab, "zh-link")

	// The choice is the user's: a new sign-in has it, though the browser asks for English.
	run("log out", chromedp.Navigate(f.url+"/"), chromedp.Click(`#logout`), chromedp.WaitVisible(`input[name=email]`))
	signIn()
	if lang := eval(`document.documentElement.lang`); lang != "zh-CN" {
		t.Errorf("after signing in again the pages are %q", lang)
	}
	run("switch back", chromedp.Click(`#lang-switch`), chromedp.WaitVisible(`html[lang="en"] #worklist`))
	if text := eval(`document.querySelector('h1').innerText`); text != "Worklist" {
		t.Errorf("after switching back the heading is %q", text)
	}
}
