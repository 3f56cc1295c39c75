// Package pgtest gives tests a real PostgreSQL: a fresh, migrated database per test (copied
// from a template database that is migrated once), dropped when the test ends, and private
// clusters that a fault test may stop and start.
//
// The server comes from DERMFOLLOW_TEST_DATABASE_URL (set by `make test`). Where it is unset,
// tests skip, unless DERMFOLLOW_REQUIRE_SERVICES or CI is set: then they fail.
//
//	pool := pgtest.NewPool(t)
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	pgxuuid "github.com/vgarvardt/pgx-google-uuid/v5"

	"github.com/dermfollow/dermfollow/migrations"
)

// Required reports whether missing services must fail tests rather than skip them.
func Required() bool {
	return os.Getenv("DERMFOLLOW_REQUIRE_SERVICES") != "" || os.Getenv("CI") != ""
}

// AdminURL is the URL of the test server's maintenance database.
func AdminURL(tb testing.TB) string {
	tb.Helper()
	u := os.Getenv("DERMFOLLOW_TEST_DATABASE_URL")
	if u == "" {
		if Required() {
			tb.Fatal("pgtest: DERMFOLLOW_TEST_DATABASE_URL is not set; run the tests with `make test`")
		}
		tb.Skip("pgtest: DERMFOLLOW_TEST_DATABASE_URL is not set; `make test` starts PostgreSQL")
	}
	return u
}

var (
	templateOnce sync.Once
	templateName string
	templateErr  error
)

// NewDatabase creates a database holding the migrated schema and returns its URL. It is
// dropped (connections closed by force) when the test ends.
func NewDatabase(tb testing.TB) string {
	tb.Helper()
	admin := AdminURL(tb)
	templateOnce.Do(func() { templateName, templateErr = ensureTemplate(admin) })
	if templateErr != nil {
		tb.Fatalf("pgtest: template database: %v", templateErr)
	}
	return createDatabase(tb, admin, "template "+templateName)
}

// NewEmptyDatabase creates a database without any schema (for migration tests) and returns
// its URL. It is dropped when the test ends.
func NewEmptyDatabase(tb testing.TB) string {
	tb.Helper()
	return createDatabase(tb, AdminURL(tb), "")
}

func createDatabase(tb testing.TB, admin, options string) string {
	tb.Helper()
	name := "t_" + randomHex(8)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		tb.Fatalf("pgtest: connect: %v", err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, fmt.Sprintf("create database %s %s", name, options)); err != nil {
		tb.Fatalf("pgtest: create database: %v", err)
	}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		conn, err := pgx.Connect(ctx, admin)
		if err != nil {
			tb.Errorf("pgtest: drop %s: %v", name, err)
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, fmt.Sprintf("drop database if exists %s with (force)", name)); err != nil {
			tb.Errorf("pgtest: drop %s: %v", name, err)
		}
	})
	return withDatabase(admin, name)
}

// NewPool opens a pool on a fresh database (see NewDatabase), closed when the test ends.
func NewPool(tb testing.TB) *pgxpool.Pool {
	tb.Helper()
	return OpenPool(tb, NewDatabase(tb))
}

// OpenPool opens a pool on the database at u (a proxy's, say), closed when the test ends.
func OpenPool(tb testing.TB, u string) *pgxpool.Pool {
	tb.Helper()
	pc, err := pgxpool.ParseConfig(u)
	if err != nil {
		tb.Fatalf("pgtest: pool: %v", err)
	}
	// As followup.ConfigurePool does for the server (this package cannot import followup,
	// whose tests use it): ids in binary.
	pc.AfterConnect = func(_ context.Context, c *pgx.Conn) error {
		pgxuuid.Register(c.TypeMap())
		return nil
	}
	pool, err := pgxpool.NewWithConfig(context.Background(), pc)
	if err != nil {
		tb.Fatalf("pgtest: pool: %v", err)
	}
	tb.Cleanup(pool.Close)
	return pool
}

// ensureTemplate makes (once per schema, across all test processes) a migrated database to
// copy. An advisory lock serializes the test binaries that go test runs in parallel.
func ensureTemplate(admin string) (string, error) {
	name := "tpl_" + migrations.Hash()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		return "", err
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "select pg_advisory_lock(4206174)"); err != nil {
		return "", err
	}
	defer conn.Exec(context.Background(), "select pg_advisory_unlock(4206174)")

	var isTemplate bool
	err = conn.QueryRow(ctx, "select datistemplate from pg_database where datname = $1", name).Scan(&isTemplate)
	switch {
	case err == nil && isTemplate:
		return name, nil
	case err == nil:
		// A run that died half-way left it: build it again.
		if _, err := conn.Exec(ctx, fmt.Sprintf("drop database %s with (force)", name)); err != nil {
			return "", err
		}
	case err != pgx.ErrNoRows:
		return "", err
	}
	if _, err := conn.Exec(ctx, fmt.Sprintf("create database %s", name)); err != nil {
		return "", err
	}
	if _, err := migrations.Up(ctx, withDatabase(admin, name), slog.New(slog.NewTextHandler(io.Discard, nil))); err != nil {
		return "", err
	}
	if _, err := conn.Exec(ctx, fmt.Sprintf("alter database %s with is_template true allow_connections false", name)); err != nil {
		return "", err
	}
	return name, nil
}

func withDatabase(rawURL, db string) string {
	u, err := url.Parse(rawURL)
	if err != nil {
		panic(err)
	}
	u.Path = "/" + db
	return u.String()
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}
