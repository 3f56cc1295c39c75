package followup

import (
	"context"
	"encoding/base64"
	"encoding/binary"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// ProcedureSummary is one line of the clinic's worklist.
type ProcedureSummary struct {
	ID          uuid.UUID `json:"id"`
	PatientID   uuid.UUID `json:"patient_id"`
	PatientName string    `json:"patient_name"`
	Protocol    string    `json:"protocol"`
	BodySite    string    `json:"body_site"`
	PerformedAt time.Time `json:"performed_at"`
	Status      string    `json:"status"`
}

// ProcedureFilter narrows ListProcedures.
type ProcedureFilter struct {
	Status    string    // "" for every status
	Search    string    // part of the patient's name, case-insensitive
	PatientID uuid.UUID // uuid.Nil for every patient
	Limit     int
}

// ListProcedures lists the procedures of the actor's clinic, newest first. Another clinic's
// patient has none. Each combination of filters is a statement of its own, so that each is
// planned for what it asks (a patient's procedures through the index on patient_id) rather
// than one statement of optional filters whose generic plan reads the whole clinic.
func (s *Service) ListProcedures(ctx context.Context, a Actor, f ProcedureFilter) ([]ProcedureSummary, error) {
	if err := a.requireClinical(); err != nil {
		return nil, err
	}
	if f.Limit <= 0 || f.Limit > 500 {
		f.Limit = 500
	}
	var w where
	w.add("pr.clinic_id = %", a.ClinicID)
	if f.PatientID != uuid.Nil {
		w.add("pr.patient_id = %", f.PatientID)
	}
	if f.Status != "" {
		w.add("pr.status = %", f.Status)
	}
	if strings.TrimSpace(f.Search) != "" {
		w.add("lower(pa.display_name) like %", ContainsPattern(f.Search))
	}
	rows, err := s.pool.Query(ctx, `select pr.id, pa.id, pa.display_name, pr.protocol_id, pr.body_site, pr.performed_at, pr.status
		from procedures pr join patients pa on pa.id = pr.patient_id and pa.clinic_id = pr.clinic_id
		where `+w.sql()+` order by pr.performed_at desc, pr.id`+limitOf(f.Limit), w.args...)
	if err != nil {
		return nil, unavailable(err)
	}
	list, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (ProcedureSummary, error) {
		var p ProcedureSummary
		err := r.Scan(&p.ID, &p.PatientID, &p.PatientName, &p.Protocol, &p.BodySite, &p.PerformedAt, &p.Status)
		return p, err
	})
	return list, wrap(err, "list procedures")
}

// ProcedureListMax is the largest page the procedure and patient lists give; ListPageSize is
// their page when the caller names none.
const (
	ProcedureListMax = 200
	ListPageSize     = 50
)

// ProcedureListFilter narrows ProcedureList and says which page.
type ProcedureListFilter struct {
	State        string    // "" for every status, or active, closed, withdrawn
	Protocol     string    // "" for every protocol
	UpdatedSince time.Time // zero: any time
	Limit        int       // 0: ListPageSize; at most ProcedureListMax
	Cursor       string    // a ProcedureListPage.Next: the page after it
}

// ProcedureListItem is a procedure as a list gives it.
type ProcedureListItem struct {
	ProcedureSummary
	Kind            string    `json:"kind"`
	ProtocolVersion int       `json:"protocol_version"`
	UpdatedAt       time.Time `json:"updated_at"`
}

// ProcedureListPage is one page of a procedure list; Next is "" on the last.
type ProcedureListPage struct {
	Procedures []ProcedureListItem `json:"procedures"`
	Next       string              `json:"next"`
}

