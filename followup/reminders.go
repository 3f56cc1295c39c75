package followup

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"

	"github.com/dermfollow/dermfollow/followup/notify"
)

// Reminder outbox statuses.
const (
	ReminderQueued  = "queued"
	ReminderSent    = "sent"
	ReminderFailed  = "failed"
	ReminderSkipped = "skipped" // by its time there was nothing to remind of (last_error says why)
)

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

// Reminder is one row of a procedure's outbox, as clinicians see it. It never holds the
// message, the link or the address it went to.
type Reminder struct {
	ID          uuid.UUID  `json:"id"`
	ProcedureID uuid.UUID  `json:"procedure_id"`
	Timepoint   string     `json:"timepoint"`
	Kind        string     `json:"kind"`    // window-open, closing-soon, manual
	Channel     string     `json:"channel"` // email, webhook
	Recipient   string     `json:"recipient"`
	Status      string     `json:"status"` // queued, sent, failed, skipped
	Attempts    int        `json:"attempts"`
	LastError   string     `json:"last_error,omitempty"`
	SendAfter   time.Time  `json:"send_after"`
	CreatedBy   *uuid.UUID `json:"created_by,omitempty"`
	CreatedAt   time.Time  `json:"created_at"`
	UpdatedAt   time.Time  `json:"updated_at"`
	SentAt      *time.Time `json:"sent_at,omitempty"`
}

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

// Reminders lists a procedure's reminder outbox, newest first.
func (s *Service) Reminders(ctx context.Context, a Actor, procedureID uuid.UUID) ([]Reminder, error) {
	if err := a.requireClinical(); err != nil {
		return nil, err
	}
	var out []Reminder
	b := &pgx.Batch{}
	queueProcedure(b, a, procedureID, &Procedure{})
	queueReminders(b, a.ClinicID, procedureID, &out)
	if err := s.sendBatch(ctx, b); err != nil {
		return nil, wrap(err, "reminders of procedure %s", procedureID)
	}
	return out, nil
}

func queueReminders(b *pgx.Batch, clinic, procedureID uuid.UUID, dst *[]Reminder) {
	queueRows(b, dst, func(r pgx.CollectableRow) (Reminder, error) {
		var m Reminder
		err := r.Scan(&m.ID, &m.ProcedureID, &m.Timepoint, &m.Kind, &m.Channel, &m.Recipient, &m.Status, &m.Attempts,
			&m.LastError, &m.SendAfter, &m.CreatedBy, &m.CreatedAt, &m.UpdatedAt, &m.SentAt)
		return m, err
	}, `select id, procedure_id, timepoint_key, kind, channel, recipient_kind, status, attempts,
			last_error, send_after, created_by, created_at, updated_at, sent_at
		from reminders where procedure_id = $1 and clinic_id = $2 order by created_at desc, channel`, procedureID, clinic)
}

// SetRemindersEnabled turns a procedure's reminders on or off. Off stops everything not yet
// sent, including reminders already queued.
func (s *Service) SetRemindersEnabled(ctx context.Context, a Actor, procedureID uuid.UUID, enabled bool) error {
	if err := a.requireClinical(); err != nil {
		return err
	}
	return wrap(s.inTx(ctx, func(tx pgx.Tx) error {
		p, err := s.procedure(ctx, tx, a, procedureID, true)
		if err != nil {
			return err
		}
		if p.RemindersEnabled == enabled {
			return nil
		}
		if _, err := tx.Exec(ctx, `update procedures set reminders_enabled = $2 where id = $1`, procedureID, enabled); err != nil {
			return unavailable(err)
		}
		return audit(ctx, tx, a, AuditEvent{Action: AuditRemindersSwitched, TargetKind: "procedure", TargetID: procedureID,
			Detail: map[string]any{"enabled": enabled}})
	}), "switch reminders of procedure %s", procedureID)
}

