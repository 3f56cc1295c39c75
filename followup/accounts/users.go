package accounts

import (
	"context"
	"errors"
	"net/mail"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/alexedwards/argon2id"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/dermfollow/dermfollow/followup"
)

// Audit actions of accounts.
const (
	AuditLogin         = "login"
	AuditLoginFailed   = "login_failed"
	AuditUserCreated   = "user_created"
	AuditTokenCreated  = "token_created"
	AuditTokenFailed   = "token_failed"
	AuditTokenRevoked  = "token_revoked"
	AuditPasswordSet   = "password_set"
	AuditUserDisabled  = "user_disabled"
	AuditUserEnabled   = "user_enabled"
	AuditLogout        = "logout"
	AuditSessionsEnded = "sessions_ended"

	AuditSecondFactorAdded    = "second_factor_added"
	AuditSecondFactorRemoved  = "second_factor_removed"
	AuditSecondFactorVerified = "second_factor_verified"
	AuditSecondFactorFailed   = "second_factor_failed"
	AuditSecondFactorReset    = "second_factor_reset"
	AuditRecoveryCodesMade    = "recovery_codes_made"
	AuditPasskeyRenamed       = "passkey_renamed"
	AuditSignInPolicy         = "sign_in_policy_set"
)

// User is a clinic user: a clinician, a researcher or an admin.
type User struct {
	ID       uuid.UUID
	ClinicID uuid.UUID
	Email    string
	Name     string
	Role     string
	Disabled bool
}

// NewUser is the input of CreateUser. Name defaults to the part of Email before the @.
type NewUser struct {
	ClinicID uuid.UUID
	Email    string
	Name     string
	Role     string
	Password string
}

// normalizeEmail trims and lowercases an email address and checks that it is a bare address.
func normalizeEmail(email string) (string, error) {
	email = strings.ToLower(strings.TrimSpace(email))
	a, err := mail.ParseAddress(email)
	if err != nil || a.Address != email || len(email) < 3 || len(email) > 254 {
		return "", followup.Errorf(followup.EINVALID, "email: is not an email address")
	}
	return email, nil
}

func validRole(r string) bool {
	return r == followup.RoleClinician || r == followup.RoleResearcher || r == followup.RoleAdmin
}

// checkPassword enforces the length rules. Nothing else: length is what makes a password
// strong, and composition rules push people to weaker, memorable patterns.
func checkPassword(p string) error {
	if !utf8.ValidString(p) {
		return followup.Errorf(followup.EINVALID, "password: must be text")
	}
	if n := utf8.RuneCountInString(p); n < MinPasswordLength || n > MaxPasswordLength {
		return followup.Errorf(followup.EINVALID, "password: must be %d to %d characters", MinPasswordLength, MaxPasswordLength)
	}
	return nil
}

// CreateUser adds a user to a clinic. The actor is the system acting for that clinic (the
// CLI) or an admin of the clinic. A zero in.ClinicID means the actor's clinic.
func (s *Service) CreateUser(ctx context.Context, a followup.Actor, in NewUser) (User, error) {
	if in.ClinicID == uuid.Nil {
		in.ClinicID = a.ClinicID
	}
	if in.ClinicID == uuid.Nil {
		return User{}, followup.Errorf(followup.EINVALID, "clinic: is required")
	}
	if err := a.CanManageUsersOf(in.ClinicID); err != nil {
		return User{}, err
	}
	email, err := normalizeEmail(in.Email)
	if err != nil {
		return User{}, err
	}
	name := strings.TrimSpace(in.Name)
	if name == "" {
		name, _, _ = strings.Cut(email, "@")
	}
	if n := utf8.RuneCountInString(name); n == 0 || n > 200 {
		return User{}, followup.Errorf(followup.EINVALID, "name: must be 1 to 200 characters")
	}
	if !validRole(in.Role) {
		return User{}, followup.Errorf(followup.EINVALID, "role: must be %s, %s or %s", followup.RoleClinician, followup.RoleResearcher, followup.RoleAdmin)
	}
	if err := checkPassword(in.Password); err != nil {
		return User{}, err
	}
	var hash string
	if err := withHashSlot(ctx, func() (err error) {
		hash, err = argon2id.CreateHash(in.Password, passwordParams)
		return err
	}); err != nil {
		return User{}, wrap(err, "create user: hash password")
	}

	u := User{ClinicID: in.ClinicID, Email: email, Name: name, Role: in.Role}
	err = s.inTx(ctx, func(tx pgx.Tx) error {
		// A taken email is found without an error in PostgreSQL's log, which would name it.
		err := tx.QueryRow(ctx, `insert into users (clinic_id, email, name, role, password_hash) values ($1, $2, $3, $4, $5)
			on conflict do nothing returning id`,
			u.ClinicID, u.Email, u.Name, u.Role, hash).Scan(&u.ID)
		if errors.Is(err, pgx.ErrNoRows) {
			return &followup.Error{Code: followup.ECONFLICT, Message: "a user with email " + email + " already exists"}
		}
		if isForeignKeyViolation(err) {
			return &followup.Error{Code: followup.ENOTFOUND, Message: "clinic not found", Err: err}
		}
		if err != nil {
			return followup.Unavailable(err)
		}
		return followup.Audit(ctx, tx, a, followup.AuditEvent{Action: AuditUserCreated, TargetKind: "user", TargetID: u.ID,
			Detail: map[string]any{"email": u.Email, "role": u.Role}})
	})
	if err != nil {
		return User{}, wrap(err, "create user")
	}
	return u, nil
}

