package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	pgxuuid "github.com/vgarvardt/pgx-google-uuid/v5"

	"github.com/dermfollow/dermfollow/protocols"
)

// Config is the shape of a generated database.
type Config struct {
	Clinics            int     // clinics in all; the first is the measured one
	Procedures         int     // procedures in all clinics
	MeasuredProcedures int     // of which in the measured clinic
	Years              float64 // procedures were performed over this many years before Now
	Batch              int     // procedures per COPY batch
	Seed               uint64
	Now                time.Time
	// Triggers loads with every trigger firing (foreign keys checked, the worklist and the
	// rows versions kept row by row): slow, for the tests that compare it with a bulk load.
	Triggers bool
}

// Sizes are the two sizes of make bench-scale.
var Sizes = map[string]Config{
	"small": {Clinics: 2, Procedures: 1100, MeasuredProcedures: 1000, Years: 2, Batch: 550},
	"large": {Clinics: 50, Procedures: 100_000, MeasuredProcedures: 8000, Years: 2, Batch: 2000},
}

// SearchTerm is the family name the generator gives every SearchEvery-th patient of a clinic
// (SearchShare of them, 3%), and no other name contains: the worklist search of the benchmark.
const (
	SearchTerm  = "ouyang"
	SearchEvery = 33
	SearchShare = 1.0 / SearchEvery
)

// The behaviour the data follow. Shares are per timepoint whose window has opened, unless
// said otherwise.
const (
	familyComplete = 0.55 // every view of a family timepoint arrives
	familyPartial  = 0.15 // some views only (the rest: none)
	clinicComplete = 0.90 // the clinic's own photos (baseline, after treatment)
	latePhoto      = 0.15 // a photo arrives after its window closed, within the grace days
	retakeShare    = 0.04 // a photo the clinician asks to be taken again
	gradedShare    = 0.65 // a timepoint with photos gets a grade
	noteShare      = 0.05 // a procedure gets a note to the family
	deliveryFails  = 0.05 // a reminder attempt the channel refuses
	repeatPatient  = 0.20 // a patient treated again, 8 to 12 weeks later
	consentShare   = 0.60
	emailShare     = 0.85 // guardians with an email address (the others a phone only)
	webhookClinics = 0.30 // clinics with an SMS gateway (and so webhook reminders)
	// After the follow-up ends a procedure is closed, withdrawn, or (clinicians being busy)
	// left active.
	closedAfter    = 0.55
	withdrawnAfter = 0.05
)

// Summary is what the benchmark needs to know about a generated database.
type Summary struct {
	Size            string           `json:"size,omitempty"`
	Seed            uint64           `json:"seed"`
	Now             time.Time        `json:"now"`
	Seconds         float64          `json:"seconds"`
	ClinicID        uuid.UUID        `json:"clinic_id"`
	ClinicName      string           `json:"clinic_name"`
	TimeZone        string           `json:"time_zone"`
	TimelineProc    uuid.UUID        `json:"timeline_procedure"`
	TimelinePhotos  int              `json:"timeline_photos"`
	Patient         uuid.UUID        `json:"patient"`
	SearchTerm      string           `json:"search_term"`
	SearchMatches   int              `json:"search_matches"`
	ClinicPatients  int              `json:"clinic_patients"`
	ClinicProcs     int              `json:"clinic_procedures"`
	ClinicActive    int              `json:"clinic_active"`
	Counts          map[string]int64 `json:"counts"`
	ReminderStatus  map[string]int64 `json:"reminder_status"`
	DatabaseBytes   int64            `json:"database_bytes"`
	AuditBytes      int64            `json:"audit_bytes"`
	AuditPhotoViews int64            `json:"audit_photo_views"`
}