// SendReminder queues a reminder by hand for a family timepoint with photos missing: the
// earliest open one, else the earliest overdue one (within its grace days), on every channel
// the family can be reached by. Quiet hours still hold: at night it waits for the morning.
func (s *Service) SendReminder(ctx context.Context, a Actor, procedureID uuid.UUID) ([]Reminder, error) {
	if err := a.requireClinical(); err != nil {
		return nil, err
	}
	inserter, err := s.insertClient()
	if err != nil {
		return nil, err
	}
	now := s.now()
	var out []Reminder
	err = s.inTx(ctx, func(tx pgx.Tx) error {
		p, err := s.procedure(ctx, tx, a, procedureID, true)
		if err != nil {
			return err
		}
		if p.Status != StatusActive {
			return Errorf(ECONFLICT, "this procedure is %s: it sends no reminders", p.Status)
		}
		if !p.RemindersEnabled {
			return Errorf(ECONFLICT, "reminders are turned off for this procedure")
		}
		var recent bool
		if err := tx.QueryRow(ctx, `select exists (select 1 from reminders where procedure_id = $1 and kind = 'manual'
				and created_at > $2)`, procedureID, now.Add(-manualReminderGap)).Scan(&recent); err != nil {
			return unavailable(err)
		}
		if recent {
			return Errorf(ECONFLICT, "a reminder was sent by hand less than %d minutes ago", int(manualReminderGap.Minutes()))
		}
		target, err := manualTarget(ctx, tx, procedureID, now)
		if err != nil {
			return err
		}
		for _, ch := range target.channels {
			m := Reminder{ProcedureID: procedureID, Timepoint: target.key, Kind: notify.KindManual, Channel: ch,
				Recipient: "guardian", Status: ReminderQueued, SendAfter: target.sendAfter, CreatedBy: &a.ID}
			if err := queueManual(ctx, tx, inserter, a, &m, now); err != nil {
				return err
			}
			out = append(out, m)
		}
		return nil
	})
	if err != nil {
		return nil, wrap(err, "send reminder for procedure %s", procedureID)
	}
	return out, nil
}

// manualReminder is where and when a reminder sent by hand goes.
type manualReminder struct {
	key       string // the timepoint
	channels  []string
	sendAfter time.Time
}

// manualTarget finds the timepoint a reminder by hand is for, the channels that reach the
// family and the end of the clinic's quiet hours; a conflict says why there is none.
func manualTarget(ctx context.Context, tx pgx.Tx, procedureID uuid.UUID, now time.Time) (manualReminder, error) {
	var key, email, phone, webhook, tz string
	var hasLink bool
	var qs, qe int64
	err := tx.QueryRow(ctx, `select coalesce((select t.key from timepoints t where t.procedure_id = p.id and t.who = 'family'
				and t.opens_at <= $1 and $1 < t.grace_ends_at and `+missingPhotosSQL+`
				order by t.closes_at <= $1, t.position limit 1), ''),
			pa.guardian_email, pa.guardian_phone, coalesce(rs.webhook_url, ''), c.time_zone,
			extract(epoch from coalesce(rs.quiet_start, '21:00'))::bigint, extract(epoch from coalesce(rs.quiet_end, '08:00'))::bigint, `+activeLinkSQL+`
		from procedures p join patients pa on pa.id = p.patient_id join clinics c on c.id = p.clinic_id
			left join reminder_settings rs on rs.clinic_id = p.clinic_id
		where p.id = $2`, now, procedureID).Scan(&key, &email, &phone, &webhook, &tz, &qs, &qe, &hasLink)
	if err != nil {
		return manualReminder{}, unavailable(err)
	}
	if !hasLink {
		return manualReminder{}, Errorf(ECONFLICT, "the family has no active link: send a parent link first")
	}
	if key == "" {
		return manualReminder{}, Errorf(ECONFLICT, "no photo is due from the family now")
	}
	channels := reachable(email, phone, webhook, true)
	if len(channels) == 0 {
		return manualReminder{}, Errorf(ECONFLICT, "the guardian has no email address (or, with a messaging gateway, phone number) to remind")
	}
	loc, err := zone(tz)
	if err != nil {
		return manualReminder{}, fmt.Errorf("clinic time zone %q: %w", tz, err)
	}
	sendAfter := quietHours{time.Duration(qs) * time.Second, time.Duration(qe) * time.Second, loc}.next(now)
	return manualReminder{key: key, channels: channels, sendAfter: sendAfter}, nil
}

