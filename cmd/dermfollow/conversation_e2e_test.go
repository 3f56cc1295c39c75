package main

import (
	"bytes"
	"context"
	"encoding/json"
	"mime/multipart"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/dermfollow/dermfollow/followup"
)

// The conversation's notices through the real server, its River workers and a real SMTP
// server (Mailpit): the family writes twice; the clinic's inbox gets exactly one email, with a
// link to the procedure and neither the message nor the child's name; the clinic answers; the
// family gets exactly one "the clinic has answered" email, with no content.
func TestConversationNotices(t *testing.T) {
	t.Parallel()
	smtp, mailpit := os.Getenv("DERMFOLLOW_TEST_SMTP_ADDR"), os.Getenv("DERMFOLLOW_TEST_MAILPIT_URL")
	if smtp == "" || mailpit == "" {
		t.Fatal("DERMFOLLOW_TEST_SMTP_ADDR and DERMFOLLOW_TEST_MAILPIT_URL must be set (make test sets them)")
	}
	d := newDeployment(t, map[string]string{"DERMFOLLOW_SMTP_URL": "smtp://" + smtp})
	srv := d.start(t)
	d.open(t)
	stamp := strings.ReplaceAll(uuid.NewString()[:13], "-", "")
	guardian, inbox := "guardian-"+stamp+"@example.org", "inbox-"+stamp+"@clinic.example"
	f := d.newFamily(t, daytimeZone(t), guardian)
	if _, err := d.svc.SetContactSettings(context.Background(), followup.SystemActor(f.clinic.ID),
		followup.ContactSettings{MessageInbox: inbox}); err != nil {
		t.Fatal(err)
	}

	const first, second, answer = "Her cheek is swollen since this morning", "It is warm to the touch", "Cool it gently; call us if it spreads"
	family := familyClient(t, srv.URL, f)
	family.post(t, first, "m-"+stamp+"-1")
	waitMail(t, mailpit, inbox, 1)
	family.post(t, second, "m-"+stamp+"-2") // within 15 minutes of the first: no second email
	if code := apiJSON(t, srv.URL, "POST", "/api/v1/procedures/"+f.procedure.String()+"/messages", f.token,
		`{"body":"`+answer+`"}`, nil); code != 201 {
		t.Fatalf("the clinic's answer = %d", code)
	}
	// Done: the family's notice sent, and no notice job of the clinic's waiting to run now (the
	// second message's is put off to the end of the first's 15 minutes, when it goes only if
	// nobody has read the messages meanwhile).
	waitFor(t, "the notices", func() bool {
		var answered, open int
		d.pool.QueryRow(context.Background(), `select count(*) from reminders where procedure_id = $1 and kind = 'answered'
			and status = 'sent'`, f.procedure).Scan(&answered)
		d.pool.QueryRow(context.Background(), `select count(*) from river_job where kind = 'message_notice_send'
			and state in ('available', 'running', 'retryable', 'pending')`).Scan(&open)
		return answered == 1 && open == 0
	})

	clinicMail := mails(t, mailpit, inbox)
	if len(clinicMail) != 1 {
		t.Fatalf("the clinic's inbox got %d emails, want 1", len(clinicMail))
	}
	if !strings.Contains(clinicMail[0].Text, "/procedures/"+f.procedure.String()) {
		t.Errorf("the clinic's email has no link to the procedure:\n%s", clinicMail[0].Text)
	}
	var answered []mailpitMessage
	for _, m := range mails(t, mailpit, guardian) {
		if strings.Contains(m.Subject, "answered") {
			answered = append(answered, m)
		}
	}
	if len(answered) != 1 {
		t.Fatalf("the family got %d 'answered' emails, want 1", len(answered))
	}
	for _, m := range append(clinicMail, answered...) {
		for _, secret := range []string{first, second, answer, "swollen", "Process Patient"} {
			if strings.Contains(m.Subject+m.Text+m.HTML, secret) {
				t.Errorf("the email %q holds %q", m.Subject, secret)
			}
		}
	}
	if logs := srv.logs.String(); strings.Contains(logs, "swollen") || strings.Contains(logs, "Cool it") {
		t.Error("the server's log holds a message's text")
	}
}

// waitFor polls cond until it holds, for up to two minutes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not after 2 minutes", what)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// familySession is a parent's browser session on its link's page.
type familySession struct {
	base, csrf string
	client     *http.Client
}

var dataCSRF = regexp.MustCompile(`data-csrf="([^"]+)"`)

// familyClient opens f's link and keeps the session and the page's form token.
func familyClient(t *testing.T, base string, f family) *familySession {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar, Timeout: 30 * time.Second}
	resp, err := c.Get(base + "/p/" + f.linkToken)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var page bytes.Buffer
	page.ReadFrom(resp.Body)
	m := dataCSRF.FindStringSubmatch(page.String())
	if resp.StatusCode != 200 || m == nil {
		t.Fatalf("the family's page = %d, form token found: %v", resp.StatusCode, m != nil)
	}
	return &familySession{base: base, csrf: m[1], client: c}
}

// post sends a message from the family's page, as its script does.
func (fs *familySession) post(t *testing.T, text, id string) {
	t.Helper()
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	mw.WriteField("body", text)
	mw.WriteField("message_id", id)
	mw.Close()
	req, _ := http.NewRequest("POST", fs.base+"/p/messages?csrf_token="+url.QueryEscape(fs.csrf), &body)
	req.Header.Set("Content-Type", mw.FormDataContentType())
	req.Header.Set("Accept", "application/json")
	resp, err := fs.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 201 {
		t.Fatalf("the family's message = %d, want 201", resp.StatusCode)
	}
}

// mailpitMessage is a message Mailpit holds.
type mailpitMessage struct{ Subject, Text, HTML string }

// mails are the messages Mailpit holds for to, whole.
func mails(t *testing.T, mailpit, to string) []mailpitMessage {
	t.Helper()
	resp, err := http.Get(mailpit + "/api/v1/search?limit=50&query=" + url.QueryEscape("to:"+to))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var list struct{ Messages []struct{ ID string } }
	if err := json.NewDecoder(resp.Body).Decode(&list); err != nil {
		t.Fatal(err)
	}
	var out []mailpitMessage
	for _, m := range list.Messages {
		r, err := http.Get(mailpit + "/api/v1/message/" + m.ID)
		if err != nil {
			t.Fatal(err)
		}
		var one mailpitMessage
		err = json.NewDecoder(r.Body).Decode(&one)
		r.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, one)
	}
	return out
}
