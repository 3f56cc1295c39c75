package reminders

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"

	"github.com/dermfollow/dermfollow/followup"
	"github.com/dermfollow/dermfollow/followup/notify"
)

// EmailSender delivers a reminder by email (notify.Email).
type EmailSender interface {
	SendEmail(ctx context.Context, m notify.Message) error
}

// WebhookSender delivers a reminder to a clinic's gateway (notify.Webhook).
type WebhookSender interface {
	SendWebhook(ctx context.Context, ep notify.Endpoint, m notify.Message) error
}

// WorkerConfig configures the reminder workers.
type WorkerConfig struct {
	// Email sends email; nil disables the email channel (reminders go by webhook only).
	Email EmailSender
	// Webhook posts to gateways; nil: notify.NewWebhook with the service's clock.
	Webhook WebhookSender
	Logger  *slog.Logger
	// ScanInterval is how often the leader looks for due reminders (a minute when zero;
	// negative: never, the caller runs Scan itself).
	ScanInterval time.Duration
	// RetryPolicy overrides River's backoff (attempt^4 seconds); tests shorten it.
	RetryPolicy river.ClientRetryPolicy
	// FetchPollInterval is how often idle workers look for jobs (River's default when zero).
	FetchPollInterval time.Duration
	// JobTimeout bounds one attempt to send (two minutes when zero).
	JobTimeout time.Duration
	// TestOnly is River's setting for tests (no startup delays).
	TestOnly bool
}

// Workers finds due reminders and sends them, through River jobs on PostgreSQL. Any
// number of servers may run them against one database: River elects one leader for the
// periodic scan, the outbox has one row per automatic reminder, and each row has one job.
type Workers struct {
	svc     *Service
	email   EmailSender
	webhook WebhookSender
	log     *slog.Logger
	client  *river.Client[pgx.Tx]
}

// NewWorkers returns the reminder workers of svc; Start runs them.
func NewWorkers(svc *Service, cfg WorkerConfig) (*Workers, error) {
	if cfg.Logger == nil {
		cfg.Logger = svc.log
	}
	if cfg.ScanInterval == 0 {
		cfg.ScanInterval = time.Minute
	}
	if cfg.JobTimeout <= 0 {
		cfg.JobTimeout = 2 * time.Minute
	}
	r := &Workers{svc: svc, email: cfg.Email, webhook: cfg.Webhook, log: cfg.Logger}
	if r.webhook == nil {
		r.webhook = notify.NewWebhook(nil, svc.now)
	}
	workers := river.NewWorkers()
	if err := river.AddWorkerSafely(workers, &sendWorker{r: r}); err != nil {
		return nil, fmt.Errorf("reminders: %w", err)
	}
	if err := river.AddWorkerSafely(workers, &scanWorker{r: r}); err != nil {
		return nil, fmt.Errorf("reminders: %w", err)
	}
	if err := river.AddWorkerSafely(workers, &noticeWorker{r: r}); err != nil {
		return nil, fmt.Errorf("reminders: %w", err)
	}
	var periodic []*river.PeriodicJob
	if cfg.ScanInterval > 0 {
		periodic = append(periodic, river.NewPeriodicJob(river.PeriodicInterval(cfg.ScanInterval),
			func() (river.JobArgs, *river.InsertOpts) { return scanArgs{}, nil }, &river.PeriodicJobOpts{RunOnStart: true}))
	}
	client, err := river.NewClient(riverpgxv5.New(svc.pool), &river.Config{
		Logger:            cfg.Logger,
		Queues:            map[string]river.QueueConfig{reminderQueue: {MaxWorkers: 4}},
		Workers:           workers,
		MaxAttempts:       reminderMaxAttempts,
		RetryPolicy:       cfg.RetryPolicy,
		FetchPollInterval: cfg.FetchPollInterval,
		JobTimeout:        cfg.JobTimeout,
		TestOnly:          cfg.TestOnly,
		PeriodicJobs:      periodic,
	})
	if err != nil {
		return nil, fmt.Errorf("reminders: %w", err)
	}
	r.client = client
	return r, nil
}

// Start runs the workers until Stop.
func (r *Workers) Start(ctx context.Context) error {
	if err := r.client.Start(ctx); err != nil {
		return fmt.Errorf("reminders: start: %w", err)
	}
	return nil
}

// Stop lets running sends finish (until ctx ends) and stops.
func (r *Workers) Stop(ctx context.Context) error {
	if err := r.client.Stop(ctx); err != nil {
		return fmt.Errorf("reminders: stop: %w", err)
	}
	return nil
}

type scanWorker struct {
	river.WorkerDefaults[scanArgs]
	r *Workers
}

func (w *scanWorker) Work(ctx context.Context, _ *river.Job[scanArgs]) error {
	_, err := w.r.Scan(ctx)
	return err
}

// dueTimepoint is a timepoint that wants reminding, as the scan finds it.
type dueTimepoint struct {
	procedure, clinic    uuid.UUID
	key                  string
	opens, closes        time.Time
	windowEnd            time.Time
	tz                   string
	quietStart, quietEnd int64 // seconds since local midnight
	email, phone, hook   string
	queued               []string // kind/channel of the automatic reminders it has had
}