// queueManual inserts the outbox row of m, a reminder by hand, its job and its audit event,
// and fills in m's id and times.
func queueManual(ctx context.Context, tx pgx.Tx, inserter *river.Client[pgx.Tx], a Actor, m *Reminder, now time.Time) error {
	err := tx.QueryRow(ctx, `insert into reminders (clinic_id, procedure_id, timepoint_key, kind, channel, send_after,
			created_by, created_at, updated_at)
		values ($1, $2, $3, 'manual', $4, $5, $6, $7, $7) returning id, created_at, updated_at`,
		a.ClinicID, m.ProcedureID, m.Timepoint, m.Channel, m.SendAfter, a.ID, now).Scan(&m.ID, &m.CreatedAt, &m.UpdatedAt)
	if err != nil {
		return unavailable(err)
	}
	if _, err := inserter.InsertTx(ctx, tx, reminderArgs{ReminderID: m.ID}, &river.InsertOpts{ScheduledAt: m.SendAfter}); err != nil {
		return unavailable(err)
	}
	return audit(ctx, tx, a, AuditEvent{Action: AuditReminderRequested, TargetKind: "reminder", TargetID: m.ID,
		Detail: map[string]any{"procedure": m.ProcedureID, "timepoint": m.Timepoint, "channel": m.Channel}})
}

// reachable lists the channels a guardian can be reached on: email with an address, the
// clinic's gateway with a phone number.
func reachable(email, phone, webhookURL string, emailOn bool) []string {
	var out []string
	if email != "" && emailOn {
		out = append(out, ChannelEmail)
	}
	if phone != "" && webhookURL != "" {
		out = append(out, ChannelWebhook)
	}
	return out
}

// ReminderSettings are a clinic's reminder channels and quiet hours.
type ReminderSettings struct {
	// WebhookURL and WebhookSecret configure an SMS or messaging gateway; both empty: none.
	WebhookURL    string `json:"webhook_url"`
	WebhookSecret string `json:"webhook_secret,omitempty"`
	// QuietStart and QuietEnd are local times "HH:MM"; no messages from start to end.
	QuietStart string `json:"quiet_start"`
	QuietEnd   string `json:"quiet_end"`
}

// ClinicReminderSettings returns the actor's clinic's reminder settings, without the
// webhook secret (write-only).
func (s *Service) ClinicReminderSettings(ctx context.Context, a Actor) (ReminderSettings, error) {
	if err := a.requireClinical(); err != nil {
		return ReminderSettings{}, err
	}
	out := ReminderSettings{QuietStart: "21:00", QuietEnd: "08:00"}
	err := s.pool.QueryRow(ctx, `select webhook_url, to_char(quiet_start, 'HH24:MI'), to_char(quiet_end, 'HH24:MI')
		from reminder_settings where clinic_id = $1`, a.ClinicID).Scan(&out.WebhookURL, &out.QuietStart, &out.QuietEnd)
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return ReminderSettings{}, wrap(unavailable(err), "reminder settings")
	}
	return out, nil
}

