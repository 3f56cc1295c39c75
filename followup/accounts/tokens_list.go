package accounts

import (
	"context"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/dermfollow/dermfollow/followup"
)

// Token is an API token as a settings page lists it: never the token or its hash.
type Token struct {
	ID         uuid.UUID
	UserID     uuid.UUID
	Name       string
	Role       string // the role it acts with
	CreatedAt  time.Time
	ExpiresAt  time.Time // zero: never (only tokens made before tokens expired)
	LastUsedAt time.Time // zero: never used; recorded at most once a minute
}

// maxListedTokens bounds ListTokens (MaxActiveTokens are active; the rest expired).
const maxListedTokens = 100

// ListTokens lists the user's tokens that are not revoked, expired ones included, newest
// first. The actor is the user, an admin of the user's clinic or the system; another
// clinic's user is not found.
func (s *Service) ListTokens(ctx context.Context, a followup.Actor, userID uuid.UUID) ([]Token, error) {
	if err := s.canManageTokensOf(ctx, a, userID); err != nil {
		return nil, wrap(err, "list tokens")
	}
	rows, err := s.pool.Query(ctx, `select t.id, t.user_id, t.name, coalesce(t.role, u.role), t.created_at, t.expires_at, t.last_used_at
		from api_tokens t join users u on u.id = t.user_id
		where t.user_id = $1 and t.revoked_at is null order by t.created_at desc, t.id limit $2`, userID, maxListedTokens)
	if err != nil {
		return nil, wrap(followup.Unavailable(err), "list tokens")
	}
	list, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Token, error) {
		var t Token
		var expires, used *time.Time
		err := r.Scan(&t.ID, &t.UserID, &t.Name, &t.Role, &t.CreatedAt, &expires, &used)
		if expires != nil {
			t.ExpiresAt = *expires
		}
		if used != nil {
			t.LastUsedAt = *used
		}
		return t, err
	})
	return list, wrap(followup.Unavailable(err), "list tokens")
}

// RevokeTokenByID revokes the token with the id (from ListTokens), under RevokeToken's rules.
func (s *Service) RevokeTokenByID(ctx context.Context, a followup.Actor, id uuid.UUID) error {
	return wrap(s.revoke(ctx, a, `t.id = $1`, id), "revoke token")
}

// canManageTokensOf checks that a is the user, or may manage the users of the user's clinic.
func (s *Service) canManageTokensOf(ctx context.Context, a followup.Actor, userID uuid.UUID) error {
	if a.Kind == followup.ActorUser && a.ID == userID {
		return nil
	}
	var clinic uuid.UUID
	if err := s.pool.QueryRow(ctx, `select clinic_id from users where id = $1`, userID).Scan(&clinic); err != nil {
		return followup.NotFound(err, "user")
	}
	if !a.SeesClinic(clinic) {
		return followup.Errorf(followup.ENOTFOUND, "user not found")
	}
	return a.CanManageUsersOf(clinic)
}

// revoke revokes the unrevoked token that match (a condition on api_tokens t, a constant of
// this package) selects with arg.
func (s *Service) revoke(ctx context.Context, a followup.Actor, match string, arg any) error {
	return s.inTx(ctx, func(tx pgx.Tx) error {
		var id, user, clinic uuid.UUID
		err := tx.QueryRow(ctx, `select t.id, u.id, u.clinic_id from api_tokens t join users u on u.id = t.user_id
			where `+match+` and t.revoked_at is null for update of t`, arg).Scan(&id, &user, &clinic)
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
}
