package followup

import (
	"context"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// ProcedureView is everything about a procedure that its pages and API show.
type ProcedureView struct {
	Procedure
	Timepoints  []Timepoint  `json:"timepoints"`
	Photos      []Photo      `json:"photos"`
	Assessments []Assessment `json:"assessments"`
	Messages    []Message    `json:"messages"`
}

// ProcedureView loads a procedure with its schedule states, photos, assessments and messages,
// in one round trip. A parent sees only its own procedure; researchers see none (identified
// data).
func (s *Service) ProcedureView(ctx context.Context, a Actor, id uuid.UUID) (ProcedureView, error) {
	if a.Kind != ActorParent {
		if err := a.requireClinical(); err != nil {
			return ProcedureView{}, err
		}
	}
	if err := inScope(a, id); err != nil {
		return ProcedureView{}, err
	}
	var v ProcedureView
	b := &pgx.Batch{}
	s.queueView(b, a, id, &v)
	if err := s.sendBatch(ctx, b); err != nil {
		return ProcedureView{}, wrap(err, "procedure %s", id)
	}
	v.setStates(s.now())
	return v, nil
}

// queueView queues the reads of a procedure's view; setStates completes it once they are in.
// A parent's view leaves out grades and notes between clinicians.
func (s *Service) queueView(b *pgx.Batch, a Actor, id uuid.UUID, v *ProcedureView) {
	queueProcedure(b, a, id, &v.Procedure)
	s.queueViewRows(b, a, id, v)
}

// queueViewRows queues the reads of a view after its procedure's.
func (s *Service) queueViewRows(b *pgx.Batch, a Actor, id uuid.UUID, v *ProcedureView) {
	clinic, _ := procedureScope(a)
	queuePhotos(b, clinic, id, &v.Photos)
	s.queueSchedule(b, clinic, id, &v.Timepoints)
	queueMessages(b, clinic, id, &v.Messages)
	if a.Kind != ActorParent {
		queueAssessments(b, clinic, id, &v.Assessments)
	}
}

func queuePhotos(b *pgx.Batch, clinic, procedure uuid.UUID, dst *[]Photo) {
	queueRows(b, dst, scanPhotoRow, photoColumns+` where procedure_id = $1 and clinic_id = $2
		order by timepoint_key, view, received_at desc`, procedure, clinic)
}

// queueMessages queues the clinic's messages to the family (retakes, notes and replies). The
// family's own messages are the conversation's (followup/conversation), read only through its
// audited thread.
func queueMessages(b *pgx.Batch, clinic, procedure uuid.UUID, dst *[]Message) {
	queueRows(b, dst, scanMessage, `select id, kind, coalesce(timepoint_key, ''), photo_id, body, created_at
		from messages where procedure_id = $1 and clinic_id = $2 and kind <> 'family' order by created_at desc`, procedure, clinic)
}

func queueAssessments(b *pgx.Batch, clinic, procedure uuid.UUID, dst *[]Assessment) {
	queueRows(b, dst, scanAssessment, `select id, coalesce(timepoint_key, ''), photo_id, scale_id, level, note, grader_id, created_at
		from assessments where procedure_id = $1 and clinic_id = $2 order by created_at`, procedure, clinic)
}

// setStates gives each timepoint its state at now from the active photos received.
func (v *ProcedureView) setStates(now time.Time) {
	received := map[string]map[string]bool{}
	for _, ph := range v.Photos {
		if ph.Status != "active" {
			continue
		}
		if received[ph.Timepoint] == nil {
			received[ph.Timepoint] = map[string]bool{}
		}
		received[ph.Timepoint][ph.View] = true
	}
	setTimepointStates(v.Timepoints, received, now)
}
