package web

import (
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"github.com/dermfollow/dermfollow/web/browsertest"
)

// The clinician's path through the pages in a real browser: a failed sign-in, the worklist,
// enrolment with the schedule shown first, a parent link with its QR code, the timeline with
// thumbnails, the comparison with one zoom for both photos, a grade, a retake request, a
// CSRF-less POST refused, and logging out.
func TestClinicBrowser(t *testing.T) {
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
	poll := func(step, js string) {
		t.Helper()
		if _, err := chromedp.Run(tab, chromedp.Poll[bool](js, chromedp.WithPollingTimeout(20*time.Second))); err != nil {
			browsertest.Screenshot(t, tab, "failed-"+step)
			t.Fatalf("%s: %v", step, err)
		}
	}
	eval := func(step, js string) string {
		t.Helper()
		v, err := chromedp.Run(tab, chromedp.Evaluate[string](js, chromedp.EvalAwaitPromise))
		if err != nil {
			t.Fatalf("%s: %v", step, err)
		}
		return v
	}

	run("failed login",
		chromedp.Navigate(f.url+"/"),
		chromedp.WaitVisible(`input[name=email]`),
		chromedp.SendKeys(`input[name=email]`, f.clinician),
		chromedp.SendKeys(`input[name=password]`, "not the password"),
		chromedp.Click(`#login-submit`),
		chromedp.WaitVisible(`#login-error`))
	browsertest.Screenshot(t, tab, "login-failed")

	run("login",
		chromedp.SendKeys(`input[name=password]`, clinicTestPassword),
		chromedp.Click(`#login-submit`),
		chromedp.WaitVisible(`#worklist`))
	if text := eval("worklist", `document.querySelector('#worklist').innerText`); !strings.Contains(text, "Xiaoming Wang") || !strings.Contains(text, "overdue") {
		t.Errorf("worklist shows %q", text)
	}
	browsertest.Screenshot(t, tab, "worklist")

	// A POST without the CSRF token, from the signed-in browser itself, is refused.
	if status := eval("csrf", `fetch('/patients', {method: 'POST', body: new URLSearchParams({display_name: 'X', birth_date: '2024-01-01'})}).then(r => String(r.status))`); status != "403" {
		t.Errorf("CSRF-less POST = %s, want 403", status)
	}

	run("enrol preview",
		chromedp.Navigate(f.url+"/patients/"+f.patientID+"/enrol"),
		chromedp.WaitVisible(`#enrol-form`),
		chromedp.SetValue(`#protocol`, "pws-hemoporfin-pdt"),
		chromedp.SetValue(`#body_site`, "face"),
		chromedp.Click(`#preview`),
		chromedp.WaitVisible(`#schedule`))
	browsertest.Screenshot(t, tab, "enrol-preview")
	run("enrol save", chromedp.Click(`#enrol-save`), chromedp.WaitVisible(`#timeline`))

	run("create link", chromedp.Click(`#link-create`), chromedp.WaitVisible(`#link-qr`))
	if u := eval("link", `document.querySelector('#link-url').innerText`); !strings.Contains(u, "/p/") {
		t.Errorf("link shown = %q", u)
	}
	browsertest.Screenshot(t, tab, "link")

	run("timeline",
		chromedp.Navigate(f.url+"/procedures/"+f.procedureID),
		chromedp.WaitVisible(`#timeline img`))
	poll("thumbnails load", `[...document.querySelectorAll('#timeline img')].every(i => i.complete && i.naturalWidth > 0)`)
	if n := eval("thumbnails", `String(document.querySelectorAll('#timeline img').length)`); n != "2" {
		t.Errorf("timeline shows %s thumbnails, want 2", n)
	}
	browsertest.Screenshot(t, tab, "timeline")

	run("compare",
		chromedp.Navigate(f.url+"/procedures/"+f.procedureID+"/compare"),
		chromedp.WaitVisible(`#img-a`))
	poll("photos load", `document.querySelector('#img-a').naturalWidth > 0 && document.querySelector('#img-b').naturalWidth > 0`)
	if alt := strings.Split(eval("compare defaults", `document.querySelector('#img-a').alt + '|' + document.querySelector('#img-b').alt`), "|"); alt[0] != "Before treatment" || alt[1] == alt[0] {
		t.Errorf("compare shows %q, want the baseline against the latest", alt)
	}
	// Zoom the left photo with the wheel: the right one follows.
	zoom := `(() => { const f = document.querySelector('#pane-a .cmp-frame'); const r = f.getBoundingClientRect();
		f.dispatchEvent(new WheelEvent('wheel', {deltaY: -200, clientX: r.left + r.width / 2 + 40, clientY: r.top + r.height / 2, bubbles: true, cancelable: true}));
		return document.querySelector('#img-a').style.transform + '|' + document.querySelector('#img-b').style.transform; })()`
	both := strings.Split(eval("zoom", zoom), "|")
	if len(both) != 2 || both[0] != both[1] || !strings.Contains(both[0], "scale(1.4") {
		t.Errorf("after zooming the left photo: left %q, right %q; want the same zoom (~1.49)", both[0], both[1])
	}
	// Drag the right photo: the left one pans too.
	pan := `(() => { const f = document.querySelector('#pane-b .cmp-frame');
		f.dispatchEvent(new PointerEvent('pointerdown', {pointerId: 7, clientX: 900, clientY: 300, bubbles: true}));
		f.dispatchEvent(new PointerEvent('pointermove', {pointerId: 7, clientX: 950, clientY: 320, bubbles: true}));
		f.dispatchEvent(new PointerEvent('pointerup', {pointerId: 7, clientX: 950, clientY: 320, bubbles: true}));
		return document.querySelector('#img-a').style.transform + '|' + document.querySelector('#img-b').style.transform; })()`
	both2 := strings.Split(eval("pan", pan), "|")
	if len(both2) != 2 || both2[0] != both2[1] || both2[0] == both[0] {
		t.Errorf("after dragging the right photo: left %q, right %q; want both moved alike", both2[0], both2[1])
	}
	// Past 2x the originals load; overlay mode shows the opacity slider.
	more := `(() => { const f = document.querySelector('#pane-a .cmp-frame');
		for (let i = 0; i < 3; i++) f.dispatchEvent(new WheelEvent('wheel', {deltaY: -200, bubbles: true, cancelable: true}));
		return document.querySelector('#img-a').getAttribute('src') + '|' + document.querySelector('#img-b').getAttribute('src'); })()`
	if srcs := eval("zoom in", more); strings.Count(srcs, "/original") != 2 {
		t.Errorf("zoomed past 2x, the images are %q; want the originals", srcs)
	}
	run("overlay", chromedp.Click(`#mode`), chromedp.WaitVisible(`#opacity`), chromedp.SetValue(`#opacity`, "30"))
	browsertest.Screenshot(t, tab, "compare")
	// ← steps the right photo back through the timeline: to the baseline, the first step.
	run("keyboard", chromedp.WaitVisible(`#prev`), chromedp.KeyEvent(kb.ArrowLeft), chromedp.WaitNotPresent(`#prev`), chromedp.WaitVisible(`#next`))

	run("grade",
		chromedp.Navigate(f.url+"/procedures/"+f.procedureID),
		chromedp.WaitVisible(`#assess-form`),
		chromedp.SendKeys(`#assess-form textarea`, "Healing well"),
		chromedp.Click(`#assess-save`),
		chromedp.WaitVisible(`#grade-chart`))
	if n := eval("grade chart", `String(document.querySelectorAll('#grade-chart circle').length)`); n != "1" {
		t.Errorf("grade chart has %s points, want 1", n)
	}
	run("retake",
		chromedp.SendKeys(`#retake-form textarea`, "The photo is blurred; please take it again in daylight."),
		chromedp.Click(`#retake-save`),
		chromedp.WaitVisible(`#messages li.msg-retake`))
	if text := eval("retake", `document.querySelector('#messages').innerText + document.querySelector('.cl-flash').innerText`); !strings.Contains(text, "blurred") || !strings.Contains(text, "Retake request sent") {
		t.Errorf("retake section shows %q", text)
	}
	browsertest.Screenshot(t, tab, "graded")

	run("logout", chromedp.Click(`#logout`), chromedp.WaitVisible(`#login-submit`))
	run("signed out", chromedp.Navigate(f.url+"/procedures/"+f.procedureID), chromedp.WaitVisible(`#login-submit`))
}
