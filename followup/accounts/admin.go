package accounts

import (
	"context"
	"errors"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/dermfollow/dermfollow/followup"
)

// SetUserDisabled disables (disabled true) or re-enables a user of the admin's clinic. A
// disabled user can no longer sign in or use an API token, and every session the user has is
// refused from the next request on: SessionUser reads disabled_at on every request, and the
// user's session epoch moves on too, so that re-enabling the user does not bring old sessions
// back. Only an admin of the user's clinic may do this, never to themselves; another clinic's
// user is not found. Setting the state the user already has changes nothing and audits nothing.
func (s *Service) SetUserDisabled(ctx context.Context, a followup.Actor, userID uuid.UUID, disabled bool) error {
	if a.Kind != followup.ActorUser {
		return followup.Errorf(followup.EUNAUTHORIZED, "sign in first")
	}
	if err := a.CanManageUsersOf(a.ClinicID); err != nil {
		return err
	}
	if userID == a.ID {
		return followup.Errorf(followup.EINVALID, "you cannot disable or re-enable your own account")
	}
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		var was bool
		err := tx.QueryRow(ctx, `select disabled_at is not null from users where id = $1 and clinic_id = $2 for update`,
			userID, a.ClinicID).Scan(&was)
		if errors.Is(err, pgx.ErrNoRows) {
			return followup.Errorf(followup.ENOTFOUND, "user not found")
		}
		if err != nil {
			return followup.Unavailable(err)
		}
		if was == disabled {
			return nil
		}
		action := AuditUserEnabled
		if disabled {
			action = AuditUserDisabled
			if _, err := tx.Exec(ctx, `update users set disabled_at = now() where id = $1`, userID); err != nil {
				return followup.Unavailable(err)
			}
			if _, err := tx.Exec(ctx, `insert into user_session_epochs (user_id, epoch) values ($1, 1)
				on conflict (user_id) do update set epoch = user_session_epochs.epoch + 1`, userID); err != nil {
				return followup.Unavailable(err)
			}
		} else if _, err := tx.Exec(ctx, `update users set disabled_at = null where id = $1`, userID); err != nil {
			return followup.Unavailable(err)
		}
		return followup.Audit(ctx, tx, a, followup.AuditEvent{Action: action, TargetKind: "user", TargetID: userID})
	})
	return wrap(err, "set user disabled")
}

// ClinicUsers lists the users of the admin's clinic, by email.
func (s *Service) ClinicUsers(ctx context.Context, a followup.Actor) ([]User, error) {
	if a.Kind != followup.ActorUser {
		return nil, followup.Errorf(followup.EUNAUTHORIZED, "sign in first")
	}
	if err := a.CanManageUsersOf(a.ClinicID); err != nil {
		return nil, err
	}
	rows, err := s.pool.Query(ctx, `select id, clinic_id, email, name, role, disabled_at is not null
		from users where clinic_id = $1 order by email`, a.ClinicID)
	if err != nil {
		return nil, wrap(followup.Unavailable(err), "clinic users")
	}
	list, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (User, error) {
		var u User
		err := r.Scan(&u.ID, &u.ClinicID, &u.Email, &u.Name, &u.Role, &u.Disabled)
		return u, err
	})
	return list, wrap(err, "clinic users")
}

// RemovedFactors is what ResetSecondFactor removed.
type RemovedFactors struct {
	TOTP          int64 // authenticator apps, set up or pending: 0 or 1
	Passkeys      int64
	RecoveryCodes int64 // used ones included
}

// ResetSecondFactor removes every second factor of the user with the email (authenticator
// app, recovery codes, passkeys, passkey ceremonies in flight) and ends the user's sessions,
// so that the user enrols again at the next sign-in: admin recovery for a lost phone or key.
// The actor is the system (the CLI) or an admin of the user's clinic, never the user (who
// removes their own in their settings). It is audited, with what was removed.
func (s *Service) ResetSecondFactor(ctx context.Context, a followup.Actor, email string) (RemovedFactors, error) {
	email, err := normalizeEmail(email)
	if err != nil {
		return RemovedFactors{}, err
	}
	u, _, err := s.userByEmail(ctx, email)
	if err != nil {
		return RemovedFactors{}, wrap(err, "reset second factor")
	}
	if !a.SeesClinic(u.ClinicID) {
		return RemovedFactors{}, followup.Errorf(followup.ENOTFOUND, "user not found")
	}
	if err := a.CanManageUsersOf(u.ClinicID); err != nil {
		return RemovedFactors{}, err
	}
	if a.Kind == followup.ActorUser && a.ID == u.ID {
		return RemovedFactors{}, followup.Errorf(followup.EINVALID, "remove your own second factors in your settings")
	}
	if a.ClinicID == uuid.Nil {
		a.ClinicID = u.ClinicID
	}
	var removed RemovedFactors
	err = s.inTx(ctx, func(tx pgx.Tx) error {
		removed = RemovedFactors{}
		for _, q := range []struct {
			n   *int64
			sql string
		}{
			{&removed.TOTP, `delete from user_totp where user_id = $1`},
			{&removed.RecoveryCodes, `delete from recovery_codes where user_id = $1`},
			{&removed.Passkeys, `delete from passkeys where user_id = $1`},
			{nil, `delete from webauthn_ceremonies where user_id = $1`},
		} {
			tag, err := tx.Exec(ctx, q.sql, u.ID)
			if err != nil {
				return followup.Unavailable(err)
			}
			if q.n != nil {
				*q.n = tag.RowsAffected()
			}
		}
		if _, err := tx.Exec(ctx, `insert into user_session_epochs (user_id, epoch) values ($1, 1)
			on conflict (user_id) do update set epoch = user_session_epochs.epoch + 1`, u.ID); err != nil {
			return followup.Unavailable(err)
		}
		return followup.Audit(ctx, tx, a, followup.AuditEvent{Action: AuditSecondFactorReset, TargetKind: "user", TargetID: u.ID,
			Detail: map[string]any{"totp": removed.TOTP, "recovery_codes": removed.RecoveryCodes, "passkeys": removed.Passkeys}})
	})
	if err != nil {
		return RemovedFactors{}, wrap(err, "reset second factor")
	}
	return removed, nil
}
