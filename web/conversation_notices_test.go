package web

import (
	"testing"
)

// The server wires the conversation to the notices: a family's post through its page queues
// the clinic's notice, a retry of it nothing more, and the clinic's reply the family's notice,
// each in the message's transaction, their jobs carrying ids only.
func TestConversationQueuesNotices(t *testing.T) {
	t.Parallel()
	f := newAPIFixture(t)
	procedure, link := f.enrolFamily(t, "zh-CN", dueNow())
	if code := f.call(t, "PUT", "/api/v1/contact-settings", f.admin, map[string]any{"message_inbox": "inbox@clinic.example"}, nil); code != 200 {
		t.Fatalf("contact settings = %d", code)
	}
	pc := f.parentClient(t)
	csrf := csrfOf(t, pc.open(link))
	const text = "Her cheek is swollen since this morning"
	for range 2 { // the second is a retry of the first
		if code, out := pc.postMessage(csrf, nil, "body", text, "message_id", "msg-notice-1"); code != 201 && code != 200 {
			t.Fatalf("post = %d %v", code, out)
		}
	}
	if n := f.count(t, `select count(*) from message_notices where procedure_id = $1 and channel = 'email' and status = 'queued'`, procedure); n != 1 {
		t.Fatalf("%d clinic notices queued, want 1", n)
	}
	if code := f.call(t, "POST", "/api/v1/procedures/"+procedure+"/messages", f.clinician, map[string]string{"body": "Cool it gently, Mia will be fine"}, nil); code != 201 {
		t.Fatalf("reply = %d", code)
	}
	if n := f.count(t, `select count(*) from reminders where procedure_id = $1 and kind = 'answered' and status = 'queued'`, procedure); n != 1 {
		t.Fatalf("%d family notices queued, want 1", n)
	}
	if n := f.count(t, `select count(*) from river_job where kind in ('message_notice_send', 'reminder_send')`); n != 2 {
		t.Errorf("%d notice jobs, want 2", n)
	}
	if n := f.count(t, `select count(*) from river_job where args::text ~* '(swollen|cheek|mia|cool it)'`); n != 0 {
		t.Errorf("%d jobs carry the message or the name", n)
	}
}
