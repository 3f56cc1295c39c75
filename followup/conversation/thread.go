package conversation

import (
	"context"
	"errors"
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
// as read: a message shows Unread on the first view that shows it. The timeline page reads it
// on every view, so the read, the marks and the audit row are one statement (clinicThreadSQL):
// one round trip, atomic on its own. Another clinic's procedure is not found; researchers are
// forbidden.
func (s *Service) Thread(ctx context.Context, a followup.Actor, procedureID uuid.UUID, p Page) (Thread, error) {
	var t Thread
	b := &pgx.Batch{}
	err := s.QueueThread(b, a, procedureID, p, &t)
	if err == nil {
		err = s.pool.SendBatch(ctx, b).Close()
		if e := (*followup.Error)(nil); err != nil && !errors.As(err, &e) {
			err = followup.Unavailable(err)
		}
	}
	return t, wrap(err, "thread of procedure %s", procedureID)
}

// QueueThread queues the statement of Thread on b, for a page that sends it in the round trip
// of its other reads (followup.Service.ProcedureRecordWith): the statement is scoped to the
// actor's clinic on its own, and t is set when b's results are read. Refusals (the actor's
// role, a bad page) come back before anything is queued.
func (s *Service) QueueThread(b *pgx.Batch, a followup.Actor, procedureID uuid.UUID, p Page, t *Thread) error {
	if err := a.RequireClinical(); err != nil {
		return err
	}
	limit, before, err := p.bounds()
	if err != nil {
		return err
	}
	ev, err := followup.AuditArgs(a, followup.AuditEvent{Action: AuditViewed, TargetKind: "procedure", TargetID: procedureID})
	if err != nil {
		return err
	}
	args := append([]any{procedureID, a.ClinicID, before.At, before.ID, limit, s.now(), a.ID}, ev...)
	b.Queue(clinicThreadSQL, args...).Query(func(rows pgx.Rows) error {
		var ms []Message
		found := false
		for rows.Next() {
			found = true
			if rows.RawValues()[0] == nil {
				continue // the procedure, with no message on this page
			}
			m, err := scanMessage(rows)
			if err != nil {
				return followup.Unavailable(err)
			}
			ms = append(ms, m)
		}
		switch err := rows.Err(); {
		case err != nil:
			return followup.Unavailable(err)
		case !found:
			return followup.Errorf(followup.ENOTFOUND, "procedure not found")
		}
		*t = newThread(procedureID, ms, limit)
		return nil
	})
	return nil
}

// clinicThreadSQL is a clinic's view of a page of a thread in one statement: the procedure
// ($1) within the clinic ($2); the page of its messages before the cursor ($3, $4), newest
// first, one more than the limit ($5) to tell whether older ones exist; the family's unread
// messages among the shown ones marked read at $6 by $7; and the audit event (AuditArgs, $8
// to $15) with the shown and unread counts. Every part sees the same snapshot, so the page
// shows the messages as unread that this view marks. It answers no row when the procedure is
// not the clinic's, and one row of nulls (the outer join) for a procedure with no message on
// the page.
const clinicThreadSQL = `with proc as (select id from procedures where id = $1 and clinic_id = $2),
	page (id, kind, family, body, created_at, timepoint, photo_ids, author_id, author_name, handled_at, handled_by,
		handled_by_name, not_read) as (` + threadSQL + ` and (m.created_at, m.id) < ($3::timestamptz, $4::uuid)
			and exists (select 1 from proc)
		order by m.created_at desc, m.id desc limit $5::int + 1),
	shown as (select id, family and not_read as unread from page order by created_at desc, id desc limit $5::int),
	marked as (update messages set read_at = $6, read_by = $7
		where id in (select id from shown where unread) and clinic_id = $2 and read_at is null),
	logged as (insert into audit_events (` + followup.AuditColumns + `)
		select $8::uuid, $9::text, $10::uuid, $11::text, $12::text, $13::uuid, $14::inet,
			$15::jsonb || jsonb_build_object('messages', (select count(*) from shown),
				'unread', (select count(*) from shown where unread))
		from proc)
	select page.* from proc left join page on true order by page.created_at desc, page.id desc`

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

// bounds are the page's limit and the cursor it reads before (the end of time for the newest).
func (p Page) bounds() (int, followup.Cursor, error) {
	limit := p.Limit
	switch {
	case limit == 0:
		limit = PageSize
	case limit < 0 || limit > PageMax:
		return 0, followup.Cursor{}, followup.InvalidField("limit", "must be from 1 to %d", PageMax)
	}
	before := followup.Cursor{At: time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC)}
	if p.Before != "" {
		c, err := followup.ParseCursor(p.Before)
		if err != nil {
			return 0, followup.Cursor{}, err
		}
		before = c
	}
	return limit, before, nil
}

// newThread is the page of ms (newest first, up to limit+1 of them): the limit newest,
// oldest first, and the cursor of the page before them when there was one more.
func newThread(procedureID uuid.UUID, ms []Message, limit int) Thread {
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
	return t
}

// readThread reads a page of the thread of a procedure of clinic; a procedure of another
// clinic is not found.
func (s *Service) readThread(ctx context.Context, tx pgx.Tx, clinic, procedureID uuid.UUID, p Page) (Thread, error) {
	limit, before, err := p.bounds()
	if err != nil {
		return Thread{}, err
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
	return newThread(procedureID, ms, limit), nil
}