// SetReminderSettings changes a clinic's reminder settings (admins only). A gateway URL must
// be https and the secret long enough, or the change is refused with the reason.
func (s *Service) SetReminderSettings(ctx context.Context, a Actor, in ReminderSettings) (ReminderSettings, error) {
	if !a.IsUser(RoleAdmin) {
		if a.Kind != ActorUser {
			return ReminderSettings{}, Errorf(EUNAUTHORIZED, "sign in first")
		}
		return ReminderSettings{}, Errorf(EFORBIDDEN, "only an admin can change reminder settings")
	}
	if in.WebhookURL != "" || in.WebhookSecret != "" {
		if err := notify.CheckEndpoint(notify.Endpoint{URL: in.WebhookURL, Secret: in.WebhookSecret}); err != nil {
			return ReminderSettings{}, &Error{Code: EINVALID, Message: err.Error()}
		}
	}
	if in.QuietStart == "" && in.QuietEnd == "" {
		in.QuietStart, in.QuietEnd = "21:00", "08:00"
	}
	for i, v := range []string{in.QuietStart, in.QuietEnd} {
		if _, err := time.Parse("15:04", v); err != nil {
			return ReminderSettings{}, invalidField([]string{"quiet_start", "quiet_end"}[i], "must be a time of day as HH:MM")
		}
	}
	sealed := ""
	if in.WebhookSecret != "" {
		var err error
		if sealed, err = s.sealWebhookSecret(a.ClinicID, in.WebhookSecret); err != nil {
			return ReminderSettings{}, wrap(err, "reminder settings")
		}
	}
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `insert into reminder_settings (clinic_id, webhook_url, webhook_secret, quiet_start, quiet_end)
			values ($1, $2, $3, $4, $5)
			on conflict (clinic_id) do update set webhook_url = $2, webhook_secret = $3, quiet_start = $4, quiet_end = $5,
				updated_at = now()`, a.ClinicID, in.WebhookURL, sealed, in.QuietStart, in.QuietEnd)
		if err != nil {
			return unavailable(err)
		}
		return audit(ctx, tx, a, AuditEvent{Action: AuditReminderSettings, TargetKind: "clinic", TargetID: a.ClinicID,
			Detail: map[string]any{"webhook": in.WebhookURL != "", "quiet_start": in.QuietStart, "quiet_end": in.QuietEnd}})
	})
	if err != nil {
		return ReminderSettings{}, wrap(err, "reminder settings")
	}
	in.WebhookSecret = "" // write-only
	return in, nil
}

// EmailSender delivers a reminder by email (notify.Email).
type EmailSender interface {
	SendEmail(ctx context.Context, m notify.Message) error
}

// WebhookSender delivers a reminder to a clinic's gateway (notify.Webhook).
type WebhookSender interface {
	SendWebhook(ctx context.Context, ep notify.Endpoint, m notify.Message) error
}

