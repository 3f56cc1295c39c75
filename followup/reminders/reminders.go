// Package reminders owns the reminders families get while photos are due: the outbox (every
// write to the reminders table), each clinic's settings (quiet hours, a messaging gateway
// and its secret, kept sealed with AES-GCM), the River jobs that find due reminders and send
// them (Workers), and reminders sent by hand (Service.Send). It also sends the conversation's
// notices through the same channels (notices.go): to the clinic that a family wrote, to the
// family that the clinic answered. Delivery itself, email and webhook, is package notify's.
//
// The core (package followup) keeps only the read side of the outbox, followup.Reminder and
// Service.Reminders, because a procedure's record lists its reminders beside its photos and
// links; everything that writes the outbox, or decides what to send, is here. From the core
// this package uses the actors, errors and audit log every part shares, and a few functions
// named for what they do: followup.LockProcedure, followup.MakeParentLink, followup.Zone.
//
//	rem, err := reminders.New(reminders.Config{Pool: pool, BaseURL: base, SecretKey: key})
//	queued, err := rem.Send(ctx, actor, procedureID)
//	w, err := reminders.NewWorkers(rem, reminders.WorkerConfig{Email: email})
//	err = w.Start(ctx)
package reminders

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"

	"github.com/dermfollow/dermfollow/followup"
)

// Config holds a Service's dependencies.
type Config struct {
	Pool   *pgxpool.Pool
	Logger *slog.Logger
	// Now is the clock; the same as the core's (tests pass their own).
	Now func() time.Time
	// BaseURL is the public URL that parent links start with.
	BaseURL string
	// SecretKey is DERMFOLLOW_SECRET_KEY; the webhook secrets' key is derived from it (HKDF).
	SecretKey []byte
}

// Service is the reminders of every clinic. Methods take ctx first and the Actor acting.
type Service struct {
	pool      *pgxpool.Pool
	log       *slog.Logger
	now       func() time.Time
	baseURL   string
	secretKey []byte
	// inserter is the insert-only River client of the requests that queue jobs.
	inserter onceInsertClient
}

// New returns a Service.
func New(cfg Config) (*Service, error) {
	if cfg.Pool == nil {
		return nil, errors.New("reminders: Pool is required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Service{pool: cfg.Pool, log: cfg.Logger, now: cfg.Now, baseURL: cfg.BaseURL, secretKey: cfg.SecretKey}, nil
}

// inTx runs fn in a transaction of the reminders' pool.
func (s *Service) inTx(ctx context.Context, fn func(pgx.Tx) error) error {
	return followup.WithTx(ctx, s.pool, fn)
}

func wrap(err error, format string, args ...any) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("reminders: "+format+": %w", append(args, err)...)
}

// Reminder channels.
const (
	ChannelEmail   = "email"
	ChannelWebhook = "webhook"
)

// Audit actions of reminders.
const (
	AuditReminderRequested = "reminder_requested"
	AuditRemindersSwitched = "reminders_switched"
	AuditReminderSettings  = "reminder_settings_changed"
)

const (
	reminderQueue = "reminders"
	// reminderMaxAttempts with River's default backoff (attempt^4 seconds) retries a failed
	// send for about four hours before the outbox marks it failed.
	reminderMaxAttempts = 10
	// manualReminderGap is how long after one reminder by hand another is refused, so a
	// double click or an impatient afternoon does not flood a family.
	manualReminderGap = 10 * time.Minute
)

// reminderArgs is the job that sends one outbox row. Only its id travels through the queue:
// the address, language and link are read and made when the job runs.
type reminderArgs struct {
	ReminderID uuid.UUID `json:"reminder_id" river:"unique"`
}

func (reminderArgs) Kind() string { return "reminder_send" }
func (reminderArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{Queue: reminderQueue, MaxAttempts: reminderMaxAttempts, UniqueOpts: river.UniqueOpts{ByArgs: true}}
}

// scanArgs is the periodic job, run by River's elected leader, that finds due reminders.
type scanArgs struct{}

func (scanArgs) Kind() string { return "reminder_scan" }
func (scanArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{Queue: reminderQueue, MaxAttempts: 3}
}

// quietHours is a clinic's night, start to end in local wall-clock time (it may wrap around
// midnight). Equal ends mean no quiet hours.
type quietHours struct {
	start, end time.Duration // since local midnight
	loc        *time.Location
}

func sinceMidnight(t time.Time) time.Duration {
	return time.Duration(t.Hour())*time.Hour + time.Duration(t.Minute())*time.Minute + time.Duration(t.Second())*time.Second
}

func (q quietHours) quiet(t time.Time) bool {
	tod := sinceMidnight(t.In(q.loc))
	switch {
	case q.start == q.end:
		return false
	case q.start < q.end:
		return q.start <= tod && tod < q.end
	default:
		return tod >= q.start || tod < q.end
	}
}

// next returns t, or the end of the quiet hours t falls in.
func (q quietHours) next(t time.Time) time.Time {
	if !q.quiet(t) {
		return t
	}
	local := t.In(q.loc)
	y, m, d := local.Date()
	end := time.Date(y, m, d, 0, 0, 0, 0, q.loc).Add(q.end)
	if !end.After(t) {
		end = time.Date(y, m, d+1, 0, 0, 0, 0, q.loc).Add(q.end)
	}
	return end
}

// missingPhotosSQL is true for a timepoint t with a required view that has no active photo.
const missingPhotosSQL = `exists (select 1 from unnest(t.views) as v(view) where not exists (
	select 1 from photos ph where ph.procedure_id = t.procedure_id and ph.timepoint_key = t.key
		and ph.view = v.view and ph.status = 'active'))`

// activeLinkSQL is true for a procedure p with a link the family can still open at $1.
const activeLinkSQL = `exists (select 1 from parent_links l where l.procedure_id = p.id and l.revoked_at is null
	and l.expires_at > $1)`
