package followup

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

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
	// thumbNudge wakes this process's thumbnail worker after an upload.
	thumbNudge chan struct{}
	// lastUpload is when this process last worked on an upload (UnixNano, monotonic within the
	// process): the thumbnail worker gives uploads the CPU first, see thumbnailTurn.
	lastUpload atomic.Int64
	// schedules keeps the procedures' schedules this process has read (they never change).
	schedules scheduleCache
	// records keeps the rows the procedures' clinic pages list, by their version.
	records recordCache
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
	return &Service{pool: cfg.Pool, store: cfg.Store, protocols: cfg.Protocols, log: cfg.Logger, now: cfg.Now, baseURL: cfg.BaseURL, secretKey: cfg.SecretKey,
		thumbNudge: make(chan struct{}, 1)}, nil
}

// Protocols returns the registry the service schedules with.
func (s *Service) Protocols() *protocols.Registry { return s.protocols }

// Store returns the object store photos live in.
func (s *Service) Store() imagestore.Store { return s.store }

// inTx runs fn in a transaction, committing if it returns nil and rolling back otherwise.
func (s *Service) inTx(ctx context.Context, fn func(pgx.Tx) error) error {
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return unavailable(err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	if err := fn(tx); err != nil {
		return err
	}
	if err := tx.Commit(ctx); err != nil {
		return unavailable(err)
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

func pgConstraint(err error) string {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.ConstraintName
	}
	return ""
}

// unavailable marks errors that mean the database could not be reached or failed, so callers
// answer 503 (retry later) rather than a generic 500.
func unavailable(err error) error {
	if err == nil {
		return nil
	}
	// A value that does not scan is a bug of ours, not a passing outage: internal, not
	// "try again".
	if pgCode(err) != "" || errors.Is(err, context.Canceled) || errors.As(err, new(pgx.ScanArgError)) {
		return err
	}
	return &Error{Code: EUNAVAILABLE, Message: "The service is temporarily unavailable; please try again.", Err: err}
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
