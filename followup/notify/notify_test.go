package notify

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestRenderSaysOnlyWhatIsDue(t *testing.T) {
	t.Parallel()
	link := "https://followup.example/p/abc?x=<script>"
	for _, c := range []struct{ lang, kind, subject, lead string }{
		{"en", KindWindowOpen, "A follow-up photo is due", "due on 2026-05-05"},
		{"en", KindClosingSoon, "Reminder: the follow-up photo is still missing", "last day to send it is 2026-05-07"},
		{"zh-CN", KindManual, "请上传随访照片", "诊所请您上传应在 2026-05-05"},
		{"fr", KindWindowOpen, "A follow-up photo is due", "due on 2026-05-05"}, // unknown: English
		{"en", KindAnswered, "Your clinic has answered", "answered on your follow-up page"},
		{"zh-CN", KindAnswered, "诊所已回复您", "诊所已在您的随访页面上回复"},
		{"zh-CN", KindFamilyMessage, "New message from a family / 家属新留言", "A family has written about a follow-up"},
	} {
		r, err := render(Message{Language: c.lang, Kind: c.kind, Link: link, DueOn: "2026-05-05", LastDay: "2026-05-07"})
		if err != nil {
			t.Fatal(err)
		}
		if r.Subject != c.subject || !strings.Contains(r.Text, c.lead) || !strings.Contains(r.HTML, c.lead) {
			t.Errorf("%s %s: %q\n%s", c.lang, c.kind, r.Subject, r.Text)
		}
		if !strings.Contains(r.Text, link) || strings.Contains(r.HTML, "<script>") {
			t.Errorf("%s: link not carried or not escaped:\n%s", c.lang, r.HTML)
		}
	}
}

// The conversation's notices say that there is something to read, and nothing of what: no
// dates, no photo wording.
func TestNoticesSayNoMore(t *testing.T) {
	t.Parallel()
	for _, kind := range []string{KindAnswered, KindFamilyMessage} {
		for _, lang := range []string{"en", "zh-CN"} {
			m := Message{Language: lang, Kind: kind, Link: "https://followup.example/x", DueOn: "2026-05-05", LastDay: "2026-05-07"}
			r, err := render(m)
			if err != nil {
				t.Fatal(err)
			}
			for _, body := range []string{r.Text, r.HTML, Text(m)} {
				if strings.Contains(body, "2026-05") || strings.Contains(body, "photo") || strings.Contains(body, "照片") ||
					!strings.Contains(body, m.Link) {
					t.Errorf("%s %s says:\n%s", kind, lang, body)
				}
			}
		}
	}
}

func TestSignAndVerify(t *testing.T) {
	t.Parallel()
	const secret = "0123456789abcdef0123456789abcdef"
	body := []byte(`{"id":"1"}`)
	now := time.Unix(1_800_000_000, 0)
	h := http.Header{}
	h.Set(TimestampHeader, strconv.FormatInt(now.Unix(), 10))
	h.Set(SignatureHeader, Sign(secret, now.Unix(), body))
	if err := Verify(secret, h, body, now, time.Minute); err != nil {
		t.Fatal(err)
	}
	if Verify(secret, h, []byte(`{"id":"2"}`), now, time.Minute) == nil {
		t.Error("a changed body verified")
	}
	if Verify(secret+"x", h, body, now, time.Minute) == nil {
		t.Error("another secret verified")
	}
	if Verify(secret, h, body, now.Add(10*time.Minute), time.Minute) == nil {
		t.Error("a replay verified")
	}
}

func TestConfigRefused(t *testing.T) {
	t.Parallel()
	for _, c := range []struct{ url, from string }{
		{"http://mail.example", "a@b.example"},
		{"smtp://", "a@b.example"},
		{"smtp://mail.example:99999", "a@b.example"},
		{"smtp://mail.example", "not an address"},
	} {
		u, _ := url.Parse(c.url)
		if _, err := NewEmail(u, c.from); err == nil {
			t.Errorf("NewEmail(%s, %s) accepted", c.url, c.from)
		}
	}
	e, err := NewEmail(&url.URL{Scheme: "smtp", Host: "127.0.0.1:1"}, "Clinic <noreply@clinic.example>")
	if err != nil {
		t.Fatal(err)
	}
	err = e.SendEmail(context.Background(), Message{To: "not an address"})
	if !IsPermanent(err) || Reason(err) != "the guardian's email address is not valid" {
		t.Errorf("bad recipient: %v", err)
	}
	err = e.SendEmail(context.Background(), Message{To: "a@b.example", Link: "https://x.example/p/t"})
	if IsPermanent(err) || Reason(err) != "the mail server could not be reached" {
		t.Errorf("closed port: %v", err)
	}
}
