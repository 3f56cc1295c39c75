// Package worklist is the clinic's worklist: the read model of what each active procedure
// needs from the clinic now (timepoints overdue or due today with views missing, photos
// waiting for review, a reminder that failed, a family message waiting for an answer), paged
// by keyset in urgency order with exact totals per state, and searched by name or MRN.
//
// What it owns: the worklist's statements (this package) over the tables the core's triggers
// keep for it (worklist_entries, worklist_gaps, worklist_counts: migrations/00012 and later
// ones). It writes nothing: every change that moves a procedure on the worklist goes through
// the core, whose triggers keep those tables in the change's own transaction. From the core
// it uses actors, errors, cursors, the clinic's time zone and the clock (followup/surface.go).
//
//	wl := worklist.New(core, pool)
//	page, err := wl.ClinicWorklist(ctx, clinician, worklist.Filter{State: worklist.Overdue})
package worklist

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/dermfollow/dermfollow/followup"
	"github.com/dermfollow/dermfollow/protocols"
)

// Service reads the worklist.
type Service struct {
	core *followup.Service
	pool *pgxpool.Pool
}

// New returns the worklist of the core's clinics, read through pool (the core's).
func New(core *followup.Service, pool *pgxpool.Pool) *Service {
	return &Service{core: core, pool: pool}
}

// The states: what a clinician has to look at.
const (
	Overdue        = "overdue"         // a timepoint's window closed with views missing (within the grace days)
	DueToday       = "due_today"       // a timepoint is due today (clinic time) with views missing
	Unreviewed     = "unreviewed"      // photos arrived after the procedure's latest assessment
	ReminderFailed = "reminder_failed" // a reminder could not be delivered (see the procedure's outbox)
	// NewMessage: the family wrote and no one at the clinic has answered or marked it handled
	// yet. Its filter lists the oldest waiting first (waiting.go).
	NewMessage = "new_message"
)

// States lists the worklist states in display order.
func States() []string {
	return []string{NewMessage, Overdue, DueToday, Unreviewed, ReminderFailed}
}

// Item is one active procedure on the worklist with what needs attention.
type Item struct {
	followup.ProcedureSummary
	Overdue        int        // timepoints overdue
	DueToday       int        // timepoints due today and incomplete
	Unreviewed     int        // photos received since the latest assessment
	LastReceived   *time.Time // newest of those photos
	ReminderFailed bool       // a reminder failed and nothing was sent on its channel since
	Unanswered     int        // the family's messages not yet answered or handled
	WaitingSince   *time.Time // when the oldest of those was sent

	rank   int       // the urgency: 4 overdue + 2 due today + 1 unreviewed (0 in the new-message order)
	sortAt time.Time // the list's time key: performed_at, or waiting_since in the new-message order
}

// Has reports whether the item is in the worklist state.
func (w Item) Has(state string) bool {
	switch state {
	case Overdue:
		return w.Overdue > 0
	case DueToday:
		return w.DueToday > 0
	case Unreviewed:
		return w.Unreviewed > 0
	case ReminderFailed:
		return w.ReminderFailed
	case NewMessage:
		return w.Unanswered > 0
	}
	return state == ""
}

// cursor is the item's position in the worklist's order.
func (w Item) cursor() followup.Cursor { return followup.Cursor{Rank: w.rank, At: w.sortAt, ID: w.ID} }

// Filter narrows ClinicWorklist and says which page. Counts are always over the search
// alone.
type Filter struct {
	State  string // "" for all, or one of States
	Search string // part of the patient's name (case-insensitive), or the whole MRN
	After  string // a Page.Next: the page after it
	Before string // a Page.Prev: the page before it
	Limit  int    // items per page; 0 (or more than PageSize): PageSize
}

// Page is one page of the clinic's active procedures with their states, the count per state
// and the cursors of the pages around it.
type Page struct {
	Today    protocols.Date
	Location *time.Location // the clinic's time zone, in which Today is
	Items    []Item
	Total    int            // procedures matching the search, before the state filter
	Counts   map[string]int // per worklist state, before the state filter
	Next     string         // the cursor of the next page; "" on the last
	Prev     string         // the cursor of the previous page; "" on the first
}

// PageSize is how many procedures a worklist page shows.
const PageSize = 50

