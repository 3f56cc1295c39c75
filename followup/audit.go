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
	AuditLogin             = "login"
	AuditLoginFailed       = "login_failed"
	AuditUserCreated       = "user_created"
	AuditTokenCreated      = "token_created"
	AuditTokenFailed       = "token_failed"
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
	AuditExport            = "export_started"
	AuditExportDownload    = "export_downloaded"
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
	detail := []byte("{}")
	if len(e.Detail) > 0 {
		var err error
		if detail, err = json.Marshal(e.Detail); err != nil {
			return err
		}
	}
	var clinic, actor, target any
	if a.ClinicID != uuid.Nil {
		clinic = a.ClinicID
	}
	if a.ID != uuid.Nil {
		actor = a.ID
	}
	if e.TargetID != uuid.Nil {
		target = e.TargetID
	}
	var addr any
	if a.Addr.IsValid() {
		addr = a.Addr.String()
	}
	_, err := tx.Exec(ctx, `insert into audit_events (clinic_id, actor_kind, actor_id, action, target_kind, target_id, client_addr, detail)
		values ($1, $2, $3, $4, $5, $6, $7, $8)`, clinic, a.Kind, actor, e.Action, e.TargetKind, target, addr, detail)
	return wrap(err, "audit %s", e.Action)
}