// ProcedureList pages through the procedures of the actor's clinic in the order they last
// changed (the procedure, or any of its photos, grades, messages, links and reminders), oldest
// change first, by keyset: a procedure that changes while a client pages comes again later,
// none is skipped. updated_at is the time of the write, so a change whose transaction was
// still open when a page was read can carry a time just before that page's last one: a client
// that polls with updated_since should go back a minute from the newest updated_at it has.
func (s *Service) ProcedureList(ctx context.Context, a Actor, f ProcedureListFilter) (ProcedureListPage, error) {
	if err := a.requireClinical(); err != nil {
		return ProcedureListPage{}, err
	}
	limit, err := listLimit(f.Limit)
	if err != nil {
		return ProcedureListPage{}, err
	}
	var w where
	w.add("clinic_id = %", a.ClinicID)
	switch f.State {
	case "":
	case StatusActive, StatusClosed, StatusWithdrawn:
		w.add("status = %", f.State)
	default:
		return ProcedureListPage{}, invalidField("state", "must be active, closed or withdrawn")
	}
	if f.Protocol != "" {
		w.add("protocol_id = %", f.Protocol)
	}
	if !f.UpdatedSince.IsZero() {
		w.add("updated_at >= %", f.UpdatedSince)
	}
	if f.Cursor != "" {
		c, err := ParseCursor(f.Cursor)
		if err != nil {
			return ProcedureListPage{}, err
		}
		w.add2("(updated_at, procedure_id) > (%::timestamptz, %::uuid)", c.At, c.ID)
	}
	// The page first, from the entries' index in the order of change, then its procedures
	// and patients by their keys: joined first, the planner would rather read and sort every
	// procedure of the clinic.
	rows, err := s.pool.Query(ctx, `with page as materialized (
			select procedure_id, updated_at from worklist_entries
			where `+w.sql()+` order by updated_at, procedure_id`+limitOf(limit+1)+`)
		select pr.id, pa.id, pa.display_name, pr.protocol_id, pr.body_site, pr.performed_at, pr.status,
			pr.kind, pr.protocol_version, page.updated_at
		from page
		join procedures pr on pr.id = page.procedure_id and pr.clinic_id = $1
		join patients pa on pa.id = pr.patient_id and pa.clinic_id = pr.clinic_id
		order by page.updated_at, page.procedure_id`, w.args...)
	if err != nil {
		return ProcedureListPage{}, wrap(unavailable(err), "list procedures")
	}
	list, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (ProcedureListItem, error) {
		var p ProcedureListItem
		err := r.Scan(&p.ID, &p.PatientID, &p.PatientName, &p.Protocol, &p.BodySite, &p.PerformedAt, &p.Status,
			&p.Kind, &p.ProtocolVersion, &p.UpdatedAt)
		return p, err
	})
	if err != nil {
		return ProcedureListPage{}, wrap(unavailable(err), "list procedures")
	}
	page := ProcedureListPage{Procedures: list}
	if len(list) > limit {
		page.Procedures = list[:limit]
		last := page.Procedures[limit-1]
		page.Next = Cursor{At: last.UpdatedAt, ID: last.ID}.String()
	}
	if page.Procedures == nil {
		page.Procedures = []ProcedureListItem{}
	}
	return page, nil
}

// listLimit checks a list's page size: 0 is ListPageSize.
func listLimit(n int) (int, error) {
	switch {
	case n == 0:
		return ListPageSize, nil
	case n < 0 || n > ProcedureListMax:
		return 0, invalidField("limit", "must be from 1 to %d", ProcedureListMax)
	}
	return n, nil
}

// where collects the conditions of a statement and their arguments, numbered in order: a %
// in a condition is its argument's placeholder.
type where struct {
	conds []string
	args  []any
}

func (w *where) arg(v any) string {
	w.args = append(w.args, v)
	return "$" + strconv.Itoa(len(w.args))
}

func (w *where) add(cond string, v any) {
	w.conds = append(w.conds, strings.Replace(cond, "%", w.arg(v), 1))
}

func (w *where) add2(cond string, v1, v2 any) {
	cond = strings.Replace(cond, "%", w.arg(v1), 1)
	w.conds = append(w.conds, strings.Replace(cond, "%", w.arg(v2), 1))
}

func (w *where) sql() string { return strings.Join(w.conds, " and ") }

// limitOf is a list statement's LIMIT, written as a number, not as an argument. With the page
// size an argument, the generic plan PostgreSQL may keep for a prepared statement has to guess
// it (a tenth of the rows), so at a large clinic it costs several times the custom plans and
// PostgreSQL plans the statement anew on every call; at 8,000 procedures that planning was over
// a third of the procedure list's database time. Each size is a statement of its own: the
// callers bound it (at most ProcedureListMax or 500), and pgx's statement cache (512 per
// connection, least recently used out) keeps the few sizes a client actually sends.
func limitOf(n int) string { return " limit " + strconv.Itoa(n) }

// Cursor is a position in a list that pages by keyset, never by offset: the sort key of the
// row a page ended (or began) with. Clients see it as an opaque string (String) that they hand
// back; it holds no patient data, only a rank, a time and an id.
type Cursor struct {
	Rank int       // a small leading key (the worklist's urgency, 0-255); 0 where a list has none
	At   time.Time // a time key, to the microsecond as PostgreSQL keeps it
	ID   uuid.UUID // the row's id, which makes every key unique
}

const cursorVersion = 1

func (c Cursor) String() string {
	b := make([]byte, 0, 26)
	b = append(b, cursorVersion, byte(c.Rank))
	b = binary.BigEndian.AppendUint64(b, uint64(c.At.UnixMicro()))
	b = append(b, c.ID[:]...)
	return base64.RawURLEncoding.EncodeToString(b)
}

// ParseCursor reads what Cursor.String wrote; anything else is an invalid cursor.
func ParseCursor(s string) (Cursor, error) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil || len(b) != 26 || b[0] != cursorVersion {
		return Cursor{}, invalidField("cursor", "is not a cursor this server gave out")
	}
	c := Cursor{Rank: int(b[1]), At: time.UnixMicro(int64(binary.BigEndian.Uint64(b[2:10]))).UTC()}
	copy(c.ID[:], b[10:])
	return c, nil
}