// Generate fills the empty database conn is connected to and describes it.
func Generate(ctx context.Context, conn *pgx.Conn, cfg Config, progress func(string, ...any)) (Summary, error) {
	started := time.Now()
	if cfg.Clinics < 1 || cfg.MeasuredProcedures < 1 || cfg.Procedures < cfg.MeasuredProcedures || cfg.Batch < 1 {
		return Summary{}, errors.New("scalegen: a config needs clinics, procedures (measured ones included) and a batch size")
	}
	if cfg.Clinics == 1 && cfg.Procedures != cfg.MeasuredProcedures {
		return Summary{}, errors.New("scalegen: with one clinic every procedure is the measured clinic's")
	}
	pgxuuid.Register(conn.TypeMap())
	var n int
	if err := conn.QueryRow(ctx, `select count(*) from clinics`).Scan(&n); err != nil {
		return Summary{}, fmt.Errorf("scalegen: is the database migrated? %w", err)
	}
	if n > 0 {
		return Summary{}, errors.New("scalegen: the database already has clinics; give it an empty, migrated one")
	}
	reg, err := protocols.LoadRegistry("")
	if err != nil {
		return Summary{}, err
	}
	if !cfg.Triggers {
		if _, err := conn.Exec(ctx, `set session_replication_role = replica`); err != nil {
			return Summary{}, fmt.Errorf("scalegen: the bulk load needs a superuser: %w", err)
		}
	}
	w := &writer{conn: conn}
	sum := Summary{Seed: cfg.Seed, Now: cfg.Now, SearchTerm: SearchTerm}
	others := cfg.Procedures - cfg.MeasuredProcedures
	for i := range cfg.Clinics {
		procs := cfg.MeasuredProcedures
		if i > 0 {
			procs = others / (cfg.Clinics - 1)
			if i <= others%(cfg.Clinics-1) {
				procs++
			}
		}
		c := newClinicGen(cfg, reg, i)
		if i == 0 {
			sum.ClinicID, sum.ClinicName, sum.TimeZone = c.id, c.name, c.zone
		}
		if err := c.generate(ctx, w, procs); err != nil {
			return Summary{}, fmt.Errorf("scalegen: clinic %d: %w", i, err)
		}
		if i == 0 || (i+1)%10 == 0 || i == cfg.Clinics-1 {
			progress("clinic %d of %d written (%d procedures so far)", i+1, cfg.Clinics, w.procedures)
		}
	}
	// A few uploads in flight: their objects are noted before they are stored.
	if _, err := conn.Exec(ctx, `insert into pending_objects (object_key, created_at)
		select 'photos/' || left(md5(g::text), 2) || '/' || md5(g::text), $1::timestamptz - make_interval(secs => g * 6)
		from generate_series(1, 20) g`, cfg.Now); err != nil {
		return Summary{}, err
	}
	if !cfg.Triggers {
		// What the triggers keep, rebuilt once from the rows, planned with their sizes.
		if _, err := conn.Exec(ctx, `analyze`); err != nil {
			return Summary{}, err
		}
		if _, err := conn.Exec(ctx, `insert into procedure_row_versions (procedure_id, version)
			select id, gen_random_uuid() from procedures`); err != nil {
			return Summary{}, err
		}
		if _, err := conn.Exec(ctx, `select worklist_refill()`); err != nil {
			return Summary{}, fmt.Errorf("scalegen: worklist_refill: %w", err)
		}
		progress("worklist and rows versions rebuilt")
		if _, err := conn.Exec(ctx, `reset session_replication_role`); err != nil {
			return Summary{}, err
		}
	}
	if _, err := conn.Exec(ctx, `vacuum (analyze)`); err != nil {
		return Summary{}, err
	}
	progress("vacuumed and analyzed")
	if err := summarize(ctx, conn, &sum); err != nil {
		return Summary{}, err
	}
	sum.Seconds = time.Since(started).Seconds()
	return sum, nil
}

func summarize(ctx context.Context, conn *pgx.Conn, sum *Summary) error {
	sum.Counts = map[string]int64{}
	for _, t := range []string{"clinics", "users", "patients", "procedures", "timepoints", "parent_links", "photos",
		"assessments", "messages", "reminders", "audit_events", "exports", "pending_objects", "worklist_entries", "worklist_gaps"} {
		var n int64
		if err := conn.QueryRow(ctx, `select count(*) from `+t).Scan(&n); err != nil {
			return err
		}
		sum.Counts[t] = n
	}
	sum.ReminderStatus = map[string]int64{}
	rows, err := conn.Query(ctx, `select status, count(*) from reminders group by status`)
	if err != nil {
		return err
	}
	for rows.Next() {
		var st string
		var n int64
		if err := rows.Scan(&st, &n); err != nil {
			return err
		}
		sum.ReminderStatus[st] = n
	}
	if err := rows.Err(); err != nil {
		return err
	}
	err = conn.QueryRow(ctx, `select
			(select count(*) from patients where clinic_id = $1),
			(select count(*) from patients where clinic_id = $1 and lower(display_name) like '%' || $2 || '%'),
			(select count(*) from procedures where clinic_id = $1),
			(select count(*) from procedures where clinic_id = $1 and status = 'active'),
			pg_database_size(current_database()), pg_total_relation_size('audit_events'),
			(select count(*) from audit_events where action = 'photo_viewed')`, sum.ClinicID, SearchTerm).
		Scan(&sum.ClinicPatients, &sum.SearchMatches, &sum.ClinicProcs, &sum.ClinicActive, &sum.DatabaseBytes, &sum.AuditBytes,
			&sum.AuditPhotoViews)
	if err != nil {
		return err
	}
	// The timeline of the benchmark: the measured clinic's active procedure with the most
	// photos; the patient page: its patient with the most procedures.
	err = conn.QueryRow(ctx, `select pr.id, count(*)::integer from procedures pr join photos ph on ph.procedure_id = pr.id
		where pr.clinic_id = $1 and pr.status = 'active' group by pr.id order by count(*) desc, pr.id limit 1`, sum.ClinicID).
		Scan(&sum.TimelineProc, &sum.TimelinePhotos)
	if err != nil {
		return fmt.Errorf("scalegen: no timeline to measure: %w", err)
	}
	return conn.QueryRow(ctx, `select patient_id from procedures where clinic_id = $1 group by patient_id
		order by count(*) desc, patient_id limit 1`, sum.ClinicID).Scan(&sum.Patient)
}