// ReminderConfig configures the reminder workers.
type ReminderConfig struct {
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

// ReminderWorkers finds due reminders and sends them, through River jobs on PostgreSQL. Any
// number of servers may run them against one database: River elects one leader for the
// periodic scan, the outbox has one row per automatic reminder, and each row has one job.
type ReminderWorkers struct {
	svc     *Service
	email   EmailSender
	webhook WebhookSender
	log     *slog.Logger
	client  *river.Client[pgx.Tx]
}

// NewReminders returns the reminder workers of svc; Start runs them.
func NewReminders(svc *Service, cfg ReminderConfig) (*ReminderWorkers, error) {
	if cfg.Logger == nil {
		cfg.Logger = svc.log
	}
	if cfg.ScanInterval == 0 {
		cfg.ScanInterval = time.Minute
	}
	if cfg.JobTimeout <= 0 {
		cfg.JobTimeout = 2 * time.Minute
	}
	r := &ReminderWorkers{svc: svc, email: cfg.Email, webhook: cfg.Webhook, log: cfg.Logger}
	if r.webhook == nil {
		r.webhook = notify.NewWebhook(nil, svc.now)
	}
	workers := river.NewWorkers()
	if err := river.AddWorkerSafely(workers, &sendWorker{r: r}); err != nil {
		return nil, fmt.Errorf("followup: reminders: %w", err)
	}
	if err := river.AddWorkerSafely(workers, &scanWorker{r: r}); err != nil {
		return nil, fmt.Errorf("followup: reminders: %w", err)
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
		return nil, fmt.Errorf("followup: reminders: %w", err)
	}
	r.client = client
	return r, nil
}

// Start runs the workers until Stop.
func (r *ReminderWorkers) Start(ctx context.Context) error {
	if err := r.client.Start(ctx); err != nil {
		return fmt.Errorf("followup: start reminders: %w", err)
	}
	return nil
}

// Stop lets running sends finish (until ctx ends) and stops.
func (r *ReminderWorkers) Stop(ctx context.Context) error {
	if err := r.client.Stop(ctx); err != nil {
		return fmt.Errorf("followup: stop reminders: %w", err)
	}
	return nil
}

type scanWorker struct {
	river.WorkerDefaults[scanArgs]
	r *ReminderWorkers
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
func (r *ReminderWorkers) Scan(ctx context.Context) (int, error) {
	now := r.svc.now()
	rows, err := r.svc.pool.Query(ctx, `select t.procedure_id, p.clinic_id, t.key, t.opens_at, t.closes_at, t.window_end,
			c.time_zone, extract(epoch from coalesce(rs.quiet_start, '21:00'))::bigint, extract(epoch from coalesce(rs.quiet_end, '08:00'))::bigint,
			pa.guardian_email, pa.guardian_phone, coalesce(rs.webhook_url, ''),
			array(select r.kind || '/' || r.channel from reminders r where r.procedure_id = t.procedure_id
				and r.timepoint_key = t.key and r.kind <> 'manual')
		from timepoints t join procedures p on p.id = t.procedure_id
			join patients pa on pa.id = p.patient_id join clinics c on c.id = p.clinic_id
			left join reminder_settings rs on rs.clinic_id = p.clinic_id
		where t.remind and t.who = 'family' and t.opens_at <= $1 and $1 < t.closes_at
			and p.status = 'active' and p.reminders_enabled and `+activeLinkSQL+` and `+missingPhotosSQL+`
		order by t.opens_at`, now)
	if err != nil {
		return 0, wrap(unavailable(err), "scan reminders")
	}
	due, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (dueTimepoint, error) {
		var d dueTimepoint
		err := row.Scan(&d.procedure, &d.clinic, &d.key, &d.opens, &d.closes, &d.windowEnd, &d.tz, &d.quietStart, &d.quietEnd,
			&d.email, &d.phone, &d.hook, &d.queued)
		return d, err
	})
	if err != nil {
		return 0, wrap(unavailable(err), "scan reminders")
	}
	queued := 0
	for _, d := range due {
		loc, err := zone(d.tz)
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
func (r *ReminderWorkers) queue(ctx context.Context, d dueTimepoint, kind, channel string, now time.Time) (int, error) {
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
			return unavailable(err)
		}
		if _, err := r.client.InsertTx(ctx, tx, reminderArgs{ReminderID: id}, nil); err != nil {
			return unavailable(err)
		}
		n = 1
		return nil
	})
	return n, wrap(err, "queue reminder")
}

type sendWorker struct {
	river.WorkerDefaults[reminderArgs]
	r *ReminderWorkers
}

func (w *sendWorker) Work(ctx context.Context, job *river.Job[reminderArgs]) error {
	return w.r.send(ctx, job.Args.ReminderID, job.Attempt >= job.MaxAttempts)
}

// pending is an outbox row with what sending it needs, read under the row's lock.
type pending struct {
	clinic, procedure     uuid.UUID
	key, kind, channel    string
	status                string
	sendAfter             time.Time
	procStatus            string
	enabled, hasLink      bool
	missing               bool
	closes                time.Time
	email, phone, lang    string
	dueOn, windowEnd      time.Time
	hookURL, sealedSecret string
}

// attempt is one run of a reminder's job: the row as claimed, and the link it carries.
type attempt struct {
	pending
	id     uuid.UUID
	now    time.Time
	linkID uuid.UUID
	token  string
}

