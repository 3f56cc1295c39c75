package conversation

import (
	"context"
	"slices"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/dermfollow/dermfollow/followup"
)

// Page says which part of a thread to read: the newest Limit messages (0: PageSize, at most
// PageMax) older than Before (a Thread.Older), oldest first.
type Page struct {
	Before string
	Limit  int
}

// PageSize is a thread page when the caller names none; PageMax the largest.
const (
	PageSize = 100
	PageMax  = 200
)

// Thread is a page of a procedure's conversation, oldest message first (newest at the
// bottom). Older is the cursor of the page before it, "" at the thread's start.
type Thread struct {
	ProcedureID uuid.UUID `json:"procedure_id"`
	Messages    []Message `json:"messages"`
	Older       string    `json:"older"`
}

// threadSQL reads a procedure's ($1, within clinic $2) messages with their photos and the
// clinic authors' and handlers' names; callers add conditions and the order.
const threadSQL = `select m.id, m.kind, m.parent_link_id is not null, m.body, m.created_at, coalesce(m.timepoint_key, ''),
		case when m.photo_id is not null then array[m.photo_id]
			else array(select ph.id from photos ph where ph.message_id = m.id order by ph.received_at, ph.id) end,
		m.author_id, coalesce(au.name, ''), m.handled_at, m.handled_by, coalesce(hu.name, ''), m.read_at is null
	from messages m
	left join users au on au.id = m.author_id and au.clinic_id = m.clinic_id
	left join users hu on hu.id = m.handled_by and hu.clinic_id = m.clinic_id
	where m.procedure_id = $1 and m.clinic_id = $2`

func scanMessage(r pgx.CollectableRow) (Message, error) {
	var m Message
	var family, unread bool
	err := r.Scan(&m.ID, &m.Kind, &family, &m.Body, &m.CreatedAt, &m.Timepoint, &m.PhotoIDs, &m.AuthorID, &m.AuthorName,
		&m.HandledAt, &m.HandledBy, &m.HandledByName, &unread)
	m.Author = AuthorClinic
	if family {
		m.Author = AuthorFamily
		m.Unread = unread
	}
	m.Handled = m.HandledAt != nil
	if m.PhotoIDs == nil {
		m.PhotoIDs = []uuid.UUID{}
	}
	return m, err
}

// forFamily leaves out what only the clinic sees: who at the clinic wrote or handled it, and
// its read state.
func (m Message) forFamily() Message {
	return Message{ID: m.ID, Author: m.Author, Kind: m.Kind, Body: m.Body, CreatedAt: m.CreatedAt, PhotoIDs: m.PhotoIDs,
		Timepoint: m.Timepoint, Handled: m.Handled}
}

// Thread returns a page of a procedure's thread for a clinician or admin of its clinic, and
// records the view in the audit log (like a photo view) and the family's messages on the page
// as read, in one transaction: a message shows Unread on the first view that shows it.
// Another clinic's procedure is not found; researchers are forbidden.
func (s *Service) Thread(ctx context.Context, a followup.Actor, procedureID uuid.UUID, p Page) (Thread, error) {
	if err := a.RequireClinical(); err != nil {
		return Thread{}, err
	}
	var t Thread
	err := followup.WithTx(ctx, s.pool, func(tx pgx.Tx) error {
		var err error
		if t, err = s.readThread(ctx, tx, a.ClinicID, procedureID, p); err != nil {
			return err
		}
		var unread []uuid.UUID
		for _, m := range t.Messages {
			if m.Unread {
				unread = append(unread, m.ID)
			}
		}
		if len(unread) > 0 {
			if _, err := tx.Exec(ctx, `update messages set read_at = $1, read_by = $2
				where id = any($3) and clinic_id = $4 and read_at is null`, s.now(), a.ID, unread, a.ClinicID); err != nil {
				return followup.Unavailable(err)
			}
		}
		return followup.Audit(ctx, tx, a, followup.AuditEvent{Action: AuditViewed, TargetKind: "procedure", TargetID: procedureID,
			Detail: map[string]any{"messages": len(t.Messages), "unread": len(unread)}})
	})
	return t, wrap(err, "thread of procedure %s", procedureID)
}

// FamilyThread returns a page of the thread of a parent actor's procedure: the family's own
// messages and the clinic's, without the clinic's names and marks.
func (s *Service) FamilyThread(ctx context.Context, a followup.Actor, p Page) (Thread, error) {
	if a.Kind != followup.ActorParent {
		return Thread{}, followup.Errorf(followup.EUNAUTHORIZED, "open the link the clinic sent you")
	}
	var t Thread
	err := followup.WithTx(ctx, s.pool, func(tx pgx.Tx) error {
		var err error
		t, err = s.readThread(ctx, tx, a.ClinicID, a.Procedure, p)
		return err
	})
	for i, m := range t.Messages {
		t.Messages[i] = m.forFamily()
	}
	return t, wrap(err, "family thread of procedure %s", a.Procedure)
}

// readThread reads a page of the thread of a procedure of clinic; a procedure of another
// clinic is not found.
func (s *Service) readThread(ctx context.Context, tx pgx.Tx, clinic, procedureID uuid.UUID, p Page) (Thread, error) {
	limit := p.Limit
	switch {
	case limit == 0:
		limit = PageSize
	case limit < 0 || limit > PageMax:
		return Thread{}, followup.InvalidField("limit", "must be from 1 to %d", PageMax)
	}
	before := followup.Cursor{At: time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC)}
	if p.Before != "" {
		c, err := followup.ParseCursor(p.Before)
		if err != nil {
			return Thread{}, err
		}
		before = c
	}
	var exists bool
	if err := tx.QueryRow(ctx, `select true from procedures where id = $1 and clinic_id = $2`, procedureID, clinic).Scan(&exists); err != nil {
		return Thread{}, followup.NotFound(err, "procedure")
	}
	rows, err := tx.Query(ctx, threadSQL+` and (m.created_at, m.id) < ($3::timestamptz, $4::uuid)
		order by m.created_at desc, m.id desc limit $5`, procedureID, clinic, before.At, before.ID, limit+1)
	if err != nil {
		return Thread{}, followup.Unavailable(err)
	}
	ms, err := pgx.CollectRows(rows, scanMessage)
	if err != nil {
		return Thread{}, followup.Unavailable(err)
	}
	t := Thread{ProcedureID: procedureID, Messages: ms}
	if len(ms) > limit {
		t.Messages = ms[:limit]
		last := t.Messages[limit-1]
		t.Older = followup.Cursor{At: last.CreatedAt, ID: last.ID}.String()
	}
	slices.Reverse(t.Messages)
	if t.Messages == nil {
		t.Messages = []Message{}
	}
	return t, nil
}
