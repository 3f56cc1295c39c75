package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/dermfollow/dermfollow/followup/pgtest"
)

var testNow = time.Date(2026, 11, 20, 6, 30, 0, 0, time.UTC)

func connect(t *testing.T) *pgx.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	t.Cleanup(cancel)
	conn, err := pgx.Connect(ctx, pgtest.NewDatabase(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

func generate(t *testing.T, conn *pgx.Conn, cfg Config) Summary {
	t.Helper()
	sum, err := Generate(context.Background(), conn, cfg, func(string, ...any) {})
	if err != nil {
		t.Fatal(err)
	}
	return sum
}

// digests is a digest of every generated table's rows, in a stable order, leaving out what
// differs by design between a bulk load and one through the triggers: the random rows
// versions and the time of the last change the triggers stamp.
func digests(t *testing.T, conn *pgx.Conn) map[string]string {
	t.Helper()
	out := map[string]string{}
	for table, cols := range map[string]string{
		"clinics": "*", "users": "*", "patients": "*", "procedures": "*", "timepoints": "*", "parent_links": "*",
		"photos": "*", "messages": "*", "assessments": "*", "reminders": "*", "exports": "*", "reminder_settings": "*",
		"audit_events": "*", "pending_objects": "*", "worklist_gaps": "*",
		"worklist_entries": "procedure_id, clinic_id, patient_id, performed_at, status, unreviewed, last_received, reminder_failed",
		// A load through the triggers may leave rows of zeros the refill does not write.
		"worklist_counts": "clinic_id, sum(active), sum(unreviewed), sum(failed)",
	} {
		var d string
		err := conn.QueryRow(context.Background(), `select coalesce(md5(string_agg(r::text, ',' order by r::text)), '') || ' ' || count(*)
			from (select `+cols+` from `+table+groupBy(table)+`) r`).Scan(&d)
		if err != nil {
			t.Fatal(err)
		}
		out[table] = d
	}
	return out
}

func groupBy(table string) string {
	if table == "worklist_counts" {
		return " group by clinic_id having sum(active) <> 0"
	}
	return ""
}

// A bulk load (no triggers, the worklist rebuilt after) writes exactly what a load through
// every trigger and foreign key check writes: the rows are consistent, and the state the
// triggers keep is what worklist_refill computes. Both loads also show the data are a
// function of the seed.
func TestBulkLoadEqualsLoadThroughTriggers(t *testing.T) {
	t.Parallel()
	cfg := Config{Clinics: 3, Procedures: 90, MeasuredProcedures: 50, Years: 1, Batch: 17, Seed: 7, Now: testNow}
	bulk := connect(t)
	generate(t, bulk, cfg)
	cfg.Triggers = true
	checked := connect(t)
	generate(t, checked, cfg)
	a, b := digests(t, bulk), digests(t, checked)
	for table := range a {
		if a[table] != b[table] {
			t.Errorf("%s differs between the bulk load (%s) and the load through the triggers (%s)", table, a[table], b[table])
		}
		if strings.HasSuffix(a[table], " 0") && table != "reminder_settings" {
			t.Errorf("%s is empty", table)
		}
	}
	if _, err := Generate(context.Background(), bulk, cfg, func(string, ...any) {}); err == nil || !strings.Contains(err.Error(), "already has clinics") {
		t.Errorf("a second load into the same database = %v, want a refusal", err)
	}
}

// The small size has the shapes the benchmark relies on: procedures in every worklist
// state, reminders sent, skipped and failed, retakes, late photos, grades, and a search term
// that matches about its share of the measured clinic's patients.
func TestSmallSizeShapes(t *testing.T) {
	t.Parallel()
	conn := connect(t)
	cfg := Sizes["small"]
	cfg.Seed, cfg.Now = 1, testNow
	sum := generate(t, conn, cfg)
	if sum.ClinicProcs != cfg.MeasuredProcedures || sum.Counts["procedures"] != int64(cfg.Procedures) || sum.Counts["clinics"] != int64(cfg.Clinics) {
		t.Errorf("procedures %d in the measured clinic, %d in %d clinics; want %d, %d, %d", sum.ClinicProcs, sum.Counts["procedures"],
			sum.Counts["clinics"], cfg.MeasuredProcedures, cfg.Procedures, cfg.Clinics)
	}
	for _, st := range []string{"sent", "skipped", "failed"} {
		if sum.ReminderStatus[st] == 0 {
			t.Errorf("no reminder %s: %v", st, sum.ReminderStatus)
		}
	}
	share := float64(sum.SearchMatches) / float64(sum.ClinicPatients)
	if share < SearchShare*0.9 || share > SearchShare*1.1 {
		t.Errorf("the search term matches %d of %d patients (%.3f), want about %.2f", sum.SearchMatches, sum.ClinicPatients, share, SearchShare)
	}
	if sum.TimelinePhotos < 20 {
		t.Errorf("the fullest timeline has %d photos, want a full one", sum.TimelinePhotos)
	}
	ctx := context.Background()
	var overdue, due, unreviewed, failed, active, retakes, late, complete, opened int
	err := conn.QueryRow(ctx, `select
			(select count(distinct g.procedure_id) from worklist_gaps g join worklist_entries e using (procedure_id)
				where e.clinic_id = $1 and e.status = 'active' and g.overdue @> $2::timestamptz),
			(select count(distinct g.procedure_id) from worklist_gaps g join worklist_entries e using (procedure_id)
				where e.clinic_id = $1 and e.status = 'active' and g.due_on between ($2::timestamptz at time zone $3)::date - 3
					and ($2::timestamptz at time zone $3)::date),
			(select count(*) from worklist_entries where clinic_id = $1 and status = 'active' and unreviewed > 0),
			(select count(*) from worklist_entries where clinic_id = $1 and status = 'active' and reminder_failed),
			(select count(*) from worklist_entries where clinic_id = $1 and status = 'active'),
			(select count(*) from messages where kind = 'retake'),
			(select count(*) from photos ph join timepoints t on t.procedure_id = ph.procedure_id and t.key = ph.timepoint_key
				where ph.received_at >= t.closes_at),
			(select count(*) from timepoints t where t.opens_at < $2 and not exists (select 1 from worklist_gaps g
				where g.procedure_id = t.procedure_id and g.timepoint_key = t.key)),
			(select count(*) from timepoints t where t.opens_at < $2)`,
		sum.ClinicID, testNow, sum.TimeZone).Scan(&overdue, &due, &unreviewed, &failed, &active, &retakes, &late, &complete, &opened)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("measured clinic: %d active, %d overdue, %d due in the last days, %d unreviewed, %d reminder failed; %d retakes, %d late photos, %d of %d opened timepoints complete",
		active, overdue, due, unreviewed, failed, retakes, late, complete, opened)
	if overdue < 5 || due < 5 || unreviewed < 50 || failed < 5 || retakes < 50 || late < 100 {
		t.Error("the measured clinic lacks a worklist state or the data lack retakes or late photos")
	}
	if c := float64(complete) / float64(opened); c < 0.5 || c > 0.8 {
		t.Errorf("%.2f of the opened timepoints are complete, want the compliance of the model (about 0.65)", c)
	}
}
