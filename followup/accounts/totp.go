package accounts

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base32"
	"errors"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/pquerna/otp"
	"github.com/pquerna/otp/hotp"
	"github.com/pquerna/otp/totp"
	"rsc.io/qr"

	"github.com/dermfollow/dermfollow/followup"
)

// Authenticator-app codes (RFC 6238): SHA-1, six digits, a 30-second step, and one step of
// skew either way for a phone's clock. A code is accepted only for a step newer than the last
// one accepted for the user, so no code is accepted twice, nor an older one after it.
const (
	totpPeriod     = 30
	totpSkew       = 1
	totpSecretSize = 20
)

var totpOpts = hotp.ValidateOpts{Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1}

// TOTPEnrolment is what a user needs to add the account to an authenticator app: the QR code
// (a PNG of URL), or Secret to type in by hand. Show it once; it is never shown again.
type TOTPEnrolment struct {
	Secret string // base32
	URL    string // otpauth://totp/...
	QRPNG  []byte
}

// BeginTOTP starts setting up an authenticator app for the signed-in user: a new secret is
// kept (sealed) as pending until ConfirmTOTP, replacing any earlier pending one. A user who
// has an app already must remove it first (followup.ECONFLICT).
func (s *Service) BeginTOTP(ctx context.Context, a followup.Actor) (TOTPEnrolment, error) {
	if err := requireUser(a); err != nil {
		return TOTPEnrolment{}, err
	}
	u, err := s.userByID(ctx, a.ID)
	if err != nil {
		return TOTPEnrolment{}, wrap(err, "begin totp")
	}
	raw := make([]byte, totpSecretSize)
	rand.Read(raw)
	key, err := totp.Generate(totp.GenerateOpts{Issuer: s.rpName, AccountName: u.Email, Period: totpPeriod,
		Secret: raw, Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1})
	if err != nil {
		return TOTPEnrolment{}, wrap(err, "begin totp")
	}
	sealed, err := s.sealSecret(u.ID, raw)
	if err != nil {
		return TOTPEnrolment{}, wrap(err, "begin totp")
	}
	code, err := qr.Encode(key.URL(), qr.M)
	if err != nil {
		return TOTPEnrolment{}, wrap(err, "begin totp: qr")
	}
	err = s.inTx(ctx, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `insert into user_totp (user_id, secret_sealed) values ($1, $2)
			on conflict (user_id) do update set secret_sealed = excluded.secret_sealed, last_step = 0, created_at = now()
			where user_totp.confirmed_at is null`, u.ID, sealed)
		if err != nil {
			return followup.Unavailable(err)
		}
		if tag.RowsAffected() == 0 {
			return followup.Errorf(followup.ECONFLICT, "an authenticator app is set up already; remove it first")
		}
		return nil
	})
	if err != nil {
		return TOTPEnrolment{}, wrap(err, "begin totp")
	}
	return TOTPEnrolment{Secret: key.Secret(), URL: key.URL(), QRPNG: code.PNG()}, nil
}

// ConfirmTOTP activates the pending authenticator app once the user types a code it shows,
// and returns RecoveryCodeCount new recovery codes (replacing any earlier ones): show them
// once, only their hashes are kept. A wrong code answers followup.EUNAUTHORIZED and counts
// against the account's budget; a malformed one followup.EINVALID.
func (s *Service) ConfirmTOTP(ctx context.Context, a followup.Actor, code string) ([]string, error) {
	code, ok := normalizeTOTPCode(code)
	if !ok {
		return nil, errTOTPFormat()
	}
	if err := requireUser(a); err != nil {
		return nil, err
	}
	at, err := s.reserve(ctx, append(addrBudgets(a.Addr), codeBudget(a.ID))...)
	if err != nil {
		return nil, wrap(err, "confirm totp")
	}
	var codes []string
	err = s.inTx(ctx, func(tx pgx.Tx) error {
		var sealed []byte
		var confirmed *time.Time
		err := tx.QueryRow(ctx, `select secret_sealed, confirmed_at from user_totp where user_id = $1 for update`, a.ID).Scan(&sealed, &confirmed)
		if errors.Is(err, pgx.ErrNoRows) {
			return followup.Errorf(followup.ENOTFOUND, "start setting up the authenticator app first")
		}
		if err != nil {
			return followup.Unavailable(err)
		}
		if confirmed != nil {
			return followup.Errorf(followup.ECONFLICT, "the authenticator app is set up already")
		}
		step, _, err := s.matchTOTP(a.ID, sealed, code, 0)
		if err != nil {
			return err
		}
		if step == 0 {
			return errWrongCode()
		}
		if _, err := tx.Exec(ctx, `update user_totp set confirmed_at = $2, last_step = $3 where user_id = $1`, a.ID, s.now(), step); err != nil {
			return followup.Unavailable(err)
		}
		if codes, err = replaceRecoveryCodes(ctx, tx, a.ID); err != nil {
			return err
		}
		return followup.Audit(ctx, tx, a, followup.AuditEvent{Action: AuditSecondFactorAdded, TargetKind: "user", TargetID: a.ID,
			Detail: map[string]any{"method": MethodTOTP}})
	})
	s.settle(ctx, at, err)
	if followup.ErrorCode(err) == followup.EUNAUTHORIZED {
		s.auditCodeFailure(ctx, a, MethodTOTP, "wrong_code")
	}
	if err != nil {
		return nil, wrap(err, "confirm totp")
	}
	return codes, nil
}

