package accounts

import (
	"context"
	"errors"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/dermfollow/dermfollow/followup"
)

// SignInPolicy is a clinic's sign-in settings.
type SignInPolicy struct {
	// RequireSecondFactor: the clinic's clinicians need a second factor too (admins and
	// researchers always do). On for every new clinic.
	RequireSecondFactor bool
	// AllowPasswordless: the clinic's users may sign in with a passkey alone. Off by default.
	AllowPasswordless bool
}

// ClinicSignInPolicy returns the sign-in settings of the actor's clinic: for its users, and
// for the system acting for it.
func (s *Service) ClinicSignInPolicy(ctx context.Context, a followup.Actor) (SignInPolicy, error) {
	if (a.Kind != followup.ActorUser && a.Kind != followup.ActorSystem) || a.ClinicID == uuid.Nil {
		return SignInPolicy{}, followup.Errorf(followup.EUNAUTHORIZED, "sign in first")
	}
	var p SignInPolicy
	err := s.pool.QueryRow(ctx, `select require_second_factor, allow_passwordless from clinics where id = $1`, a.ClinicID).
		Scan(&p.RequireSecondFactor, &p.AllowPasswordless)
	return p, wrap(followup.NotFound(err, "clinic"), "sign-in policy")
}

// SetClinicSecondFactor sets whether the clinicians of the actor's clinic need a second
// factor. Only an admin of the clinic or the system acting for it may; the change is audited
// (setting what is set already changes and audits nothing).
func (s *Service) SetClinicSecondFactor(ctx context.Context, a followup.Actor, required bool) error {
	return wrap(s.setPolicy(ctx, a, "require_second_factor", required), "set clinic second factor")
}

// SetClinicPasswordless sets whether the users of the actor's clinic may sign in with a
// passkey alone, under the same rules as SetClinicSecondFactor.
func (s *Service) SetClinicPasswordless(ctx context.Context, a followup.Actor, allowed bool) error {
	return wrap(s.setPolicy(ctx, a, "allow_passwordless", allowed), "set clinic passwordless")
}

// setPolicy sets one boolean column of clinics (a name from the two above, never input).
func (s *Service) setPolicy(ctx context.Context, a followup.Actor, column string, value bool) error {
	if a.Kind != followup.ActorUser && a.Kind != followup.ActorSystem {
		return followup.Errorf(followup.EUNAUTHORIZED, "sign in first")
	}
	if a.ClinicID == uuid.Nil {
		return followup.Errorf(followup.EINVALID, "clinic: is required")
	}
	if err := a.CanManageUsersOf(a.ClinicID); err != nil {
		return err
	}
	return s.inTx(ctx, func(tx pgx.Tx) error {
		var was bool
		err := tx.QueryRow(ctx, `select `+column+` from clinics where id = $1 for update`, a.ClinicID).Scan(&was)
		if errors.Is(err, pgx.ErrNoRows) {
			return followup.Errorf(followup.ENOTFOUND, "clinic not found")
		}
		if err != nil {
			return followup.Unavailable(err)
		}
		if was == value {
			return nil
		}
		if _, err := tx.Exec(ctx, `update clinics set `+column+` = $2 where id = $1`, a.ClinicID, value); err != nil {
			return followup.Unavailable(err)
		}
		return followup.Audit(ctx, tx, a, followup.AuditEvent{Action: AuditSignInPolicy, TargetKind: "clinic", TargetID: a.ClinicID,
			Detail: map[string]any{column: value}})
	})
}
