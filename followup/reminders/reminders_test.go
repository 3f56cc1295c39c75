package reminders

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"

	"github.com/dermfollow/dermfollow/followup"
	"github.com/dermfollow/dermfollow/followup/notify"
	"github.com/dermfollow/dermfollow/followup/pgtest"
)

// testEnv returns an environment variable a test needs; missing, the test fails under `make
// test` and skips otherwise, as the other service helpers do.
func testEnv(t *testing.T, name string) string {
	t.Helper()
	v := os.Getenv(name)
	if v == "" {
		if pgtest.Required() {
			t.Fatalf("%s is not set; run the tests with `make test`", name)
		}
		t.Skipf("%s is not set; `make test` starts Mailpit", name)
	}
	return v
}

// testEmail is an email channel to the test Mailpit, or through addr when given.
func testEmail(t *testing.T, addr string) *notify.Email {
	t.Helper()
	if addr == "" {
		addr = testEnv(t, "DERMFOLLOW_TEST_SMTP_ADDR")
	}
	e, err := notify.NewEmail(&url.URL{Scheme: "smtp", Host: addr}, "Dermfollow <noreply@localhost>")
	if err != nil {
		t.Fatal(err)
	}
	return e
}

type mailpitMessage struct {
	ID      string
	Subject string
	To      []struct{ Address string }
}

// mailTo lists the messages Mailpit holds for one address.
func mailTo(t *testing.T, addr string) []mailpitMessage {
	t.Helper()
	base := testEnv(t, "DERMFOLLOW_TEST_MAILPIT_URL")
	resp, err := http.Get(base + "/api/v1/search?limit=500&query=" + url.QueryEscape("to:"+addr))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out struct{ Messages []mailpitMessage }
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		t.Fatal(err)
	}
	return out.Messages
}

// mailBody returns a message's text and HTML bodies.
func mailBody(t *testing.T, id string) (text, html string) {
	t.Helper()
	resp, err := http.Get(testEnv(t, "DERMFOLLOW_TEST_MAILPIT_URL") + "/api/v1/message/" + id)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var m struct{ Text, HTML string }
	if err := json.NewDecoder(resp.Body).Decode(&m); err != nil {
		t.Fatal(err)
	}
	return m.Text, m.HTML
}

// fastRetry retries a failed send after a moment (River's scheduler then makes it available
// within its 5 s interval).
type fastRetry struct{}

func (fastRetry) NextRetry(*rivertype.JobRow) time.Time {
	return time.Now().Add(100 * time.Millisecond)
}

// startReminders runs reminder workers (one "server") on svc until the test ends.
func startReminders(t *testing.T, svc *Service, cfg WorkerConfig) *Workers {
	t.Helper()
	cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	cfg.TestOnly, cfg.FetchPollInterval, cfg.RetryPolicy = true, 100*time.Millisecond, fastRetry{}
	if cfg.ScanInterval == 0 {
		cfg.ScanInterval = time.Hour
	}
	r, err := NewWorkers(svc, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Start(testCtx(t)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		r.Stop(ctx)
	})
	return r
}

// reminderFixture is a Shanghai clinic, a patient whose guardian has a unique address and
// reads zh-CN, a PWS procedure performed 2026-05-04 10:00 local and a parent link.
type reminderFixture struct {
	*coreFixture
	email string
}

