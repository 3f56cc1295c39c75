package reminders

import (
	"context"
	"errors"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"

	"github.com/dermfollow/dermfollow/followup"
	"github.com/dermfollow/dermfollow/followup/notify"
)

type sendWorker struct {
	river.WorkerDefaults[reminderArgs]
	r *Workers
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
func (r *Workers) send(ctx context.Context, id uuid.UUID, lastAttempt bool) error {
	a, err := r.claim(ctx, id)
	if err != nil {
		return wrap(err, "send reminder %s", id)
	}
	if a.status != followup.ReminderQueued {
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
func (r *Workers) claim(ctx context.Context, id uuid.UUID) (attempt, error) {
	s := r.svc
	a := attempt{id: id, now: s.now()}
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		var err error
		if a.pending, err = lockPending(ctx, tx, id, a.now); err != nil {
			return err
		}
		if a.status != followup.ReminderQueued || a.now.Before(a.sendAfter) {
			return nil
		}
		if status, reason := a.refusal(a.now, r.email != nil); status != "" {
			a.status = status
			_, err := tx.Exec(ctx, `update reminders set status = $2, last_error = $3, updated_at = $4 where id = $1`,
				id, status, reason, a.now)
			return followup.Unavailable(err)
		}
		if err := revokeEarlierLink(ctx, tx, a.clinic, a.procedure, id, a.now); err != nil {
			return err
		}
		if a.linkID, a.token, err = followup.MakeParentLink(ctx, tx, a.clinic, a.procedure, a.now, map[string]any{"reminder": id}); err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `update reminders set attempts = attempts + 1, parent_link_id = $2, updated_at = $3 where id = $1`,
			id, a.linkID, a.now)
		return followup.Unavailable(err)
	})
	return a, err
}

// lockPending reads an outbox row, locked, with what deciding and sending need.
func lockPending(ctx context.Context, tx pgx.Tx, id uuid.UUID, now time.Time) (pending, error) {
	var p pending
	// A notice that the clinic answered (kind answered) is about no step: it has no timepoint,
	// photos missing or window, and the dates it would carry are the epoch, unused.
	err := tx.QueryRow(ctx, `select r.clinic_id, r.procedure_id, coalesce(r.timepoint_key, ''), r.kind, r.channel, r.status,
			r.send_after, p.status, p.reminders_enabled, `+activeLinkSQL+`, `+missingPhotosSQL+`,
			coalesce(t.closes_at, 'epoch'), pa.guardian_email, pa.guardian_phone, pa.preferred_language,
			coalesce(t.due_on, 'epoch'), coalesce(t.window_end, 'epoch'), coalesce(rs.webhook_url, ''), coalesce(rs.webhook_secret, '')
		from reminders r join procedures p on p.id = r.procedure_id
			left join timepoints t on t.procedure_id = r.procedure_id and t.key = r.timepoint_key
			join patients pa on pa.id = p.patient_id
			left join reminder_settings rs on rs.clinic_id = r.clinic_id
		where r.id = $2 for update of r`, now, id).Scan(&p.clinic, &p.procedure, &p.key, &p.kind, &p.channel, &p.status,
		&p.sendAfter, &p.procStatus, &p.enabled, &p.hasLink, &p.missing, &p.closes, &p.email, &p.phone, &p.lang,
		&p.dueOn, &p.windowEnd, &p.hookURL, &p.sealedSecret)
	return p, followup.NotFound(err, "reminder")
}

// refusal says why a due reminder is not to be sent at now: skipped when there is nothing
// (any more) to remind of, failed when it cannot be delivered. An empty status: send it.
func (p pending) refusal(now time.Time, emailOn bool) (status, reason string) {
	switch {
	case p.procStatus != followup.StatusActive:
		return followup.ReminderSkipped, "the procedure is " + p.procStatus
	case !p.enabled:
		return followup.ReminderSkipped, "reminders are turned off for this procedure"
	case !p.missing && p.kind != notify.KindAnswered:
		return followup.ReminderSkipped, "the photos have arrived"
	case !p.hasLink:
		return followup.ReminderSkipped, "the family has no active link"
	case p.kind != notify.KindManual && p.kind != notify.KindAnswered && !now.Before(p.closes):
		return followup.ReminderSkipped, "the window closed before it could be sent"
	case p.channel == ChannelEmail && p.email == "":
		return followup.ReminderFailed, "the guardian has no email address"
	case p.channel == ChannelEmail && !emailOn:
		return followup.ReminderFailed, "email is not configured on this server"
	case p.channel == ChannelWebhook && (p.hookURL == "" || p.phone == ""):
		return followup.ReminderFailed, "no messaging gateway or phone number"
	}
	return "", ""
}

// deliver hands the attempt's message to its channel.
func (r *Workers) deliver(ctx context.Context, a attempt) error {
	m := notify.Message{ID: a.id.String(), Language: a.lang, Link: r.svc.baseURL + "/p/" + a.token, Kind: a.kind}
	if a.kind != notify.KindAnswered {
		m.DueOn, m.LastDay = a.dueOn.Format(time.DateOnly), a.windowEnd.Format(time.DateOnly)
	}
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
func (r *Workers) record(jobCtx context.Context, a attempt, sendErr error, lastAttempt bool) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(jobCtx), recordTimeout)
	defer cancel()
	done := r.svc.now()
	return r.svc.inTx(ctx, func(tx pgx.Tx) error {
		if sendErr == nil {
			_, err := tx.Exec(ctx, `update reminders set status = 'sent', sent_at = $2, updated_at = $2, last_error = ''
				where id = $1`, a.id, done)
			return followup.Unavailable(err)
		}
		// The message most likely never arrived: its link must not stay open.
		if _, err := tx.Exec(ctx, `update parent_links set revoked_at = $2 where id = $1 and revoked_at is null`, a.linkID, done); err != nil {
			return followup.Unavailable(err)
		}
		if err := followup.Audit(ctx, tx, followup.SystemActor(a.clinic), followup.AuditEvent{Action: followup.AuditLinkRevoked, TargetKind: "parent_link",
			TargetID: a.linkID, Detail: map[string]any{"procedure": a.procedure, "reminder": a.id, "unsent": true}}); err != nil {
			return err
		}
		status := followup.ReminderQueued
		if lastAttempt || notify.IsPermanent(sendErr) {
			status = followup.ReminderFailed
		}
		_, err := tx.Exec(ctx, `update reminders set status = $2, last_error = $3, updated_at = $4 where id = $1`,
			a.id, status, truncate(notify.Reason(sendErr), 300), done)
		return followup.Unavailable(err)
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
		return followup.Unavailable(err)
	}
	return followup.Audit(ctx, tx, followup.SystemActor(clinic), followup.AuditEvent{Action: followup.AuditLinkRevoked, TargetKind: "parent_link", TargetID: link,
		Detail: map[string]any{"procedure": procedure, "reminder": reminder, "superseded": true}})
}
