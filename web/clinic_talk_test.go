package web

import (
	"bytes"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/dermfollow/dermfollow/followup"
	"github.com/dermfollow/dermfollow/followup/conversation"
	"github.com/dermfollow/dermfollow/followup/worklist"
	"github.com/dermfollow/dermfollow/imagestore"
	"github.com/dermfollow/dermfollow/imagestore/imagetest"
)

// hostileText is a family message that would run or break out of an attribute if it were
// not escaped.
const hostileText = `<script>alert("x")</script> it's "red" & <b>swollen</b>`

// family gives the fixture's procedure a parent link and returns the family's actor.
func (f *clinicFixture) family(t testing.TB) followup.Actor {
	t.Helper()
	ctx := clinicCtx(t)
	l, err := f.svc.CreateLink(ctx, f.clinicianActor, uuid.MustParse(f.procedureID), false)
	if err != nil {
		t.Fatal(err)
	}
	a, err := f.svc.ResolveLink(ctx, l.URL[strings.Index(l.URL, "/p/")+3:])
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// familyWrites posts a family message, with a concern photo (its thumbnails made) when
// withPhoto, and returns the message and the photo's id ("" without).
func (f *clinicFixture) familyWrites(t testing.TB, a followup.Actor, body string, withPhoto bool) (conversation.Message, string) {
	t.Helper()
	ctx := clinicCtx(t)
	in := conversation.Post{Body: body, ClientID: "m-" + uuid.NewString()}
	photo := ""
	if withPhoto {
		img := imagetest.JPEG(320, 240, 7)
		p, _, err := f.svc.AddPhoto(ctx, a, a.Procedure, followup.PhotoUpload{Kind: followup.PhotoConcern, UploadID: "c-" + uuid.NewString()[:12]},
			bytes.NewReader(img), int64(len(img)), imagestore.Limits{})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.thumbs.Make(ctx, 10); err != nil {
			t.Fatal(err)
		}
		in.PhotoIDs, photo = []uuid.UUID{p.ID}, p.ID.String()
	}
	m, _, err := f.srv.conv.Post(ctx, a, in)
	if err != nil {
		t.Fatal(err)
	}
	return m, photo
}

// thread is the procedure's thread as its clinician reads it.
func (f *clinicFixture) thread(t testing.TB) []conversation.Message {
	t.Helper()
	th, err := f.srv.conv.Thread(clinicCtx(t), f.clinicianActor, uuid.MustParse(f.procedureID), conversation.Page{})
	if err != nil {
		t.Fatal(err)
	}
	return th.Messages
}

// The procedure's page shows the family's message marked unread (once), escaped, with its
// concern photo, which has its own row on the timeline and opens the comparison with the
// baseline; the clinic grades the concern photo, answers (which handles the message, by name)
// and marks a later message handled; the worklist's New message tab lists it while it waits.
func TestClinicConversation(t *testing.T) {
	t.Parallel()
	f := newClinicFixture(t)
	fam := f.family(t)
	first, concern := f.familyWrites(t, fam, hostileText, true)
	b := f.client(t)
	b.mustLogin(f.clinician)
	pr := "/procedures/" + f.procedureID
	// The fixture's procedure was 36 hours ago: day 1 or 2 in the clinic's calendar.
	sh, _ := time.LoadLocation("Asia/Shanghai")
	y, mo, d := time.Now().In(sh).Date()
	py, pm, pd := time.Now().Add(-36 * time.Hour).In(sh).Date()
	day := strconv.Itoa(int(time.Date(y, mo, d, 0, 0, 0, 0, time.UTC).Sub(time.Date(py, pm, pd, 0, 0, 0, 0, time.UTC)).Hours() / 24))

	wl := b.get("/?state=" + worklist.NewMessage)
	if wl.status != 200 || !strings.Contains(wl.body, "Xiaoming Wang") || !strings.Contains(wl.body, `class="badge message"`) ||
		!strings.Contains(wl.body, `data-state="new_message">New message <span class="cl-count">1</span>`) {
		t.Errorf("worklist New message = %d, lists the procedure %v", wl.status, strings.Contains(wl.body, "Xiaoming Wang"))
	}

	p := b.get(pr)
	if p.status != 200 {
		t.Fatalf("timeline = %d", p.status)
	}
	for _, want := range []string{`id="talk-unread">1 new`, `class="msg msg-family unread" id="msg-` + first.ID.String(),
		`&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt; it&#39;s &#34;red&#34; &amp; &lt;b&gt;swollen&lt;/b&gt;`,
		`id="concerns"`, `data-day="` + day + `"`, `/compare?a=` + f.photoID + `&amp;b=` + concern, `/messages/` + first.ID.String() + `/handled`,
		`id="concern-assess-form"`} {
		if !strings.Contains(p.body, want) {
			t.Errorf("timeline lacks %s", want)
		}
	}
	if strings.Contains(p.body, `<script>alert`) || strings.Contains(p.body, "<b>swollen") {
		t.Error("the family's text is not escaped on the clinic's page")
	}
	if again := b.get(pr); strings.Contains(again.body, "talk-unread") || strings.Contains(again.body, "msg-family unread") {
		t.Error("the message is still marked unread on the second view")
	}

	cmp := b.get(pr + "/compare?a=" + f.photoID + "&b=" + concern)
	if cmp.status != 200 || !strings.Contains(cmp.body, `id="img-a" class="cmp-img" src="/api/v1/photos/`+f.photoID) ||
		!strings.Contains(cmp.body, `id="img-b" class="cmp-img" src="/api/v1/photos/`+concern) || !strings.Contains(cmp.body, "Concern photo · day "+day) {
		t.Errorf("compare concern with baseline = %d", cmp.status)
	}

	if r := b.post(pr+"/assessments", url.Values{"photo_id": {concern}, "level": {"none"}, "note": {"Crust, no infection"}}); r.status != http.StatusSeeOther {
		t.Errorf("grade the concern photo = %d, want 303", r.status)
	}
	if r := b.post(pr+"/messages", url.Values{"body": {"Thank you, that is normal healing. Keep it clean."}}); r.status != http.StatusSeeOther ||
		r.header.Get("Location") != pr+"#conversation" {
		t.Errorf("reply = %d to %q", r.status, r.header.Get("Location"))
	}
	second, _ := f.familyWrites(t, fam, "Thank you!", false)
	if r := b.post(pr+"/messages/"+second.ID.String()+"/handled", nil); r.status != http.StatusSeeOther {
		t.Errorf("mark handled = %d", r.status)
	}
	p = b.get(pr)
	for _, want := range []string{"Answer from Test clinician", "handled by Test clinician", "Thank you, that is normal healing",
		"Concern photo · day " + day + ": <strong>", "Crust, no infection", "Message marked handled."} {
		if !strings.Contains(p.body, want) {
			t.Errorf("after answering, the timeline lacks %q", want)
		}
	}
	if zh := b.get(pr + "?lang=zh-CN"); !strings.Contains(zh.body, "与家属的对话") || !strings.Contains(zh.body, "Test clinician 的回复") ||
		!strings.Contains(zh.body, "计划外照片 · 第 "+day+" 天") {
		t.Error("the conversation is not in Chinese on the Chinese page")
	}
	if strings.Contains(p.body, "msg-handle-button") {
		t.Error("a handled message still has its Mark handled button")
	}
	if wl := b.get("/?state=" + worklist.NewMessage); strings.Contains(wl.body, "Xiaoming Wang") {
		t.Error("the worklist still lists the answered procedure under New message")
	}
}

// Bad input on the clinic's conversation forms: a clear 4xx, the text kept, nothing stored.
func TestClinicConversationBadInput(t *testing.T) {
	t.Parallel()
	f := newClinicFixture(t)
	b := f.client(t)
	b.mustLogin(f.clinician)
	pr := "/procedures/" + f.procedureID
	long := strings.Repeat("a", conversation.MaxBody) + "b"
	for name, c := range map[string]struct {
		body string
		want int
		kept string
	}{
		"empty":     {"   ", 422, ""},
		"over-long": {long, 422, long},
		"bad utf-8": {"ok \xff\xfe", 422, ""},
		"control":   {"ring \x07 me", 422, ""},
	} {
		r := b.post(pr+"/messages", url.Values{"body": {c.body}})
		if r.status != c.want || !strings.Contains(r.body, "body") {
			t.Errorf("%s reply = %d, want %d naming the field", name, r.status, c.want)
		}
		if c.kept != "" && (!strings.Contains(r.body, `data-field="body"`) || !strings.Contains(r.body, c.kept+"</textarea>")) {
			t.Errorf("%s reply: the page does not show the text again with the error", name)
		}
	}
	for path, want := range map[string]int{
		pr + "/messages/" + uuid.NewString() + "/handled": 404,
		pr + "/messages/not-an-id/handled":                404,
		"/procedures/not-an-id/messages":                  404,
	} {
		if r := b.post(path, nil); r.status != want {
			t.Errorf("POST %s = %d, want %d", path, r.status, want)
		}
	}
	// A clinic message is not a family message to handle.
	note, err := f.srv.conv.Reply(clinicCtx(t), f.clinicianActor, uuid.MustParse(f.procedureID), "A note")
	if err != nil {
		t.Fatal(err)
	}
	if r := b.post(pr+"/messages/"+note.ID.String()+"/handled", nil); r.status != 404 {
		t.Errorf("handling the clinic's own message = %d, want 404", r.status)
	}
	if r := b.get(pr + "?before=garbage"); r.status != 422 {
		t.Errorf("timeline with a bad thread cursor = %d, want 422", r.status)
	}
	if ms := f.thread(t); len(ms) != 1 || ms[0].ID != note.ID {
		t.Errorf("messages stored = %d, want only the note", len(ms))
	}
}

// The conversation's page routes: another clinic's user finds nothing (404), a researcher
// may not (403), a signed-out browser is refused; the family's messages stay where they are.
func TestClinicConversationAuthorization(t *testing.T) {
	t.Parallel()
	f := newClinicFixture(t)
	watchAuthz(f.srv)
	m, _ := f.familyWrites(t, f.family(t), "Is this normal?", false)
	pr := "/procedures/" + f.procedureID
	posts := map[string]url.Values{pr + "/messages": {"body": {"hello"}}, pr + "/messages/" + m.ID.String() + "/handled": nil}
	for who, want := range map[string]int{f.outsider: 404, f.researcher: 403} {
		b := f.client(t)
		b.mustLogin(who)
		for path, form := range posts {
			if r := b.post(path, form); r.status != want {
				t.Errorf("%s POST %s = %d, want %d", who, path, r.status, want)
			}
		}
	}
	anon := f.client(t)
	anon.get("/login")
	for path, form := range posts {
		if r := anon.post(path, form); r.status != 401 && r.status != 403 {
			t.Errorf("signed out POST %s = %d, want refused", path, r.status)
		}
	}
	if ms := f.thread(t); len(ms) != 1 || ms[0].Handled {
		t.Errorf("refused callers changed the thread: %+v", ms)
	}
}
