package accounts

import (
	"context"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/dermfollow/dermfollow/followup"
)

// replaceRecoveryCodes makes RecoveryCodeCount new codes for the user in tx, ending the old
// ones, and returns them in their display form.
func replaceRecoveryCodes(ctx context.Context, tx pgx.Tx, user uuid.UUID) ([]string, error) {
	if _, err := tx.Exec(ctx, `delete from recovery_codes where user_id = $1`, user); err != nil {
		return nil, followup.Unavailable(err)
	}
	codes := make([]string, RecoveryCodeCount)
	hashes := make([][]byte, RecoveryCodeCount)
	for i := range codes {
		codes[i] = newRecoveryCode()
		norm, _ := normalizeRecoveryCode(codes[i])
		hashes[i] = recoveryHash(user, norm)
	}
	if _, err := tx.Exec(ctx, `insert into recovery_codes (user_id, code_hash) select $1, unnest($2::bytea[])`, user, hashes); err != nil {
		return nil, followup.Unavailable(err)
	}
	return codes, nil
}

// dropOrphanRecoveryCodes removes the user's recovery codes once no second factor is left:
// they stand in for a factor, not for none.
func dropOrphanRecoveryCodes(ctx context.Context, tx pgx.Tx, user uuid.UUID) error {
	_, err := tx.Exec(ctx, `delete from recovery_codes where user_id = $1
		and not exists (select 1 from user_totp where user_id = $1 and confirmed_at is not null)
		and not exists (select 1 from passkeys where user_id = $1)`, user)
	return followup.Unavailable(err)
}

// RegenerateRecoveryCodes replaces the signed-in user's recovery codes with RecoveryCodeCount
// new ones (show them once). The user must have a second factor (followup.EINVALID if not):
// users who set up only passkeys get their codes this way.
func (s *Service) RegenerateRecoveryCodes(ctx context.Context, a followup.Actor) ([]string, error) {
	if err := requireUser(a); err != nil {
		return nil, err
	}
	var codes []string
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		var enrolled bool
		err := tx.QueryRow(ctx, `select exists (select 1 from user_totp where user_id = $1 and confirmed_at is not null)
			or exists (select 1 from passkeys where user_id = $1)`, a.ID).Scan(&enrolled)
		if err != nil {
			return followup.Unavailable(err)
		}
		if !enrolled {
			return followup.Errorf(followup.EINVALID, "set up an authenticator app or a passkey first")
		}
		if codes, err = replaceRecoveryCodes(ctx, tx, a.ID); err != nil {
			return err
		}
		return followup.Audit(ctx, tx, a, followup.AuditEvent{Action: AuditRecoveryCodesMade, TargetKind: "user", TargetID: a.ID})
	})
	if err != nil {
		return nil, wrap(err, "regenerate recovery codes")
	}
	return codes, nil
}

// useRecoveryCode spends one unused recovery code of the user in tx: a code works once.
func (s *Service) useRecoveryCode(ctx context.Context, tx pgx.Tx, user uuid.UUID, normalized string) (reason string, err error) {
	tag, err := tx.Exec(ctx, `update recovery_codes set used_at = $3 where user_id = $1 and code_hash = $2 and used_at is null`,
		user, recoveryHash(user, normalized), s.now())
	if err != nil {
		return "", followup.Unavailable(err)
	}
	if tag.RowsAffected() == 0 {
		return "wrong_recovery_code", followup.Errorf(followup.EUNAUTHORIZED, "the recovery code is wrong or was used already")
	}
	return "", nil
}
