package followup

import (
	"context"
	"encoding/json"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// Audit actions. One event per login, photo upload, photo view, assessment, link change,
// export and every other change; never a token, a password or photo bytes.
const (
	AuditPatientCreated    = "patient_created"
	AuditProcedureEnrolled = "procedure_enrolled"
	AuditProcedureStatus   = "procedure_status"
	AuditProcedureViewed   = "procedure_viewed"
	AuditLinkCreated       = "link_created"
	AuditLinkRevoked       = "link_revoked"
	AuditPhotoUploaded     = "photo_uploaded"
	AuditPhotoViewed       = "photo_viewed"
	AuditPhotoWithdrawn    = "photo_withdrawn"
	AuditAssessment        = "assessment_added"
	AuditMessage           = "message_added"
)

// AuditEvent is one row of the append-only audit log.
type AuditEvent struct {
	Action     string
	TargetKind string
	TargetID   uuid.UUID
	Detail     map[string]any
}

// audit appends an event in the caller's transaction, so the event exists if and only if the
// change does.
func audit(ctx context.Context, tx pgx.Tx, a Actor, e AuditEvent) error {
	v, err := auditValues(a, e)
	if err != nil {
		return err
	}
	_, err = tx.Exec(ctx, `insert into audit_events (`+AuditColumns+`) values ($1, $2, $3, $4, $5, $6, $7, $8)`, v.args()...)
	return wrap(err, "audit %s", e.Action)
}

// AuditColumns are the audit log's columns an event's values fill, in the order of auditRow.args.
const AuditColumns = "clinic_id, actor_kind, actor_id, action, target_kind, target_id, client_addr, detail"

// auditRow is an event's column values, for audit and for the statements that write an event
// together with the change it records (a photo's row, say).
type auditRow struct {
	clinic, actor, target, addr   any
	actorKind, action, targetKind string
	detail                        []byte
}

// args are the row's values in the order of AuditColumns.
func (v auditRow) args() []any {
	return []any{v.clinic, v.actorKind, v.actor, v.action, v.targetKind, v.target, v.addr, v.detail}
}

func auditValues(a Actor, e AuditEvent) (auditRow, error) {
	v := auditRow{actorKind: a.Kind, action: e.Action, targetKind: e.TargetKind, detail: []byte("{}")}
	if len(e.Detail) > 0 {
		var err error
		if v.detail, err = json.Marshal(e.Detail); err != nil {
			return auditRow{}, err
		}
	}
	if a.ClinicID != uuid.Nil {
		v.clinic = a.ClinicID
	}
	if a.ID != uuid.Nil {
		v.actor = a.ID
	}
	if e.TargetID != uuid.Nil {
		v.target = e.TargetID
	}
	if a.Addr.IsValid() {
		v.addr = a.Addr.String()
	}
	return v, nil
}
