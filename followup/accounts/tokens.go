package accounts

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"net/netip"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/dermfollow/dermfollow/followup"
)

// API tokens look like dft_ followed by 43 base64url characters (32 random bytes). The prefix
// makes leaked tokens easy to find with secret scanners and grep.
const (
	tokenPrefix = "dft_"
	tokenLength = len(tokenPrefix) + 43
)

// tokenHash is how every secret token (API tokens, parent links) is stored: its SHA-256 only.
func tokenHash(token string) []byte {
	h := sha256.Sum256([]byte(token))
	return h[:]
}

// wellFormedToken checks the shape before any database work.
func wellFormedToken(token string) bool {
	if len(token) != tokenLength || !strings.HasPrefix(token, tokenPrefix) {
		return false
	}
	_, err := base64.RawURLEncoding.DecodeString(token[len(tokenPrefix):])
	return err == nil
}

// CreateToken makes an API token for the user with the email and returns it; it is shown
// this once and only its SHA-256 is stored. The actor is the system (the CLI), an admin of
// the user's clinic, or the user themself.
func (s *Service) CreateToken(ctx context.Context, a followup.Actor, email string) (string, error) {
	email, err := normalizeEmail(email)
	if err != nil {
		return "", err
	}
	u, _, err := s.userByEmail(ctx, email)
	if err != nil {
		return "", wrap(err, "create token")
	}
	if !(a.Kind == followup.ActorUser && a.ID == u.ID) {
		if !a.SeesClinic(u.ClinicID) {
			return "", followup.Errorf(followup.ENOTFOUND, "user not found")
		}
		if err := a.CanManageUsersOf(u.ClinicID); err != nil {
			return "", err
		}
	}
	if u.Disabled {
		return "", followup.Errorf(followup.EINVALID, "user %s is disabled", u.Email)
	}
	raw := make([]byte, 32)
	rand.Read(raw) // never fails (crypto/rand)
	token := tokenPrefix + base64.RawURLEncoding.EncodeToString(raw)

	if a.ClinicID == uuid.Nil {
		a.ClinicID = u.ClinicID // the audit row belongs to the user's clinic
	}
	err = s.inTx(ctx, func(tx pgx.Tx) error {
		var id uuid.UUID
		err := tx.QueryRow(ctx, `insert into api_tokens (user_id, token_hash) values ($1, $2) returning id`, u.ID, tokenHash(token)).Scan(&id)
		if err != nil {
			return followup.Unavailable(err)
		}
		return followup.Audit(ctx, tx, a, followup.AuditEvent{Action: AuditTokenCreated, TargetKind: "user", TargetID: u.ID,
			Detail: map[string]any{"token_id": id.String()}})
	})
	if err != nil {
		return "", wrap(err, "create token")
	}
	return token, nil
}

// tokenTouchInterval limits last_used_at writes to one a minute per token, not one a request.
const tokenTouchInterval = time.Minute

// AuthenticateToken returns the user a bearer token stands for. Unknown, malformed, revoked
// and expired tokens, and tokens of disabled users, all answer followup.EUNAUTHORIZED alike.
func (s *Service) AuthenticateToken(ctx context.Context, token string, addr netip.Addr) (followup.Actor, error) {
	bad := followup.Errorf(followup.EUNAUTHORIZED, "the API token is not valid")
	if !wellFormedToken(token) {
		return followup.Actor{}, bad
	}
	now := s.now()
	var (
		tokenID  uuid.UUID
		lastUsed *time.Time
		a        = followup.Actor{Kind: followup.ActorUser, Addr: addr.Unmap()}
	)
	err := s.pool.QueryRow(ctx, `select t.id, t.last_used_at, u.id, u.clinic_id, u.role
		from api_tokens t join users u on u.id = t.user_id
		where t.token_hash = $1 and t.revoked_at is null and (t.expires_at is null or t.expires_at > $2) and u.disabled_at is null`,
		tokenHash(token), now).Scan(&tokenID, &lastUsed, &a.ID, &a.ClinicID, &a.Role)
	if errors.Is(err, pgx.ErrNoRows) {
		return followup.Actor{}, bad
	}
	if err != nil {
		return followup.Actor{}, wrap(followup.Unavailable(err), "authenticate token")
	}
	if lastUsed == nil || now.Sub(*lastUsed) >= tokenTouchInterval {
		// Bookkeeping only: a failed write must not refuse an otherwise valid request.
		_, err := s.pool.Exec(ctx, `update api_tokens set last_used_at = $2
			where id = $1 and (last_used_at is null or last_used_at <= $3)`, tokenID, now, now.Add(-tokenTouchInterval))
		if err != nil {
			s.log.WarnContext(ctx, "api token: recording last use failed", "token_id", tokenID.String(), "error", err.Error())
		}
	}
	return a, nil
}

// RecordTokenFailure records a refused API token in the audit log, as a failed sign-in is:
// from where, never the token. The web layer calls it for each refusal within an address's
// budget, so that a flood of guesses cannot flood the log.
func (s *Service) RecordTokenFailure(ctx context.Context, addr netip.Addr) error {
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		return followup.Audit(ctx, tx, followup.Actor{Kind: followup.ActorUser, Addr: addr.Unmap()}, followup.AuditEvent{Action: AuditTokenFailed})
	})
	return wrap(err, "record token failure")
}

// RevokeToken revokes a token for good. The actor is its user, an admin of the user's clinic
// or the system. Revoking an unknown or already revoked token answers followup.ENOTFOUND.
func (s *Service) RevokeToken(ctx context.Context, a followup.Actor, token string) error {
	if !wellFormedToken(token) {
		return followup.Errorf(followup.ENOTFOUND, "token not found")
	}
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		var id, user, clinic uuid.UUID
		err := tx.QueryRow(ctx, `select t.id, u.id, u.clinic_id from api_tokens t join users u on u.id = t.user_id
			where t.token_hash = $1 and t.revoked_at is null for update of t`, tokenHash(token)).Scan(&id, &user, &clinic)
		if err != nil {
			return followup.NotFound(err, "token")
		}
		if !(a.Kind == followup.ActorUser && a.ID == user) {
			if !a.SeesClinic(clinic) {
				return followup.Errorf(followup.ENOTFOUND, "token not found")
			}
			if err := a.CanManageUsersOf(clinic); err != nil {
				return err
			}
		}
		if _, err := tx.Exec(ctx, `update api_tokens set revoked_at = $2 where id = $1`, id, s.now()); err != nil {
			return followup.Unavailable(err)
		}
		if a.ClinicID == uuid.Nil {
			a.ClinicID = clinic
		}
		return followup.Audit(ctx, tx, a, followup.AuditEvent{Action: AuditTokenRevoked, TargetKind: "user", TargetID: user,
			Detail: map[string]any{"token_id": id.String()}})
	})
	return wrap(err, "revoke token")
}