// send delivers one outbox row. Its link: parent tokens are kept only as hashes, so a
// reminder cannot repeat the link the family was given. Each attempt makes a fresh link (an
// ordinary parent link, expiring like the others; the family's other links stay valid, since
// it may still use them), revokes it again if the attempt fails, and revokes the link of an
// earlier attempt that never recorded its outcome: one reminder leaves one live link at most.
// Storing tokens encrypted instead would keep a way back to every token in the database; this
// keeps none.
//
// Delivery is at least once: a crash after the server accepted a message and before the row
// is marked sent repeats it (the Message-ID and the webhook's delivery id stay the same, so
// receivers can drop the repeat).
func (r *ReminderWorkers) send(ctx context.Context, id uuid.UUID, lastAttempt bool) error {
	a, err := r.claim(ctx, id)
	if err != nil {
		return wrap(err, "send reminder %s", id)
	}
	if a.status != ReminderQueued {
		return nil // sent, failed or skipped, before or by this claim: nothing twice
	}
	if a.now.Before(a.sendAfter) {
		return river.JobSnooze(a.sendAfter.Sub(a.now))
	}
	sendErr := r.deliver(ctx, a)
	if err := r.record(ctx, a, sendErr, lastAttempt); err != nil {
		return wrap(err, "record reminder %s", id)
	}
	if sendErr == nil {
		return nil
	}
	reason := notify.Reason(sendErr)
	r.log.Warn("reminder not delivered", "reminder", id, "channel", a.channel, "reason", reason)
	if notify.IsPermanent(sendErr) {
		return river.JobCancel(errors.New(reason))
	}
	return errors.New(reason) // River retries with backoff
}

// claim reads a reminder under its row's lock and, if it is due, either settles it (skipped
// or failed, with the reason, when it is not to be sent) or readies an attempt: the link of
// an earlier attempt revoked, a new link made, the attempt counted.
func (r *ReminderWorkers) claim(ctx context.Context, id uuid.UUID) (attempt, error) {
	s := r.svc
	a := attempt{id: id, now: s.now()}
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		var err error
		if a.pending, err = lockPending(ctx, tx, id, a.now); err != nil {
			return err
		}
		if a.status != ReminderQueued || a.now.Before(a.sendAfter) {
			return nil
		}
		if status, reason := a.refusal(a.now, r.email != nil); status != "" {
			a.status = status
			_, err := tx.Exec(ctx, `update reminders set status = $2, last_error = $3, updated_at = $4 where id = $1`,
				id, status, reason, a.now)
			return unavailable(err)
		}
		if err := revokeEarlierLink(ctx, tx, a.clinic, a.procedure, id, a.now); err != nil {
			return err
		}
		if a.linkID, a.token, err = s.reminderLink(ctx, tx, a.clinic, a.procedure, id, a.now); err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `update reminders set attempts = attempts + 1, parent_link_id = $2, updated_at = $3 where id = $1`,
			id, a.linkID, a.now)
		return unavailable(err)
	})
	return a, err
}

// lockPending reads an outbox row, locked, with what deciding and sending need.
func lockPending(ctx context.Context, tx pgx.Tx, id uuid.UUID, now time.Time) (pending, error) {
	var p pending
	err := tx.QueryRow(ctx, `select r.clinic_id, r.procedure_id, r.timepoint_key, r.kind, r.channel, r.status, r.send_after,
			p.status, p.reminders_enabled, `+activeLinkSQL+`, `+missingPhotosSQL+`, t.closes_at,
			pa.guardian_email, pa.guardian_phone, pa.preferred_language, t.due_on, t.window_end,
			coalesce(rs.webhook_url, ''), coalesce(rs.webhook_secret, '')
		from reminders r join procedures p on p.id = r.procedure_id
			join timepoints t on t.procedure_id = r.procedure_id and t.key = r.timepoint_key
			join patients pa on pa.id = p.patient_id
			left join reminder_settings rs on rs.clinic_id = r.clinic_id
		where r.id = $2 for update of r`, now, id).Scan(&p.clinic, &p.procedure, &p.key, &p.kind, &p.channel, &p.status,
		&p.sendAfter, &p.procStatus, &p.enabled, &p.hasLink, &p.missing, &p.closes, &p.email, &p.phone, &p.lang,
		&p.dueOn, &p.windowEnd, &p.hookURL, &p.sealedSecret)
	return p, notFound(err, "reminder")
}