// RemoveTOTP removes the signed-in user's authenticator app (pending or set up). When no
// second factor is left, the recovery codes go too.
func (s *Service) RemoveTOTP(ctx context.Context, a followup.Actor) error {
	if err := requireUser(a); err != nil {
		return err
	}
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `delete from user_totp where user_id = $1`, a.ID)
		if err != nil {
			return followup.Unavailable(err)
		}
		if tag.RowsAffected() == 0 {
			return followup.Errorf(followup.ENOTFOUND, "no authenticator app is set up")
		}
		if err := dropOrphanRecoveryCodes(ctx, tx, a.ID); err != nil {
			return err
		}
		return followup.Audit(ctx, tx, a, followup.AuditEvent{Action: AuditSecondFactorRemoved, TargetKind: "user", TargetID: a.ID,
			Detail: map[string]any{"method": MethodTOTP}})
	})
	return wrap(err, "remove totp")
}

// useTOTP accepts code for the user's confirmed app in tx if it is right and of a step newer
// than the last accepted, recording its step in the same statement (compare-and-set: of two
// requests with one code, the second waits for the first's row and then finds its step taken).
func (s *Service) useTOTP(ctx context.Context, tx pgx.Tx, user uuid.UUID, code string) (reason string, err error) {
	var sealed []byte
	var last int64
	err = tx.QueryRow(ctx, `select secret_sealed, last_step from user_totp where user_id = $1 and confirmed_at is not null`, user).Scan(&sealed, &last)
	if errors.Is(err, pgx.ErrNoRows) {
		return "no_totp", errWrongCode()
	}
	if err != nil {
		return "", followup.Unavailable(err)
	}
	step, seen, err := s.matchTOTP(user, sealed, code, last)
	if err != nil {
		return "", err
	}
	if step == 0 {
		if seen {
			return "reused_code", errReusedCode()
		}
		return "wrong_code", errWrongCode()
	}
	tag, err := tx.Exec(ctx, `update user_totp set last_step = $2 where user_id = $1 and confirmed_at is not null and last_step < $2`, user, step)
	if err != nil {
		return "", followup.Unavailable(err)
	}
	if tag.RowsAffected() == 0 {
		return "reused_code", errReusedCode()
	}
	return "", nil
}

// matchTOTP returns the newest step within the skew, newer than last, whose code is code
// (0: none); seen reports a match of a step already used.
func (s *Service) matchTOTP(user uuid.UUID, sealed []byte, code string, last int64) (step int64, seen bool, err error) {
	secret, err := s.openSecret(user, sealed)
	if err != nil {
		return 0, false, wrap(err, "open totp secret")
	}
	enc := totpKeyString(secret)
	now := s.now().Unix() / totpPeriod
	for st := now + totpSkew; st >= now-totpSkew; st-- {
		want, err := hotp.GenerateCodeCustom(enc, uint64(st), totpOpts)
		if err != nil {
			return 0, false, wrap(err, "totp code")
		}
		if subtle.ConstantTimeCompare([]byte(want), []byte(code)) == 1 {
			if st > last {
				return st, false, nil
			}
			seen = true
		}
	}
	return 0, seen, nil
}

// totpKeyString is the secret as the otp package takes it: base32 without padding.
func totpKeyString(secret []byte) string {
	return base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(secret)
}

func errWrongCode() error {
	return followup.Errorf(followup.EUNAUTHORIZED, "the code is wrong; check that your phone's clock is right and try the next code")
}

func errReusedCode() error {
	return followup.Errorf(followup.EUNAUTHORIZED, "this code was used already; wait for the next one")
}
