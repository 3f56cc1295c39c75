// Package migrations holds Dermfollow's SQL schema changes, embedded in the binary, and applies
// them with goose under a PostgreSQL advisory lock, so that several servers starting at once
// against one database run each migration exactly once.
//
// Files are named NNNNN_what.sql and are never edited once they have landed: a change to the
// schema is a new file.
package migrations

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"embed"
	"encoding/hex"
	"fmt"
	"io/fs"
	"log/slog"
	"sort"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"
)

//go:embed *.sql
var files embed.FS

// Up applies every pending migration to the database at url and returns how many it applied.
func Up(ctx context.Context, url string, log *slog.Logger) (int, error) {
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		return 0, fmt.Errorf("migrations: database url: %w", err)
	}
	db := stdlib.OpenDB(*cfg)
	defer db.Close()
	// The session locker holds its advisory lock on one connection while goose migrates on
	// another: with a single connection it would wait for itself.
	db.SetMaxOpenConns(2)
	p, err := provider(db)
	if err != nil {
		return 0, err
	}
	results, err := p.Up(ctx)
	for _, r := range results {
		if r.Error == nil {
			log.Info("migration applied", "file", r.Source.Path, "duration", r.Duration)
		}
	}
	if err != nil {
		return len(results), fmt.Errorf("migrations: up: %w", err)
	}
	return len(results), nil
}

// Version reports the database's schema version and the newest one this binary knows.
func Version(ctx context.Context, url string) (current, latest int64, err error) {
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		return 0, 0, fmt.Errorf("migrations: database url: %w", err)
	}
	db := stdlib.OpenDB(*cfg)
	defer db.Close()
	db.SetMaxOpenConns(2)
	p, err := provider(db)
	if err != nil {
		return 0, 0, err
	}
	return p.GetVersions(ctx)
}

func provider(db *sql.DB) (*goose.Provider, error) {
	locker, err := lock.NewPostgresSessionLocker(lock.WithLockTimeout(1, 300))
	if err != nil {
		return nil, fmt.Errorf("migrations: %w", err)
	}
	p, err := goose.NewProvider(goose.DialectPostgres, db, files,
		goose.WithSessionLocker(locker), goose.WithDisableGlobalRegistry(true))
	if err != nil {
		return nil, fmt.Errorf("migrations: %w", err)
	}
	return p, nil
}

// Hash identifies the set of migrations (names and contents). Tests use it to name a template
// database, so a changed schema never reuses a stale template.
func Hash() string {
	names, _ := fs.Glob(files, "*.sql")
	sort.Strings(names)
	h := sha256.New()
	for _, n := range names {
		b, _ := files.ReadFile(n)
		fmt.Fprintf(h, "%s\x00%d\x00", n, len(b))
		h.Write(b)
	}
	return hex.EncodeToString(h.Sum(nil))[:12]
}
