package web

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/chromedp/chromedp"
	"github.com/google/uuid"

	"github.com/dermfollow/dermfollow/web/browsertest"
)

// browserSteps are a tab's steps that fail the test with a screenshot.
type browserSteps struct {
	t   *testing.T
	tab context.Context
}

func (b browserSteps) run(step string, actions ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	if err := chromedp.Do(b.tab, actions...); err != nil {
		browsertest.Screenshot(b.t, b.tab, "failed-"+step)
		b.t.Fatalf("%s: %v", step, err)
	}
}

func (b browserSteps) poll(step, js string) {
	b.t.Helper()
	if _, err := chromedp.Run(b.tab, chromedp.Poll[bool](js, chromedp.WithPollingTimeout(30*time.Second))); err != nil {
		browsertest.Screenshot(b.t, b.tab, "failed-"+step)
		b.t.Fatalf("%s: %v", step, err)
	}
}

func (b browserSteps) eval(step, js string) string {
	b.t.Helper()
	v, err := chromedp.Run(b.tab, chromedp.Evaluate[string](js, chromedp.EvalAwaitPromise))
	if err != nil {
		b.t.Fatalf("%s: %v", step, err)
	}
	return v
}

// The conversation in real browsers: the family (a phone) writes with a concern photo; the
// clinic (a desktop) finds it under New message on the worklist, opens the procedure, compares
// the concern photo with the baseline, marks the message handled and answers; the family reads
// the answer. The hostile text stays text on both sides. Screenshots of each state.
func TestConversationInBrowsers(t *testing.T) {
	t.Parallel()
	f := newClinicFixture(t)
	ctx, cancel := context.WithCancel(context.Background())
	stopped := make(chan struct{})
	go func() { defer close(stopped); f.thumbs.Run(ctx, 200*time.Millisecond) }()
	t.Cleanup(func() { cancel(); <-stopped })
	l, err := f.svc.CreateLink(clinicCtx(t), f.clinicianActor, uuid.MustParse(f.procedureID), false)
	if err != nil {
		t.Fatal(err)
	}
	photo := noisyJPEG(t, 640, 480) // sharp: the page's capture check lets it go without asking

	family := browserSteps{t, browsertest.New(t, browsertest.Phone)}
	family.run("family opens the link",
		chromedp.Navigate(f.url+l.URL[strings.Index(l.URL, "/p/"):]),
		chromedp.WaitVisible(`#talk-form`))
	family.run("empty message", chromedp.Click(`#talk-send`), chromedp.WaitVisible(`#talk-error`))
	browsertest.Screenshot(t, family.tab, "1-family-empty")
	family.run("family writes",
		chromedp.SendKeys(`#talk-body`, hostileText),
		chromedp.SetUploadFiles(chromedp.CSS(`#talk-photo`), []string{photo}))
	family.poll("concern photo sent", `!!document.querySelector('#talk-form .queue li[data-state=sent]')`)
	if n := family.eval("counter", `document.querySelector('#talk-count').textContent`); !strings.HasPrefix(n, strconv.Itoa(utf8.RuneCountInString(hostileText))+" ") {
		t.Errorf("counter = %q, want the text's characters", n)
	}
	browsertest.Screenshot(t, family.tab, "2-family-photo-sent")
	family.run("family sends", chromedp.Click(`#talk-send`), chromedp.WaitVisible(`#thread li.msg-family`))
	family.poll("its photo shows", `[...document.querySelectorAll('#thread li.msg-family img')].some(i => i.complete && i.naturalWidth > 0)`)
	if got := family.eval("family text", `document.querySelector('#thread li.msg-family .msg-body').textContent + '|' + document.querySelectorAll('#thread script, #thread b').length`); got != hostileText+"|0" {
		t.Errorf("the family's message shows as %q, want the text as typed and no element made of it", got)
	}
	browsertest.Screenshot(t, family.tab, "3-family-sent")

	clinic := browserSteps{t, browsertest.New(t, browsertest.Desktop)}
	clinic.run("login",
		chromedp.Navigate(f.url+"/"),
		chromedp.WaitVisible(`input[name=email]`),
		chromedp.SendKeys(`input[name=email]`, f.clinician),
		chromedp.SendKeys(`input[name=password]`, clinicTestPassword),
		chromedp.Click(`#login-submit`),
		chromedp.WaitVisible(`#worklist`))
	clinic.run("New message tab", chromedp.Click(`a[data-state=new_message]`), chromedp.WaitVisible(`#worklist .badge.message`))
	if got := clinic.eval("worklist", `document.querySelector('a[data-state=new_message] .cl-count').textContent + '|' + document.querySelectorAll('#worklist .wl-row').length + '|' + document.querySelector('#worklist').innerText`); !strings.HasPrefix(got, "1|1|") || !strings.Contains(got, "Xiaoming Wang") {
		t.Errorf("New message tab = %q, want the one procedure", got)
	}
	browsertest.Screenshot(t, clinic.tab, "4-clinic-worklist")

	clinic.run("open the procedure", chromedp.Click(`#worklist .badge.message`), chromedp.WaitVisible(`#conversation li.msg-family.unread`))
	clinic.poll("thumbnails load", `[...document.querySelectorAll('#conversation img, #concerns img')].length === 2 && [...document.querySelectorAll('#conversation img, #concerns img')].every(i => i.complete && i.naturalWidth > 0)`)
	if got := clinic.eval("clinic text", `document.querySelector('#conversation li.msg-family .msg-body').textContent + '|' + document.querySelectorAll('#conversation script, #conversation b').length`); got != hostileText+"|0" {
		t.Errorf("the clinic sees the message as %q", got)
	}
	browsertest.Screenshot(t, clinic.tab, "5-clinic-procedure")

	clinic.run("compare", chromedp.Click(`#conversation a.msg-photo`), chromedp.WaitVisible(`#img-b`))
	clinic.poll("photos load", `document.querySelector('#img-a').naturalWidth > 0 && document.querySelector('#img-b').naturalWidth > 0`)
	if alt := clinic.eval("compare", `document.querySelector('#img-a').alt + '|' + document.querySelector('#img-b').alt`); !strings.HasPrefix(alt, "Before treatment|Concern photo · day ") {
		t.Errorf("compare shows %q, want the baseline against the concern photo", alt)
	}
	browsertest.Screenshot(t, clinic.tab, "6-clinic-compare")

	clinic.run("mark handled",
		chromedp.Navigate(f.url+"/procedures/"+f.procedureID),
		chromedp.WaitVisible(`#conversation .msg-handle-button`),
		chromedp.Click(`#conversation .msg-handle-button`),
		chromedp.WaitVisible(`#conversation .msg-handled`))
	clinic.run("answer",
		chromedp.SendKeys(`#reply-body`, "That is a normal crust. Keep it dry; we see you on day 7."),
		chromedp.Click(`#reply-send`),
		chromedp.WaitVisible(`#conversation li.msg-note`))
	if got := clinic.eval("answered", `document.querySelector('#conversation').innerText`); !strings.Contains(got, "Answer from Test clinician") || !strings.Contains(got, "handled by Test clinician") {
		t.Errorf("after answering the thread shows %q", got)
	}
	browsertest.Screenshot(t, clinic.tab, "7-clinic-answered")

	family.run("family reads the answer", chromedp.Navigate(f.url+"/p/"), chromedp.WaitVisible(`#thread li.msg-note`))
	if got := family.eval("answer", `[...document.querySelectorAll('#thread li')].map(li => li.className).join(',') + '|' + document.querySelector('#thread li.msg-note .msg-body').textContent`); !strings.HasPrefix(got, "msg msg-family,msg msg-note|That is a normal crust") {
		t.Errorf("the family's thread = %q, want its message then the answer", got)
	}
	browsertest.Screenshot(t, family.tab, "8-family-answer")
}
