package followup

import (
	"context"
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
// patient has none.
func (s *Service) ListProcedures(ctx context.Context, a Actor, f ProcedureFilter) ([]ProcedureSummary, error) {
	if err := a.requireClinical(); err != nil {
		return nil, err
	}
	if f.Limit <= 0 || f.Limit > 500 {
		f.Limit = 500
	}
	search := "%" + strings.NewReplacer(`\`, `\\`, "%", `\%`, "_", `\_`).Replace(strings.ToLower(strings.TrimSpace(f.Search))) + "%"
	rows, err := s.pool.Query(ctx, `select pr.id, pa.id, pa.display_name, pr.protocol_id, pr.body_site, pr.performed_at, pr.status
		from procedures pr join patients pa on pa.id = pr.patient_id and pa.clinic_id = pr.clinic_id
		where pr.clinic_id = $1 and ($2 = '' or pr.status = $2) and lower(pa.display_name) like $3
			and ($5::uuid is null or pr.patient_id = $5)
		order by pr.performed_at desc, pr.id limit $4`, a.ClinicID, f.Status, search, f.Limit, nullUUID(f.PatientID))
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

// nullUUID is SQL NULL for uuid.Nil, so optional filters read "$n is null or ...".
func nullUUID(id uuid.UUID) any {
	if id == uuid.Nil {
		return nil
	}
	return id
}
