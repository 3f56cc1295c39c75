package followup

import (
	"context"
	"errors"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// Assessment is a clinician's grade, on the protocol's grading scale, of a timepoint, or of a
// concern photo (a photo outside the schedule: PhotoID, and Timepoint "").
type Assessment struct {
	ID        uuid.UUID  `json:"id"`
	Timepoint string     `json:"timepoint"`
	PhotoID   *uuid.UUID `json:"photo_id,omitempty"`
	Scale     string     `json:"scale"`
	Level     string     `json:"level"`
	Note      string     `json:"note,omitempty"`
	GraderID  uuid.UUID  `json:"grader_id"`
	CreatedAt time.Time  `json:"created_at"`
}

// NewAssessment is the input of Assess: a timepoint, or a concern photo's id (PhotoID).
type NewAssessment struct {
	Timepoint string `json:"timepoint"`
	PhotoID   string `json:"photo_id"`
	Level     string `json:"level"`
	Note      string `json:"note"`
}

// Assess grades a timepoint of a procedure, or one of its concern photos, on the scale of the
// procedure's protocol version. A photo of another procedure, a scheduled photo (its step is
// what is graded) and a withdrawn one are refused as invalid.
func (s *Service) Assess(ctx context.Context, a Actor, procedureID uuid.UUID, in NewAssessment) (Assessment, error) {
	if err := a.requireClinical(); err != nil {
		return Assessment{}, err
	}
	in.Note = strings.TrimSpace(in.Note)
	if utf8.RuneCountInString(in.Note) > 4000 {
		return Assessment{}, invalidField("note", "must be at most 4000 characters")
	}
	var photo *uuid.UUID
	if in.PhotoID != "" {
		id, err := uuid.Parse(in.PhotoID)
		if err != nil {
			return Assessment{}, invalidField("photo_id", "must be a photo id")
		}
		if in.Timepoint != "" {
			return Assessment{}, invalidField("timepoint", "grade a step or a concern photo, not both")
		}
		photo = &id
	}
	var out Assessment
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		p, err := s.procedure(ctx, tx, a, procedureID, false)
		if err != nil {
			return err
		}
		if photo != nil {
			if err := concernToGrade(ctx, tx, a, procedureID, *photo); err != nil {
				return err
			}
		}
		proto, err := s.protocols.Get(p.Protocol, p.ProtocolVersion)
		if err != nil {
			return Errorf(ECONFLICT, "protocol %s version %d is no longer installed", p.Protocol, p.ProtocolVersion)
		}
		scale, err := s.protocols.Scale(proto.Scale)
		if err != nil {
			return Errorf(ECONFLICT, "grading scale %s is no longer installed", proto.Scale)
		}
		if _, ok := scale.Level(in.Level); !ok {
			keys := make([]string, len(scale.Levels))
			for i, l := range scale.Levels {
				keys[i] = l.Key
			}
			return invalidField("level", "must be one of %s (scale %s)", strings.Join(keys, ", "), scale.ID)
		}
		var tp any
		if photo == nil {
			tp = in.Timepoint
		}
		err = tx.QueryRow(ctx, `insert into assessments (clinic_id, procedure_id, timepoint_key, scale_id, level, note, grader_id, photo_id)
			values ($1, $2, $3, $4, $5, $6, $7, $8) returning id, created_at`,
			a.ClinicID, procedureID, tp, scale.ID, in.Level, in.Note, a.ID, photo).Scan(&out.ID, &out.CreatedAt)
		if pgCode(err) == pgForeignKeyViolation {
			return invalidField("timepoint", "this procedure has no step %q", in.Timepoint)
		}
		if err != nil {
			return unavailable(err)
		}
		out = Assessment{ID: out.ID, Timepoint: in.Timepoint, PhotoID: photo, Scale: scale.ID, Level: in.Level, Note: in.Note,
			GraderID: a.ID, CreatedAt: out.CreatedAt}
		detail := map[string]any{"timepoint": in.Timepoint, "scale": scale.ID, "level": in.Level}
		if photo != nil {
			detail["photo"] = *photo
		}
		return audit(ctx, tx, a, AuditEvent{Action: AuditAssessment, TargetKind: "procedure", TargetID: procedureID, Detail: detail})
	})
	return out, wrap(err, "assess procedure %s", procedureID)
}

