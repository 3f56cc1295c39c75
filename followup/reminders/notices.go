package reminders

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"

	"github.com/dermfollow/dermfollow/followup"
)

// The conversation's notices. Both are queued inside the
// transaction of the message they tell of, so that a message exists if and only if its notice
// does, and both say only that there is something to read:
//
//   - FamilyWrote tells the clinic: an email to the clinic's inbox and a POST to its gateway,
//     with the procedure page's link (message_notices; noticeArgs carries the row's id).
//   - ClinicAnswered tells the family, through the reminder outbox (kind answered), after the
//     clinic's quiet hours, with a fresh link like any reminder.
//
// Each channel has at most one notice per procedure waiting, and a new one waits until
// noticeGap after the last one sent on it: a family writing five messages in a row, or a
// clinician answering in three, makes one notice, and another a quarter of an hour later at
// the earliest. The rows are the durable record of that window.

// noticeGap is the least time between two notices of one procedure on one channel.
const noticeGap = 15 * time.Minute

// noticeArgs is the job that sends one clinic notice; only its id travels.
type noticeArgs struct {
	NoticeID uuid.UUID `json:"notice_id" river:"unique"`
}

func (noticeArgs) Kind() string { return "message_notice_send" }
func (noticeArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{Queue: reminderQueue, MaxAttempts: reminderMaxAttempts, UniqueOpts: river.UniqueOpts{ByArgs: true}}
}

// FamilyWrote queues the clinic's notice of a new family message on a's procedure (a is the
// parent who wrote), in tx, the message's transaction: on each channel the clinic has (an
// inbox, a gateway), unless one is already waiting.
func (s *Service) FamilyWrote(ctx context.Context, tx pgx.Tx, a followup.Actor, procedureID uuid.UUID) error {
	var inbox, hook string
	err := tx.QueryRow(ctx, `select c.message_inbox, coalesce(rs.webhook_url, '') from clinics c
		left join reminder_settings rs on rs.clinic_id = c.id where c.id = $1`, a.ClinicID).Scan(&inbox, &hook)
	if err != nil {
		return wrap(followup.NotFound(err, "clinic"), "notice of a family message")
	}
	var channels []string
	if inbox != "" {
		channels = append(channels, ChannelEmail)
	}
	if hook != "" {
		channels = append(channels, ChannelWebhook)
	}
	if len(channels) == 0 {
		return nil
	}
	inserter, err := s.insertClient()
	if err != nil {
		return err
	}
	now := s.now()
	for _, ch := range channels {
		var id uuid.UUID
		var after time.Time
		err := tx.QueryRow(ctx, `insert into message_notices (clinic_id, procedure_id, channel, send_after, created_at, updated_at)
			select $1, $2, $3, greatest($4, (select max(sent_at) from message_notices
				where procedure_id = $2 and channel = $3 and status = 'sent') + make_interval(secs => $5)), $4, $4
			on conflict (procedure_id, channel) where status = 'queued' do nothing
			returning id, send_after`, a.ClinicID, procedureID, ch, now, noticeGap.Seconds()).Scan(&id, &after)
		if errors.Is(err, pgx.ErrNoRows) {
			continue // one is waiting: it tells of this message too
		}
		if err != nil {
			return wrap(followup.Unavailable(err), "notice of a family message")
		}
		if _, err := inserter.InsertTx(ctx, tx, noticeArgs{NoticeID: id}, &river.InsertOpts{ScheduledAt: after}); err != nil {
			return wrap(followup.Unavailable(err), "notice of a family message")
		}
	}
	return nil
}

// ClinicAnswered queues the family's notice that the clinic answered on a procedure (a reply,
// a note, a retake request by a), in tx, the answer's transaction: one outbox row of kind
// answered on each channel the family can be reached by, not before the end of the clinic's
// quiet hours, unless one is already waiting. A follow-up that is not active, whose reminders
// are off or whose family has no link it can open gets none: there is no page to send them to,
// or the clinic asked that nothing more be sent.
func (s *Service) ClinicAnswered(ctx context.Context, tx pgx.Tx, a followup.Actor, procedureID uuid.UUID) error {
	now := s.now()
	var status, email, phone, hook, tz string
	var enabled, hasLink bool
	var qs, qe int64
	err := tx.QueryRow(ctx, `select p.status, p.reminders_enabled, `+activeLinkSQL+`, pa.guardian_email, pa.guardian_phone,
			coalesce(rs.webhook_url, ''), c.time_zone,
			extract(epoch from coalesce(rs.quiet_start, '21:00'))::bigint, extract(epoch from coalesce(rs.quiet_end, '08:00'))::bigint
		from procedures p join patients pa on pa.id = p.patient_id join clinics c on c.id = p.clinic_id
			left join reminder_settings rs on rs.clinic_id = p.clinic_id
		where p.id = $2 and p.clinic_id = $3`, now, procedureID, a.ClinicID).Scan(&status, &enabled, &hasLink, &email, &phone,
		&hook, &tz, &qs, &qe)
	if err != nil {
		return wrap(followup.NotFound(err, "procedure"), "notice of an answer")
	}
	channels := reachable(email, phone, hook, true)
	if status != followup.StatusActive || !enabled || !hasLink || len(channels) == 0 {
		return nil
	}
	loc, err := followup.Zone(tz)
	if err != nil {
		return fmt.Errorf("reminders: clinic time zone %q: %w", tz, err)
	}
	quiet := quietHours{time.Duration(qs) * time.Second, time.Duration(qe) * time.Second, loc}
	inserter, err := s.insertClient()
	if err != nil {
		return err
	}
	var by *uuid.UUID
	if a.Kind == followup.ActorUser {
		by = &a.ID
	}
	for _, ch := range channels {
		var last *time.Time
		if err := tx.QueryRow(ctx, `select max(sent_at) from reminders where procedure_id = $1 and kind = 'answered'
				and channel = $2 and status = 'sent'`, procedureID, ch).Scan(&last); err != nil {
			return wrap(followup.Unavailable(err), "notice of an answer")
		}
		after := now
		if last != nil && last.Add(noticeGap).After(after) {
			after = last.Add(noticeGap)
		}
		after = quiet.next(after)
		var id uuid.UUID
		err := tx.QueryRow(ctx, `insert into reminders (clinic_id, procedure_id, kind, channel, send_after, created_by, created_at, updated_at)
			values ($1, $2, 'answered', $3, $4, $5, $6, $6)
			on conflict (procedure_id, channel) where kind = 'answered' and status = 'queued' do nothing
			returning id`, a.ClinicID, procedureID, ch, after, by, now).Scan(&id)
		if errors.Is(err, pgx.ErrNoRows) {
			continue // one is waiting: it tells of this answer too
		}
		if err != nil {
			return wrap(followup.Unavailable(err), "notice of an answer")
		}
		if _, err := inserter.InsertTx(ctx, tx, reminderArgs{ReminderID: id}, &river.InsertOpts{ScheduledAt: after}); err != nil {
			return wrap(followup.Unavailable(err), "notice of an answer")
		}
	}
	return nil
}
