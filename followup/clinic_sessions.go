package followup

import (
	"context"
	"errors"
	"net/netip"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// Audit actions of the clinician's sign-in sessions.
const (
	AuditLogout        = "logout"
	AuditSessionsEnded = "sessions_ended"
)

// SessionUser returns the actor a signed-in session of user id stands for, as the user is now
// (role and clinic re-read on every request, so a disabled user or a changed role takes effect
// at once), and the user's session epoch: a session signed in under an older epoch has been
// ended by EndAllSessions. Unknown and disabled users answer EUNAUTHORIZED.
func (s *Service) SessionUser(ctx context.Context, id uuid.UUID, addr netip.Addr) (Actor, int64, error) {
	a := Actor{Kind: ActorUser, ID: id, Addr: addr.Unmap()}
	var epoch int64
	err := s.pool.QueryRow(ctx, `select u.clinic_id, u.role, coalesce(e.epoch, 0)
		from users u left join user_session_epochs e on e.user_id = u.id
		where u.id = $1 and u.disabled_at is null`, id).Scan(&a.ClinicID, &a.Role, &epoch)
	if errors.Is(err, pgx.ErrNoRows) {
		return Actor{}, 0, Errorf(EUNAUTHORIZED, "sign in again")
	}
	if err != nil {
		return Actor{}, 0, wrap(unavailable(err), "session user")
	}
	return a, epoch, nil
}

// EndAllSessions ends every session of the signed-in user, on every device, by moving the
// user's session epoch on. It returns the new epoch.
func (s *Service) EndAllSessions(ctx context.Context, a Actor) (int64, error) {
	if a.Kind != ActorUser {
		return 0, Errorf(EUNAUTHORIZED, "sign in first")
	}
	var epoch int64
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		err := tx.QueryRow(ctx, `insert into user_session_epochs (user_id, epoch) values ($1, 1)
			on conflict (user_id) do update set epoch = user_session_epochs.epoch + 1 returning epoch`, a.ID).Scan(&epoch)
		if err != nil {
			return unavailable(err)
		}
		return audit(ctx, tx, a, AuditEvent{Action: AuditSessionsEnded, TargetKind: "user", TargetID: a.ID})
	})
	return epoch, wrap(err, "end sessions")
}

// RecordLogout audits a sign-out.
func (s *Service) RecordLogout(ctx context.Context, a Actor) error {
	if a.Kind != ActorUser {
		return Errorf(EUNAUTHORIZED, "sign in first")
	}
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		return audit(ctx, tx, a, AuditEvent{Action: AuditLogout, TargetKind: "user", TargetID: a.ID})
	})
	return wrap(err, "logout")
}
