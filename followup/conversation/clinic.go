package conversation

import (
	"context"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/dermfollow/dermfollow/followup"
)

// Reply adds a clinician's or admin's answer to a procedure's thread (a note to the family,
// as the core's notes are) and marks the family's messages sent before it handled, by the one
// who answered: answering is handling. The family is told that the clinic answered
// (Config.Notices), in the reply's transaction. Another clinic's procedure is not found.
func (s *Service) Reply(ctx context.Context, a followup.Actor, procedureID uuid.UUID, body string) (Message, error) {
	if err := a.RequireClinical(); err != nil {
		return Message{}, err
	}
	body, err := CheckBody(body)
	if err != nil {
		return Message{}, err
	}
	m := Message{Author: AuthorClinic, Kind: "note", Body: body, PhotoIDs: []uuid.UUID{}, AuthorID: &a.ID}
	err = followup.WithTx(ctx, s.pool, func(tx pgx.Tx) error {
		now := s.now()
		err := tx.QueryRow(ctx, `insert into messages (clinic_id, procedure_id, kind, body, author_id, created_at)
			select clinic_id, id, 'note', $3, $4, $5 from procedures where id = $1 and clinic_id = $2
			returning id, created_at, (select name from users where id = $4 and clinic_id = $2)`,
			procedureID, a.ClinicID, body, a.ID, now).Scan(&m.ID, &m.CreatedAt, &m.AuthorName)
		if err != nil {
			return followup.NotFound(err, "procedure")
		}
		tag, err := tx.Exec(ctx, `update messages set handled_at = $3, handled_by = $4, read_at = coalesce(read_at, $3),
				read_by = coalesce(read_by, $4)
			where procedure_id = $1 and clinic_id = $2 and kind = 'family' and handled_at is null and created_at <= $3`,
			procedureID, a.ClinicID, now, a.ID)
		if err != nil {
			return followup.Unavailable(err)
		}
		err = followup.Audit(ctx, tx, a, followup.AuditEvent{Action: followup.AuditMessage, TargetKind: "procedure",
			TargetID: procedureID, Detail: map[string]any{"kind": "note", "reply": m.ID, "handled": tag.RowsAffected()}})
		if err != nil || s.notices == nil {
			return err
		}
		return s.notices.ClinicAnswered(ctx, tx, a, procedureID)
	})
	return m, wrap(err, "reply on procedure %s", procedureID)
}

// MarkHandled marks a family message of a procedure handled (it needs no answer, or was
// answered by phone). A message already handled keeps who handled it first. Another clinic's
// procedure, or a message of another procedure or from the clinic, is not found.
func (s *Service) MarkHandled(ctx context.Context, a followup.Actor, procedureID, messageID uuid.UUID) (Message, error) {
	if err := a.RequireClinical(); err != nil {
		return Message{}, err
	}
	var m Message
	err := followup.WithTx(ctx, s.pool, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `update messages set handled_at = $5, handled_by = $4, read_at = coalesce(read_at, $5),
				read_by = coalesce(read_by, $4)
			where id = $1 and procedure_id = $2 and clinic_id = $3 and kind = 'family' and handled_at is null`,
			messageID, procedureID, a.ClinicID, a.ID, s.now())
		if err != nil {
			return followup.Unavailable(err)
		}
		rows, err := tx.Query(ctx, threadSQL+` and m.id = $3 and m.kind = 'family'`, procedureID, a.ClinicID, messageID)
		if err != nil {
			return followup.Unavailable(err)
		}
		ms, err := pgx.CollectRows(rows, scanMessage)
		switch {
		case err != nil:
			return followup.Unavailable(err)
		case len(ms) == 0:
			return followup.Errorf(followup.ENOTFOUND, "message not found")
		}
		m = ms[0]
		if tag.RowsAffected() == 0 {
			return nil // handled before: nothing changed, nothing to record
		}
		return followup.Audit(ctx, tx, a, followup.AuditEvent{Action: AuditHandled, TargetKind: "message", TargetID: messageID,
			Detail: map[string]any{"procedure": procedureID}})
	})
	return m, wrap(err, "mark message %s handled", messageID)
}