// refusal says why a due reminder is not to be sent at now: skipped when there is nothing
// (any more) to remind of, failed when it cannot be delivered. An empty status: send it.
func (p pending) refusal(now time.Time, emailOn bool) (status, reason string) {
	switch {
	case p.procStatus != StatusActive:
		return ReminderSkipped, "the procedure is " + p.procStatus
	case !p.enabled:
		return ReminderSkipped, "reminders are turned off for this procedure"
	case !p.missing:
		return ReminderSkipped, "the photos have arrived"
	case !p.hasLink:
		return ReminderSkipped, "the family has no active link"
	case p.kind != notify.KindManual && !now.Before(p.closes):
		return ReminderSkipped, "the window closed before it could be sent"
	case p.channel == ChannelEmail && p.email == "":
		return ReminderFailed, "the guardian has no email address"
	case p.channel == ChannelEmail && !emailOn:
		return ReminderFailed, "email is not configured on this server"
	case p.channel == ChannelWebhook && (p.hookURL == "" || p.phone == ""):
		return ReminderFailed, "no messaging gateway or phone number"
	}
	return "", ""
}

// deliver hands the attempt's message to its channel.
func (r *ReminderWorkers) deliver(ctx context.Context, a attempt) error {
	m := notify.Message{ID: a.id.String(), Language: a.lang, Link: r.svc.baseURL + "/p/" + a.token, Kind: a.kind,
		DueOn: a.dueOn.Format(time.DateOnly), LastDay: a.windowEnd.Format(time.DateOnly)}
	switch a.channel {
	case ChannelEmail:
		m.To = a.email
		return r.email.SendEmail(ctx, m)
	case ChannelWebhook:
		m.To = a.phone
		secret, err := r.svc.openWebhookSecret(a.clinic, a.sealedSecret)
		if err != nil {
			return &notify.Error{Reason: "the webhook secret cannot be read: set it again", Permanent: true, Err: err}
		}
		return r.webhook.SendWebhook(ctx, notify.Endpoint{URL: a.hookURL, Secret: secret}, m)
	}
	return &notify.Error{Reason: "unknown channel " + a.channel, Permanent: true, Err: errors.ErrUnsupported}
}

// recordTimeout bounds the transaction that records an attempt's outcome.
const recordTimeout = 15 * time.Second

// record writes what an attempt came to: sent, or not delivered with its link revoked. It
// runs detached from the job's context, every statement of it: the message may have left
// after that context ended (go-mail honours it only while dialling, so a send in progress
// reports success late), and a "sent" that fails to land makes River send the message again.
func (r *ReminderWorkers) record(jobCtx context.Context, a attempt, sendErr error, lastAttempt bool) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(jobCtx), recordTimeout)
	defer cancel()
	done := r.svc.now()
	return r.svc.inTx(ctx, func(tx pgx.Tx) error {
		if sendErr == nil {
			_, err := tx.Exec(ctx, `update reminders set status = 'sent', sent_at = $2, updated_at = $2, last_error = ''
				where id = $1`, a.id, done)
			return unavailable(err)
		}
		// The message most likely never arrived: its link must not stay open.
		if _, err := tx.Exec(ctx, `update parent_links set revoked_at = $2 where id = $1 and revoked_at is null`, a.linkID, done); err != nil {
			return unavailable(err)
		}
		if err := audit(ctx, tx, SystemActor(a.clinic), AuditEvent{Action: AuditLinkRevoked, TargetKind: "parent_link",
			TargetID: a.linkID, Detail: map[string]any{"procedure": a.procedure, "reminder": a.id, "unsent": true}}); err != nil {
			return err
		}
		status := ReminderQueued
		if lastAttempt || notify.IsPermanent(sendErr) {
			status = ReminderFailed
		}
		_, err := tx.Exec(ctx, `update reminders set status = $2, last_error = $3, updated_at = $4 where id = $1`,
			a.id, status, truncate(notify.Reason(sendErr), 300), done)
		return unavailable(err)
	})
}

