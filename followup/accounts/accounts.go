// Package accounts owns who may sign in to the clinic's side and how: the clinic's users and
// their passwords (argon2id), second factors (authenticator-app codes with recovery codes,
// and passkeys), the clinic's sign-in policy, the throttling of failed attempts, API tokens,
// the clinicians' server-side sessions and "log out everywhere". It keeps its own tables
// (users, api_tokens, sessions, user_session_epochs, user_totp, recovery_codes, passkeys,
// webauthn_users, webauthn_ceremonies, sign_in_failures, and the sign-in columns of clinics)
// and uses the follow-up core's package for what every part shares: actors, errors with
// codes, and the audit log.
//
// A page signs a user in in two steps: the password, then, where the user has a second factor
// or must have one, a code or a passkey (or enrolment first).
//
//	acc, err := accounts.New(accounts.Config{Pool: pool, SecretKey: key,
//		RPID: "followup.example.org", RPOrigins: []string{"https://followup.example.org"}})
//	res, err := acc.SignIn(ctx, email, password, addr)
//	switch res.Next {
//	case accounts.StepSecondFactor: // later: v, err := acc.VerifySecondFactor(ctx, res.User.ID, code, addr)
//	case accounts.StepEnrol: // BeginTOTP/ConfirmTOTP or BeginRegistration/FinishRegistration
//	case accounts.StepDone: // signed in
//	}
//
// A session keeps when its second factor last passed (Verified.At); StepUpDue tells whether an
// action that asks for a recent one must ask again.
package accounts

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/go-webauthn/webauthn/webauthn"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/dermfollow/dermfollow/followup"
)

// Config holds a Service's dependencies.
type Config struct {
	Pool   *pgxpool.Pool
	Logger *slog.Logger
	// Now is the clock (tests pass their own).
	Now func() time.Time
	// SecretKey is DERMFOLLOW_SECRET_KEY; authenticator-app secrets are sealed under a key
	// derived from it. Without it, enrolling an authenticator app is refused.
	SecretKey []byte
	// RPID is the WebAuthn relying party id (the site's host name, never an IP address) and
	// RPOrigins the origins pages are served from (e.g. https://followup.example.org).
	// Without an RPID, passkeys are off.
	RPID      string
	RPOrigins []string
	// RPName is the name authenticators and authenticator apps show; default "Dermfollow".
	RPName string
}

// Service is the accounts of every clinic. Methods take ctx first and the Actor acting.
type Service struct {
	pool      *pgxpool.Pool
	log       *slog.Logger
	now       func() time.Time
	secretKey []byte
	rpName    string
	webauthn  *webauthn.WebAuthn // nil: passkeys are off
	sleep     func(context.Context, time.Duration) error
}

// New returns a Service.
func New(cfg Config) (*Service, error) {
	if cfg.Pool == nil {
		return nil, errors.New("accounts: Pool is required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.RPName == "" {
		cfg.RPName = "Dermfollow"
	}
	s := &Service{pool: cfg.Pool, log: cfg.Logger, now: cfg.Now, secretKey: cfg.SecretKey, rpName: cfg.RPName, sleep: sleepCtx}
	if cfg.RPID != "" {
		w, err := newWebAuthn(cfg.RPID, cfg.RPName, cfg.RPOrigins)
		if err != nil {
			return nil, err
		}
		s.webauthn = w
	}
	return s, nil
}

// inTx runs fn in a transaction of the accounts' pool.
func (s *Service) inTx(ctx context.Context, fn func(pgx.Tx) error) error {
	return followup.WithTx(ctx, s.pool, fn)
}

func wrap(err error, format string, args ...any) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("accounts: "+format+": %w", append(args, err)...)
}

// isForeignKeyViolation reports whether PostgreSQL refused a row for a missing parent.
func isForeignKeyViolation(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == "23503"
}