// ClinicWorklist returns a page of the active procedures of the actor's clinic, most urgent
// first: overdue, then due today, then with photos waiting for review (each combination in
// that order of weight), then the rest; newest procedure first within each. The page and the
// counts are one statement (after the clinic's time zone) whose cost follows the page and the
// procedures overdue or due today, not the clinic's history: the clock-free state of every
// procedure and the clinic's totals are kept by triggers (migrations/00012_worklist_entries.sql),
// and the clock-dependent one (overdue, due today) is read for the few procedures that have it
// now from the indexes of their gaps.
func (s *Service) ClinicWorklist(ctx context.Context, a followup.Actor, f Filter) (Page, error) {
	if err := a.RequireClinical(); err != nil {
		return Page{}, err
	}
	switch f.State {
	case "", Overdue, DueToday, Unreviewed, ReminderFailed, NewMessage:
	default:
		return Page{}, followup.InvalidField("state", "must be one of %s", strings.Join(States(), ", "))
	}
	if f.Limit <= 0 || f.Limit > PageSize {
		f.Limit = PageSize
	}
	backward := f.Before != ""
	at := worklistStart
	if f.After != "" || f.Before != "" {
		raw := f.After
		if backward {
			raw = f.Before
		}
		c, err := followup.ParseCursor(raw)
		if err != nil {
			return Page{}, err
		}
		at = c
	}
	clinic, err := s.core.Clinic(ctx, a.ClinicID)
	if err != nil {
		return Page{}, fmt.Errorf("worklist: %w", err)
	}
	now := s.core.Now()
	today := protocols.DateOf(now, clinic.Location)
	q := worklistQuery{state: f.State, search: strings.TrimSpace(f.Search) != "", backward: backward}
	args := []any{a.ClinicID, now, today.String(), at.Rank, at.At, at.ID, f.Limit + 1}
	if q.search {
		args = append(args, followup.ContainsPattern(f.Search), strings.TrimSpace(f.Search))
	}
	wl := Page{Today: today, Location: clinic.Location, Counts: map[string]int{}}
	rows, err := s.pool.Query(ctx, q.sql(), args...)
	if err != nil {
		return Page{}, fmt.Errorf("worklist: %w", followup.Unavailable(err))
	}
	var r worklistRow
	_, err = pgx.ForEachRow(rows, r.dest(), func() error {
		wl.Total = r.total
		wl.Counts[Overdue], wl.Counts[DueToday] = r.overdue, r.due
		wl.Counts[Unreviewed], wl.Counts[ReminderFailed] = r.unreviewed, r.failed
		wl.Counts[NewMessage] = r.waiting
		if r.id != nil {
			wl.Items = append(wl.Items, r.item())
		}
		return nil
	})
	if err != nil {
		return Page{}, fmt.Errorf("worklist: %w", followup.Unavailable(err))
	}
	more := len(wl.Items) > f.Limit
	if more {
		wl.Items = wl.Items[:f.Limit]
	}
	if backward {
		slices.Reverse(wl.Items)
		if !more {
			// Nothing before this page: show the first page, full, rather than its tail.
			f.Before, f.After = "", ""
			return s.ClinicWorklist(ctx, a, f)
		}
	}
	switch {
	case len(wl.Items) == 0 && f.After != "":
		wl.Prev = f.After // past the end: the way back starts at the cursor
	case len(wl.Items) > 0:
		if backward || more {
			wl.Next = wl.Items[len(wl.Items)-1].cursor().String()
		}
		if backward || f.After != "" {
			wl.Prev = wl.Items[0].cursor().String()
		}
	}
	return wl, nil
}

// worklistStart is before the first item: every rank is below it.
var worklistStart = followup.Cursor{Rank: 255, At: time.Unix(0, 0).UTC()}

// worklistRow is a row of the worklist's statement being scanned: the counts, and a page item
// unless the page is empty (then one row has the counts and nulls).
type worklistRow struct {
	total, overdue, due, unreviewed, failed, waiting     int
	id, patientID                                        *uuid.UUID
	name, protocol, site, status                         *string
	performed, last, since, sortAt                       *time.Time
	itemOverdue, itemDue, itemUnreviewed, itemUnanswered *int
	itemFailed                                           *bool
	rank                                                 *int
}

func (r *worklistRow) dest() []any {
	return []any{&r.total, &r.overdue, &r.due, &r.unreviewed, &r.failed, &r.waiting, &r.id, &r.patientID, &r.name, &r.protocol,
		&r.site, &r.performed, &r.status, &r.itemOverdue, &r.itemDue, &r.itemUnreviewed, &r.last, &r.itemFailed, &r.rank,
		&r.itemUnanswered, &r.since, &r.sortAt}
}

