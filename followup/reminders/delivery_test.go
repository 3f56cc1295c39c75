package reminders

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/smtp"
	"net/textproto"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/dermfollow/dermfollow/followup"
	"github.com/dermfollow/dermfollow/followup/notify"
)

// reminderJob is a reminder's River job as River last recorded it.
type reminderJob struct {
	State   string
	Attempt int
	Errors  []string // each failed attempt's error, oldest first
}

// final reports whether River will run the job no more.
func (j reminderJob) final() bool {
	return j.State == "completed" || j.State == "cancelled" || j.State == "discarded"
}

// waitJob polls the River job of a reminder until done says so. River records a job's
// outcome in its own transaction after the worker returns, so the outbox row alone does not
// tell whether another attempt (the one that would send a duplicate) is still to come.
func waitJob(t *testing.T, svc *Service, reminder uuid.UUID, done func(reminderJob) bool) reminderJob {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		var j reminderJob
		err := svc.pool.QueryRow(testCtx(t), `select state::text, attempt,
				array(select e->>'error' from unnest(coalesce(errors, '{}')) as e)
			from river_job where kind = 'reminder_send' and args->>'reminder_id' = $1`, reminder.String()).
			Scan(&j.State, &j.Attempt, &j.Errors)
		if err != nil {
			t.Fatalf("the job of reminder %s: %v", reminder, err)
		}
		if done(j) {
			return j
		}
		if time.Now().After(deadline) {
			t.Fatalf("the job of reminder %s is still %+v", reminder, j)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitJobsFinal waits until River has finished the job of every reminder of the procedures
// and returns them by reminder.
func waitJobsFinal(t *testing.T, svc *Service, procedures ...uuid.UUID) map[uuid.UUID]reminderJob {
	t.Helper()
	rows, err := svc.pool.Query(testCtx(t), `select id from reminders where procedure_id = any($1)`, procedures)
	if err != nil {
		t.Fatal(err)
	}
	var ids []uuid.UUID
	for rows.Next() {
		var id uuid.UUID
		if err := rows.Scan(&id); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	out := map[uuid.UUID]reminderJob{}
	for _, id := range ids {
		out[id] = waitJob(t, svc, id, reminderJob.final)
	}
	return out
}

// onlyReminder returns the id of the procedure's one reminder.
func onlyReminder(t *testing.T, svc *Service, procedure uuid.UUID) uuid.UUID {
	t.Helper()
	var id uuid.UUID
	if err := svc.pool.QueryRow(testCtx(t), `select id from reminders where procedure_id = $1`, procedure).Scan(&id); err != nil {
		t.Fatal(err)
	}
	return id
}

// requireDeliveredOnce checks the outcome every delivery must end in: one message in
// Mailpit, the reminder sent, and one live link of those the reminder's attempts made.
func requireDeliveredOnce(t *testing.T, f *reminderFixture, reminder uuid.UUID) {
	t.Helper()
	if msgs := mailTo(t, f.email); len(msgs) != 1 {
		t.Errorf("Mailpit holds %d messages for the guardian, want 1", len(msgs))
	}
	var status, lastError string
	if err := f.svc.pool.QueryRow(testCtx(t), `select status, last_error from reminders where id = $1`, reminder).
		Scan(&status, &lastError); err != nil {
		t.Fatal(err)
	}
	if status != followup.ReminderSent {
		t.Errorf("the reminder is %s (%q), want sent", status, lastError)
	}
	if n := countRows(t, f.svc, `select count(*) from parent_links where procedure_id = $1 and created_by is null
		and revoked_at is null`, f.proc.ID); n != 1 {
		t.Errorf("%d live reminder links, want 1", n)
	}
}

// slowSMTP is an SMTP server that holds back its answer to DATA until the context of the
// send in progress has ended, then relays the message to Mailpit and accepts it: a mail
// server that takes longer to accept a message than the job that sends it may run.
type slowSMTP struct {
	addr, relay string
	mu          sync.Mutex
	hold        <-chan struct{} // answer DATA once it is closed
	late        atomic.Int32    // messages accepted after their send's context had ended
}

func newSlowSMTP(t *testing.T, relay string) *slowSMTP {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &slowSMTP{addr: ln.Addr().String(), relay: relay}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go s.serve(c)
		}
	}()
	return s
}

// Email wraps an email channel so that the sink holds each message until the send's
// context ends.
func (s *slowSMTP) Email(inner EmailSender) EmailSender {
	return sendFunc(func(ctx context.Context, m notify.Message) error {
		s.mu.Lock()
		s.hold = ctx.Done()
		s.mu.Unlock()
		return inner.SendEmail(ctx, m)
	})
}

type sendFunc func(ctx context.Context, m notify.Message) error

func (f sendFunc) SendEmail(ctx context.Context, m notify.Message) error { return f(ctx, m) }

func (s *slowSMTP) serve(c net.Conn) {
	defer c.Close()
	c.SetDeadline(time.Now().Add(time.Minute))
	tp := textproto.NewConn(c)
	tp.PrintfLine("220 slow.test ESMTP")
	var from string
	var to []string
	for {
		line, err := tp.ReadLine()
		if err != nil {
			return
		}
		verb, arg, _ := strings.Cut(line, " ")
		switch strings.ToUpper(verb) {
		case "EHLO", "HELO":
			tp.PrintfLine("250-slow.test")
			tp.PrintfLine("250 8BITMIME")
		case "MAIL":
			from, to = smtpPath(arg), nil
			tp.PrintfLine("250 OK")
		case "RCPT":
			to = append(to, smtpPath(arg))
			tp.PrintfLine("250 OK")
		case "DATA":
			tp.PrintfLine("354 go ahead")
			body, err := tp.ReadDotBytes()
			if err != nil {
				return
			}
			tp.PrintfLine("%s", s.accept(from, to, body))
		case "RSET", "NOOP":
			tp.PrintfLine("250 OK")
		case "QUIT":
			tp.PrintfLine("221 bye")
			return
		default:
			tp.PrintfLine("502 not here")
		}
	}
}

// accept waits for the send's context to end, relays the message and returns the answer.
func (s *slowSMTP) accept(from string, to []string, body []byte) string {
	s.mu.Lock()
	hold := s.hold
	s.mu.Unlock()
	select {
	case <-hold:
	case <-time.After(30 * time.Second):
		return "451 the test never ended the send's context"
	}
	if err := smtp.SendMail(s.relay, nil, from, to, body); err != nil {
		return "451 relay: " + strings.ReplaceAll(err.Error(), "\n", " ")
	}
	s.late.Add(1)
	return "250 OK"
}

// smtpPath returns the address of "FROM:<a@b> SIZE=1" or "TO:<a@b>".
func smtpPath(arg string) string {
	_, rest, _ := strings.Cut(arg, "<")
	addr, _, _ := strings.Cut(rest, ">")
	return addr
}

// The mail server accepts the message only after the job's time is up (go-mail honours the
// context only while dialling, so the send reports success after the context has ended):
// the reminder is still marked sent, and River does not send it again.
func TestReminderAcceptedAfterJobTimeout(t *testing.T) {
	t.Parallel()
	f := newReminderFixture(t, "en")
	ctx := testCtx(t)
	sink := newSlowSMTP(t, testEnv(t, "DERMFOLLOW_TEST_SMTP_ADDR"))
	r := startReminders(t, f.svc, WorkerConfig{Email: sink.Email(testEmail(t, sink.addr)), ScanInterval: -1,
		JobTimeout: 2 * time.Second})
	f.clock.Set(time.Date(2026, 5, 5, 1, 0, 0, 0, time.UTC)) // 09:00 in Shanghai: day-1 is open
	if n, err := r.Scan(ctx); err != nil || n != 1 {
		t.Fatalf("scan = %d, %v", n, err)
	}
	id := onlyReminder(t, f.svc, f.proc.ID)
	// Until River is done with the job, or an attempt has failed: the retry that follows a
	// failed attempt is the one that would send the message twice.
	job := waitJob(t, f.svc, id, func(j reminderJob) bool { return j.final() || len(j.Errors) > 0 })
	if job.State != "completed" || job.Attempt != 1 || len(job.Errors) != 0 {
		t.Errorf("job = %+v, want completed on its first attempt", job)
	}
	if n := sink.late.Load(); n != 1 {
		t.Errorf("the sink accepted %d messages after the job's context ended, want 1", n)
	}
	requireDeliveredOnce(t, f, id)
}

// The job's context is cancelled (a shutdown, say) right after the message has left: the
// reminder is still marked sent, so the attempt River would run next sends nothing.
func TestReminderCancelledAfterSend(t *testing.T) {
	t.Parallel()
	f := newReminderFixture(t, "en")
	ctx := testCtx(t)
	jobCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	mailpit := testEmail(t, "")
	email := sendFunc(func(ctx context.Context, m notify.Message) error {
		err := mailpit.SendEmail(ctx, m)
		cancel()
		return err
	})
	r, err := NewWorkers(f.svc, WorkerConfig{Email: email, ScanInterval: -1,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}) // not started: the test runs the job
	if err != nil {
		t.Fatal(err)
	}
	f.clock.Set(time.Date(2026, 5, 5, 1, 0, 0, 0, time.UTC))
	if n, err := r.Scan(ctx); err != nil || n != 1 {
		t.Fatalf("scan = %d, %v", n, err)
	}
	id := onlyReminder(t, f.svc, f.proc.ID)
	if err := r.send(jobCtx, id, false); err != nil {
		t.Errorf("the attempt whose context ended after the message left: %v", err)
	}
	if !errors.Is(jobCtx.Err(), context.Canceled) {
		t.Fatal("the job's context was not cancelled")
	}
	// River runs a job again after an error; after a success this must send nothing.
	if err := r.send(ctx, id, false); err != nil {
		t.Errorf("the next attempt: %v", err)
	}
	requireDeliveredOnce(t, f, id)
}

// An attempt that dies after it made its link and before it recorded anything (a crash, a
// panic): the next attempt revokes that link before it makes its own, so the family never
// holds more than one live link from one reminder.
func TestReminderAttemptDies(t *testing.T) {
	t.Parallel()
	f := newReminderFixture(t, "en")
	ctx := testCtx(t)
	mailpit := testEmail(t, "")
	var calls atomic.Int32
	email := sendFunc(func(ctx context.Context, m notify.Message) error {
		if calls.Add(1) == 1 {
			panic("the attempt dies before its message leaves")
		}
		return mailpit.SendEmail(ctx, m)
	})
	r := startReminders(t, f.svc, WorkerConfig{Email: email, ScanInterval: -1})
	f.clock.Set(time.Date(2026, 5, 5, 1, 0, 0, 0, time.UTC))
	if n, err := r.Scan(ctx); err != nil || n != 1 {
		t.Fatalf("scan = %d, %v", n, err)
	}
	id := onlyReminder(t, f.svc, f.proc.ID)
	if job := waitJob(t, f.svc, id, reminderJob.final); job.State != "completed" || job.Attempt != 2 {
		t.Fatalf("job = %+v, want completed on its second attempt", job)
	}
	requireDeliveredOnce(t, f, id)
	if n := countRows(t, f.svc, `select count(*) from parent_links where procedure_id = $1 and created_by is null
		and revoked_at is not null`, f.proc.ID); n != 1 {
		t.Errorf("%d revoked reminder links, want 1 (the dead attempt's)", n)
	}
}
