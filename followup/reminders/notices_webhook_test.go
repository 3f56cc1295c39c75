package reminders

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/dermfollow/dermfollow/followup/notify"
)

// A clinic's answer reaches a family with a phone through the clinic's signed webhook too:
// kind answered, the guardian's phone, the family's language and a link that opens its page,
// with nothing of the answer in it.
func TestFamilyNoticeOfAnswersByWebhook(t *testing.T) {
	t.Parallel()
	f := newNoticeFixture(t, "zh-CN")
	ctx := testCtx(t)
	const secret = "the gateway's secret, long enough for it"
	hooks := make(chan map[string]any, 4)
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		b, _ := io.ReadAll(req.Body)
		if err := notify.Verify(secret, req.Header, b, f.clock.Now(), 5*time.Minute); err != nil {
			t.Errorf("webhook signature: %v", err)
		}
		var body map[string]any
		if err := json.Unmarshal(b, &body); err != nil {
			t.Errorf("webhook body %q: %v", b, err)
		}
		hooks <- body
	}))
	t.Cleanup(hs.Close)
	if _, err := f.svc.SetSettings(ctx, f.admin, Settings{WebhookURL: hs.URL + "/sms", WebhookSecret: secret}); err != nil {
		t.Fatal(err)
	}
	parent := f.parent(t)
	f.clock.Set(time.Date(2026, 5, 5, 2, 0, 0, 0, time.UTC)) // 10:00 in Shanghai
	f.post(t, parent, "Is the swelling normal?")
	const reply = "Yes, Lina's swelling goes down in a few days"
	if _, err := f.conv.Reply(ctx, f.clinician, f.proc.ID, reply); err != nil {
		t.Fatal(err)
	}
	var id uuid.UUID
	if err := f.svc.pool.QueryRow(ctx, `select id from reminders where procedure_id = $1 and kind = 'answered' and channel = 'webhook'
		and status = 'queued' and send_after = $2`, f.proc.ID, f.clock.Now()).Scan(&id); err != nil {
		t.Fatalf("the queued webhook notice of the answer, due now: %v", err)
	}
	if err := f.workers.send(ctx, id, false); err != nil {
		t.Fatal(err)
	}
	body := <-hooks
	link, _ := body["link"].(string)
	if body["kind"] != notify.KindAnswered || body["phone"] != "+86 139 0000 0000" || body["language"] != "zh-CN" ||
		body["due_on"] != "" || body["id"] != id.String() || !linkRE.MatchString(link) {
		t.Fatalf("webhook body = %v", body)
	}
	text, _ := body["text"].(string)
	mustSayNothing(t, text, link, reply, "swelling", "Is the swelling normal")
	a, err := f.core.ResolveLink(ctx, strings.TrimPrefix(link, "https://followup.example/p/"))
	if err != nil || a.Procedure != f.proc.ID {
		t.Fatalf("the notice's link resolves to %+v, %v", a, err)
	}
	// The clinic's own notice of the family's message went to its gateway too, and is not this.
	if n := countRows(t, f.svc, `select count(*) from message_notices where procedure_id = $1 and channel = 'webhook'`, f.proc.ID); n != 1 {
		t.Errorf("%d clinic webhook notices, want the one of the family's message", n)
	}
}
