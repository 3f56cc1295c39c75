package followup

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net/mail"
	"net/netip"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/alexedwards/argon2id"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// Audit actions of this file that audit.go does not list yet.
const (
	AuditClinicCreated = "clinic_created"
	AuditTokenRevoked  = "token_revoked"
	AuditPasswordSet   = "password_set"
)

// Clinic is one clinic: every user, patient and photo belongs to exactly one.
type Clinic struct {
	ID           uuid.UUID
	Name         string
	TimeZone     string // IANA name, e.g. Asia/Shanghai
	ContactPhone string
	ContactEmail string
	// Location is TimeZone loaded; schedules and "today" are computed in it.
	Location *time.Location
}

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

// Password length limits, in characters. The upper bound keeps hashing cost bounded.
const (
	MinPasswordLength = 12
	MaxPasswordLength = 256
)

// passwordParams cost about 50 ms on a current server core. Parallelism is fixed (not
// NumCPU) so every hash costs the same wherever it was made; the parameters are stored in
// each hash, so raising them later keeps old hashes verifiable.
var passwordParams = &argon2id.Params{Memory: 64 * 1024, Iterations: 1, Parallelism: 2, SaltLength: 16, KeyLength: 32}

// hashSlots bounds concurrent argon2id work: each hash holds 64 MiB, so a burst of logins
// must queue rather than exhaust memory. It is process-wide because memory is; at most
// 8 slots, 512 MiB.
var hashSlots = make(chan struct{}, max(2, min(runtime.NumCPU(), 8)))

