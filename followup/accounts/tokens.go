package accounts

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"net/netip"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

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

// API token limits and defaults.
const (
	DefaultTokenName     = "API token"
	MaxTokenName         = 60
	DefaultTokenLifetime = 90 * 24 * time.Hour
	MinTokenLifetime     = time.Hour
	MaxTokenLifetime     = 365 * 24 * time.Hour
	// MaxActiveTokens bounds a user's tokens that are neither revoked nor expired.
	MaxActiveTokens = 20
)

// NewToken is the input of IssueToken.
type NewToken struct {
	Email string // the user the token acts as
	Name  string // what it is for: 1 to MaxTokenName characters (required)
	// Role is the role the token acts with: "" for the user's own, or one of TokenRoles.
	Role string
	// Lifetime is how long until it expires: 0 for DefaultTokenLifetime, else from
	// MinTokenLifetime to MaxTokenLifetime.
	Lifetime time.Duration
}

// TokenRoles lists the roles a token of a user with role may act with, the user's own first.
// Roles are capabilities, not ranks: a clinician sees identified patients and photos, a
// researcher starts de-identified exports, and an admin can do both and manage the clinic's
// users. So an admin's token may be admin, clinician or researcher, while a clinician's is a
// clinician's and a researcher's a researcher's.
func TokenRoles(role string) []string {
	if role == followup.RoleAdmin {
		return []string{followup.RoleAdmin, followup.RoleClinician, followup.RoleResearcher}
	}
	return []string{role}
}

// tokenRole returns the role a token made with role (nil: the user's own) acts with for a
// user whose role is now userRole, and false if the user's role no longer covers it.
func tokenRole(userRole string, role *string) (string, bool) {
	if role == nil {
		return userRole, true
	}
	return *role, slices.Contains(TokenRoles(userRole), *role)
}

// CreateToken is IssueToken with the default name, the user's role and the default lifetime,
// returning the token only.
func (s *Service) CreateToken(ctx context.Context, a followup.Actor, email string) (string, error) {
	_, token, err := s.IssueToken(ctx, a, NewToken{Email: email, Name: DefaultTokenName})
	return token, err
}

// IssueToken makes an API token for the user with in.Email and returns it with its row; the
// token is shown this once and only its SHA-256 is stored. The actor is the system (the CLI),
// an admin of the user's clinic, or the user themself.
func (s *Service) IssueToken(ctx context.Context, a followup.Actor, in NewToken) (Token, string, error) {
	email, err := normalizeEmail(in.Email)
	if err != nil {
		return Token{}, "", err
	}
	in.Name = strings.TrimSpace(in.Name)
	if n := utf8.RuneCountInString(in.Name); !utf8.ValidString(in.Name) || n == 0 || n > MaxTokenName || strings.IndexFunc(in.Name, unicode.IsControl) >= 0 {
		return Token{}, "", followup.InvalidField("name", "must be 1 to %d characters", MaxTokenName)
	}
	if in.Lifetime == 0 {
		in.Lifetime = DefaultTokenLifetime
	}
	if in.Lifetime < MinTokenLifetime || in.Lifetime > MaxTokenLifetime {
		return Token{}, "", followup.InvalidField("expires", "must be from an hour to %d days", int(MaxTokenLifetime/(24*time.Hour)))
	}
	u, _, err := s.userByEmail(ctx, email)
	if err != nil {
		return Token{}, "", wrap(err, "create token")
	}
	if !(a.Kind == followup.ActorUser && a.ID == u.ID) {
		if !a.SeesClinic(u.ClinicID) {
			return Token{}, "", followup.Errorf(followup.ENOTFOUND, "user not found")
		}
		if err := a.CanManageUsersOf(u.ClinicID); err != nil {
			return Token{}, "", err
		}
	}
	if u.Disabled {
		return Token{}, "", followup.Errorf(followup.EINVALID, "user %s is disabled", u.Email)
	}
	if in.Role == "" {
		in.Role = u.Role
	}
	if !slices.Contains(TokenRoles(u.Role), in.Role) {
		return Token{}, "", followup.InvalidField("role", "a token of a %s can be: %s", u.Role, strings.Join(TokenRoles(u.Role), ", "))
	}
	raw := make([]byte, 32)
	rand.Read(raw) // never fails (crypto/rand)
	token := tokenPrefix + base64.RawURLEncoding.EncodeToString(raw)

	if a.ClinicID == uuid.Nil {
		a.ClinicID = u.ClinicID // the audit row belongs to the user's clinic
	}
	t := Token{UserID: u.ID, Name: in.Name, Role: in.Role, ExpiresAt: s.now().Add(in.Lifetime)}
	err = s.inTx(ctx, func(tx pgx.Tx) error { return s.insertToken(ctx, tx, a, &t, token) })
	if err != nil {
		return Token{}, "", wrap(err, "create token")
	}
	return t, token, nil
}