// item is the row's page item, sharing nothing with the row, which the next row overwrites.
func (r *worklistRow) item() Item {
	w := Item{
		ProcedureSummary: followup.ProcedureSummary{ID: *r.id, PatientID: *r.patientID, PatientName: *r.name, Protocol: *r.protocol,
			BodySite: *r.site, PerformedAt: *r.performed, Status: *r.status},
		Overdue: *r.itemOverdue, DueToday: *r.itemDue, Unreviewed: *r.itemUnreviewed, ReminderFailed: *r.itemFailed,
		Unanswered: *r.itemUnanswered, rank: *r.rank, sortAt: *r.sortAt,
	}
	if r.last != nil {
		last := *r.last
		w.LastReceived = &last
	}
	if r.since != nil {
		since := *r.since
		w.WaitingSince = &since
	}
	return w
}

// worklistQuery builds the worklist's statement: the page and the counts in one. Each state,
// direction and search gets a statement of its own, planned for it, rather than one statement
// of optional filters whose generic plan would fit none.
//
// The order is by (rank, performed_at, procedure_id), descending, rank = 4 overdue + 2 due
// today + 1 unreviewed. The procedures with a rank of 2 or more are the few with a gap overdue
// or due today now: they are found, ranked, from worklist_gaps alone (whose rows carry a copy
// of their procedure's entry) through its two partial indexes, and sorted whole. Every other
// active procedure's rank is its review_rank, kept in worklist_entries and indexed in this very
// order, so that part of a page is an index range read up to the page size. The totals are the
// clinic's rows of worklist_counts, and the urgent ones' own.
type worklistQuery struct {
	state    string
	search   bool
	backward bool
}

// sql is the statement. Arguments: $1 clinic, $2 now, $3 today (clinic date), $4-$6 the cursor
// (rank, performed_at, id), $7 the page size + 1; with a search, $8 the name pattern and $9
// the MRN. Each row has the counts and an item of the page; an empty page is one row of
// counts and nulls.
func (q worklistQuery) sql() string {
	if q.state == NewMessage {
		// The oldest waiting first: the other direction of the keyset.
		cmp, dir := ">", "asc"
		if q.backward {
			cmp, dir = "<", "desc"
		}
		return q.withItems(q.waitingPage(cmp, dir), dir)
	}
	cmp, dir := "<", "desc"
	if q.backward {
		cmp, dir = ">", "asc"
	}
	order := func(rank string) string {
		return rank + " " + dir + ", performed_at " + dir + ", procedure_id " + dir
	}
	key := "(rank, performed_at, procedure_id) " + cmp + " ($4::integer, $5::timestamptz, $6::uuid)"
	if q.search {
		return q.withItems(q.searchRanked()+`, page as (
			select procedure_id, rank, performed_at, overdue, due_today from ranked
			where `+q.rankedFilter()+` and `+key+`
			order by `+order("rank")+` limit $7)`, dir)
	}
	sql := q.urgent() + `, page as (
		(select procedure_id, rank, performed_at, overdue, due_today from urgent
		where ` + q.rankedFilter() + ` and ` + key + `
		order by ` + order("rank") + ` limit $7)`
	if q.state != Overdue && q.state != DueToday {
		// The rest, in index order, leaving out the urgent ones read above.
		sql += ` union all
		(select procedure_id, review_rank, performed_at, 0, 0 from worklist_entries
		where clinic_id = $1 and status = 'active' and ` + q.entryFilter() + `
			and (review_rank, performed_at, procedure_id) ` + cmp + ` ($4::integer, $5::timestamptz, $6::uuid)
			and not (procedure_id = any (array(select procedure_id from urgent)))
		order by ` + order("review_rank") + ` limit $7)`
	}
	return q.withItems(sql+`)`, dir)
}

// counts is the totals' statement: over the matches of a search (ranked), or the clinic's
// counters and its urgent procedures.
func (q worklistQuery) counts() string {
	if q.search {
		return `select count(*)::integer as total, count(*) filter (where overdue > 0)::integer as overdue,
			count(*) filter (where due_today > 0)::integer as due_today, count(*) filter (where review_rank = 1)::integer as unreviewed,
			count(*) filter (where reminder_failed)::integer as failed,
			count(*) filter (where waiting_since is not null)::integer as waiting
			from ranked`
	}
	return `select coalesce(sum(active), 0)::integer as total,
		(select count(*) from urgent where overdue > 0)::integer as overdue,
		(select count(*) from urgent where due_today > 0)::integer as due_today,
		coalesce(sum(unreviewed), 0)::integer as unreviewed, coalesce(sum(failed), 0)::integer as failed,
		coalesce(sum(waiting), 0)::integer as waiting
		from worklist_counts where clinic_id = $1`
}

