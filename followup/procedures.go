package followup

import (
	"context"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/dermfollow/dermfollow/protocols"
)

// Procedure statuses: closed and withdrawn procedures take no more uploads or reminders, and
// nothing of them is deleted.
const (
	StatusActive    = "active"
	StatusClosed    = "closed"
	StatusWithdrawn = "withdrawn"
)

// BodySites is the vocabulary of body sites. A controlled list, so that exports can flag the
// sites whose photos show recognisable features.
func BodySites() []string {
	return []string{"face", "scalp", "neck", "chest", "abdomen", "back", "buttock", "genital",
		"upper-arm", "forearm", "hand", "thigh", "lower-leg", "foot", "other"}
}

// RecognizableSite reports whether photos of the site usually show recognisable features.
func RecognizableSite(site string) bool { return site == "face" || site == "neck" || site == "scalp" }

// Procedure is a treatment followed by a protocol.
type Procedure struct {
	ID               uuid.UUID  `json:"id"`
	PatientID        uuid.UUID  `json:"patient_id"`
	Kind             string     `json:"kind"`
	BodySite         string     `json:"body_site"`
	PerformedAt      time.Time  `json:"performed_at"`
	Protocol         string     `json:"protocol"`
	ProtocolVersion  int        `json:"protocol_version"`
	ClinicianID      *uuid.UUID `json:"clinician_id,omitempty"`
	Status           string     `json:"status"`
	RemindersEnabled bool       `json:"reminders_enabled"`
	CreatedAt        time.Time  `json:"created_at"`
}

// Timepoint is one step of a procedure's materialised schedule with its state.
type Timepoint struct {
	Key         string          `json:"key"`
	DueAt       time.Time       `json:"due_at"`
	DueOn       protocols.Date  `json:"due_on"`
	WindowStart protocols.Date  `json:"window_start"`
	WindowEnd   protocols.Date  `json:"window_end"`
	Views       []string        `json:"views"` // read-only: shared with the schedule cache
	Who         string          `json:"who"`
	Remind      bool            `json:"remind"`
	State       protocols.State `json:"state"`
	Missing     []string        `json:"missing_views,omitempty"`

	opens, closes, graceEnds time.Time
}

func (t *Timepoint) due() protocols.Due {
	return protocols.Due{
		Timepoint: protocols.Timepoint{Key: t.Key, Views: t.Views, Who: t.Who, Remind: t.Remind},
		At:        t.DueAt, DueOn: t.DueOn, WindowStart: t.WindowStart, WindowEnd: t.WindowEnd,
		Opens: t.opens, Closes: t.closes, GraceEnds: t.graceEnds,
	}
}

// NewProcedure is the input of Enrol.
type NewProcedure struct {
	PatientID       string `json:"patient_id"`
	Protocol        string `json:"protocol"`
	ProtocolVersion int    `json:"protocol_version"` // 0: the latest
	Kind            string `json:"kind"`             // "": the protocol's first kind
	BodySite        string `json:"body_site"`
	PerformedAt     string `json:"performed_at"` // RFC 3339
	ClinicianID     string `json:"clinician_id"` // "": the enrolling clinician
}

// Enrolment is a new procedure with its computed schedule.
type Enrolment struct {
	Procedure
	Timepoints []Timepoint `json:"timepoints"`
}

// PreviewSchedule computes the schedule an enrolment would get, without saving anything.
func (s *Service) PreviewSchedule(ctx context.Context, a Actor, in NewProcedure) (*protocols.Protocol, []Timepoint, error) {
	if err := a.requireClinical(); err != nil {
		return nil, nil, err
	}
	clinic, err := s.Clinic(ctx, a.ClinicID)
	if err != nil {
		return nil, nil, err
	}
	p, _, performed, err := s.checkProcedure(in)
	if err != nil {
		return nil, nil, err
	}
	return p, s.schedule(p, performed, clinic.Location), nil
}

