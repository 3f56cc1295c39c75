package followup

import (
	"context"
	"time"

	"github.com/dermfollow/dermfollow/protocols"
)

// ParentHome is what the family's page shows: only what a parent needs, never the full name,
// birth date, record number or the clinicians' assessments.
type ParentHome struct {
	FirstName         string
	PreferredLanguage string
	Clinic            ParentClinic
	View              ProcedureView
	// Title, Instructions, Labels and Aftercare come from the protocol version the procedure
	// follows; Labels and Aftercare are keyed by timepoint key.
	Title        protocols.Text
	Instructions protocols.Text
	Labels       map[string]protocols.Text
	Aftercare    map[string]protocols.Text
	Now          time.Time
}

// ParentClinic is how the family reaches the clinic, and the zone its dates are shown in.
type ParentClinic struct {
	Name     string
	Phone    string
	Email    string
	Hours    string // when messages are read
	Location *time.Location
}

// ParentHome loads the family's page for a parent actor (its link's one procedure).
func (s *Service) ParentHome(ctx context.Context, a Actor) (ParentHome, error) {
	if a.Kind != ActorParent {
		return ParentHome{}, Errorf(EUNAUTHORIZED, "open the link the clinic sent you")
	}
	v, err := s.ProcedureView(ctx, a, a.Procedure)
	if err != nil {
		return ParentHome{}, err
	}
	patient, err := s.patient(ctx, a.ClinicID, v.PatientID)
	if err != nil {
		return ParentHome{}, wrap(err, "parent home of procedure %s", a.Procedure)
	}
	clinic, err := s.Clinic(ctx, a.ClinicID)
	if err != nil {
		return ParentHome{}, err
	}
	p, err := s.protocols.Get(v.Protocol, v.ProtocolVersion)
	if err != nil {
		return ParentHome{}, wrap(err, "protocol %s v%d of procedure %s", v.Protocol, v.ProtocolVersion, a.Procedure)
	}
	h := ParentHome{
		FirstName:         patient.FirstName(),
		PreferredLanguage: patient.PreferredLanguage,
		Clinic: ParentClinic{Name: clinic.Name, Phone: clinic.ContactPhone, Email: clinic.ContactEmail, Hours: clinic.Hours,
			Location: clinic.Location},
		View:         v,
		Title:        p.Title,
		Instructions: p.Instructions,
		Labels:       map[string]protocols.Text{},
		Aftercare:    map[string]protocols.Text{},
		Now:          s.now(),
	}
	for _, tp := range p.Timepoints {
		h.Labels[tp.Key] = tp.Label
		h.Aftercare[tp.Key] = tp.Aftercare
	}
	return h, nil
}
