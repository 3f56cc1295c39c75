package reminders

import (
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/riverqueue/river/rivertype"

	"github.com/dermfollow/dermfollow/followup"
	"github.com/dermfollow/dermfollow/followup/conversation"
	"github.com/dermfollow/dermfollow/followup/notify"
)

// noticeFixture is the reminder fixture with the conversation wired to the notices, an admin,
// unstarted workers (the test runs each job itself, on its clock) and the clinic's inbox.
type noticeFixture struct {
	*reminderFixture
	conv    *conversation.Service
	workers *Workers
	admin   followup.Actor
	inbox   string
}

func newNoticeFixture(t *testing.T, lang string) *noticeFixture {
	t.Helper()
	f := &noticeFixture{reminderFixture: newReminderFixture(t, lang), inbox: "inbox-" + uuid.NewString()[:12] + "@notices.test"}
	_, f.admin = mustUser(t, f.svc, f.clinic.ID, followup.RoleAdmin)
	var err error
	if f.conv, err = conversation.New(conversation.Config{Pool: f.svc.pool, Now: f.clock.Now, Notices: f.svc}); err != nil {
		t.Fatal(err)
	}
	if f.workers, err = NewWorkers(f.svc, WorkerConfig{Email: testEmail(t, ""), ScanInterval: -1,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.core.SetContactSettings(testCtx(t), f.admin, followup.ContactSettings{MessageInbox: f.inbox}); err != nil {
		t.Fatal(err)
	}
	return f
}

func (f *noticeFixture) post(t *testing.T, parent followup.Actor, body string) {
	t.Helper()
	if _, created, err := f.conv.Post(testCtx(t), parent, conversation.Post{Body: body}); err != nil || !created {
		t.Fatalf("post: created %v, %v", created, err)
	}
}

// queuedNotices lists the procedure's queued clinic notices, by channel.
func (f *noticeFixture) queuedNotices(t *testing.T) map[string]uuid.UUID {
	t.Helper()
	rows, err := f.svc.pool.Query(testCtx(t), `select channel, id from message_notices where procedure_id = $1 and status = 'queued'`, f.proc.ID)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[string]uuid.UUID{}
	for rows.Next() {
		var ch string
		var id uuid.UUID
		if err := rows.Scan(&ch, &id); err != nil {
			t.Fatal(err)
		}
		out[ch] = id
	}
	return out
}

// sendAll runs the job of each notice once, at the clock's now, and returns how many waited
// (snoozed until their time).
func (f *noticeFixture) sendAll(t *testing.T, ids map[string]uuid.UUID) (snoozed int) {
	t.Helper()
	for _, id := range ids {
		err := f.workers.sendNotice(testCtx(t), id, false)
		var snooze *rivertype.JobSnoozeError
		switch {
		case errors.As(err, &snooze):
			snoozed++
		case err != nil:
			t.Fatalf("send notice: %v", err)
		}
	}
	return snoozed
}

// mustSayNothing fails if a notice's body holds the message, the child's name or anything
// about the condition, or lacks the link.
func mustSayNothing(t *testing.T, body, link string, secrets ...string) {
	t.Helper()
	for _, s := range append(secrets, "Lina", "Zhang", "port-wine", "hemoporfin", "face") {
		if strings.Contains(strings.ToLower(body), strings.ToLower(s)) {
			t.Errorf("the notice says %q:\n%s", s, body)
		}
	}
	if !strings.Contains(body, link) {
		t.Errorf("the notice lacks the link %s:\n%s", link, body)
	}
}

// A family's messages tell the clinic, by email to its inbox and through its signed webhook,
// at most once per procedure and channel in 15 minutes (on the injected clock), with the
// procedure page's link and neither the message nor the child's name; a notice whose messages
// the clinic has read by its time is not sent.
func TestClinicNoticeOfFamilyMessages(t *testing.T) {
	t.Parallel()
	f := newNoticeFixture(t, "en")
	ctx := testCtx(t)
	const secret = "a clinic's webhook secret, long enough"
	hooks := make(chan map[string]any, 10)
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		b, _ := io.ReadAll(req.Body)
		if err := notify.Verify(secret, req.Header, b, f.clock.Now(), 5*time.Minute); err != nil {
			t.Errorf("webhook signature: %v", err)
		}
		var body map[string]any
		json.Unmarshal(b, &body)
		hooks <- body
	}))
	t.Cleanup(hs.Close)
	if _, err := f.svc.SetSettings(ctx, f.admin, Settings{WebhookURL: hs.URL + "/hook", WebhookSecret: secret}); err != nil {
		t.Fatal(err)
	}
	parent := f.parent(t)
	link := "https://followup.example/procedures/" + f.proc.ID.String()
	t0 := time.Date(2026, 5, 5, 1, 0, 0, 0, time.UTC)
	f.clock.Set(t0)
	texts := []string{"The crust is bleeding since this morning", "Now there is a blister too", "Should we come in?", "It looks better now"}

	f.post(t, parent, texts[0])
	ids := f.queuedNotices(t)
	if len(ids) != 2 {
		t.Fatalf("queued notices = %v, want email and webhook", ids)
	}
	// Each job carries the notice's id, nothing else.
	for _, id := range ids {
		if n := countRows(t, f.svc, `select count(*) from river_job where kind = 'message_notice_send'
			and args = jsonb_build_object('notice_id', $1::text)`, id); n != 1 {
			t.Fatalf("%d jobs carry only notice %s", n, id)
		}
	}
	if f.sendAll(t, ids) != 0 {
		t.Fatal("the first notice waited")
	}
	if got := len(mailTo(t, f.inbox)); got != 1 {
		t.Fatalf("Mailpit holds %d notices, want 1", got)
	}
	body := <-hooks
	keys := slices.Sorted(maps.Keys(body))
	if !slices.Equal(keys, []string{"due_on", "id", "kind", "language", "last_day", "link", "phone", "text"}) ||
		body["kind"] != notify.KindFamilyMessage || body["phone"] != "" || body["link"] != link || body["due_on"] != "" {
		t.Fatalf("webhook body = %v", body)
	}
	mustSayNothing(t, body["text"].(string), link, texts...)

	// Five minutes later another message: its notice waits for the end of the window; a third
	// in the meantime adds nothing.
	f.clock.Set(t0.Add(5 * time.Minute))
	f.post(t, parent, texts[1])
	ids = f.queuedNotices(t)
	if len(ids) != 2 || countRows(t, f.svc, `select count(*) from message_notices where procedure_id = $1 and status = 'queued'
			and send_after = $2`, f.proc.ID, t0.Add(noticeGap)) != 2 {
		t.Fatalf("second notices = %v, not both at the end of the window", ids)
	}
	if f.sendAll(t, ids) != 2 || len(mailTo(t, f.inbox)) != 1 || len(hooks) != 0 {
		t.Fatal("a notice went out within 15 minutes of the last")
	}
	f.clock.Set(t0.Add(6 * time.Minute))
	f.post(t, parent, texts[2])
	if again := f.queuedNotices(t); !maps.Equal(again, ids) {
		t.Fatalf("a message while a notice waits queued another: %v, was %v", again, ids)
	}
	f.clock.Set(t0.Add(noticeGap))
	if f.sendAll(t, ids) != 0 || len(mailTo(t, f.inbox)) != 2 {
		t.Fatal("the waiting notice did not go at the end of the window")
	}
	<-hooks

	// A message whose notice waits, read by a clinician before its time: not sent.
	f.clock.Set(t0.Add(16 * time.Minute))
	f.post(t, parent, texts[3])
	ids = f.queuedNotices(t)
	f.clock.Set(t0.Add(20 * time.Minute))
	if _, err := f.conv.Thread(ctx, f.clinician, f.proc.ID, conversation.Page{}); err != nil {
		t.Fatal(err)
	}
	f.clock.Set(t0.Add(2 * noticeGap))
	f.sendAll(t, ids)
	if n := countRows(t, f.svc, `select count(*) from message_notices where procedure_id = $1 and status = 'skipped'
		and last_error = 'the clinic has read the messages'`, f.proc.ID); n != 2 || len(hooks) != 0 {
		t.Fatalf("%d notices skipped, %d webhooks more; want 2 and none", n, len(hooks))
	}

	msgs := mailTo(t, f.inbox)
	if len(msgs) != 2 {
		t.Fatalf("Mailpit holds %d notices, want exactly 2", len(msgs))
	}
	for _, m := range msgs {
		if m.Subject != "New message from a family / 家属新留言" {
			t.Errorf("subject %q", m.Subject)
		}
		text, html := mailBody(t, m.ID)
		mustSayNothing(t, text, link, texts...)
		mustSayNothing(t, html, link, texts...)
	}
	// The guardian heard nothing of it.
	if n := len(mailTo(t, f.email)); n != 0 {
		t.Errorf("the guardian got %d emails", n)
	}
}