// writer copies the rows of a batch, parents before children, and counts them.
type writer struct {
	conn       *pgx.Conn
	procedures int
}

// table is the rows of one table in a batch.
type table struct {
	name    string
	columns []string
	rows    [][]any
}

func (t *table) add(values ...any) { t.rows = append(t.rows, values) }

func (w *writer) copy(ctx context.Context, tables ...*table) error {
	for _, t := range tables {
		if len(t.rows) == 0 {
			continue
		}
		if _, err := w.conn.CopyFrom(ctx, pgx.Identifier{t.name}, t.columns, pgx.CopyFromRows(t.rows)); err != nil {
			return fmt.Errorf("copy %s: %w", t.name, err)
		}
		t.rows = t.rows[:0]
	}
	return nil
}

// batch is one batch's rows of every table, in the order the foreign keys want.
type batch struct {
	patients, procedures, timepoints, links, photos, messages, assessments, reminders, audit table
}

func newBatch() *batch {
	return &batch{
		patients: table{name: "patients", columns: []string{"id", "clinic_id", "display_name", "birth_date", "mrn", "guardian_email",
			"guardian_phone", "preferred_language", "research_consent_at", "created_by", "created_at"}},
		procedures: table{name: "procedures", columns: []string{"id", "clinic_id", "patient_id", "kind", "body_site", "performed_at",
			"protocol_id", "protocol_version", "clinician_id", "status", "status_changed_at", "reminders_enabled", "created_at"}},
		timepoints: table{name: "timepoints", columns: []string{"procedure_id", "key", "position", "due_at", "due_on", "window_start",
			"window_end", "opens_at", "closes_at", "grace_ends_at", "views", "who", "remind"}},
		links: table{name: "parent_links", columns: []string{"id", "clinic_id", "procedure_id", "token_hash", "created_by", "created_at",
			"expires_at", "revoked_at"}},
		photos: table{name: "photos", columns: []string{"id", "clinic_id", "procedure_id", "timepoint_key", "view", "upload_id",
			"object_key", "content_type", "size_bytes", "sha256", "width", "height", "orientation", "captured_at", "captured_offset", "received_at", "source",
			"parent_link_id", "uploaded_by", "removed", "thumbnails_at"}},
		messages: table{name: "messages", columns: []string{"id", "clinic_id", "procedure_id", "kind", "timepoint_key", "photo_id",
			"body", "author_id", "created_at"}},
		assessments: table{name: "assessments", columns: []string{"id", "clinic_id", "procedure_id", "timepoint_key", "scale_id",
			"level", "note", "grader_id", "created_at"}},
		reminders: table{name: "reminders", columns: []string{"id", "clinic_id", "procedure_id", "timepoint_key", "kind", "channel",
			"status", "attempts", "last_error", "send_after", "parent_link_id", "created_at", "updated_at", "sent_at"}},
		audit: table{name: "audit_events", columns: []string{"at", "clinic_id", "actor_kind", "actor_id", "action", "target_kind",
			"target_id", "client_addr", "detail"}},
	}
}

func (b *batch) tables() []*table {
	return []*table{&b.patients, &b.procedures, &b.timepoints, &b.links, &b.photos, &b.messages, &b.assessments, &b.reminders, &b.audit}
}
