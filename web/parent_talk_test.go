package web

import (
	"bytes"
	"html"
	"mime/multipart"
	"net/http"
	"strings"
	"testing"

	"github.com/dermfollow/dermfollow/followup"
	"github.com/dermfollow/dermfollow/imagestore/imagetest"
)

// sendForm posts the family page's message form as a browser without the script does
// (multipart, Accept: text/html): fields in the order given, then the file part (empty when
// file is nil, as a browser sends a form with no photo chosen).
func (pc *parentClient) sendForm(csrf string, file []byte, fields ...string) (*http.Response, string) {
	pc.t.Helper()
	body := &bytes.Buffer{}
	mw := multipart.NewWriter(body)
	for i := 0; i+1 < len(fields); i += 2 {
		mw.WriteField(fields[i], fields[i+1])
	}
	name := ""
	if file != nil {
		name = "IMG_0003.JPG"
	}
	fw, _ := mw.CreateFormFile("file", name)
	fw.Write(file)
	mw.Close()
	req, _ := http.NewRequest("POST", pc.f.url+"/p/messages?csrf_token="+csrf, body)
	req.Header.Set("Content-Type", mw.FormDataContentType())
	req.Header.Set("Accept", "text/html,application/xhtml+xml")
	return pc.do(req)
}

// The family page's form without the script: refused text comes back as the page with the
// text kept and why (422 naming the field), a photo the sanitizer refuses leaves the message
// sent and says so, hostile text is shown escaped on both sides, the clinic's answer appears
// in the thread, and a revoked link answers 404.
func TestFamilyMessageForm(t *testing.T) {
	t.Parallel()
	f := newAPIFixture(t)
	procedure, link := f.enrolFamily(t, "en", dueNow())
	pc := f.parentClient(t)
	page := pc.open(link)
	csrf := csrfOf(t, page)
	for _, want := range []string{`id="talk-form"`, `id="talk-none"`, tr("en", "talk_read") + " " + tr("en", "talk_call")} {
		if !strings.Contains(html.UnescapeString(page), want) {
			t.Errorf("the family's page lacks %q", want)
		}
	}

	long := strings.Repeat("肿", 2001)
	for name, c := range map[string]struct{ body, key, kept string }{
		"empty":     {"  \n ", "talk_err_empty", ""},
		"over-long": {long, "talk_err_long", long},
		"bad utf-8": {"it hurts \xff", "talk_err_text", "it hurts "},
		"control":   {"it hurts\x00\x1b", "talk_err_text", "it hurts"},
	} {
		resp, body := pc.sendForm(csrf, nil, "body", c.body, "message_id", "m-bad-"+name)
		if resp.StatusCode != 422 || !strings.Contains(body, `data-field="body"`) || !strings.Contains(html.UnescapeString(body), tr("en", c.key)) {
			t.Errorf("%s message = %d, want 422 naming the field with %s", name, resp.StatusCode, c.key)
		}
		if c.kept != "" && !strings.Contains(body, c.kept+"</textarea>") {
			t.Errorf("%s message: the text is not kept in the form", name)
		}
	}
	if code, ms := pc.thread(); code != 200 || len(ms) != 0 {
		t.Fatalf("refused messages were stored: %d %v", code, ms)
	}

	resp, _ := pc.sendForm(csrf, imagetest.HEIC(), "body", hostileText, "message_id", "m-hostile-1", "upload_id", "concern-heic-form")
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/p/?m=msg-reject-heic#talk" {
		t.Fatalf("message with a HEIC photo = %d to %q, want the message sent and the photo refused", resp.StatusCode, resp.Header.Get("Location"))
	}
	_, page = pc.get("/p/?m=msg-reject-heic")
	if !strings.Contains(page, `id="talk-flash"`) || !strings.Contains(page, "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;") ||
		strings.Contains(page, "<script>alert") {
		t.Error("the family's page does not show the message, escaped, with why the photo was not sent")
	}
	resp, _ = pc.sendForm(csrf, imagetest.JPEG(64, 48, 9), "body", "Here is a photo", "message_id", "m-photo-1", "upload_id", "concern-form-1")
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/p/?m=msg-sent#talk" {
		t.Errorf("message with a photo = %d to %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	if _, ms := pc.thread(); len(ms) != 2 || len(ms[0]["photo_ids"].([]any)) != 0 || len(ms[1]["photo_ids"].([]any)) != 1 {
		t.Errorf("thread after two messages = %v", ms)
	}

	if code := f.call(t, "POST", "/api/v1/procedures/"+procedure+"/messages", f.clinician, map[string]any{"body": `<i>Normal</i> healing, "keep" it clean`}, nil); code != 201 {
		t.Fatalf("clinic reply = %d", code)
	}
	_, page = pc.get("/p/")
	if !strings.Contains(page, "&lt;i&gt;Normal&lt;/i&gt; healing, &#34;keep&#34; it clean") || !strings.Contains(page, `class="msg msg-note"`) {
		t.Error("the family's page does not show the clinic's answer, escaped")
	}
	if strings.Index(page, "Here is a photo") > strings.Index(page, "Normal&lt;/i&gt;") {
		t.Error("the thread is not oldest first (newest at the bottom)")
	}

	var out struct {
		Links []struct{ ID string } `json:"links"`
	}
	f.call(t, "GET", "/api/v1/procedures/"+procedure+"/parent-links", f.clinician, nil, &out)
	for _, l := range out.Links {
		if code := f.call(t, "DELETE", "/api/v1/parent-links/"+l.ID, f.clinician, nil, nil); code >= 300 {
			t.Fatalf("revoke = %d", code)
		}
	}
	resp, body := pc.sendForm(csrf, nil, "body", "Are you there?", "message_id", "m-revoked-1")
	if resp.StatusCode != 404 || !strings.Contains(body, "<html") {
		t.Errorf("message on a revoked link = %d, want the 404 page", resp.StatusCode)
	}
}

// The line on when messages are read: with the clinic's phone and hours, and without them.
func TestClinicContactLine(t *testing.T) {
	with := renderHTML(t, pageInfo{}, clinicContactLine("+86 21 5555 0100", "Mon–Fri 8:00–17:00", "zh-CN"))
	if !strings.Contains(with, "（Mon–Fri 8:00–17:00）") || !strings.Contains(with, `href="tel:+862155550100"`) {
		t.Errorf("line with phone and hours = %s", with)
	}
	without := renderHTML(t, pageInfo{}, clinicContactLine("", "", "en"))
	if strings.Contains(without, "tel:") || !strings.Contains(html.UnescapeString(without), tr("en", "talk_call")) {
		t.Errorf("line without a phone = %s", without)
	}
}

// The clinic's contact settings reach the family's page: the hours its messages are read and
// the phone for anything urgent, set on the settings page (here as the system would).
func TestFamilyPageShowsClinicContact(t *testing.T) {
	t.Parallel()
	f := newAPIFixture(t)
	_, link := f.enrolFamily(t, "en", dueNow())
	clinic := followup.SystemActor(f.clinicianActor.ClinicID)
	if _, err := f.svc.SetContactSettings(clinicCtx(t), clinic, followup.ContactSettings{Phone: "+86 21 5555 0100",
		Hours: "Mon–Fri 8:00–17:00"}); err != nil {
		t.Fatal(err)
	}
	page := html.UnescapeString(f.parentClient(t).open(link))
	for _, want := range []string{"Mon–Fri 8:00–17:00", `href="tel:+862155550100"`} {
		if !strings.Contains(page, want) {
			t.Errorf("the family's page lacks %q", want)
		}
	}
}