func (s *Service) checkProcedure(in NewProcedure) (*protocols.Protocol, string, time.Time, error) {
	var p *protocols.Protocol
	var err error
	if in.ProtocolVersion > 0 {
		p, err = s.protocols.Get(in.Protocol, in.ProtocolVersion)
	} else {
		p, err = s.protocols.Latest(in.Protocol)
	}
	if err != nil {
		return nil, "", time.Time{}, invalidField("protocol", "unknown protocol %q", in.Protocol)
	}
	kind := strings.TrimSpace(in.Kind)
	if kind == "" && len(p.Kinds) > 0 {
		kind = p.Kinds[0]
	}
	if !slices.Contains(p.Kinds, kind) {
		return nil, "", time.Time{}, invalidField("kind", "protocol %s applies to %s, not %q", p.ID, strings.Join(p.Kinds, ", "), kind)
	}
	if !slices.Contains(BodySites(), in.BodySite) {
		return nil, "", time.Time{}, invalidField("body_site", "must be one of %s", strings.Join(BodySites(), ", "))
	}
	performed, err := time.Parse(time.RFC3339, in.PerformedAt)
	performed = performed.UTC() // times leave the API in UTC, as they are read back
	if err != nil {
		return nil, "", time.Time{}, invalidField("performed_at", "must be a time as RFC 3339, e.g. 2026-05-01T09:30:00+08:00")
	}
	if now := s.now(); performed.After(now.AddDate(1, 0, 0)) || performed.Before(now.AddDate(-10, 0, 0)) {
		return nil, "", time.Time{}, invalidField("performed_at", "must be within the last ten years or the next year")
	}
	return p, kind, performed, nil
}

func (s *Service) schedule(p *protocols.Protocol, performed time.Time, loc *time.Location) []Timepoint {
	dues := p.Schedule(performed, loc)
	now := s.now()
	out := make([]Timepoint, len(dues))
	for i, d := range dues {
		out[i] = Timepoint{Key: d.Key, DueAt: d.At.UTC(), DueOn: d.DueOn, WindowStart: d.WindowStart, WindowEnd: d.WindowEnd,
			Views: d.Views, Who: d.Who, Remind: d.Remind, opens: d.Opens, closes: d.Closes, graceEnds: d.GraceEnds}
		out[i].State = d.State(nil, now)
		out[i].Missing = d.Missing(nil)
	}
	return out
}

// Enrol creates a procedure for a patient of the actor's clinic and materialises its schedule
// from the protocol version it keeps from now on.
func (s *Service) Enrol(ctx context.Context, a Actor, in NewProcedure) (Enrolment, error) {
	if err := a.requireClinical(); err != nil {
		return Enrolment{}, err
	}
	patientID, err := uuid.Parse(in.PatientID)
	if err != nil {
		return Enrolment{}, invalidField("patient_id", "must be a patient id")
	}
	clinic, err := s.Clinic(ctx, a.ClinicID)
	if err != nil {
		return Enrolment{}, err
	}
	p, kind, performed, err := s.checkProcedure(in)
	if err != nil {
		return Enrolment{}, err
	}
	clinician := a.ID
	if in.ClinicianID != "" {
		if clinician, err = uuid.Parse(in.ClinicianID); err != nil {
			return Enrolment{}, invalidField("clinician_id", "must be a user id")
		}
	}
	if _, err := s.patient(ctx, a.ClinicID, patientID); err != nil {
		return Enrolment{}, err
	}
	e := Enrolment{
		Procedure: Procedure{PatientID: patientID, Kind: kind, BodySite: in.BodySite, PerformedAt: performed,
			Protocol: p.ID, ProtocolVersion: p.Version, ClinicianID: &clinician, Status: StatusActive, RemindersEnabled: true},
		Timepoints: s.schedule(p, performed, clinic.Location),
	}
	err = s.inTx(ctx, func(tx pgx.Tx) error {
		err := tx.QueryRow(ctx, `insert into procedures (clinic_id, patient_id, kind, body_site, performed_at, protocol_id,
				protocol_version, clinician_id)
			values ($1, $2, $3, $4, $5, $6, $7, $8) returning id, created_at`,
			a.ClinicID, patientID, kind, in.BodySite, performed, p.ID, p.Version, clinician).Scan(&e.ID, &e.CreatedAt)
		if pgCode(err) == pgForeignKeyViolation {
			return invalidField("clinician_id", "is not a user of this clinic")
		}
		if err != nil {
			return unavailable(err)
		}
		for i, t := range e.Timepoints {
			_, err := tx.Exec(ctx, `insert into timepoints (procedure_id, key, position, due_at, due_on, window_start, window_end,
					opens_at, closes_at, grace_ends_at, views, who, remind)
				values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)`,
				e.ID, t.Key, i, t.DueAt, t.DueOn.String(), t.WindowStart.String(), t.WindowEnd.String(),
				t.opens, t.closes, t.graceEnds, t.Views, t.Who, t.Remind)
			if err != nil {
				return unavailable(err)
			}
		}
		return audit(ctx, tx, a, AuditEvent{Action: AuditProcedureEnrolled, TargetKind: "procedure", TargetID: e.ID,
			Detail: map[string]any{"protocol": p.ID, "version": p.Version}})
	})
	if err != nil {
		return Enrolment{}, wrap(err, "enrol procedure")
	}
	return e, nil
}

