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

type noticeWorker struct {
	river.WorkerDefaults[noticeArgs]
	r *Workers
}

func (w *noticeWorker) Work(ctx context.Context, job *river.Job[noticeArgs]) error {
	return w.r.sendNotice(ctx, job.Args.NoticeID, job.Attempt >= job.MaxAttempts)
}

// clinicNotice is a clinic notice with what sending it needs, read under the row's lock.
type clinicNotice struct {
	id, clinic, procedure uuid.UUID
	channel, status       string
	sendAfter             time.Time
	unread                bool // a family message of the procedure no one at the clinic has read
	inbox                 string
	hookURL, sealedSecret string
}

// sendNotice delivers one clinic notice: at its time, if a family message is still unread
// (a clinician who has read the thread needs no email about it), to the inbox or the
// gateway. Delivery is at least once, as for reminders; the Message-ID and delivery id are
// the notice's.
func (r *Workers) sendNotice(ctx context.Context, id uuid.UUID, lastAttempt bool) error {
	n, now, err := r.claimNotice(ctx, id)
	if err != nil {
		return wrap(err, "send notice %s", id)
	}
	if n.status != followup.ReminderQueued {
		return nil
	}
	if now.Before(n.sendAfter) {
		return river.JobSnooze(n.sendAfter.Sub(now))
	}
	sendErr := r.deliverNotice(ctx, n)
	if err := r.recordNotice(ctx, n, sendErr, lastAttempt); err != nil {
		return wrap(err, "record notice %s", id)
	}
	if sendErr == nil {
		return nil
	}
	reason := notify.Reason(sendErr)
	r.log.Warn("notice not delivered", "notice", id, "channel", n.channel, "reason", reason)
	if notify.IsPermanent(sendErr) {
		return river.JobCancel(errors.New(reason))
	}
	return errors.New(reason)
}

// claimNotice reads a notice under its row's lock and, if it is due, settles it (skipped or
// failed, with the reason) or counts the attempt about to be made.
func (r *Workers) claimNotice(ctx context.Context, id uuid.UUID) (clinicNotice, time.Time, error) {
	var n clinicNotice
	now := r.svc.now()
	err := r.svc.inTx(ctx, func(tx pgx.Tx) error {
		err := tx.QueryRow(ctx, `select n.id, n.clinic_id, n.procedure_id, n.channel, n.status, n.send_after,
				exists (select 1 from messages m where m.procedure_id = n.procedure_id and m.clinic_id = n.clinic_id
					and m.kind = 'family' and m.read_at is null),
				c.message_inbox, coalesce(rs.webhook_url, ''), coalesce(rs.webhook_secret, '')
			from message_notices n join clinics c on c.id = n.clinic_id
				left join reminder_settings rs on rs.clinic_id = n.clinic_id
			where n.id = $1 for update of n`, id).Scan(&n.id, &n.clinic, &n.procedure, &n.channel, &n.status, &n.sendAfter,
			&n.unread, &n.inbox, &n.hookURL, &n.sealedSecret)
		if err != nil {
			return followup.NotFound(err, "notice")
		}
		if n.status != followup.ReminderQueued || now.Before(n.sendAfter) {
			return nil
		}
		if status, reason := n.refusal(r.email != nil); status != "" {
			n.status = status
			_, err := tx.Exec(ctx, `update message_notices set status = $2, last_error = $3, updated_at = $4 where id = $1`,
				id, status, reason, now)
			return followup.Unavailable(err)
		}
		_, err = tx.Exec(ctx, `update message_notices set attempts = attempts + 1, updated_at = $2 where id = $1`, id, now)
		return followup.Unavailable(err)
	})
	return n, now, err
}

// refusal says why a due notice is not to be sent: skipped when the clinic has read what it
// tells of, failed when it cannot be delivered. An empty status: send it.
func (n clinicNotice) refusal(emailOn bool) (status, reason string) {
	switch {
	case !n.unread:
		return followup.ReminderSkipped, "the clinic has read the messages"
	case n.channel == ChannelEmail && n.inbox == "":
		return followup.ReminderFailed, "the clinic has no inbox for messages"
	case n.channel == ChannelEmail && !emailOn:
		return followup.ReminderFailed, "email is not configured on this server"
	case n.channel == ChannelWebhook && n.hookURL == "":
		return followup.ReminderFailed, "no messaging gateway"
	}
	return "", ""
}

// deliverNotice hands a notice to its channel: the procedure page's link and nothing else.
func (r *Workers) deliverNotice(ctx context.Context, n clinicNotice) error {
	m := notify.Message{ID: n.id.String(), Language: "en", Kind: notify.KindFamilyMessage,
		Link: r.svc.baseURL + "/procedures/" + n.procedure.String()}
	switch n.channel {
	case ChannelEmail:
		m.To = n.inbox
		return r.email.SendEmail(ctx, m)
	case ChannelWebhook:
		secret, err := r.svc.openWebhookSecret(n.clinic, n.sealedSecret)
		if err != nil {
			return &notify.Error{Reason: "the webhook secret cannot be read: set it again", Permanent: true, Err: err}
		}
		return r.webhook.SendWebhook(ctx, notify.Endpoint{URL: n.hookURL, Secret: secret}, m)
	}
	return &notify.Error{Reason: "unknown channel " + n.channel, Permanent: true, Err: errors.ErrUnsupported}
}

// recordNotice writes what an attempt came to, detached from the job's context (see record).
func (r *Workers) recordNotice(jobCtx context.Context, n clinicNotice, sendErr error, lastAttempt bool) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(jobCtx), recordTimeout)
	defer cancel()
	done := r.svc.now()
	if sendErr == nil {
		_, err := r.svc.pool.Exec(ctx, `update message_notices set status = 'sent', sent_at = $2, updated_at = $2, last_error = ''
			where id = $1`, n.id, done)
		return followup.Unavailable(err)
	}
	status := followup.ReminderQueued
	if lastAttempt || notify.IsPermanent(sendErr) {
		status = followup.ReminderFailed
	}
	_, err := r.svc.pool.Exec(ctx, `update message_notices set status = $2, last_error = $3, updated_at = $4 where id = $1`,
		n.id, status, truncate(notify.Reason(sendErr), 300), done)
	return followup.Unavailable(err)
}