func truncate(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n])
}

// revokeEarlierLink revokes the link an earlier attempt of a still queued reminder made, if
// it is live: that attempt never recorded its outcome (it died, or the record did not land),
// so its message may or may not have reached the family. The attempt about to run carries a
// new link; without this each such attempt would leave one more live link behind.
func revokeEarlierLink(ctx context.Context, tx pgx.Tx, clinic, procedure, reminder uuid.UUID, now time.Time) error {
	var link uuid.UUID
	err := tx.QueryRow(ctx, `update parent_links l set revoked_at = $2 from reminders r
		where r.id = $1 and l.id = r.parent_link_id and l.revoked_at is null returning l.id`, reminder, now).Scan(&link)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil
	}
	if err != nil {
		return unavailable(err)
	}
	return audit(ctx, tx, SystemActor(clinic), AuditEvent{Action: AuditLinkRevoked, TargetKind: "parent_link", TargetID: link,
		Detail: map[string]any{"procedure": procedure, "reminder": reminder, "superseded": true}})
}

// reminderLink makes a fresh parent link for one reminder, expiring like the links
// clinicians make, and audits it as the system's.
func (s *Service) reminderLink(ctx context.Context, tx pgx.Tx, clinic, procedure, reminder uuid.UUID, now time.Time) (uuid.UUID, string, error) {
	var lastGrace time.Time
	if err := tx.QueryRow(ctx, `select coalesce(max(grace_ends_at), $2) from timepoints where procedure_id = $1`,
		procedure, now).Scan(&lastGrace); err != nil {
		return uuid.Nil, "", unavailable(err)
	}
	expires := lastGrace.Add(LinkGrace)
	if expires.Before(now.Add(7 * 24 * time.Hour)) {
		expires = now.Add(7 * 24 * time.Hour)
	}
	token := newToken()
	var id uuid.UUID
	err := tx.QueryRow(ctx, `insert into parent_links (clinic_id, procedure_id, token_hash, expires_at, created_at)
		values ($1, $2, $3, $4, $5) returning id`, clinic, procedure, tokenHash(token), expires, now).Scan(&id)
	if err != nil {
		return uuid.Nil, "", unavailable(err)
	}
	err = audit(ctx, tx, SystemActor(clinic), AuditEvent{Action: AuditLinkCreated, TargetKind: "parent_link", TargetID: id,
		Detail: map[string]any{"procedure": procedure, "reminder": reminder}})
	return id, token, err
}

// Webhook secrets are kept sealed (AES-256-GCM under a key derived from the server's secret
// key, bound to the clinic), so a copy of the database alone cannot sign gateway requests.
const webhookSecretInfo = "dermfollow reminder webhook secret v1"

func (s *Service) webhookAEAD() (cipher.AEAD, error) {
	key, err := hkdf.Key(sha256.New, s.secretKey, nil, webhookSecretInfo, 32)
	if err != nil {
		return nil, err
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

func (s *Service) sealWebhookSecret(clinic uuid.UUID, secret string) (string, error) {
	aead, err := s.webhookAEAD()
	if err != nil {
		return "", err
	}
	nonce := make([]byte, aead.NonceSize())
	rand.Read(nonce)
	return base64.RawStdEncoding.EncodeToString(aead.Seal(nonce, nonce, []byte(secret), clinic[:])), nil
}

func (s *Service) openWebhookSecret(clinic uuid.UUID, sealed string) (string, error) {
	raw, err := base64.RawStdEncoding.DecodeString(sealed)
	if err != nil {
		return "", err
	}
	aead, err := s.webhookAEAD()
	if err != nil {
		return "", err
	}
	if len(raw) < aead.NonceSize() {
		return "", errors.New("sealed secret too short")
	}
	plain, err := aead.Open(nil, raw[:aead.NonceSize()], raw[aead.NonceSize():], clinic[:])
	return string(plain), err
}
