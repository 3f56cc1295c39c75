package followup

import (
	"context"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// WithdrawPhoto takes a photo out of the clinical record without deleting it: it stays
// stored, marked withdrawn, with who did it and why in the audit log; the timeline shows it
// struck through and exports leave it out. Photos are never hard-deleted by clinicians. For a
// photo sent by mistake or in bulk through a leaked link (revoke the link too). procedureID,
// unless uuid.Nil, is the procedure the photo must belong to (the page it was chosen on).
func (s *Service) WithdrawPhoto(ctx context.Context, a Actor, procedureID, id uuid.UUID, reason string) (Photo, error) {
	if err := a.requireClinical(); err != nil {
		return Photo{}, err
	}
	if n := utf8.RuneCountInString(reason); n == 0 || n > 500 {
		return Photo{}, invalidField("reason", "say in 1 to 500 characters why the photo is withdrawn")
	}
	var p Photo
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		var err error
		p, err = scanPhoto(tx.QueryRow(ctx, photoColumns+` where id = $1 and clinic_id = $2 for update`, id, a.ClinicID))
		if err != nil {
			return notFound(err, "photo")
		}
		if procedureID != uuid.Nil && p.ProcedureID != procedureID {
			return Errorf(ENOTFOUND, "photo not found")
		}
		if p.Status == "withdrawn" {
			return nil
		}
		if _, err := tx.Exec(ctx, `update photos set status = 'withdrawn', status_changed_at = $2 where id = $1`, id, s.now()); err != nil {
			return unavailable(err)
		}
		p.Status = "withdrawn"
		return audit(ctx, tx, a, AuditEvent{Action: AuditPhotoWithdrawn, TargetKind: "photo", TargetID: id,
			Detail: map[string]any{"procedure": p.ProcedureID, "reason": reason}})
	})
	return p, wrap(err, "withdraw photo %s", id)
}