// procedureScope is the WHERE clause that confines a query to what the actor may see:
// its clinic, and for a parent, its one procedure.
func procedureScope(a Actor) (clinic uuid.UUID, only uuid.UUID) {
	if a.Kind == ActorParent {
		return a.ClinicID, a.Procedure
	}
	return a.ClinicID, uuid.Nil
}

// procedureColumns are scanned by Procedure.dest; procedureSQL reads a procedure by id ($1)
// within a clinic ($2).
const (
	procedureColumns = `id, patient_id, kind, body_site, performed_at, protocol_id, protocol_version, clinician_id, status,
		reminders_enabled, created_at`
	procedureSQL = `select ` + procedureColumns + ` from procedures where id = $1 and clinic_id = $2`
)

func (p *Procedure) dest() []any {
	return []any{&p.ID, &p.PatientID, &p.Kind, &p.BodySite, &p.PerformedAt, &p.Protocol, &p.ProtocolVersion,
		&p.ClinicianID, &p.Status, &p.RemindersEnabled, &p.CreatedAt}
}

func scanProcedure(row pgx.Row) (Procedure, error) {
	var p Procedure
	err := row.Scan(p.dest()...)
	return p, err
}

// procedure loads a procedure the actor may see; another clinic's id is not found. Within a
// transaction (q) it can lock the row.
func (s *Service) procedure(ctx context.Context, q pgx.Tx, a Actor, id uuid.UUID, lock bool) (Procedure, error) {
	if q != nil {
		return procedureIn(ctx, q, a, id, lock)
	}
	return procedureIn(ctx, s.pool, a, id, lock)
}

// rowQuerier is a transaction or the pool.
type rowQuerier interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

func procedureIn(ctx context.Context, q rowQuerier, a Actor, id uuid.UUID, lock bool) (Procedure, error) {
	if err := inScope(a, id); err != nil {
		return Procedure{}, err
	}
	clinic, _ := procedureScope(a)
	sql := procedureSQL
	if lock {
		sql += " for update"
	}
	p, err := scanProcedure(q.QueryRow(ctx, sql, id, clinic))
	if err != nil {
		return Procedure{}, notFound(err, "procedure")
	}
	return p, nil
}

// timepointsSQL reads a procedure's schedule (states not yet set: see setTimepointStates),
// scoped by clinic; queueSchedule sends it.
const timepointsSQL = `select t.key, t.due_at, t.due_on, t.window_start, t.window_end, t.opens_at,
		t.closes_at, t.grace_ends_at, t.views, t.who, t.remind
	from timepoints t join procedures p on p.id = t.procedure_id
	where t.procedure_id = $1 and p.clinic_id = $2 order by t.position`

func scanTimepoint(row pgx.CollectableRow) (Timepoint, error) {
	var t Timepoint
	var dueOn, ws, we time.Time
	err := row.Scan(&t.Key, &t.DueAt, &dueOn, &ws, &we, &t.opens, &t.closes, &t.graceEnds, &t.Views, &t.Who, &t.Remind)
	t.DueOn, t.WindowStart, t.WindowEnd = protocols.DateOf(dueOn, time.UTC), protocols.DateOf(ws, time.UTC), protocols.DateOf(we, time.UTC)
	return t, err
}

// setTimepointStates sets each timepoint's state at now from the views received per timepoint.
func setTimepointStates(tps []Timepoint, received map[string]map[string]bool, now time.Time) {
	for i := range tps {
		t := &tps[i]
		d := t.due()
		t.State = d.State(received[t.Key], now)
		t.Missing = d.Missing(received[t.Key])
	}
}

// SetStatus closes or withdraws a procedure (or reopens it): closed and withdrawn procedures
// take no uploads and send no reminders; nothing is deleted.
func (s *Service) SetStatus(ctx context.Context, a Actor, id uuid.UUID, status string) error {
	if err := a.requireClinical(); err != nil {
		return err
	}
	if status != StatusActive && status != StatusClosed && status != StatusWithdrawn {
		return invalidField("status", "must be active, closed or withdrawn")
	}
	return wrap(s.inTx(ctx, func(tx pgx.Tx) error {
		p, err := s.procedure(ctx, tx, a, id, true)
		if err != nil {
			return err
		}
		if p.Status == status {
			return nil
		}
		if _, err := tx.Exec(ctx, `update procedures set status = $2, status_changed_at = now() where id = $1`, id, status); err != nil {
			return unavailable(err)
		}
		return audit(ctx, tx, a, AuditEvent{Action: AuditProcedureStatus, TargetKind: "procedure", TargetID: id,
			Detail: map[string]any{"from": p.Status, "to": status}})
	}), "set status of procedure %s", id)
}