// answeredReminder is the procedure's queued notice that the clinic answered, by email.
func (f *noticeFixture) answeredReminder(t *testing.T) (uuid.UUID, time.Time) {
	t.Helper()
	var id uuid.UUID
	var after time.Time
	if err := f.svc.pool.QueryRow(testCtx(t), `select id, send_after from reminders where procedure_id = $1 and kind = 'answered'
		and status = 'queued' and channel = 'email'`, f.proc.ID).Scan(&id, &after); err != nil {
		t.Fatalf("the queued answered notice: %v", err)
	}
	return id, after
}

// The clinic's answers (a reply, a retake request) tell the family through the reminder
// channels, after the clinic's quiet hours, in the family's language, with a link that opens
// its page and nothing of the answer; answers while one waits add nothing, and the next waits
// 15 minutes after the last.
func TestFamilyNoticeOfAnswers(t *testing.T) {
	t.Parallel()
	f := newNoticeFixture(t, "zh-CN")
	ctx := testCtx(t)
	core, err := followup.New(followup.Config{Pool: f.svc.pool, Store: f.core.Store(), Protocols: f.core.Protocols(), Now: f.clock.Now,
		BaseURL: "https://followup.example", MessageSent: f.svc.ClinicAnswered})
	if err != nil {
		t.Fatal(err)
	}
	parent := f.parent(t)
	f.clock.Set(time.Date(2026, 5, 5, 1, 0, 0, 0, time.UTC)) // day 1, 09:00 in Shanghai
	photo, _, err := f.upload(t, parent, "day-1", "front", "answer-photo-1", testJPEG(t, 1))
	if err != nil {
		t.Fatal(err)
	}
	night := time.Date(2026, 5, 5, 14, 0, 0, 0, time.UTC) // 22:00 in Shanghai: quiet
	f.clock.Set(night)
	f.post(t, parent, "Is this redness normal?")
	replies := []string{"Yes, Lina's redness is expected for a few days", "Keep the face out of the sun"}
	if _, err := f.conv.Reply(ctx, f.clinician, f.proc.ID, replies[0]); err != nil {
		t.Fatal(err)
	}
	id, after := f.answeredReminder(t)
	morning := time.Date(2026, 5, 6, 0, 0, 0, 0, time.UTC) // 08:00 in Shanghai
	if !after.Equal(morning) {
		t.Fatalf("an answer at 22:00 is told at %v, want 08:00 local", after)
	}
	if n := countRows(t, f.svc, `select count(*) from river_job where kind = 'reminder_send'
		and args = jsonb_build_object('reminder_id', $1::text)`, id); n != 1 {
		t.Fatalf("%d jobs carry only the reminder's id", n)
	}
	var snooze *rivertype.JobSnoozeError
	if err := f.workers.send(ctx, id, false); !errors.As(err, &snooze) || len(mailTo(t, f.email)) != 0 {
		t.Fatalf("at night the notice went out (or failed): %v", err)
	}
	f.clock.Set(night.Add(10 * time.Minute))
	if _, err := f.conv.Reply(ctx, f.clinician, f.proc.ID, replies[1]); err != nil {
		t.Fatal(err)
	}
	if n := countRows(t, f.svc, `select count(*) from reminders where procedure_id = $1 and kind = 'answered'`, f.proc.ID); n != 1 {
		t.Fatalf("%d answered notices after two replies in one night, want 1", n)
	}
	f.clock.Set(morning)
	if err := f.workers.send(ctx, id, false); err != nil {
		t.Fatal(err)
	}
	if n := len(mailTo(t, f.email)); n != 1 {
		t.Fatalf("the guardian has %d emails in the morning, want 1", n)
	}

	// A retake request a few minutes later: told 15 minutes after the last notice.
	f.clock.Set(morning.Add(5 * time.Minute))
	if _, err := core.SendMessage(ctx, f.clinician, f.proc.ID, followup.NewMessage{Kind: "retake", PhotoID: photo.ID.String(),
		Body: "Please take Lina's photo again in daylight"}); err != nil {
		t.Fatal(err)
	}
	id, after = f.answeredReminder(t)
	if !after.Equal(morning.Add(noticeGap)) {
		t.Fatalf("the retake's notice waits until %v, want %v", after, morning.Add(noticeGap))
	}
	if err := f.workers.send(ctx, id, false); !errors.As(err, &snooze) {
		t.Fatalf("the retake's notice did not wait: %v", err)
	}
	f.clock.Set(after)
	if err := f.workers.send(ctx, id, false); err != nil {
		t.Fatal(err)
	}

	msgs := mailTo(t, f.email)
	if len(msgs) != 2 {
		t.Fatalf("the guardian has %d emails, want exactly 2", len(msgs))
	}
	for _, m := range msgs {
		if m.Subject != "诊所已回复您" {
			t.Errorf("subject %q, want the family's language", m.Subject)
		}
		text, html := mailBody(t, m.ID)
		link := linkRE.FindString(text)
		if link == "" {
			t.Fatalf("no link in:\n%s", text)
		}
		secrets := append(slices.Clone(replies), "redness", "daylight", "Is this redness normal")
		mustSayNothing(t, text, link, secrets...)
		mustSayNothing(t, html, link, secrets...)
		a, err := f.core.ResolveLink(ctx, strings.TrimPrefix(link, "https://followup.example/p/"))
		if err != nil || a.Procedure != f.proc.ID {
			t.Fatalf("the notice's link resolves to %+v, %v", a, err)
		}
	}
	// The clinic's outbox shows them, about no step.
	out, err := f.core.Reminders(ctx, f.clinician, f.proc.ID)
	if err != nil || len(out) != 2 || out[0].Kind != notify.KindAnswered || out[0].Timepoint != "" || out[0].Status != followup.ReminderSent {
		t.Fatalf("outbox = %+v, %v", out, err)
	}
	// Nothing for a follow-up that ended.
	if err := core.SetStatus(ctx, f.clinician, f.proc.ID, followup.StatusClosed); err != nil {
		t.Fatal(err)
	}
	if _, err := f.conv.Reply(ctx, f.clinician, f.proc.ID, "Closing note"); err != nil {
		t.Fatal(err)
	}
	if n := countRows(t, f.svc, `select count(*) from reminders where procedure_id = $1`, f.proc.ID); n != 2 {
		t.Fatalf("%d outbox rows after an answer on a closed follow-up, want 2", n)
	}
}
