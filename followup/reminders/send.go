package reminders

import (
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"

	"github.com/dermfollow/dermfollow/followup"
	"github.com/dermfollow/dermfollow/followup/notify"
)

// SetEnabled turns a procedure's reminders on or off. Off stops everything not yet
// sent, including reminders already queued.
func (s *Service) SetEnabled(ctx context.Context, a followup.Actor, procedureID uuid.UUID, enabled bool) error {
	if err := a.RequireClinical(); err != nil {
		return err
	}
	return wrap(s.inTx(ctx, func(tx pgx.Tx) error {
		p, err := followup.LockProcedure(ctx, tx, a, procedureID)
		if err != nil {
			return err
		}
		if p.RemindersEnabled == enabled {
			return nil
		}
		if _, err := tx.Exec(ctx, `update procedures set reminders_enabled = $2 where id = $1`, procedureID, enabled); err != nil {
			return followup.Unavailable(err)
		}
		return followup.Audit(ctx, tx, a, followup.AuditEvent{Action: AuditRemindersSwitched, TargetKind: "procedure", TargetID: procedureID,
			Detail: map[string]any{"enabled": enabled}})
	}), "switch reminders of procedure %s", procedureID)
}

// Send queues a reminder by hand for a family timepoint with photos missing: the
// earliest open one, else the earliest overdue one (within its grace days), on every channel
// the family can be reached by. Quiet hours still hold: at night it waits for the morning.
func (s *Service) Send(ctx context.Context, a followup.Actor, procedureID uuid.UUID) ([]followup.Reminder, error) {
	if err := a.RequireClinical(); err != nil {
		return nil, err
	}
	inserter, err := s.insertClient()
	if err != nil {
		return nil, err
	}
	now := s.now()
	var out []followup.Reminder
	err = s.inTx(ctx, func(tx pgx.Tx) error {
		p, err := followup.LockProcedure(ctx, tx, a, procedureID)
		if err != nil {
			return err
		}
		if p.Status != followup.StatusActive {
			return followup.Errorf(followup.ECONFLICT, "this procedure is %s: it sends no reminders", p.Status)
		}
		if !p.RemindersEnabled {
			return followup.Errorf(followup.ECONFLICT, "reminders are turned off for this procedure")
		}
		var recent bool
		if err := tx.QueryRow(ctx, `select exists (select 1 from reminders where procedure_id = $1 and kind = 'manual'
				and created_at > $2)`, procedureID, now.Add(-manualReminderGap)).Scan(&recent); err != nil {
			return followup.Unavailable(err)
		}
		if recent {
			return followup.Errorf(followup.ECONFLICT, "a reminder was sent by hand less than %d minutes ago", int(manualReminderGap.Minutes()))
		}
		target, err := manualTarget(ctx, tx, procedureID, now)
		if err != nil {
			return err
		}
		for _, ch := range target.channels {
			m := followup.Reminder{ProcedureID: procedureID, Timepoint: target.key, Kind: notify.KindManual, Channel: ch,
				Recipient: "guardian", Status: followup.ReminderQueued, SendAfter: target.sendAfter, CreatedBy: &a.ID}
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
		return manualReminder{}, followup.Unavailable(err)
	}
	if !hasLink {
		return manualReminder{}, followup.Errorf(followup.ECONFLICT, "the family has no active link: send a parent link first")
	}
	if key == "" {
		return manualReminder{}, followup.Errorf(followup.ECONFLICT, "no photo is due from the family now")
	}
	channels := reachable(email, phone, webhook, true)
	if len(channels) == 0 {
		return manualReminder{}, followup.Errorf(followup.ECONFLICT, "the guardian has no email address (or, with a messaging gateway, phone number) to remind")
	}
	loc, err := followup.Zone(tz)
	if err != nil {
		return manualReminder{}, fmt.Errorf("clinic time zone %q: %w", tz, err)
	}
	sendAfter := quietHours{time.Duration(qs) * time.Second, time.Duration(qe) * time.Second, loc}.next(now)
	return manualReminder{key: key, channels: channels, sendAfter: sendAfter}, nil
}

// queueManual inserts the outbox row of m, a reminder by hand, its job and its audit event,
// and fills in m's id and times.
func queueManual(ctx context.Context, tx pgx.Tx, inserter *river.Client[pgx.Tx], a followup.Actor, m *followup.Reminder, now time.Time) error {
	err := tx.QueryRow(ctx, `insert into reminders (clinic_id, procedure_id, timepoint_key, kind, channel, send_after,
			created_by, created_at, updated_at)
		values ($1, $2, $3, 'manual', $4, $5, $6, $7, $7) returning id, created_at, updated_at`,
		a.ClinicID, m.ProcedureID, m.Timepoint, m.Channel, m.SendAfter, a.ID, now).Scan(&m.ID, &m.CreatedAt, &m.UpdatedAt)
	if err != nil {
		return followup.Unavailable(err)
	}
	if _, err := inserter.InsertTx(ctx, tx, reminderArgs{ReminderID: m.ID}, &river.InsertOpts{ScheduledAt: m.SendAfter}); err != nil {
		return followup.Unavailable(err)
	}
	return followup.Audit(ctx, tx, a, followup.AuditEvent{Action: AuditReminderRequested, TargetKind: "reminder", TargetID: m.ID,
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