func newReminderFixture(t *testing.T, lang string) *reminderFixture {
	t.Helper()
	f := newCoreFixture(t)
	rf := &reminderFixture{coreFixture: f, email: "guardian-" + uuid.NewString()[:12] + "@reminders.test"}
	ctx := testCtx(t)
	p, err := f.core.CreatePatient(ctx, f.clinician, followup.NewPatient{DisplayName: "Lina Zhang", BirthDate: "2025-06-01",
		GuardianEmail: rf.email, GuardianPhone: "+86 139 0000 0000", PreferredLanguage: lang})
	if err != nil {
		t.Fatal(err)
	}
	f.patient = p
	f.proc, err = f.core.Enrol(ctx, f.clinician, followup.NewProcedure{PatientID: p.ID.String(), Protocol: "pws-hemoporfin-pdt",
		BodySite: "face", PerformedAt: "2026-05-04T10:00:00+08:00"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.core.CreateLink(ctx, f.clinician, f.proc.ID, false); err != nil {
		t.Fatal(err)
	}
	return rf
}

// settle waits until none of the procedure's reminders due by the clock is still queued.
func settle(t *testing.T, svc *Service, procedures ...uuid.UUID) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		n := countRows(t, svc, `select count(*) from reminders where procedure_id = any($1) and status = 'queued'
			and send_after <= $2`, procedures, svc.now())
		if n == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d reminders still queued", n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

var linkRE = regexp.MustCompile(`https://followup\.example/p/[A-Za-z0-9_-]{43}`)

// The whole schedule of a procedure, every two hours on a test clock (Shanghai is UTC+8, so
// every even local hour, which includes 08:00 and noon): the family hears of each
// window when it opens and once more on its last day while photos are missing, never at
// night in Shanghai, in Chinese, with a link that opens; nothing once the photos are in.
func TestReminderSchedule(t *testing.T) {
	t.Parallel()
	f := newReminderFixture(t, "zh-CN")
	ctx := testCtx(t)
	r := startReminders(t, f.svc, WorkerConfig{Email: testEmail(t, "")})
	parent := f.parent(t)
	shanghai, _ := time.LoadLocation("Asia/Shanghai")
	uploads := map[string]string{ // timepoint -> local time its photos arrive
		"day-4":  "2026-05-08 10:00",
		"week-4": "2026-05-29 12:00",
	}
	for at := time.Date(2026, 5, 4, 10, 0, 0, 0, time.UTC); at.Before(time.Date(2026, 7, 1, 0, 0, 0, 0, time.UTC)); at = at.Add(2 * time.Hour) {
		f.clock.Set(at)
		for tp, when := range uploads {
			if at.In(shanghai).Format("2006-01-02 15:04") == when {
				for i, v := range []string{"front", "left-oblique", "right-oblique"} {
					if _, _, err := f.upload(t, parent, tp, v, fmt.Sprintf("%s-upload-%d", tp, i), testJPEG(t, byte(i))); err != nil {
						t.Fatal(err)
					}
				}
			}
		}
		if _, err := r.Scan(ctx); err != nil {
			t.Fatal(err)
		}
		settle(t, f.svc, f.proc.ID)
	}
	waitJobsFinal(t, f.svc, f.proc.ID) // no attempt still to come before the messages are counted
	got := outboxBySentAt(t, f.svc, f.proc.ID, shanghai)
	want := []string{
		"05-05 08:00 day-1 window-open sent",  // opens at midnight: quiet hours until 08:00
		"05-05 12:00 day-1 closing-soon sent", // a one-day window: half way through
		"05-07 08:00 day-4 window-open sent",  // photos arrive 05-08: no closing-soon
		"05-10 08:00 week-1 window-open sent",
		"05-12 08:00 week-1 closing-soon sent",
		"05-16 08:00 week-2 window-open sent",
		"05-20 08:00 week-2 closing-soon sent",
		"05-29 08:00 week-4 window-open sent", // photos arrive at noon
		"06-24 08:00 week-8 window-open sent",
		"06-29 08:00 week-8 closing-soon sent",
	}
	if !slices.Equal(got, want) {
		t.Fatalf("outbox:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}

	msgs := mailTo(t, f.email)
	if len(msgs) != len(want) {
		t.Fatalf("Mailpit holds %d messages for the guardian, want %d", len(msgs), len(want))
	}
	subjects := map[string]int{}
	for _, m := range msgs {
		subjects[m.Subject]++
	}
	if subjects["请上传随访照片"] != 6 || subjects["提醒：随访照片尚未收到"] != 4 {
		for _, m := range msgs {
			text, _ := mailBody(t, m.ID)
			t.Logf("%s: %s", m.Subject, text)
		}
		t.Fatalf("subjects = %v", subjects)
	}
	text, html := mailBody(t, msgs[0].ID)
	for _, body := range []string{text, html} {
		for _, secret := range []string{"Lina", "Zhang", "鲜红斑痣", "port-wine", "hemoporfin", "face"} {
			if strings.Contains(strings.ToLower(body), strings.ToLower(secret)) {
				t.Fatalf("the message says %q:\n%s", secret, body)
			}
		}
	}
	if !strings.Contains(text, "随访照片") {
		t.Fatalf("text body not in Chinese:\n%s", text)
	}
	link := linkRE.FindString(text)
	if link == "" || !strings.Contains(html, link) {
		t.Fatalf("no link in the message:\n%s", text)
	}
	a, err := f.core.ResolveLink(ctx, strings.TrimPrefix(link, "https://followup.example/p/"))
	if err != nil || a.Procedure != f.proc.ID {
		t.Fatalf("the reminder's link resolves to %+v, %v", a, err)
	}
}

// outboxBySentAt lists a procedure's outbox as "sent-at timepoint kind status" lines, the
// time local in loc ("-" when unsent), in the order they were sent.
func outboxBySentAt(t *testing.T, svc *Service, procedure uuid.UUID, loc *time.Location) []string {
	t.Helper()
	rows, err := svc.pool.Query(testCtx(t), `select timepoint_key, kind, status, sent_at from reminders where procedure_id = $1
		order by sent_at`, procedure)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var got []string
	for rows.Next() {
		var key, kind, status string
		var sent *time.Time
		if err := rows.Scan(&key, &kind, &status, &sent); err != nil {
			t.Fatal(err)
		}
		at := "-"
		if sent != nil {
			at = sent.In(loc).Format("01-02 15:04")
		}
		got = append(got, fmt.Sprintf("%s %s %s %s", at, key, kind, status))
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return got
}

// Two servers (two River clients) on one database, both scanning: every reminder goes out
// exactly once.
func TestRemindersTwoServers(t *testing.T) {
	t.Parallel()
	f := newReminderFixture(t, "en")
	ctx := testCtx(t)
	procs := []uuid.UUID{f.proc.ID}
	emails := []string{f.email}
	for range 4 {
		email := "guardian-" + uuid.NewString()[:12] + "@reminders.test"
		p, err := f.core.CreatePatient(ctx, f.clinician, followup.NewPatient{DisplayName: "Other Child", BirthDate: "2025-01-01",
			GuardianEmail: email, PreferredLanguage: "en"})
		if err != nil {
			t.Fatal(err)
		}
		e, err := f.core.Enrol(ctx, f.clinician, followup.NewProcedure{PatientID: p.ID.String(), Protocol: "pws-hemoporfin-pdt",
			BodySite: "back", PerformedAt: "2026-05-04T10:00:00+08:00"})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.core.CreateLink(ctx, f.clinician, e.ID, false); err != nil {
			t.Fatal(err)
		}
		procs, emails = append(procs, e.ID), append(emails, email)
	}
	servers := []*Workers{
		startReminders(t, f.svc, WorkerConfig{Email: testEmail(t, "")}),
		startReminders(t, f.svc, WorkerConfig{Email: testEmail(t, "")}),
	}
	f.clock.Set(time.Date(2026, 5, 5, 1, 0, 0, 0, time.UTC)) // 09:00 in Shanghai: day-1 is open
	var wg sync.WaitGroup
	for range 3 {
		for _, s := range servers {
			wg.Go(func() {
				if _, err := s.Scan(ctx); err != nil {
					t.Error(err)
				}
			})
		}
	}
	wg.Wait()
	settle(t, f.svc, procs...)
	// A duplicate would come from a second job of a reminder or a second run of its job:
	// once River has finished every job, nothing more can arrive.
	jobs := waitJobsFinal(t, f.svc, procs...)
	if len(jobs) != len(procs) {
		t.Fatalf("%d reminders, want %d", len(jobs), len(procs))
	}
	for id, j := range jobs {
		if j.State != "completed" || j.Attempt != 1 {
			t.Errorf("the job of reminder %s: %+v, want completed on its first attempt", id, j)
		}
	}
	if n := countRows(t, f.svc, `select count(*) from river_job where kind = 'reminder_send'`); n != len(procs) {
		t.Errorf("%d reminder jobs, want %d", n, len(procs))
	}
	for _, e := range emails {
		if msgs := mailTo(t, e); len(msgs) != 1 {
			t.Errorf("%d messages to one guardian, want 1", len(msgs))
		}
	}
	if n := countRows(t, f.svc, `select count(*) from reminders where procedure_id = any($1) and status = 'sent'`, procs); n != len(procs) {
		t.Fatalf("%d sent rows, want %d", n, len(procs))
	}
}

// flakySMTP is a TCP proxy to Mailpit that can be taken down (its port closed) and up again.
type flakySMTP struct {
	addr, target string
	mu           sync.Mutex
	ln           net.Listener
}

func newFlakySMTP(t *testing.T, target string) *flakySMTP {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &flakySMTP{addr: ln.Addr().String(), target: target}
	ln.Close() // down until up
	t.Cleanup(p.down)
	return p
}

func (p *flakySMTP) up(t *testing.T) {
	p.mu.Lock()
	defer p.mu.Unlock()
	ln, err := net.Listen("tcp", p.addr)
	if err != nil {
		t.Fatal(err)
	}
	p.ln = ln
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				u, err := net.Dial("tcp", p.target)
				if err != nil {
					return
				}
				defer u.Close()
				go io.Copy(u, c)
				io.Copy(c, u)
			}()
		}
	}()
}

func (p *flakySMTP) down() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ln != nil {
		p.ln.Close()
		p.ln = nil
	}
}

// The mail server is down when a reminder is due: the send fails, is retried, and is
// delivered once the server is back; the link of the failed attempt does not stay open.
func TestReminderSMTPDown(t *testing.T) {
	t.Parallel()
	f := newReminderFixture(t, "en")
	ctx := testCtx(t)
	smtp := newFlakySMTP(t, testEnv(t, "DERMFOLLOW_TEST_SMTP_ADDR"))
	r := startReminders(t, f.svc, WorkerConfig{Email: testEmail(t, smtp.addr), ScanInterval: -1})
	f.clock.Set(time.Date(2026, 5, 5, 1, 0, 0, 0, time.UTC))
	if n, err := r.Scan(ctx); err != nil || n != 1 {
		t.Fatalf("scan = %d, %v", n, err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for countRows(t, f.svc, `select count(*) from reminders where procedure_id = $1 and attempts >= 1 and last_error <> ''`, f.proc.ID) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the first attempt never failed")
		}
		time.Sleep(20 * time.Millisecond)
	}
	var status, reason string
	if err := f.svc.pool.QueryRow(ctx, `select status, last_error from reminders where procedure_id = $1`, f.proc.ID).Scan(&status, &reason); err != nil {
		t.Fatal(err)
	}
	if status != followup.ReminderQueued || reason != "the mail server could not be reached" {
		t.Fatalf("after a failed attempt: %s %q", status, reason)
	}
	if len(mailTo(t, f.email)) != 0 {
		t.Fatal("a message arrived while the server was down")
	}
	smtp.up(t)
	// Until River has finished the job: a further attempt would be a duplicate.
	if j := waitJob(t, f.svc, onlyReminder(t, f.svc, f.proc.ID), reminderJob.final); j.State != "completed" {
		t.Fatalf("job = %+v, want completed", j)
	}
	if msgs := mailTo(t, f.email); len(msgs) != 1 {
		t.Fatalf("%d messages after the server came back, want 1", len(msgs))
	}
	var attempts int
	if err := f.svc.pool.QueryRow(ctx, `select status, attempts from reminders where procedure_id = $1`, f.proc.ID).Scan(&status, &attempts); err != nil {
		t.Fatal(err)
	}
	if status != followup.ReminderSent || attempts < 2 {
		t.Fatalf("status %s after %d attempts", status, attempts)
	}
	// One link per attempt; those of failed attempts were revoked again.
	if n := countRows(t, f.svc, `select count(*) from parent_links where procedure_id = $1 and created_by is null
		and revoked_at is null`, f.proc.ID); n != 1 {
		t.Fatalf("%d open reminder links, want 1", n)
	}
	if n := countRows(t, f.svc, `select count(*) from parent_links where procedure_id = $1 and created_by is null
		and revoked_at is not null`, f.proc.ID); n != attempts-1 {
		t.Fatalf("%d revoked reminder links, want %d", n, attempts-1)
	}
}

// The gateway channel: one JSON POST per reminder, signed with the clinic's secret, holding
// the phone, language, link and dates and nothing else; a refusal is a failed reminder.
func TestReminderWebhook(t *testing.T) {
	t.Parallel()
	f := newReminderFixture(t, "zh-CN")
	ctx := testCtx(t)
	_, admin := mustUser(t, f.svc, f.clinic.ID, followup.RoleAdmin)
	const secret = "a clinic's webhook secret, long enough"
	type delivery struct {
		body map[string]any
		err  error
	}
	got := make(chan delivery, 10)
	status := http.StatusOK
	var mu sync.Mutex
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		b, _ := io.ReadAll(req.Body)
		d := delivery{err: notify.Verify(secret, req.Header, b, f.clock.Now(), 5*time.Minute)}
		json.Unmarshal(b, &d.body)
		got <- d
		mu.Lock()
		defer mu.Unlock()
		w.WriteHeader(status)
	}))
	t.Cleanup(hs.Close)
	hook := hs.URL + "/sms"
	for _, bad := range []Settings{
		{WebhookURL: "http://gateway.example/sms", WebhookSecret: secret},
		{WebhookURL: "ftp://gateway.example/sms", WebhookSecret: secret},
		{WebhookURL: "https://user:pw@gateway.example/sms", WebhookSecret: secret},
		{WebhookURL: "sms-gateway", WebhookSecret: secret},
		{WebhookURL: hook, WebhookSecret: "short"},
		{WebhookURL: hook, WebhookSecret: strings.Repeat("x", 200)},
		{WebhookURL: "https://gateway.example/" + strings.Repeat("x", 2000), WebhookSecret: secret},
		{WebhookURL: hook},
		{WebhookURL: hook, WebhookSecret: secret, QuietStart: "25:00", QuietEnd: "08:00"},
	} {
		if _, err := f.svc.SetSettings(ctx, admin, bad); followup.ErrorCode(err) != followup.EINVALID || followup.ErrorMessage(err) == "" {
			t.Errorf("settings %+v: %v", bad, err)
		}
	}
	if _, err := f.svc.SetSettings(ctx, f.clinician, Settings{WebhookURL: hook, WebhookSecret: secret}); followup.ErrorCode(err) != followup.EFORBIDDEN {
		t.Fatalf("a clinician changed the settings: %v", err)
	}
	if _, err := f.svc.SetSettings(ctx, admin, Settings{WebhookURL: hook, WebhookSecret: secret}); err != nil {
		t.Fatal(err)
	}
	if n := countRows(t, f.svc, `select count(*) from reminder_settings where webhook_secret like '%webhook secret%'`); n != 0 {
		t.Fatal("the webhook secret is stored in the clear")
	}
	r := startReminders(t, f.svc, WorkerConfig{ScanInterval: -1}) // no email: the webhook alone
	f.clock.Set(time.Date(2026, 5, 5, 1, 0, 0, 0, time.UTC))
	if n, err := r.Scan(ctx); err != nil || n != 1 {
		t.Fatalf("scan = %d, %v", n, err)
	}
	d := <-got
	if d.err != nil {
		t.Fatalf("signature: %v", d.err)
	}
	var keys []string
	for k := range d.body {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	if !slices.Equal(keys, []string{"due_on", "id", "kind", "language", "last_day", "link", "phone", "text"}) ||
		d.body["phone"] != "+86 139 0000 0000" || d.body["language"] != "zh-CN" || d.body["due_on"] != "2026-05-05" ||
		!linkRE.MatchString(d.body["link"].(string)) {
		t.Fatalf("body = %v", d.body)
	}
	settle(t, f.svc, f.proc.ID)

	// A gateway that refuses (4xx) makes the reminder failed at once, with the reason.
	mu.Lock()
	status = http.StatusBadRequest
	mu.Unlock()
	f.clock.Set(time.Date(2026, 5, 5, 5, 0, 0, 0, time.UTC)) // 13:00: closing soon
	if n, err := r.Scan(ctx); err != nil || n != 1 {
		t.Fatalf("scan = %d, %v", n, err)
	}
	<-got
	deadline := time.Now().Add(10 * time.Second)
	for countRows(t, f.svc, `select count(*) from reminders where procedure_id = $1 and status = 'failed'
		and last_error = 'the webhook refused the reminder (400)'`, f.proc.ID) != 1 {
		if time.Now().After(deadline) {
			t.Fatal("the refused reminder is not marked failed")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Nothing is sent for a closed procedure, with reminders off, or without an open link, and
// quiet hours hold reminders sent by hand until the morning.
func TestReminderRules(t *testing.T) {
	t.Parallel()
	f := newReminderFixture(t, "en")
	ctx := testCtx(t)
	if err := f.svc.SetEnabled(ctx, f.clinician, f.proc.ID, false); err != nil {
		t.Fatal(err)
	}
	// The test drives the scan itself, while it changes the procedure.
	r := startReminders(t, f.svc, WorkerConfig{Email: testEmail(t, ""), ScanInterval: -1})
	f.clock.Set(time.Date(2026, 5, 5, 1, 0, 0, 0, time.UTC))
	if n, _ := r.Scan(ctx); n != 0 {
		t.Fatalf("reminders off: scan queued %d", n)
	}
	if _, err := f.svc.Send(ctx, f.clinician, f.proc.ID); followup.ErrorCode(err) != followup.ECONFLICT {
		t.Fatalf("by hand with reminders off: %v", err)
	}
	if err := f.svc.SetEnabled(ctx, f.clinician, f.proc.ID, true); err != nil {
		t.Fatal(err)
	}
	if err := f.core.SetStatus(ctx, f.clinician, f.proc.ID, followup.StatusClosed); err != nil {
		t.Fatal(err)
	}
	if n, _ := r.Scan(ctx); n != 0 {
		t.Fatalf("closed: scan queued %d", n)
	}
	if err := f.core.SetStatus(ctx, f.clinician, f.proc.ID, followup.StatusActive); err != nil {
		t.Fatal(err)
	}
	if _, err := f.core.CreateLink(ctx, f.clinician, f.proc.ID, true); err != nil { // rotate: the old one goes
		t.Fatal(err)
	}
	links, _ := f.core.Links(ctx, f.clinician, f.proc.ID)
	for _, l := range links {
		if l.Active(f.clock.Now()) {
			if err := f.core.RevokeLink(ctx, f.clinician, l.ID); err != nil {
				t.Fatal(err)
			}
		}
	}
	if n, _ := r.Scan(ctx); n != 0 {
		t.Fatalf("no open link: scan queued %d", n)
	}
	if rs, err := f.svc.Send(ctx, f.clinician, f.proc.ID); followup.ErrorCode(err) != followup.ECONFLICT {
		t.Logf("%d active", countRows(t, f.svc, `select count(*) from parent_links where procedure_id = $1 and revoked_at is null`, f.proc.ID))
		t.Fatalf("by hand without a link: %+v %v", rs, err)
	}
	if _, err := f.core.CreateLink(ctx, f.clinician, f.proc.ID, false); err != nil {
		t.Fatal(err)
	}

	// Queued, then the procedure is closed before the job runs: skipped, not sent.
	f.clock.Set(time.Date(2026, 5, 4, 14, 0, 0, 0, time.UTC)) // 22:00 in Shanghai
	rs, err := f.svc.Send(ctx, f.clinician, f.proc.ID)
	if followup.ErrorCode(err) != followup.ECONFLICT {
		t.Fatalf("by hand before any window opened: %v %v", rs, err)
	}
	f.clock.Set(time.Date(2026, 5, 5, 14, 0, 0, 0, time.UTC)) // 22:00 on day 1: quiet
	if n, _ := r.Scan(ctx); n != 0 {
		t.Fatalf("quiet hours: scan queued %d", n)
	}
	rs, err = f.svc.Send(ctx, f.clinician, f.proc.ID)
	if err != nil || len(rs) != 1 || rs[0].Timepoint != "day-1" || rs[0].Channel != ChannelEmail {
		t.Fatalf("by hand: %+v, %v", rs, err)
	}
	if want := time.Date(2026, 5, 6, 0, 0, 0, 0, time.UTC); !rs[0].SendAfter.Equal(want) {
		t.Fatalf("sent by hand at 22:00 goes at %v, want 08:00 local", rs[0].SendAfter)
	}
	if _, err := f.svc.Send(ctx, f.clinician, f.proc.ID); followup.ErrorCode(err) != followup.ECONFLICT {
		t.Fatalf("twice by hand within minutes: %v", err)
	}
	if err := f.core.SetStatus(ctx, f.clinician, f.proc.ID, followup.StatusClosed); err != nil {
		t.Fatal(err)
	}
	f.clock.Set(time.Date(2026, 5, 6, 0, 0, 0, 0, time.UTC))
	if err := r.send(ctx, rs[0].ID, false); err != nil {
		t.Fatal(err)
	}
	out, err := f.core.Reminders(ctx, f.clinician, f.proc.ID)
	if err != nil || len(out) != 1 || out[0].Status != followup.ReminderSkipped || out[0].LastError != "the procedure is closed" {
		t.Fatalf("outbox = %+v, %v", out, err)
	}
	if len(mailTo(t, f.email)) != 0 {
		t.Fatal("a message went out")
	}
	// The outbox is for clinicians of the clinic.
	_, researcher := mustUser(t, f.svc, f.clinic.ID, followup.RoleResearcher)
	if _, err := f.core.Reminders(ctx, researcher, f.proc.ID); followup.ErrorCode(err) != followup.EFORBIDDEN {
		t.Fatalf("researcher: %v", err)
	}
	other := mustClinic(t, f.core, "Other "+uuid.NewString()[:8], "")
	_, outsider := mustUser(t, f.svc, other.ID, followup.RoleClinician)
	if _, err := f.core.Reminders(ctx, outsider, f.proc.ID); followup.ErrorCode(err) != followup.ENOTFOUND {
		t.Fatalf("other clinic: %v", err)
	}
}

func TestQuietHours(t *testing.T) {
	t.Parallel()
	sh, _ := time.LoadLocation("Asia/Shanghai")
	q := quietHours{21 * time.Hour, 8 * time.Hour, sh}
	for _, c := range []struct{ at, want string }{
		{"2026-05-05 07:59", "2026-05-05 08:00"},
		{"2026-05-05 08:00", "2026-05-05 08:00"},
		{"2026-05-05 20:59", "2026-05-05 20:59"},
		{"2026-05-05 21:00", "2026-05-06 08:00"},
		{"2026-05-05 23:30", "2026-05-06 08:00"},
		{"2026-05-06 00:00", "2026-05-06 08:00"},
	} {
		at, _ := time.ParseInLocation("2006-01-02 15:04", c.at, sh)
		if got := q.next(at).In(sh).Format("2006-01-02 15:04"); got != c.want {
			t.Errorf("next(%s) = %s, want %s", c.at, got, c.want)
		}
	}
	day := quietHours{1 * time.Hour, 5 * time.Hour, sh} // not wrapping midnight
	at, _ := time.ParseInLocation("2006-01-02 15:04", "2026-05-05 03:00", sh)
	if !day.quiet(at) || day.quiet(at.Add(3*time.Hour)) || (quietHours{0, 0, sh}).quiet(at) {
		t.Fatal("quiet hours that do not wrap midnight")
	}
}

// When the last attempt fails too, the reminder is marked failed with the reason, for the
// clinic to see; nothing is sent later.
func TestReminderGivesUp(t *testing.T) {
	t.Parallel()
	f := newReminderFixture(t, "en")
	ctx := testCtx(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := ln.Addr().String()
	ln.Close()
	r, err := NewWorkers(f.svc, WorkerConfig{Email: testEmail(t, closed), ScanInterval: -1,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}) // not started: the test runs the job
	if err != nil {
		t.Fatal(err)
	}
	f.clock.Set(time.Date(2026, 5, 5, 1, 0, 0, 0, time.UTC))
	if n, err := r.Scan(ctx); err != nil || n != 1 {
		t.Fatalf("scan = %d, %v", n, err)
	}
	var id uuid.UUID
	if err := f.svc.pool.QueryRow(ctx, `select id from reminders where procedure_id = $1`, f.proc.ID).Scan(&id); err != nil {
		t.Fatal(err)
	}
	for i, last := range []bool{false, true} {
		if err := r.send(ctx, id, last); err == nil {
			t.Fatalf("attempt %d succeeded", i+1)
		}
	}
	out, err := f.core.Reminders(ctx, f.clinician, f.proc.ID)
	if err != nil || len(out) != 1 || out[0].Status != followup.ReminderFailed || out[0].Attempts != 2 ||
		out[0].LastError != "the mail server could not be reached" {
		t.Fatalf("outbox = %+v, %v", out, err)
	}
	if err := r.send(ctx, id, true); err != nil {
		t.Fatalf("a failed reminder ran again: %v", err)
	}
}

// Send queues its job through one insert-only River client per service, built once,
// not one per request.
func TestSendReminderBuildsOneInsertClient(t *testing.T) {
	// Not parallel: it counts through the package's constructor, which parallel tests call.
	var built atomic.Int32
	build := newInsertClient
	newInsertClient = func(pool *pgxpool.Pool, log *slog.Logger) (*river.Client[pgx.Tx], error) {
		built.Add(1)
		return build(pool, log)
	}
	t.Cleanup(func() { newInsertClient = build })
	f := newReminderFixture(t, "en")
	ctx := testCtx(t)
	at := time.Date(2026, 5, 5, 1, 0, 0, 0, time.UTC) // 09:00 in Shanghai: day-1 is open
	for i := range 3 {
		f.clock.Set(at.Add(time.Duration(i) * (manualReminderGap + time.Minute)))
		if rs, err := f.svc.Send(ctx, f.clinician, f.proc.ID); err != nil || len(rs) != 1 {
			t.Fatalf("by hand, %d: %+v, %v", i+1, rs, err)
		}
	}
	if n := countRows(t, f.svc, `select count(*) from river_job where kind = 'reminder_send'`); n != 3 {
		t.Fatalf("%d jobs queued, want 3", n)
	}
	if n := built.Load(); n != 1 {
		t.Fatalf("%d River clients built for 3 requests, want 1", n)
	}
}