// withItems completes the statement: the page (sql, its CTEs up to page, whose rows are
// procedure_id, rank, performed_at, the list's time key, and the procedure's gaps overdue and
// due today), cut to its size, with the counts and each item's procedure, patient and states.
// The page's rows carry their gaps' counts so that nothing is joined to the clinic's urgent
// set per item.
func (q worklistQuery) withItems(sql, dir string) string {
	// The page's rows are cut to the page before anything is joined to them.
	return sql + `, top as materialized (
			select procedure_id, rank, performed_at, overdue, due_today from page
			order by rank ` + dir + `, performed_at ` + dir + `, procedure_id ` + dir + ` limit $7),
		counts as materialized (` + q.counts() + `)
		select c.total, c.overdue, c.due_today, c.unreviewed, c.failed, c.waiting, i.id, i.patient_id, i.display_name,
			i.protocol_id, i.body_site, i.performed_at, i.status, i.overdue, i.due_today, i.unreviewed, i.last_received,
			i.reminder_failed, i.rank, i.unanswered, i.waiting_since, i.sort_at
		from counts c left join (
			select pr.id, pa.id as patient_id, pa.display_name, pr.protocol_id, pr.body_site, pr.performed_at, pr.status,
				top.overdue, top.due_today, e.unreviewed, e.last_received,
				e.reminder_failed, e.unanswered, e.waiting_since, top.rank, top.performed_at as sort_at, top.procedure_id as sort_id
			from top
			join worklist_entries e on e.procedure_id = top.procedure_id
			join procedures pr on pr.id = top.procedure_id and pr.clinic_id = $1
			join patients pa on pa.id = pr.patient_id and pa.clinic_id = pr.clinic_id) i on true
		order by i.rank ` + dir + `, i.sort_at ` + dir + `, i.sort_id ` + dir
}

// gapsOf ranks, per procedure, the active gaps of the clinic $1 overdue at $2 or due on $3,
// from their two partial indexes.
func gapsOf() string {
	return `gaps as materialized (
		select g.procedure_id, count(*) filter (where g.overdue @> $2::timestamptz)::integer as overdue,
			count(*) filter (where g.due_on = $3::date)::integer as due_today, max(g.performed_at) as performed_at,
			max(g.review_rank) as review_rank, bool_or(g.reminder_failed) as reminder_failed
		from worklist_gaps g
		where g.clinic_id = $1 and g.active and (g.overdue @> $2::timestamptz or g.due_on = $3::date)
		group by g.procedure_id)`
}

// urgent is the clinic's active procedures with a gap overdue or due today, ranked.
func (q worklistQuery) urgent() string {
	return `with ` + gapsOf() + `, urgent as materialized (
		select procedure_id, performed_at, review_rank, reminder_failed, overdue, due_today,
			(case when overdue > 0 then 4 else 0 end) + (case when due_today > 0 then 2 else 0 end) + review_rank as rank
		from gaps)`
}

// searchRanked is every active procedure of the patients matching the search ($8 name
// pattern, $9 MRN), ranked: found through the trigram index and the entries' index by
// patient, so its cost follows the matches, and ranked with the clinic's urgent gaps.
func (q worklistQuery) searchRanked() string {
	return `with matched as materialized (
		select e.procedure_id, e.performed_at, e.review_rank, e.reminder_failed, e.waiting_since
		from patients pa
		join worklist_entries e on e.patient_id = pa.id and e.status = 'active' and e.clinic_id = $1
		where pa.clinic_id = $1 and (lower(pa.display_name) like $8 or pa.mrn = $9)
	), ` + gapsOf() + `, ranked as materialized (
		select m.procedure_id, m.performed_at, m.review_rank, m.reminder_failed, m.waiting_since,
			coalesce(g.overdue, 0) as overdue, coalesce(g.due_today, 0) as due_today,
			(case when g.overdue > 0 then 4 else 0 end) + (case when g.due_today > 0 then 2 else 0 end) + m.review_rank as rank
		from matched m left join gaps g on g.procedure_id = m.procedure_id)`
}

// rankedFilter is the state filter over urgent or ranked rows.
func (q worklistQuery) rankedFilter() string {
	switch q.state {
	case Overdue:
		return "overdue > 0"
	case DueToday:
		return "due_today > 0"
	case Unreviewed:
		return "review_rank = 1"
	case ReminderFailed:
		return "reminder_failed"
	}
	return "true"
}

// entryFilter is the state filter over worklist_entries outside the urgent ones (never
// overdue nor due today).
func (q worklistQuery) entryFilter() string {
	switch q.state {
	case Unreviewed:
		return "review_rank = 1"
	case ReminderFailed:
		return "reminder_failed"
	}
	return "true"
}