func withHashSlot(ctx context.Context, fn func() error) error {
	select {
	case hashSlots <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { <-hashSlots }()
	return fn()
}

// dummyHash is verified when no user has the email, so an unknown email costs as much time
// as a wrong password and timing does not reveal which emails exist.
var dummyHash = sync.OnceValues(func() (string, error) {
	return argon2id.CreateHash("dermfollow dummy password, never valid", passwordParams)
})

// errLogin is the one answer to every failed sign-in, whatever the reason.
func errLogin() error { return Errorf(EUNAUTHORIZED, "email or password is wrong") }

// CreateClinic adds a clinic. timeZone is an IANA name such as "Europe/Berlin" or "UTC".
func (s *Service) CreateClinic(ctx context.Context, name, timeZone string) (Clinic, error) {
	name = strings.TrimSpace(name)
	if n := utf8.RuneCountInString(name); n == 0 || n > 200 {
		return Clinic{}, Errorf(EINVALID, "name: is required (at most 200 characters)")
	}
	timeZone = strings.TrimSpace(timeZone)
	loc, err := loadZone(timeZone)
	if err != nil {
		return Clinic{}, err
	}
	c := Clinic{Name: name, TimeZone: timeZone, Location: loc}
	err = s.inTx(ctx, func(tx pgx.Tx) error {
		err := tx.QueryRow(ctx, `insert into clinics (name, time_zone) values ($1, $2) returning id`, name, timeZone).Scan(&c.ID)
		if pgCode(err) == pgUniqueViolation {
			return &Error{Code: ECONFLICT, Message: "a clinic named " + strconv.Quote(name) + " already exists", Err: err}
		}
		if err != nil {
			return unavailable(err)
		}
		return audit(ctx, tx, SystemActor(c.ID), AuditEvent{Action: AuditClinicCreated, TargetKind: "clinic", TargetID: c.ID,
			Detail: map[string]any{"time_zone": timeZone}})
	})
	if err != nil {
		return Clinic{}, wrap(err, "create clinic")
	}
	return c, nil
}

// zones memoizes time.LoadLocation, which reads and parses the zone's tzdata file on every call
// (about 80 µs): every page that shows a clinic time needs the clinic's zone. Zones are
// immutable for the life of the process, and a failed lookup is not kept.
var zones sync.Map // zone name -> *time.Location

func zone(name string) (*time.Location, error) {
	if loc, ok := zones.Load(name); ok {
		return loc.(*time.Location), nil
	}
	loc, err := time.LoadLocation(name)
	if err != nil {
		return nil, err
	}
	zones.Store(name, loc)
	return loc, nil
}

// loadZone accepts IANA zone names only: not "" or "Local", which mean the server's zone.
func loadZone(name string) (*time.Location, error) {
	if name == "" || name == "Local" || len(name) > 64 {
		return nil, Errorf(EINVALID, "time_zone: must be an IANA time zone such as Asia/Shanghai or UTC")
	}
	loc, err := zone(name)
	if err != nil {
		return nil, &Error{Code: EINVALID, Message: "time_zone: " + strconv.Quote(name) + " is not an IANA time zone such as Asia/Shanghai or UTC", Err: err}
	}
	return loc, nil
}

// ClinicByName returns the clinic with exactly this name (surrounding spaces ignored).
func (s *Service) ClinicByName(ctx context.Context, name string) (Clinic, error) {
	c, err := s.clinicWhere(ctx, "name = $1", strings.TrimSpace(name))
	return c, wrap(err, "clinic by name")
}

// Clinic returns the clinic with the id.
func (s *Service) Clinic(ctx context.Context, id uuid.UUID) (Clinic, error) {
	c, err := s.clinicWhere(ctx, "id = $1", id)
	return c, wrap(err, "clinic %s", id)
}

func (s *Service) clinicWhere(ctx context.Context, where string, arg any) (Clinic, error) {
	c, err := scanClinic(s.pool.QueryRow(ctx, clinicSQL+where, arg))
	if err != nil {
		return Clinic{}, notFound(err, "clinic")
	}
	return c, nil
}

// clinicColumns are scanned by Clinic.dest.
const (
	clinicColumns = `id, name, time_zone, contact_phone, contact_email`
	clinicSQL     = `select ` + clinicColumns + ` from clinics where `
)

func (c *Clinic) dest() []any {
	return []any{&c.ID, &c.Name, &c.TimeZone, &c.ContactPhone, &c.ContactEmail}
}

// locate sets Location from TimeZone.
func (c *Clinic) locate() error {
	loc, err := zone(c.TimeZone)
	if err != nil {
		// The zone was valid when stored; a server without that tzdata entry must not guess.
		return fmt.Errorf("clinic %s: time zone %q: %w", c.ID, c.TimeZone, err)
	}
	c.Location = loc
	return nil
}

func scanClinic(row pgx.Row) (Clinic, error) {
	var c Clinic
	if err := row.Scan(c.dest()...); err != nil {
		return Clinic{}, err
	}
	return c, c.locate()
}

// normalizeEmail trims and lowercases an email address and checks that it is a bare address.
func normalizeEmail(email string) (string, error) {
	email = strings.ToLower(strings.TrimSpace(email))
	a, err := mail.ParseAddress(email)
	if err != nil || a.Address != email || len(email) < 3 || len(email) > 254 {
		return "", Errorf(EINVALID, "email: is not an email address")
	}
	return email, nil
}

func validRole(r string) bool { return r == RoleClinician || r == RoleResearcher || r == RoleAdmin }

// checkPassword enforces the length rules. Nothing else: length is what makes a password
// strong, and composition rules push people to weaker, memorable patterns.
func checkPassword(p string) error {
	if !utf8.ValidString(p) {
		return Errorf(EINVALID, "password: must be text")
	}
	if n := utf8.RuneCountInString(p); n < MinPasswordLength || n > MaxPasswordLength {
		return Errorf(EINVALID, "password: must be %d to %d characters", MinPasswordLength, MaxPasswordLength)
	}
	return nil
}

// canManageUsersOf checks that a may add users to (or create tokens for users of) clinic: the
// system acting for that clinic, or an admin of it. Another clinic answers not found.
func (a Actor) canManageUsersOf(clinic uuid.UUID) error {
	switch a.Kind {
	case ActorSystem:
		if a.ClinicID != uuid.Nil && a.ClinicID != clinic {
			return Errorf(ENOTFOUND, "clinic not found")
		}
		return nil
	case ActorUser:
		if a.Role != RoleAdmin {
			return Errorf(EFORBIDDEN, "only an admin can manage users")
		}
		if a.ClinicID != clinic {
			return Errorf(ENOTFOUND, "clinic not found")
		}
		return nil
	}
	return Errorf(EFORBIDDEN, "only an admin can manage users")
}

// CreateUser adds a user to a clinic. The actor is the system acting for that clinic (the
// CLI) or an admin of the clinic. A zero in.ClinicID means the actor's clinic.
func (s *Service) CreateUser(ctx context.Context, a Actor, in NewUser) (User, error) {
	if in.ClinicID == uuid.Nil {
		in.ClinicID = a.ClinicID
	}
	if in.ClinicID == uuid.Nil {
		return User{}, Errorf(EINVALID, "clinic: is required")
	}
	if err := a.canManageUsersOf(in.ClinicID); err != nil {
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
		return User{}, Errorf(EINVALID, "name: must be 1 to 200 characters")
	}
	if !validRole(in.Role) {
		return User{}, Errorf(EINVALID, "role: must be %s, %s or %s", RoleClinician, RoleResearcher, RoleAdmin)
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
			return &Error{Code: ECONFLICT, Message: "a user with email " + email + " already exists"}
		}
		switch pgCode(err) {
		case "":
		case pgForeignKeyViolation:
			return &Error{Code: ENOTFOUND, Message: "clinic not found", Err: err}
		default:
			return err
		}
		if err != nil {
			return unavailable(err)
		}
		return audit(ctx, tx, a, AuditEvent{Action: AuditUserCreated, TargetKind: "user", TargetID: u.ID,
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
func (s *Service) SetPassword(ctx context.Context, a Actor, email, password string) error {
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
	if !a.seesClinic(u.ClinicID) {
		return Errorf(ENOTFOUND, "user not found")
	}
	if err := a.canManageUsersOf(u.ClinicID); err != nil {
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
			return unavailable(err)
		}
		return audit(ctx, tx, a, AuditEvent{Action: AuditPasswordSet, TargetKind: "user", TargetID: u.ID})
	})
	return wrap(err, "set password")
}

// UserByEmail returns the user with the email, for a system actor of any clinic (the CLI) or
// of the user's clinic, or a user of the same clinic. Users of other clinics are not found.
func (s *Service) UserByEmail(ctx context.Context, a Actor, email string) (User, error) {
	email, err := normalizeEmail(email)
	if err != nil {
		return User{}, err
	}
	u, _, err := s.userByEmail(ctx, email)
	if err != nil {
		return User{}, wrap(err, "user by email")
	}
	if !a.seesClinic(u.ClinicID) {
		return User{}, Errorf(ENOTFOUND, "user not found")
	}
	return u, nil
}

// seesClinic reports whether clinic data is visible to a: its own clinic, or any for the system
// acting for no clinic in particular.
func (a Actor) seesClinic(clinic uuid.UUID) bool {
	if a.Kind == ActorSystem && a.ClinicID == uuid.Nil {
		return true
	}
	return (a.Kind == ActorSystem || a.Kind == ActorUser) && a.ClinicID == clinic
}

func (s *Service) userByEmail(ctx context.Context, email string) (User, string, error) {
	var u User
	var hash string
	var disabled *time.Time
	err := s.pool.QueryRow(ctx, `select id, clinic_id, email, name, role, password_hash, disabled_at from users where email = $1`, email).
		Scan(&u.ID, &u.ClinicID, &u.Email, &u.Name, &u.Role, &hash, &disabled)
	if err != nil {
		return User{}, "", notFound(err, "user")
	}
	u.Disabled = disabled != nil
	return u, hash, nil
}

// Authenticate checks an email and password. Every failure answers EUNAUTHORIZED "email or
// password is wrong" after the same amount of hashing, so neither the message nor the timing
// reveals which emails have accounts. Successes and failures are audited; the password never is.
func (s *Service) Authenticate(ctx context.Context, email, password string, addr netip.Addr) (Actor, User, error) {
	addr = addr.Unmap()
	// Lowercase and trim but do not validate: an invalid address takes the unknown-user path,
	// at the same cost.
	email = strings.ToLower(strings.TrimSpace(email))
	if len(password) > 4*MaxPasswordLength {
		password = password[:4*MaxPasswordLength] // never valid; bounds the hashing cost
	}
	u, hash, err := s.userByEmail(ctx, email)
	known := err == nil
	if !known && ErrorCode(err) != ENOTFOUND {
		return Actor{}, User{}, wrap(err, "authenticate")
	}
	if !known {
		if hash, err = dummyHash(); err != nil {
			return Actor{}, User{}, wrap(err, "authenticate: dummy hash")
		}
	}
	var match bool
	if err := withHashSlot(ctx, func() (err error) {
		match, err = argon2id.ComparePasswordAndHash(password, hash)
		return err
	}); err != nil {
		return Actor{}, User{}, wrap(err, "authenticate: verify password")
	}

	var reason string
	switch {
	case !known:
		reason = "unknown_email"
	case !match:
		reason = "wrong_password"
	case u.Disabled:
		reason = "disabled"
	}
	if reason != "" {
		// An unknown email gets no clinic, no target and nothing of what was typed.
		failed := Actor{Kind: ActorUser, Addr: addr}
		e := AuditEvent{Action: AuditLoginFailed, Detail: map[string]any{"reason": reason}}
		if known {
			failed.ClinicID = u.ClinicID
			e.TargetKind, e.TargetID = "user", u.ID
		}
		if err := s.inTx(ctx, func(tx pgx.Tx) error { return audit(ctx, tx, failed, e) }); err != nil {
			return Actor{}, User{}, wrap(err, "authenticate")
		}
		if reason == "disabled" {
			// Only someone who knows the password learns this.
			return Actor{}, User{}, Errorf(EUNAUTHORIZED, "this account is disabled; ask your clinic's admin")
		}
		return Actor{}, User{}, errLogin()
	}

	a := Actor{Kind: ActorUser, ID: u.ID, ClinicID: u.ClinicID, Role: u.Role, Addr: addr}
	if err := s.inTx(ctx, func(tx pgx.Tx) error {
		return audit(ctx, tx, a, AuditEvent{Action: AuditLogin, TargetKind: "user", TargetID: u.ID, Detail: map[string]any{"method": "password"}})
	}); err != nil {
		return Actor{}, User{}, wrap(err, "authenticate")
	}
	return a, u, nil
}

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
func (s *Service) CreateToken(ctx context.Context, a Actor, email string) (string, error) {
	email, err := normalizeEmail(email)
	if err != nil {
		return "", err
	}
	u, _, err := s.userByEmail(ctx, email)
	if err != nil {
		return "", wrap(err, "create token")
	}
	if !(a.Kind == ActorUser && a.ID == u.ID) {
		if !a.seesClinic(u.ClinicID) {
			return "", Errorf(ENOTFOUND, "user not found")
		}
		if err := a.canManageUsersOf(u.ClinicID); err != nil {
			return "", err
		}
	}
	if u.Disabled {
		return "", Errorf(EINVALID, "user %s is disabled", u.Email)
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
			return unavailable(err)
		}
		return audit(ctx, tx, a, AuditEvent{Action: AuditTokenCreated, TargetKind: "user", TargetID: u.ID,
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
// and expired tokens, and tokens of disabled users, all answer EUNAUTHORIZED alike.
func (s *Service) AuthenticateToken(ctx context.Context, token string, addr netip.Addr) (Actor, error) {
	bad := Errorf(EUNAUTHORIZED, "the API token is not valid")
	if !wellFormedToken(token) {
		return Actor{}, bad
	}
	now := s.now()
	var (
		tokenID  uuid.UUID
		lastUsed *time.Time
		a        = Actor{Kind: ActorUser, Addr: addr.Unmap()}
	)
	err := s.pool.QueryRow(ctx, `select t.id, t.last_used_at, u.id, u.clinic_id, u.role
		from api_tokens t join users u on u.id = t.user_id
		where t.token_hash = $1 and t.revoked_at is null and (t.expires_at is null or t.expires_at > $2) and u.disabled_at is null`,
		tokenHash(token), now).Scan(&tokenID, &lastUsed, &a.ID, &a.ClinicID, &a.Role)
	if errors.Is(err, pgx.ErrNoRows) {
		return Actor{}, bad
	}
	if err != nil {
		return Actor{}, wrap(unavailable(err), "authenticate token")
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
		return audit(ctx, tx, Actor{Kind: ActorUser, Addr: addr.Unmap()}, AuditEvent{Action: AuditTokenFailed})
	})
	return wrap(err, "record token failure")
}

// RevokeToken revokes a token for good. The actor is its user, an admin of the user's clinic
// or the system. Revoking an unknown or already revoked token answers ENOTFOUND.
func (s *Service) RevokeToken(ctx context.Context, a Actor, token string) error {
	if !wellFormedToken(token) {
		return Errorf(ENOTFOUND, "token not found")
	}
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		var id, user, clinic uuid.UUID
		err := tx.QueryRow(ctx, `select t.id, u.id, u.clinic_id from api_tokens t join users u on u.id = t.user_id
			where t.token_hash = $1 and t.revoked_at is null for update of t`, tokenHash(token)).Scan(&id, &user, &clinic)
		if err != nil {
			return notFound(err, "token")
		}
		if !(a.Kind == ActorUser && a.ID == user) {
			if !a.seesClinic(clinic) {
				return Errorf(ENOTFOUND, "token not found")
			}
			if err := a.canManageUsersOf(clinic); err != nil {
				return err
			}
		}
		if _, err := tx.Exec(ctx, `update api_tokens set revoked_at = $2 where id = $1`, id, s.now()); err != nil {
			return unavailable(err)
		}
		if a.ClinicID == uuid.Nil {
			a.ClinicID = clinic
		}
		return audit(ctx, tx, a, AuditEvent{Action: AuditTokenRevoked, TargetKind: "user", TargetID: user,
			Detail: map[string]any{"token_id": id.String()}})
	})
	return wrap(err, "revoke token")
}
