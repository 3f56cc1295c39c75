package followup

import (
	"context"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/dermfollow/dermfollow/protocols"
)

// Worklist states: what a clinician has to look at.
const (
	WorklistOverdue        = "overdue"         // a timepoint's window closed with views missing (within the grace days)
	WorklistDueToday       = "due_today"       // a timepoint is due today (clinic time) with views missing
	WorklistUnreviewed     = "unreviewed"      // photos arrived after the procedure's latest assessment
	WorklistReminderFailed = "reminder_failed" // a reminder could not be delivered (see the procedure's outbox)
)

// WorklistStates lists the worklist states in display order.
func WorklistStates() []string {
	return []string{WorklistOverdue, WorklistDueToday, WorklistUnreviewed, WorklistReminderFailed}
}

// WorklistItem is one active procedure on the worklist with what needs attention.
type WorklistItem struct {
	ProcedureSummary
	Overdue        int        // timepoints overdue
	DueToday       int        // timepoints due today and incomplete
	Unreviewed     int        // photos received since the latest assessment
	LastReceived   *time.Time // newest of those photos
	ReminderFailed bool       // a reminder failed and nothing was sent on its channel since
}

// Has reports whether the item is in the worklist state.
func (w WorklistItem) Has(state string) bool {
	switch state {
	case WorklistOverdue:
		return w.Overdue > 0
	case WorklistDueToday:
		return w.DueToday > 0
	case WorklistUnreviewed:
		return w.Unreviewed > 0
	case WorklistReminderFailed:
		return w.ReminderFailed
	}
	return state == ""
}

// WorklistFilter narrows ClinicWorklist. Counts are always over the search alone.
type WorklistFilter struct {
	State  string // "" for all, or one of WorklistStates
	Search string // part of the patient's name, case-insensitive
}

// Worklist is the clinic's active procedures with their states and the count per state.
type Worklist struct {
	Today  protocols.Date
	Items  []WorklistItem
	Total  int            // procedures matching the search, before the state filter
	Counts map[string]int // per worklist state, before the state filter
}

// worklistLimit bounds the page: a clinic's active follow-ups, not its archive.
const worklistLimit = 1000

// ClinicWorklist returns the active procedures of the actor's clinic, most urgent first, in one
// query: per-procedure states come from lateral subqueries, never a query per row.
func (s *Service) ClinicWorklist(ctx context.Context, a Actor, f WorklistFilter) (Worklist, error) {
	if err := a.requireClinical(); err != nil {
		return Worklist{}, err
	}
	switch f.State {
	case "", WorklistOverdue, WorklistDueToday, WorklistUnreviewed, WorklistReminderFailed:
	default:
		return Worklist{}, invalidField("state", "must be one of %s", strings.Join(WorklistStates(), ", "))
	}
	clinic, err := s.Clinic(ctx, a.ClinicID)
	if err != nil {
		return Worklist{}, wrap(err, "worklist")
	}
	now := s.now()
	today := protocols.DateOf(now, clinic.Location)
	search := "%" + strings.NewReplacer(`\`, `\\`, "%", `\%`, "_", `\_`).Replace(strings.ToLower(strings.TrimSpace(f.Search))) + "%"
	rows, err := s.pool.Query(ctx, `select pr.id, pa.id, pa.display_name, pr.protocol_id, pr.body_site, pr.performed_at, pr.status,
			coalesce(tp.overdue, 0), coalesce(tp.due_today, 0), coalesce(ph.unreviewed, 0), ph.last_received,
			exists (select 1 from reminders r where r.procedure_id = pr.id and r.clinic_id = pr.clinic_id and r.status = 'failed'
				and not exists (select 1 from reminders later where later.procedure_id = r.procedure_id
					and later.clinic_id = r.clinic_id and later.channel = r.channel and later.status = 'sent'
					and later.created_at > r.created_at))
		from procedures pr
		join patients pa on pa.id = pr.patient_id and pa.clinic_id = pr.clinic_id
		left join lateral (
			select count(*) filter (where t.closes_at <= $2 and $2 < t.grace_ends_at) as overdue,
				count(*) filter (where t.due_on = $3::date) as due_today
			from timepoints t
			where t.procedure_id = pr.id and exists (
				select 1 from unnest(t.views) v(name) where not exists (
					select 1 from photos p where p.procedure_id = t.procedure_id and p.timepoint_key = t.key
						and p.view = v.name and p.status = 'active'))
		) tp on true
		left join lateral (
			select count(*) as unreviewed, max(p.received_at) as last_received
			from photos p
			where p.procedure_id = pr.id and p.status = 'active' and p.received_at >
				coalesce((select max(x.created_at) from assessments x where x.procedure_id = pr.id), '-infinity')
		) ph on true
		where pr.clinic_id = $1 and pr.status = 'active' and lower(pa.display_name) like $4
		order by coalesce(tp.overdue, 0) > 0 desc, coalesce(tp.due_today, 0) > 0 desc, coalesce(ph.unreviewed, 0) > 0 desc,
			pr.performed_at desc, pr.id
		limit $5`, a.ClinicID, now, today.String(), search, worklistLimit)
	if err != nil {
		return Worklist{}, wrap(unavailable(err), "worklist")
	}
	all, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (WorklistItem, error) {
		var w WorklistItem
		var overdue, dueToday, unreviewed int64
		err := r.Scan(&w.ID, &w.PatientID, &w.PatientName, &w.Protocol, &w.BodySite, &w.PerformedAt, &w.Status,
			&overdue, &dueToday, &unreviewed, &w.LastReceived, &w.ReminderFailed)
		w.Overdue, w.DueToday, w.Unreviewed = int(overdue), int(dueToday), int(unreviewed)
		return w, err
	})
	if err != nil {
		return Worklist{}, wrap(unavailable(err), "worklist")
	}
	wl := Worklist{Today: today, Total: len(all), Counts: map[string]int{}}
	for _, w := range all {
		for _, st := range WorklistStates() {
			if w.Has(st) {
				wl.Counts[st]++
			}
		}
		if w.Has(f.State) {
			wl.Items = append(wl.Items, w)
		}
	}
	return wl, nil
}