// insertToken keeps t (its id and creation time filled in) in tx, under the user's lock so
// that MaxActiveTokens holds.
func (s *Service) insertToken(ctx context.Context, tx pgx.Tx, a followup.Actor, t *Token, token string) error {
	var active int
	err := tx.QueryRow(ctx, `select count(*) from api_tokens where user_id = (select id from users where id = $1 for update)
		and revoked_at is null and expires_at > $2`, t.UserID, s.now()).Scan(&active)
	if err != nil {
		return followup.Unavailable(err)
	}
	if active >= MaxActiveTokens {
		return followup.Errorf(followup.EINVALID, "there are %d API tokens already, the most there can be; revoke one first", active)
	}
	err = tx.QueryRow(ctx, `insert into api_tokens (user_id, token_hash, name, role, expires_at) values ($1, $2, $3, $4, $5)
		returning id, created_at`, t.UserID, tokenHash(token), t.Name, t.Role, t.ExpiresAt).Scan(&t.ID, &t.CreatedAt)
	if err != nil {
		return followup.Unavailable(err)
	}
	return followup.Audit(ctx, tx, a, followup.AuditEvent{Action: AuditTokenCreated, TargetKind: "user", TargetID: t.UserID,
		Detail: map[string]any{"token_id": t.ID.String(), "role": t.Role, "expires_at": t.ExpiresAt.UTC().Format(time.RFC3339)}})
}

// tokenTouchInterval limits last_used_at writes to one a minute per token, not one a request.
const tokenTouchInterval = time.Minute

// AuthenticateToken returns the user a bearer token stands for, with the token's role (which
// may be lower than the user's, see TokenRoles). Unknown, malformed, revoked and expired
// tokens, tokens of disabled users, and tokens whose role their user's no longer covers, all
// answer followup.EUNAUTHORIZED alike.
func (s *Service) AuthenticateToken(ctx context.Context, token string, addr netip.Addr) (followup.Actor, error) {
	bad := followup.Errorf(followup.EUNAUTHORIZED, "the API token is not valid")
	if !wellFormedToken(token) {
		return followup.Actor{}, bad
	}
	now := s.now()
	var (
		tokenID  uuid.UUID
		lastUsed *time.Time
		role     *string
		a        = followup.Actor{Kind: followup.ActorUser, Addr: addr.Unmap()}
	)
	err := s.pool.QueryRow(ctx, `select t.id, t.last_used_at, t.role, u.id, u.clinic_id, u.role
		from api_tokens t join users u on u.id = t.user_id
		where t.token_hash = $1 and t.revoked_at is null and (t.expires_at is null or t.expires_at > $2) and u.disabled_at is null`,
		tokenHash(token), now).Scan(&tokenID, &lastUsed, &role, &a.ID, &a.ClinicID, &a.Role)
	if errors.Is(err, pgx.ErrNoRows) {
		return followup.Actor{}, bad
	}
	if err != nil {
		return followup.Actor{}, wrap(followup.Unavailable(err), "authenticate token")
	}
	var ok bool
	if a.Role, ok = tokenRole(a.Role, role); !ok {
		return followup.Actor{}, bad
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
	return wrap(s.revoke(ctx, a, `t.token_hash = $1`, tokenHash(token)), "revoke token")
}
