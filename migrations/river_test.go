package migrations_test

import (
	"context"
	"io"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/rivermigrate"

	"github.com/dermfollow/dermfollow/followup/pgtest"
	"github.com/dermfollow/dermfollow/migrations"
)

// 00004_river.sql is River's schema copied by hand into a goose migration. These tests make
// a River upgrade that changes its schema fail the suite, not production: the migrated
// database must be what River's own migrator calls current, and hold exactly the objects
// River's own migrations make.

// migratedPool opens a pool on a new database that this package's migrations were applied to.
func migratedPool(t *testing.T, ctx context.Context) *pgxpool.Pool {
	t.Helper()
	url := pgtest.NewEmptyDatabase(t)
	if _, err := migrations.Up(ctx, url, slog.New(slog.NewTextHandler(io.Discard, nil))); err != nil {
		t.Fatal(err)
	}
	return pgtest.OpenPool(t, url)
}

func validateRiver(t *testing.T, ctx context.Context, pool *pgxpool.Pool) *rivermigrate.ValidateResult {
	t.Helper()
	m, err := rivermigrate.New(riverpgxv5.New(pool), nil)
	if err != nil {
		t.Fatal(err)
	}
	res, err := m.Validate(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func TestRiverSchemaIsCurrent(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	ours := migratedPool(t, ctx)
	if res := validateRiver(t, ctx, ours); !res.OK {
		t.Fatalf("River's migrator finds the migrated schema out of date (add River's new migrations as a goose file):\n%s",
			strings.Join(res.Messages, "\n"))
	}

	// The same objects as River's own migrations make.
	rivers := pgtest.OpenPool(t, pgtest.NewEmptyDatabase(t))
	m, err := rivermigrate.New(riverpgxv5.New(rivers), nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.Migrate(ctx, rivermigrate.DirectionUp, nil); err != nil {
		t.Fatal(err)
	}
	want := riverSchema(t, ctx, rivers)
	if len(want) < 20 {
		t.Fatalf("River's schema has %d objects: the catalog query finds nothing", len(want))
	}
	if missing, extra := diff(want, riverSchema(t, ctx, ours)); len(missing)+len(extra) > 0 {
		t.Fatalf("the migrated River schema differs from River's own\nmissing:\n%s\nnot River's:\n%s",
			strings.Join(missing, "\n"), strings.Join(extra, "\n"))
	}

	// Both checks see a schema that falls behind.
	if _, err := ours.Exec(ctx, `drop index river_job_kind; delete from river_migration where version = 8`); err != nil {
		t.Fatal(err)
	}
	if res := validateRiver(t, ctx, ours); res.OK {
		t.Error("Validate passes a schema without River's migration 8")
	}
	missing, extra := diff(want, riverSchema(t, ctx, ours))
	if !slices.Equal(missing, []string{"index CREATE INDEX river_job_kind ON public.river_job USING btree (kind)",
		"migration main 8", "relation river_job_kind kind i persistence p"}) || len(extra) != 0 {
		t.Errorf("without an index and a migration row: missing %q, not River's %q", missing, extra)
	}
}

// riverSchema describes River's objects in the database's public schema, one sorted line
// each: relations, columns, constraints, indexes, enum values, functions, triggers and the
// migration rows.
func riverSchema(t *testing.T, ctx context.Context, pool *pgxpool.Pool) []string {
	t.Helper()
	var out []string
	for _, q := range []string{
		`select format('relation %s kind %s persistence %s', relname, relkind, relpersistence)
			from pg_class where relnamespace = 'public'::regnamespace and relname like 'river%'`,
		`select format('column %s.%s #%s %s %s null %s default %s', table_name, column_name, ordinal_position, data_type,
				udt_name, is_nullable, coalesce(column_default, '-'))
			from information_schema.columns where table_schema = 'public' and table_name like 'river%'`,
		`select format('constraint %s %s %s', conrelid::regclass, conname, pg_get_constraintdef(oid))
			from pg_constraint where connamespace = 'public'::regnamespace and conrelid::regclass::text like 'river%'`,
		`select format('index %s', indexdef) from pg_indexes where schemaname = 'public' and tablename like 'river%'`,
		`select format('enum %s %s', t.typname, string_agg(e.enumlabel, ',' order by e.enumsortorder))
			from pg_type t join pg_enum e on e.enumtypid = t.oid
			where t.typnamespace = 'public'::regnamespace and t.typname like 'river%' group by t.typname`,
		`select format('function %s', pg_get_functiondef(oid))
			from pg_proc where pronamespace = 'public'::regnamespace and proname like 'river%'`,
		`select format('trigger %s', pg_get_triggerdef(oid))
			from pg_trigger where not tgisinternal and tgrelid::regclass::text like 'river%'`,
		`select format('migration %s %s', line, version) from river_migration`,
	} {
		rows, err := pool.Query(ctx, q)
		if err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		for rows.Next() {
			var line string
			if err := rows.Scan(&line); err != nil {
				t.Fatal(err)
			}
			out = append(out, line)
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
	}
	slices.Sort(out)
	return out
}

// diff returns the lines of want that got lacks and those of got that want lacks.
func diff(want, got []string) (missing, extra []string) {
	for _, w := range want {
		if !slices.Contains(got, w) {
			missing = append(missing, w)
		}
	}
	for _, g := range got {
		if !slices.Contains(want, g) {
			extra = append(extra, g)
		}
	}
	return missing, extra
}
