package worklist

import (
	"crypto/sha256"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dermfollow/dermfollow/followup"
	"github.com/dermfollow/dermfollow/followup/followuptest"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// worklistOracle is the worklist computed the slow way, from the rows themselves (the query
// the worklist ran before its state was kept by triggers, without its LIMIT): every active
// procedure of the clinic in the worklist's order, with its state.
func worklistOracle(t *testing.T, f *fixture, search string) []Item {
	t.Helper()
	now := f.Clock.Now()
	today := dateIn(now, f.Clinic)
	rows, err := f.Pool.Query(followuptest.Ctx(t), `select pr.id, pa.id, pa.display_name, pr.protocol_id, pr.body_site, pr.performed_at, pr.status,
			coalesce(tp.overdue, 0)::integer, coalesce(tp.due_today, 0)::integer, coalesce(ph.unreviewed, 0)::integer, ph.last_received,
			exists (select 1 from reminders r where r.procedure_id = pr.id and r.clinic_id = pr.clinic_id and r.status = 'failed'
				and not exists (select 1 from reminders later where later.procedure_id = r.procedure_id
					and later.clinic_id = r.clinic_id and later.channel = r.channel and later.status = 'sent'
					and later.created_at > r.created_at)),
			coalesce(ms.n, 0)::integer, ms.since
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
		left join lateral (
			select count(*) as n, min(m.created_at) as since from messages m
			where m.procedure_id = pr.id and m.kind = 'family' and m.handled_at is null
		) ms on true
		where pr.clinic_id = $1 and pr.status = 'active' and (lower(pa.display_name) like $4 or pa.mrn = $5)`,
		f.Clinic.ID, now, today, followup.ContainsPattern(search), strings.TrimSpace(search))
	if err != nil {
		t.Fatal(err)
	}
	all, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Item, error) {
		var w Item
		err := r.Scan(&w.ID, &w.PatientID, &w.PatientName, &w.Protocol, &w.BodySite, &w.PerformedAt, &w.Status,
			&w.Overdue, &w.DueToday, &w.Unreviewed, &w.LastReceived, &w.ReminderFailed, &w.Unanswered, &w.WaitingSince)
		w.rank = 4*b2i(w.Overdue > 0) + 2*b2i(w.DueToday > 0) + b2i(w.Unreviewed > 0)
		return w, err
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.SortFunc(all, func(a, b Item) int {
		if a.rank != b.rank {
			return b.rank - a.rank
		}
		if c := b.PerformedAt.Compare(a.PerformedAt); c != 0 {
			return c
		}
		return strings.Compare(b.ID.String(), a.ID.String())
	})
	return all
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

func dateIn(t time.Time, c followup.Clinic) string { return t.In(c.Location).Format(time.DateOnly) }

// worklistFixture is a clinic with dozens of active procedures in every worklist state and
// every combination of them that the schedules allow, plus closed ones and another clinic's.
type worklistFixture struct {
	*fixture
	procs []uuid.UUID
	seq   int
}

func newWorklistFixture(t *testing.T) *worklistFixture {
	t.Helper()
	f := &worklistFixture{fixture: newFixture(t)}
	f.procs = append(f.procs, f.Proc.ID)
	ctx := followuptest.Ctx(t)
	now := f.Clock.Now()
	protocolsByDay := []string{"surgical-wound", "pws-hemoporfin-pdt", "pdl-vascular-laser"}
	for i := range 72 {
		name := fmt.Sprintf("Patient %02d %s", i, []string{"Wang", "Li", "Chen"}[i%3])
		p, err := f.Core.CreatePatient(ctx, f.Clinician, followup.NewPatient{DisplayName: name, BirthDate: "2024-01-01",
			MRN: fmt.Sprintf("MRN-%03d", i), GuardianEmail: "g@example.org"})
		if err != nil {
			t.Fatal(err)
		}
		// Performed 0 to 11 days ago, at several hours: every state arises from the schedules.
		performed := now.Add(-time.Duration(i%12)*24*time.Hour - time.Duration(i%5)*time.Hour)
		e, err := f.Core.Enrol(ctx, f.Clinician, followup.NewProcedure{PatientID: p.ID.String(), Protocol: protocolsByDay[(i/12)%3],
			BodySite: "back", PerformedAt: performed.Format(time.RFC3339)})
		if err != nil {
			t.Fatal(err)
		}
		f.procs = append(f.procs, e.ID)
		if i%3 == 0 {
			f.photo(t, e.ID, e.Timepoints[0].Key, e.Timepoints[0].Views[0])
		}
		if i%4 == 1 {
			f.reminder(t, e.ID, e.Timepoints[0].Key, followup.ReminderFailed, "email")
		}
		if i%5 == 2 {
			f.familyMessage(t, e.ID, 1+i%2)
		}
		if i%9 == 4 {
			if err := f.Core.SetStatus(ctx, f.Clinician, e.ID, followup.StatusClosed); err != nil {
				t.Fatal(err)
			}
		}
	}
	// Another clinic's procedures, in the same states, are never listed.
	other := followuptest.Clinic(t, f.Core, "Other "+uuid.NewString()[:8], "Asia/Shanghai")
	_, outsider := followuptest.User(t, f.Pool, other.ID, followup.RoleClinician)
	for i := range 6 {
		p, err := f.Core.CreatePatient(ctx, outsider, followup.NewPatient{DisplayName: "Patient Wang " + fmt.Sprint(i), BirthDate: "2024-01-01",
			GuardianEmail: "g@example.org"})
		if err != nil {
			t.Fatal(err)
		}
		e, err := f.Core.Enrol(ctx, outsider, followup.NewProcedure{PatientID: p.ID.String(), Protocol: "surgical-wound", BodySite: "back",
			PerformedAt: now.Add(-time.Duration(i) * 24 * time.Hour).Format(time.RFC3339)})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.Pool.Exec(ctx, `insert into reminders (clinic_id, procedure_id, timepoint_key, kind, channel, status,
				last_error, send_after) values ($1, $2, $3, 'manual', 'email', 'failed', 'x', now())`, other.ID, e.ID, e.Timepoints[0].Key); err != nil {
			t.Fatal(err)
		}
	}
	return f
}

// photo records an active clinic photo of a procedure's view at the clock's time.
func (f *worklistFixture) photo(t *testing.T, proc uuid.UUID, tp, view string) uuid.UUID {
	t.Helper()
	f.seq++
	sum := sha256.Sum256([]byte(fmt.Sprint(proc, f.seq)))
	var id uuid.UUID
	err := f.Pool.QueryRow(followuptest.Ctx(t), `insert into photos (clinic_id, procedure_id, timepoint_key, view, upload_id, object_key,
			content_type, size_bytes, sha256, width, height, source, uploaded_by, received_at)
		values ($1, $2, $3, $4, $5, $6, 'image/jpeg', 1000, $7, 64, 48, 'clinic', $8, $9) returning id`,
		f.Clinic.ID, proc, tp, view, fmt.Sprintf("worklist-%06d", f.seq), fmt.Sprintf("photos/test-%d", f.seq), sum[:],
		f.Clinician.ID, f.Clock.Now()).Scan(&id)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// familyMessage records n messages from the family of a procedure, through a link of its own,
// a second apart from the clock's time on.
func (f *worklistFixture) familyMessage(t *testing.T, proc uuid.UUID, n int) {
	t.Helper()
	ctx := followuptest.Ctx(t)
	l, err := f.Core.CreateLink(ctx, f.Clinician, proc, false)
	if err != nil {
		t.Fatal(err)
	}
	for range n {
		f.seq++
		if _, err := f.Pool.Exec(ctx, `insert into messages (clinic_id, procedure_id, kind, body, parent_link_id, created_at)
			values ($1, $2, 'family', 'a question', $3, $4)`, f.Clinic.ID, proc, l.ID, f.Clock.Now().Add(time.Duration(f.seq)*time.Second)); err != nil {
			t.Fatal(err)
		}
	}
}

func (f *worklistFixture) reminder(t *testing.T, proc uuid.UUID, tp, status, channel string) {
	t.Helper()
	f.seq++
	created := f.Clock.Now().Add(time.Duration(f.seq) * time.Second)
	if _, err := f.Pool.Exec(followuptest.Ctx(t), `insert into reminders (clinic_id, procedure_id, timepoint_key, kind, channel, status,
			last_error, send_after, sent_at, created_at) values ($1, $2, $3, 'manual', $5, $4, '', $6,
			case when $4 = 'sent' then $6::timestamptz end, $6)`, f.Clinic.ID, proc, tp, status, channel, created); err != nil {
		t.Fatal(err)
	}
}

// walk reads every page of the worklist forward, then backward from the last page, and checks
// both against the oracle: same items, same order, same states, and counts that are exact.
func (f *worklistFixture) walk(t *testing.T, state, search string, limit int) {
	t.Helper()
	ctx := followuptest.Ctx(t)
	oracle := worklistOracle(t, f.fixture, search)
	var want []Item
	counts := map[string]int{}
	for _, w := range oracle {
		for _, st := range States() {
			if w.Has(st) {
				counts[st]++
			}
		}
		if w.Has(state) {
			want = append(want, w)
		}
	}
	if state == NewMessage { // the oldest waiting first
		slices.SortFunc(want, func(a, b Item) int {
			if c := a.WaitingSince.Compare(*b.WaitingSince); c != 0 {
				return c
			}
			return strings.Compare(a.ID.String(), b.ID.String())
		})
	}
	filter := Filter{State: state, Search: search, Limit: limit}
	var pages [][]Item
	for {
		wl, err := f.wl.ClinicWorklist(ctx, f.Clinician, filter)
		if err != nil {
			t.Fatal(err)
		}
		if wl.Total != len(oracle) || !equalCounts(wl.Counts, counts) {
			t.Fatalf("state %q search %q: total %d counts %v, want %d %v", state, search, wl.Total, wl.Counts, len(oracle), counts)
		}
		if len(wl.Items) > limit || (wl.Next != "" && len(wl.Items) != limit) {
			t.Fatalf("state %q: a page of %d items (limit %d, next %q)", state, len(wl.Items), limit, wl.Next)
		}
		if (len(pages) == 0) != (wl.Prev == "") {
			t.Fatalf("state %q page %d: prev %q", state, len(pages)+1, wl.Prev)
		}
		pages = append(pages, wl.Items)
		if wl.Next == "" {
			break
		}
		if len(pages) > len(want)+1 {
			t.Fatalf("state %q: the pages never end", state)
		}
		filter.After = wl.Next
	}
	got := slices.Concat(pages...)
	if len(got) != len(want) {
		t.Fatalf("state %q search %q: %d items over %d pages, want %d", state, search, len(got), len(pages), len(want))
	}
	for i := range want {
		g, w := got[i], want[i]
		if g.ID != w.ID || g.Overdue != w.Overdue || g.DueToday != w.DueToday || g.Unreviewed != w.Unreviewed ||
			g.ReminderFailed != w.ReminderFailed || g.PatientName != w.PatientName || !equalTimes(g.LastReceived, w.LastReceived) ||
			g.Unanswered != w.Unanswered || !equalTimes(g.WaitingSince, w.WaitingSince) {
			t.Fatalf("state %q search %q item %d = %+v, want %+v", state, search, i, g, w)
		}
	}
	// Backward from the last page: each Prev gives exactly the page before.
	filter.After = ""
	for i := len(pages) - 1; i > 0; i-- {
		first := pages[i][0]
		filter.Before = first.cursor().String()
		wl, err := f.wl.ClinicWorklist(ctx, f.Clinician, filter)
		if err != nil {
			t.Fatal(err)
		}
		if !sameIDs(wl.Items, pages[i-1]) {
			t.Fatalf("state %q: the page before page %d is %v, want %v", state, i+1, ids(wl.Items), ids(pages[i-1]))
		}
		if (i-1 == 0) != (wl.Prev == "") || wl.Next == "" {
			t.Fatalf("state %q: page %d read backward has prev %q next %q", state, i, wl.Prev, wl.Next)
		}
	}
}

func equalCounts(got, want map[string]int) bool {
	for _, st := range States() {
		if got[st] != want[st] {
			return false
		}
	}
	return true
}

func equalTimes(a, b *time.Time) bool {
	return (a == nil) == (b == nil) && (a == nil || a.Equal(*b))
}

func sameIDs(a, b []Item) bool {
	return slices.Equal(ids(a), ids(b))
}

func ids(items []Item) []uuid.UUID {
	out := make([]uuid.UUID, len(items))
	for i, w := range items {
		out[i] = w.ID
	}
	return out
}

// The worklist pages by keyset through more than a page of procedures in every state, with
// totals and counts that are exact, at several times of the clock (the overdue and due-today
// states move with it), and after the changes that move procedures between states.
func TestWorklistPagesEveryState(t *testing.T) {
	t.Parallel()
	f := newWorklistFixture(t)
	const limit = 4
	check := func(when string) {
		t.Helper()
		oracle := worklistOracle(t, f.fixture, "")
		for _, st := range States() {
			n := 0
			for _, w := range oracle {
				if w.Has(st) {
					n++
				}
			}
			if n <= limit {
				t.Fatalf("%s: only %d procedures are %s: the fixture must hold more than a page (%d) in every state", when, n, st, limit)
			}
		}
		for _, st := range append([]string{""}, States()...) {
			f.walk(t, st, "", limit)
		}
		f.walk(t, "", "wang", limit)
		f.walk(t, Unreviewed, "li", 3)
		f.walk(t, "", "MRN-007", limit)
		f.walk(t, "", "nobody", limit)
	}
	check("at the start")
	if err := triggersMatchRefill(t, f.Pool); err != nil {
		t.Fatal(err)
	}

	// Time moves states: what was due today is overdue tomorrow, grace periods end.
	f.Clock.Set(f.Clock.Now().Add(26 * time.Hour))
	check("a day later")

	// Changes move procedures between states: grading, a photo withdrawn, photos that complete
	// a timepoint, a reminder sent after a failure, a procedure closed.
	ctx := followuptest.Ctx(t)
	for i, id := range f.procs[1:13] {
		switch i % 4 {
		case 0:
			if _, err := f.Pool.Exec(ctx, `insert into assessments (clinic_id, procedure_id, timepoint_key, scale_id, level, grader_id)
				select $1, $2, key, 'x', 'none', $3 from timepoints where procedure_id = $2 order by position limit 1`,
				f.Clinic.ID, id, f.Clinician.ID); err != nil {
				t.Fatal(err)
			}
		case 1:
			if _, err := f.Pool.Exec(ctx, `update photos set status = 'withdrawn' where procedure_id = $1`, id); err != nil {
				t.Fatal(err)
			}
		case 2:
			var key string
			var views []string
			if err := f.Pool.QueryRow(ctx, `select key, views from timepoints where procedure_id = $1 order by position limit 1`, id).
				Scan(&key, &views); err != nil {
				t.Fatal(err)
			}
			for _, v := range views {
				f.photo(t, id, key, v)
			}
		case 3:
			var key string
			if err := f.Pool.QueryRow(ctx, `select key from timepoints where procedure_id = $1 order by position limit 1`, id).Scan(&key); err != nil {
				t.Fatal(err)
			}
			f.reminder(t, id, key, followup.ReminderSent, "email")
		}
	}
	// The families of procedures 3 and 8 are answered (handled), that of 4 writes.
	if _, err := f.Pool.Exec(ctx, `update messages set handled_at = $2, handled_by = $3, read_at = $2, read_by = $3
		where procedure_id = any($1) and kind = 'family'`, []uuid.UUID{f.procs[3], f.procs[8]}, f.Clock.Now(), f.Clinician.ID); err != nil {
		t.Fatal(err)
	}
	f.familyMessage(t, f.procs[4], 1)
	if err := f.Core.SetStatus(ctx, f.Clinician, f.procs[20], followup.StatusClosed); err != nil {
		t.Fatal(err)
	}
	if err := f.Core.SetStatus(ctx, f.Clinician, f.procs[5], followup.StatusActive); err != nil { // reopened: listed again
		t.Fatal(err)
	}
	check("after changes")
	if err := triggersMatchRefill(t, f.Pool); err != nil {
		t.Fatal(err)
	}

	f.Clock.Set(f.Clock.Now().Add(3 * 24 * time.Hour))
	oracle := worklistOracle(t, f.fixture, "")
	for _, st := range append([]string{""}, States()...) {
		f.walk(t, st, "", limit)
	}
	if len(oracle) == 0 {
		t.Fatal("no active procedures left")
	}
}

// triggersMatchRefill checks that the rows the triggers kept equal those worklist_refill
// computes from scratch.
func triggersMatchRefill(t *testing.T, pool *pgxpool.Pool) error {
	t.Helper()
	ctx := followuptest.Ctx(t)
	snapshot := func() (string, error) {
		var out string
		err := pool.QueryRow(ctx, `select coalesce(string_agg(x, E'\n' order by x), '') from (
			select format('%s %s %s %s %s %s %s %s %s %s', procedure_id, clinic_id, patient_id, performed_at, status, unreviewed,
				last_received, reminder_failed, unanswered, waiting_since) as x from worklist_entries
			union all select format('gap %s', g.*) from worklist_gaps g
			union all select format('count %s %s %s %s %s', clinic_id, sum(active), sum(unreviewed), sum(failed), sum(waiting))
				from worklist_counts group by clinic_id having sum(active) <> 0) r`).Scan(&out)
		return out, err
	}
	kept, err := snapshot()
	if err != nil {
		return err
	}
	tx, err := pool.Begin(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback(ctx)
	if _, err := tx.Exec(ctx, `select worklist_refill()`); err != nil {
		return err
	}
	var fresh string
	if err := tx.QueryRow(ctx, `select coalesce(string_agg(x, E'\n' order by x), '') from (
			select format('%s %s %s %s %s %s %s %s %s %s', procedure_id, clinic_id, patient_id, performed_at, status, unreviewed,
				last_received, reminder_failed, unanswered, waiting_since) as x from worklist_entries
			union all select format('gap %s', g.*) from worklist_gaps g
			union all select format('count %s %s %s %s %s', clinic_id, sum(active), sum(unreviewed), sum(failed), sum(waiting))
				from worklist_counts group by clinic_id having sum(active) <> 0) r`).Scan(&fresh); err != nil {
		return err
	}
	if kept != fresh {
		return fmt.Errorf("the triggers kept:\n%s\nworklist_refill computes:\n%s", kept, fresh)
	}
	return nil
}

// Two transactions that change one procedure's grades and photos at once leave the count
// right: each trigger locks the procedure's entry before it counts, so the second counts with
// the first's change in sight instead of writing over it with what it saw before.
func TestWorklistTriggersCountAfterTheLock(t *testing.T) {
	t.Parallel()
	f := &worklistFixture{fixture: newFixture(t)}
	ctx := followuptest.Ctx(t)
	// The rows version's triggers lock a row per procedure too, which would hide a missing
	// lock of the worklist's own: without them (in this test's own database) only the
	// worklist's lock orders the two.
	if _, err := f.Pool.Exec(ctx, `drop trigger photos_rows_version on photos;
		drop trigger assessments_rows_version on assessments`); err != nil {
		t.Fatal(err)
	}
	grading, err := f.Pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer grading.Rollback(ctx)
	if _, err := grading.Exec(ctx, `insert into assessments (clinic_id, procedure_id, timepoint_key, scale_id, level, grader_id, created_at)
		values ($1, $2, 'baseline', 'x', 'none', $3, $4)`, f.Clinic.ID, f.Proc.ID, f.Clinician.ID, f.Clock.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	// A photo received before that grade, written while the grade is not yet committed.
	uploaded := make(chan error, 1)
	var uploaderPID uint32
	conn, err := f.Pool.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Release()
	uploaderPID = conn.Conn().PgConn().PID()
	go func() {
		tx, err := conn.Begin(ctx)
		if err != nil {
			uploaded <- err
			return
		}
		defer tx.Rollback(ctx)
		sum := sha256.Sum256([]byte("race"))
		if _, err := tx.Exec(ctx, `insert into photos (clinic_id, procedure_id, timepoint_key, view, upload_id, object_key,
				content_type, size_bytes, sha256, width, height, source, uploaded_by, received_at)
			values ($1, $2, 'baseline', 'front', 'race-upload-1', 'photos/race', 'image/jpeg', 1000, $3, 64, 48, 'clinic', $4, $5)`,
			f.Clinic.ID, f.Proc.ID, sum[:], f.Clinician.ID, f.Clock.Now()); err != nil {
			uploaded <- err
			return
		}
		uploaded <- tx.Commit(ctx)
	}()
	// Wait until the upload waits for the grade's lock, then commit the grade.
	for waiting := false; !waiting; {
		select {
		case err := <-uploaded:
			t.Fatalf("the upload finished before the grade committed: %v", err)
		case <-ctx.Done():
			t.Fatal(ctx.Err())
		case <-time.After(10 * time.Millisecond):
		}
		if err := f.Pool.QueryRow(ctx, `select exists (select 1 from pg_locks where pid = $1 and not granted)`, uploaderPID).Scan(&waiting); err != nil {
			t.Fatal(err)
		}
	}
	if err := grading.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-uploaded; err != nil {
		t.Fatal(err)
	}
	if n := followuptest.Count(t, f.Pool, `select unreviewed from worklist_entries where procedure_id = $1`, f.Proc.ID); n != 0 {
		t.Errorf("unreviewed = %d, want 0: the photo was received before the grade", n)
	}
	if err := triggersMatchRefill(t, f.Pool); err != nil {
		t.Error(err)
	}
}
