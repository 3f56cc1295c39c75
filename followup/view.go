package followup

import (
	"context"

	"github.com/google/uuid"
)

// ProcedureView is everything about a procedure that its pages and API show.
type ProcedureView struct {
	Procedure
	Timepoints  []Timepoint  `json:"timepoints"`
	Photos      []Photo      `json:"photos"`
	Assessments []Assessment `json:"assessments"`
	Messages    []Message    `json:"messages"`
}

// ProcedureView loads a procedure with its schedule states, photos, assessments and messages.
// A parent sees only its own procedure; researchers see none (identified data).
func (s *Service) ProcedureView(ctx context.Context, a Actor, id uuid.UUID) (ProcedureView, error) {
	if a.Kind != ActorParent {
		if err := a.requireClinical(); err != nil {
			return ProcedureView{}, err
		}
	}
	p, err := s.procedure(ctx, nil, a, id, false)
	if err != nil {
		return ProcedureView{}, wrap(err, "procedure %s", id)
	}
	v := ProcedureView{Procedure: p}
	if v.Photos, err = s.photos(ctx, id); err != nil {
		return ProcedureView{}, wrap(err, "photos of procedure %s", id)
	}
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
	if v.Timepoints, err = s.timepoints(ctx, id, received); err != nil {
		return ProcedureView{}, wrap(err, "schedule of procedure %s", id)
	}
	if v.Messages, err = s.messages(ctx, id); err != nil {
		return ProcedureView{}, wrap(err, "messages of procedure %s", id)
	}
	if a.Kind == ActorParent {
		return v, nil // grades and notes between clinicians are not the family's
	}
	if v.Assessments, err = s.assessments(ctx, id); err != nil {
		return ProcedureView{}, wrap(err, "assessments of procedure %s", id)
	}
	return v, nil
}