// closingSoonAt is when a window is "about to close": the start of its last local day, or
// for a window of one day or less, half way through it.
func (d dueTimepoint) closingSoonAt(loc *time.Location) time.Time {
	y, m, day := d.windowEnd.Date()
	lastDay := time.Date(y, m, day, 0, 0, 0, 0, loc)
	half := d.opens.Add(d.closes.Sub(d.opens) / 2)
	if lastDay.After(half) {
		return lastDay
	}
	return half
}

// Scan queues every automatic reminder due at the clock's now: an open window of a
// reminding family timepoint with photos missing, of an active procedure with reminders on
// and a link the family can open, outside the clinic's quiet hours. Once the window is about
// to close the reminder is closing-soon (a window-open not sent by then is not sent at all).
// Each reminder gets one outbox row per channel (the unique index makes a second scan, or a
// second server, a no-op) and its job in the same transaction. It returns how many it queued.
//
// The windows are found as ranges that contain now, through the GiST index of
// migrations/00014_reminder_windows.sql: the scan reads the windows open, not every procedure
// and link of every clinic.
func (r *Workers) Scan(ctx context.Context) (int, error) {
	now := r.svc.now()
	rows, err := r.svc.pool.Query(ctx, `select t.procedure_id, p.clinic_id, t.key, t.opens_at, t.closes_at, t.window_end,
			p.time_zone, p.quiet_start, p.quiet_end, p.guardian_email, p.guardian_phone, p.webhook_url,
			array(select r.kind || '/' || r.channel from reminders r where r.procedure_id = t.procedure_id
				and r.timepoint_key = t.key and r.kind <> 'manual')
		from timepoints t
		cross join lateral (
			-- Per open window, its procedure, patient, clinic and settings by their keys. Offset
			-- 0 keeps it so: flattened into the join, the planner would rather hash every active
			-- procedure of every clinic.
			select p.id, p.clinic_id, c.time_zone, pa.guardian_email, pa.guardian_phone, coalesce(rs.webhook_url, '') as webhook_url,
				extract(epoch from coalesce(rs.quiet_start, '21:00'))::bigint as quiet_start,
				extract(epoch from coalesce(rs.quiet_end, '08:00'))::bigint as quiet_end
			from procedures p join patients pa on pa.id = p.patient_id join clinics c on c.id = p.clinic_id
				left join reminder_settings rs on rs.clinic_id = p.clinic_id
			where p.id = t.procedure_id and p.status = 'active' and p.reminders_enabled and `+activeLinkSQL+`
			offset 0) p
		where t.remind and t.who = 'family' and tstzrange(t.opens_at, t.closes_at) @> $1::timestamptz and `+missingPhotosSQL+`
		order by t.opens_at`, now)
	if err != nil {
		return 0, wrap(followup.Unavailable(err), "scan reminders")
	}
	due, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (dueTimepoint, error) {
		var d dueTimepoint
		err := row.Scan(&d.procedure, &d.clinic, &d.key, &d.opens, &d.closes, &d.windowEnd, &d.tz, &d.quietStart, &d.quietEnd,
			&d.email, &d.phone, &d.hook, &d.queued)
		return d, err
	})
	if err != nil {
		return 0, wrap(followup.Unavailable(err), "scan reminders")
	}
	queued := 0
	for _, d := range due {
		loc, err := followup.Zone(d.tz)
		if err != nil {
			r.log.Error("reminders: clinic time zone", "clinic", d.clinic, "err", err)
			continue
		}
		if (quietHours{time.Duration(d.quietStart) * time.Second, time.Duration(d.quietEnd) * time.Second, loc}).quiet(now) {
			continue // the next scan after the quiet hours queues it
		}
		kind := notify.KindWindowOpen
		if !now.Before(d.closingSoonAt(loc)) {
			kind = notify.KindClosingSoon
		}
		for _, ch := range reachable(d.email, d.phone, d.hook, r.email != nil) {
			if slices.Contains(d.queued, kind+"/"+ch) {
				continue // the unique index would refuse it anyway; this spares the transaction
			}
			n, err := r.queue(ctx, d, kind, ch, now)
			if err != nil {
				return queued, err
			}
			queued += n
		}
	}
	return queued, nil
}

// queue inserts one automatic reminder and its job in one transaction, unless it exists.
func (r *Workers) queue(ctx context.Context, d dueTimepoint, kind, channel string, now time.Time) (int, error) {
	n := 0
	err := r.svc.inTx(ctx, func(tx pgx.Tx) error {
		var id uuid.UUID
		err := tx.QueryRow(ctx, `insert into reminders (clinic_id, procedure_id, timepoint_key, kind, channel, send_after,
				created_at, updated_at)
			values ($1, $2, $3, $4, $5, $6, $6, $6)
			on conflict (procedure_id, timepoint_key, kind, channel) where kind <> 'manual' do nothing
			returning id`, d.clinic, d.procedure, d.key, kind, channel, now).Scan(&id)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil // queued before, by this server or another
		}
		if err != nil {
			return followup.Unavailable(err)
		}
		if _, err := r.client.InsertTx(ctx, tx, reminderArgs{ReminderID: id}, nil); err != nil {
			return followup.Unavailable(err)
		}
		n = 1
		return nil
	})
	return n, wrap(err, "queue reminder")
}
