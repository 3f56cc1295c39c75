package followup

import (
	"context"
	"errors"
	"slices"
	"strings"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// The pages that show a procedure need a dozen small reads. Sent one after another, each waits
// for its own round trip to PostgreSQL, and on a busy server the round trips, not the queries,
// are the cost; so the reads of one page are queued on a pgx.Batch and sent together.
//
// Every queued read carries the actor's clinic in its WHERE clause, like any other query here,
// even though the first read of a batch (the procedure in scope) already decides whether the
// rest is shown at all: a read never depends on another read's callback having run.

// sendBatch sends the queued reads in one round trip and runs their callbacks in order. The
// first error wins: a callback's own (such as not found) or the connection's.
func (s *Service) sendBatch(ctx context.Context, b *pgx.Batch) error {
	err := s.pool.SendBatch(ctx, b).Close()
	var e *Error
	if err != nil && !errors.As(err, &e) {
		return unavailable(err)
	}
	return err
}

// queueRows queues a query whose rows scan into *dst.
func queueRows[T any](b *pgx.Batch, dst *[]T, scan func(pgx.CollectableRow) (T, error), sql string, args ...any) {
	b.Queue(sql, args...).Query(func(rows pgx.Rows) error {
		out, err := pgx.CollectRows(rows, scan)
		if err != nil {
			return unavailable(err)
		}
		*dst = out
		return nil
	})
}

// queueProcedure queues the read of a procedure the actor may see; a procedure out of scope
// is not found, which stops the batch there.
func queueProcedure(b *pgx.Batch, a Actor, id uuid.UUID, dst *Procedure) {
	clinic, _ := procedureScope(a)
	b.Queue(procedureSQL, id, clinic).QueryRow(func(row pgx.Row) error {
		p, err := scanProcedure(row)
		if err != nil {
			return notFound(err, "procedure")
		}
		*dst = p
		return nil
	})
}

// inScope refuses a parent's actor outside its own procedure before anything is queued.
func inScope(a Actor, procedureID uuid.UUID) error {
	if _, only := procedureScope(a); only != uuid.Nil && only != procedureID {
		return Errorf(ENOTFOUND, "procedure not found")
	}
	return nil
}

// ProcedureRecord is a procedure with everything the clinic's procedure pages show about it:
// its view, its patient, its parent links, its reminder outbox and the clinic's time zone.
type ProcedureRecord struct {
	ProcedureView
	Patient   Patient
	Links     []ParentLink
	Reminders []Reminder
	Clinic    Clinic
}

// recordHeadSQL reads a procedure ($1, within clinic $2) with its patient, its clinic and its
// rows version (record_cache.go): one statement rather than three.
var recordHeadSQL = `select ` + qualify("pr", procedureColumns) + `, ` + qualify("pt", patientColumns) + `, ` +
	qualify("c", clinicColumns) + `, coalesce(v.version, '00000000-0000-0000-0000-000000000000')
	from procedures pr join patients pt on pt.id = pr.patient_id and pt.clinic_id = pr.clinic_id
		join clinics c on c.id = pr.clinic_id
		left join procedure_row_versions v on v.procedure_id = pr.id
	where pr.id = $1 and pr.clinic_id = $2`

// qualify prefixes each column of a comma-separated list with a table alias.
func qualify(alias, columns string) string {
	cols := strings.Split(columns, ",")
	for i, c := range cols {
		cols[i] = alias + "." + strings.TrimSpace(c)
	}
	return strings.Join(cols, ", ")
}

// ProcedureRecord loads a procedure of the actor's clinic with its patient, links and
// reminders, in one round trip: the procedure, patient and clinic are read every time, the
// rows listed under them come from the record cache while the procedure's rows version says
// they are current (record_cache.go). Researchers see none (identified data).
func (s *Service) ProcedureRecord(ctx context.Context, a Actor, id uuid.UUID) (ProcedureRecord, error) {
	return s.ProcedureRecordWith(ctx, a, id, nil)
}

// ProcedureRecordWith is ProcedureRecord with more of the page's statements in its round trip:
// queue (when not nil) adds them to the batch after the record's reads. Each must be scoped to
// the actor's clinic on its own (they are sent whatever the record's read finds) and reads its
// results in its callback; the first error of the batch, the record's not found included, is
// returned. The batch is one implicit transaction: a statement that fails rolls back the others.
func (s *Service) ProcedureRecordWith(ctx context.Context, a Actor, id uuid.UUID, queue func(*pgx.Batch)) (ProcedureRecord, error) {
	if err := a.requireClinical(); err != nil {
		return ProcedureRecord{}, err
	}
	var r ProcedureRecord
	var version uuid.UUID
	b := &pgx.Batch{}
	b.Queue(recordHeadSQL, id, a.ClinicID).QueryRow(func(row pgx.Row) error {
		var pt patientRow
		if err := row.Scan(slices.Concat(r.Procedure.dest(), pt.dest(), r.Clinic.dest(), []any{&version})...); err != nil {
			return notFound(err, "procedure")
		}
		r.Patient = pt.patient()
		return r.Clinic.locate()
	})
	s.queueSchedule(b, a.ClinicID, id, &r.Timepoints)
	var rows recordRows
	kept, ok := s.records.c.load(id, maxCachedRecords)
	if !ok { // read the rows in this batch, after the version
		queueRecordRows(b, a.ClinicID, id, &rows)
	}
	if queue != nil {
		queue(b)
	}
	if err := s.sendBatch(ctx, b); err != nil {
		return ProcedureRecord{}, wrap(err, "procedure %s", id)
	}
	switch {
	case ok && kept.version == version:
		rows = kept.copy()
	case ok: // changed since they were kept: read them again, after the version just read
		b = &pgx.Batch{}
		queueRecordRows(b, a.ClinicID, id, &rows)
		if err := s.sendBatch(ctx, b); err != nil {
			return ProcedureRecord{}, wrap(err, "procedure %s", id)
		}
		fallthrough
	default:
		rows.version = version
		s.records.put(id, rows)
	}
	r.Photos, r.Assessments, r.Messages, r.Links, r.Reminders = rows.photos, rows.assessments, rows.messages, rows.links, rows.reminders
	r.ProcedureView.setStates(s.now())
	return r, nil
}
