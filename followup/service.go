package followup

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/dermfollow/dermfollow/imagestore"
	"github.com/dermfollow/dermfollow/protocols"
)

// Config holds a Service's dependencies.
type Config struct {
	Pool      *pgxpool.Pool
	Store     imagestore.Store
	Protocols *protocols.Registry
	Logger    *slog.Logger
	// Now is the clock; schedules and reminders depend on it, so tests pass their own.
	Now func() time.Time
	// BaseURL is the public URL that parent links start with.
	BaseURL string
	// SecretKey is DERMFOLLOW_SECRET_KEY; derive purpose-specific keys from it (HKDF).
	SecretKey []byte
	// StoreTimeout bounds one photo's Put to the store once it is received (0: a minute). A
	// store that stalls longer makes the upload a 503 rather than hold it. The statements of
	// an upload's row, detached from its request too, get as long, up to 15 s.
	StoreTimeout time.Duration
	// Quota bounds the photos one parent link, and one step, may take (zero fields: defaults).
	Quota PhotoQuota
	// MessageSent, when set, runs in the transaction of every message the clinic sends the
	// family (SendMessage: a note, a retake request), so that the family is told (package
	// reminders queues the notice): the message exists if and only if its notice does.
	MessageSent func(ctx context.Context, tx pgx.Tx, a Actor, procedureID uuid.UUID) error
}

// Service is the follow-up domain. Every method takes ctx first and, where data belongs to a
// clinic, the Actor whose clinic scopes it.
type Service struct {
	pool      *pgxpool.Pool
	store     imagestore.Store
	protocols *protocols.Registry
	log       *slog.Logger
	now       func() time.Time
	baseURL   string
	secretKey []byte
	// thumbNudge wakes this process's thumbnail worker after an upload (see ThumbnailsDue).
	thumbNudge chan struct{}
	// lastUpload is when this process last worked on an upload (UnixNano, monotonic within the
	// process): the thumbnail worker gives uploads the CPU first (see SinceUpload).
	lastUpload atomic.Int64
	// schedules keeps the procedures' schedules this process has read (they never change).
	schedules scheduleCache
	// records keeps the rows the procedures' clinic pages list, by their version.
	records recordCache
	// storeTimeout bounds one photo's Put (Config.StoreTimeout); rowTimeout the statements of
	// a write that runs detached from its request.
	storeTimeout, rowTimeout time.Duration
	quota                    PhotoQuota
	// testHook, set only by tests, is called at each step of the photo write path.
	testHook func(step string)
	// messageSent is Config.MessageSent.
	messageSent func(ctx context.Context, tx pgx.Tx, a Actor, procedureID uuid.UUID) error
}

// New returns a Service.
func New(cfg Config) (*Service, error) {
	if cfg.Pool == nil || cfg.Store == nil || cfg.Protocols == nil {
		return nil, errors.New("followup: Pool, Store and Protocols are required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.StoreTimeout <= 0 {
		cfg.StoreTimeout = time.Minute
	}
	return &Service{pool: cfg.Pool, store: cfg.Store, protocols: cfg.Protocols, log: cfg.Logger, now: cfg.Now, baseURL: cfg.BaseURL, secretKey: cfg.SecretKey,
		thumbNudge: make(chan struct{}, 1), storeTimeout: cfg.StoreTimeout, rowTimeout: min(cfg.StoreTimeout, 15*time.Second), quota: cfg.Quota.withDefaults(),
		messageSent: cfg.MessageSent}, nil
}

// Protocols returns the registry the service schedules with.
func (s *Service) Protocols() *protocols.Registry { return s.protocols }

// Store returns the object store photos live in.
func (s *Service) Store() imagestore.Store { return s.store }

// inTx runs fn in a transaction, committing if it returns nil and rolling back otherwise.
func (s *Service) inTx(ctx context.Context, fn func(pgx.Tx) error) error {
	return WithTx(ctx, s.pool, fn)
}

// Steps of the photo write path, for tests that fail it at each one.
const (
	hookSanitized = "sanitized"
	hookStored    = "stored"
	hookInserting = "inserting"
)

func (s *Service) hook(step string) {
	if s.testHook != nil {
		s.testHook(step)
	}
}

// commitUnknownError is a COMMIT whose answer was lost (the connection broke, a deadline ran
// out while it was on its way): PostgreSQL may or may not have committed.
type commitUnknownError struct{ err error }

func (e *commitUnknownError) Error() string {
	return "the outcome of the commit is unknown: " + e.err.Error()
}
func (e *commitUnknownError) Unwrap() error { return e.err }

// commitOutcome is the error of a failed COMMIT, telling a certain failure from an unknown one.
func commitOutcome(err error) error {
	if pgCode(err) == "" {
		return &Error{Code: EUNAVAILABLE, Message: "The service is temporarily unavailable; please try again.",
			Err: &commitUnknownError{err}}
	}
	return unavailable(err)
}

// runTx runs fn in a transaction of pool, committing if it returns nil and rolling back
// otherwise; a failed BEGIN is unavailable, a failed COMMIT goes through commitErr.
func runTx(ctx context.Context, pool *pgxpool.Pool, fn func(pgx.Tx) error, commitErr func(error) error) error {
	tx, err := pool.Begin(ctx)
	if err != nil {
		return unavailable(err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	if err := fn(tx); err != nil {
		return err
	}
	if err := tx.Commit(ctx); err != nil {
		return commitErr(err)
	}
	return nil
}

// Library errors are converted here, at the boundary, by code and never by message text.
const (
	pgUniqueViolation     = "23505"
	pgForeignKeyViolation = "23503"
	pgCheckViolation      = "23514"
	pgInvalidText         = "22P02"
)

func pgCode(err error) string {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code
	}
	return ""
}

// unavailable marks errors that mean the database could not be reached or failed, so callers
// answer 503 (retry later) rather than a generic 500.
//
// Errors PostgreSQL answers with are ours to fix (a constraint, a bad value) unless their
// SQLSTATE says the server could not do the work now: connection exceptions (class 08),
// insufficient resources (53), an administrator's or a crash's shutdown, or a server still
// starting (57P01-57P03), and a serialization failure or deadlock (40001, 40P01), which a
// retry resolves. A value that does not scan is a bug of ours too.
func unavailable(err error) error {
	if err == nil {
		return nil
	}
	var app *Error
	if errors.As(err, &app) {
		return err
	}
	code := pgCode(err)
	if (code != "" && !transientSQLState(code)) || errors.As(err, new(pgx.ScanArgError)) {
		return err
	}
	return &Error{Code: EUNAVAILABLE, Message: "The service is temporarily unavailable; please try again.", Err: err}
}

// transientSQLState reports whether a SQLSTATE means "try again later".
func transientSQLState(code string) bool {
	switch {
	case strings.HasPrefix(code, "08"), strings.HasPrefix(code, "53"):
		return true
	}
	switch code {
	case "57P01", "57P02", "57P03", "40001", "40P01":
		return true
	}
	return false
}

// notFound maps pgx.ErrNoRows to an application not-found error naming what was looked up.
func notFound(err error, what string) error {
	if errors.Is(err, pgx.ErrNoRows) {
		return &Error{Code: ENOTFOUND, Message: what + " not found", Err: err}
	}
	return unavailable(err)
}

func wrap(err error, format string, args ...any) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("followup: "+format+": %w", append(args, err)...)
}