// SetPassword replaces the password of the user with the email (a reset: the old password is
// not asked for). The actor is the system or an admin of the user's clinic; the user's API
// tokens stay valid.
func (s *Service) SetPassword(ctx context.Context, a followup.Actor, email, password string) error {
	email, err := normalizeEmail(email)
	if err != nil {
		return err
	}
	if err := checkPassword(password); err != nil {
		return err
	}
	u, _, err := s.userByEmail(ctx, email)
	if err != nil {
		return wrap(err, "set password")
	}
	if !a.SeesClinic(u.ClinicID) {
		return followup.Errorf(followup.ENOTFOUND, "user not found")
	}
	if err := a.CanManageUsersOf(u.ClinicID); err != nil {
		return err
	}
	var hash string
	if err := withHashSlot(ctx, func() (err error) {
		hash, err = argon2id.CreateHash(password, passwordParams)
		return err
	}); err != nil {
		return wrap(err, "set password: hash")
	}
	if a.ClinicID == uuid.Nil {
		a.ClinicID = u.ClinicID
	}
	err = s.inTx(ctx, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `update users set password_hash = $2 where id = $1`, u.ID, hash); err != nil {
			return followup.Unavailable(err)
		}
		return followup.Audit(ctx, tx, a, followup.AuditEvent{Action: AuditPasswordSet, TargetKind: "user", TargetID: u.ID})
	})
	return wrap(err, "set password")
}

// UserByEmail returns the user with the email, for a system actor of any clinic (the CLI) or
// of the user's clinic, or a user of the same clinic. Users of other clinics are not found.
func (s *Service) UserByEmail(ctx context.Context, a followup.Actor, email string) (User, error) {
	email, err := normalizeEmail(email)
	if err != nil {
		return User{}, err
	}
	u, _, err := s.userByEmail(ctx, email)
	if err != nil {
		return User{}, wrap(err, "user by email")
	}
	if !a.SeesClinic(u.ClinicID) {
		return User{}, followup.Errorf(followup.ENOTFOUND, "user not found")
	}
	return u, nil
}

// CurrentUser returns the signed-in user themself (an account page's own details). A user
// who is gone or disabled answers followup.EUNAUTHORIZED.
func (s *Service) CurrentUser(ctx context.Context, a followup.Actor) (User, error) {
	if err := requireUser(a); err != nil {
		return User{}, err
	}
	u, err := s.userByID(ctx, a.ID)
	if followup.ErrorCode(err) == followup.ENOTFOUND || err == nil && u.Disabled {
		return User{}, followup.Errorf(followup.EUNAUTHORIZED, "sign in again")
	}
	return u, wrap(err, "current user")
}

func (s *Service) userByEmail(ctx context.Context, email string) (User, string, error) {
	var u User
	var hash string
	var disabled *time.Time
	err := s.pool.QueryRow(ctx, `select id, clinic_id, email, name, role, password_hash, disabled_at from users where email = $1`, email).
		Scan(&u.ID, &u.ClinicID, &u.Email, &u.Name, &u.Role, &hash, &disabled)
	if err != nil {
		return User{}, "", followup.NotFound(err, "user")
	}
	u.Disabled = disabled != nil
	return u, hash, nil
}
