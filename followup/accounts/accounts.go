// Package accounts owns who may sign in to the clinic's side and how: the clinic's users and
// their passwords (argon2id), API tokens, the clinicians' server-side sessions and "log out
// everywhere"; second factors belong here too. It keeps its own tables (users, api_tokens,
// sessions, user_session_epochs) and uses the follow-up core's package for what every part
// shares: actors, errors with codes, and the audit log.
//
//	acc, err := accounts.New(accounts.Config{Pool: pool})
//	a, _, err := acc.Authenticate(ctx, email, password, addr)
package accounts

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

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
}

// Service is the accounts of every clinic. Methods take ctx first and the Actor acting.
type Service struct {
	pool *pgxpool.Pool
	log  *slog.Logger
	now  func() time.Time
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
	return &Service{pool: cfg.Pool, log: cfg.Logger, now: cfg.Now}, nil
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
