package followup

import (
	"context"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// The reminder outbox as the procedure's record shows it. Package followup/reminders owns the
// outbox (it writes every row, sends them and keeps the clinics' settings); the core only
// reads the rows, because a procedure's record and its clinic page list them beside its
// photos and links and keep them in the same cache (record_cache.go).

// Reminder outbox statuses.
const (
	ReminderQueued  = "queued"
	ReminderSent    = "sent"
	ReminderFailed  = "failed"
	ReminderSkipped = "skipped" // by its time there was nothing to remind of (last_error says why)
)

// Reminder is one row of a procedure's outbox, as clinicians see it. It never holds the
// message, the link or the address it went to.
type Reminder struct {
	ID          uuid.UUID  `json:"id"`
	ProcedureID uuid.UUID  `json:"procedure_id"`
	Timepoint   string     `json:"timepoint"` // "" for a notice of an answer
	Kind        string     `json:"kind"`      // window-open, closing-soon, manual, answered (the clinic answered)
	Channel     string     `json:"channel"`   // email, webhook
	Recipient   string     `json:"recipient"`
	Status      string     `json:"status"` // queued, sent, failed, skipped
	Attempts    int        `json:"attempts"`
	LastError   string     `json:"last_error,omitempty"`
	SendAfter   time.Time  `json:"send_after"`
	CreatedBy   *uuid.UUID `json:"created_by,omitempty"`
	CreatedAt   time.Time  `json:"created_at"`
	UpdatedAt   time.Time  `json:"updated_at"`
	SentAt      *time.Time `json:"sent_at,omitempty"`
}

// Reminders lists a procedure's reminder outbox, newest first.
func (s *Service) Reminders(ctx context.Context, a Actor, procedureID uuid.UUID) ([]Reminder, error) {
	if err := a.requireClinical(); err != nil {
		return nil, err
	}
	var out []Reminder
	b := &pgx.Batch{}
	queueProcedure(b, a, procedureID, &Procedure{})
	queueReminders(b, a.ClinicID, procedureID, &out)
	if err := s.sendBatch(ctx, b); err != nil {
		return nil, wrap(err, "reminders of procedure %s", procedureID)
	}
	return out, nil
}

func queueReminders(b *pgx.Batch, clinic, procedureID uuid.UUID, dst *[]Reminder) {
	queueRows(b, dst, func(r pgx.CollectableRow) (Reminder, error) {
		var m Reminder
		err := r.Scan(&m.ID, &m.ProcedureID, &m.Timepoint, &m.Kind, &m.Channel, &m.Recipient, &m.Status, &m.Attempts,
			&m.LastError, &m.SendAfter, &m.CreatedBy, &m.CreatedAt, &m.UpdatedAt, &m.SentAt)
		return m, err
	}, `select id, procedure_id, coalesce(timepoint_key, ''), kind, channel, recipient_kind, status, attempts,
			last_error, send_after, created_by, created_at, updated_at, sent_at
		from reminders where procedure_id = $1 and clinic_id = $2 order by created_at desc, channel`, procedureID, clinic)
}