// concernToGrade checks that photo is an active concern photo of the procedure, in the
// actor's clinic.
func concernToGrade(ctx context.Context, tx pgx.Tx, a Actor, procedureID, photo uuid.UUID) error {
	var kind, status string
	err := tx.QueryRow(ctx, `select kind, status from photos where id = $1 and procedure_id = $2 and clinic_id = $3`,
		photo, procedureID, a.ClinicID).Scan(&kind, &status)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return invalidField("photo_id", "this procedure has no such photo")
	case err != nil:
		return unavailable(err)
	case kind != PhotoConcern:
		return invalidField("photo_id", "grade a scheduled photo by its step")
	case status != "active":
		return invalidField("photo_id", "the photo was withdrawn")
	}
	return nil
}

func scanAssessment(r pgx.CollectableRow) (Assessment, error) {
	var x Assessment
	err := r.Scan(&x.ID, &x.Timepoint, &x.PhotoID, &x.Scale, &x.Level, &x.Note, &x.GraderID, &x.CreatedAt)
	return x, err
}

// Message is a retake request or a note to the family, shown on the parent's page.
type Message struct {
	ID        uuid.UUID  `json:"id"`
	Kind      string     `json:"kind"`
	Timepoint string     `json:"timepoint,omitempty"`
	PhotoID   *uuid.UUID `json:"photo_id,omitempty"`
	Body      string     `json:"body"`
	CreatedAt time.Time  `json:"created_at"`
}

// NewMessage is the input of SendMessage. A retake names the photo; its timepoint follows.
type NewMessage struct {
	Kind      string `json:"kind"`
	Timepoint string `json:"timepoint"`
	PhotoID   string `json:"photo_id"`
	Body      string `json:"body"`
}

// SendMessage adds a retake request or a note for the family of a procedure.
func (s *Service) SendMessage(ctx context.Context, a Actor, procedureID uuid.UUID, in NewMessage) (Message, error) {
	if err := a.requireClinical(); err != nil {
		return Message{}, err
	}
	in.Body = strings.TrimSpace(in.Body)
	if n := utf8.RuneCountInString(in.Body); n == 0 || n > 2000 {
		return Message{}, invalidField("body", "is required (at most 2000 characters)")
	}
	m := Message{Kind: in.Kind, Body: in.Body, Timepoint: in.Timepoint}
	switch in.Kind {
	case "retake":
		id, err := uuid.Parse(in.PhotoID)
		if err != nil {
			return Message{}, invalidField("photo_id", "a retake request names the photo to take again")
		}
		m.PhotoID = &id
	case "note":
		if in.PhotoID != "" {
			return Message{}, invalidField("photo_id", "only a retake request names a photo")
		}
	default:
		return Message{}, invalidField("kind", "must be retake or note")
	}
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		if _, err := s.procedure(ctx, tx, a, procedureID, false); err != nil {
			return err
		}
		if m.PhotoID != nil {
			// A concern photo has no step: its retake request names none either.
			err := tx.QueryRow(ctx, `select coalesce(timepoint_key, '') from photos where id = $1 and procedure_id = $2 and clinic_id = $3`,
				*m.PhotoID, procedureID, a.ClinicID).Scan(&m.Timepoint)
			if err != nil {
				return notFound(err, "photo")
			}
		}
		var tp any
		if m.Timepoint != "" {
			tp = m.Timepoint
		}
		err := tx.QueryRow(ctx, `insert into messages (clinic_id, procedure_id, kind, timepoint_key, photo_id, body, author_id)
			values ($1, $2, $3, $4, $5, $6, $7) returning id, created_at`,
			a.ClinicID, procedureID, m.Kind, tp, m.PhotoID, m.Body, a.ID).Scan(&m.ID, &m.CreatedAt)
		if pgCode(err) == pgForeignKeyViolation {
			return invalidField("timepoint", "this procedure has no step %q", m.Timepoint)
		}
		if err != nil {
			return unavailable(err)
		}
		err = audit(ctx, tx, a, AuditEvent{Action: AuditMessage, TargetKind: "procedure", TargetID: procedureID,
			Detail: map[string]any{"kind": m.Kind, "timepoint": m.Timepoint}})
		if err != nil || s.messageSent == nil {
			return err
		}
		return s.messageSent(ctx, tx, a, procedureID)
	})
	return m, wrap(err, "message for procedure %s", procedureID)
}

func scanMessage(r pgx.CollectableRow) (Message, error) {
	var m Message
	err := r.Scan(&m.ID, &m.Kind, &m.Timepoint, &m.PhotoID, &m.Body, &m.CreatedAt)
	return m, err
}
