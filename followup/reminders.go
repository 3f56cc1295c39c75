package followup

import (
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"

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
