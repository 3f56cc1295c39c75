package followup

import (
	"context"
	"errors"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// Audit actions of disabling and re-enabling users.
const (
	AuditUserDisabled = "user_disabled"
	AuditUserEnabled  = "user_enabled"
)

// SetUserDisabled disables (disabled true) or re-enables a user of the admin's clinic. A
// disabled user can no longer sign in or use an API token, and every session the user has is
// refused from the next request on: SessionUser reads disabled_at on every request, and the
// user's session epoch moves on too, so that re-enabling the user does not bring old sessions
// back. Only an admin of the user's clinic may do this, never to themselves; another clinic's
// user is not found. Setting the state the user already has changes nothing and audits nothing.
func (s *Service) SetUserDisabled(ctx context.Context, a Actor, userID uuid.UUID, disabled bool) error {
	if a.Kind != ActorUser {
		return Errorf(EUNAUTHORIZED, "sign in first")
	}
	if err := a.canManageUsersOf(a.ClinicID); err != nil {
		return err
	}
	if userID == a.ID {
		return Errorf(EINVALID, "you cannot disable or re-enable your own account")
	}
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		var was bool
		err := tx.QueryRow(ctx, `select disabled_at is not null from users where id = $1 and clinic_id = $2 for update`,
			userID, a.ClinicID).Scan(&was)
		if errors.Is(err, pgx.ErrNoRows) {
			return Errorf(ENOTFOUND, "user not found")
		}
		if err != nil {
			return unavailable(err)
		}
		if was == disabled {
			return nil
		}
		action := AuditUserEnabled
		if disabled {
			action = AuditUserDisabled
			if _, err := tx.Exec(ctx, `update users set disabled_at = now() where id = $1`, userID); err != nil {
				return unavailable(err)
			}
			if _, err := tx.Exec(ctx, `insert into user_session_epochs (user_id, epoch) values ($1, 1)
				on conflict (user_id) do update set epoch = user_session_epochs.epoch + 1`, userID); err != nil {
				return unavailable(err)
			}
		} else if _, err := tx.Exec(ctx, `update users set disabled_at = null where id = $1`, userID); err != nil {
			return unavailable(err)
		}
		return audit(ctx, tx, a, AuditEvent{Action: action, TargetKind: "user", TargetID: userID})
	})
	return wrap(err, "set user disabled")
}
