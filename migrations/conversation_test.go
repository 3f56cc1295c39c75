package migrations_test

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/dermfollow/dermfollow/followup/pgtest"
	"github.com/dermfollow/dermfollow/migrations"
)

// 00019_conversation.sql replaces worklist functions that bulk loads call (worklist_refill):
// they must work after it, after its down path, and after it again.
func TestConversationMigrationDownAndUp(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	url := pgtest.NewEmptyDatabase(t)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	if _, err := migrations.Up(ctx, url, log); err != nil {
		t.Fatal(err)
	}
	pool := pgtest.OpenPool(t, url)
	refill := func(when string) {
		t.Helper()
		if _, err := pool.Exec(ctx, `select worklist_refill()`); err != nil {
			t.Fatalf("worklist_refill %s: %v", when, err)
		}
	}
	refill("after up")
	pool.Reset() // the functions' plans are cached per connection
	// 00019 and the migrations after it, which going down to 18 undoes: the numbers have gaps
	// while the migrations assigned to other work have not landed.
	var above int
	if err := pool.QueryRow(ctx, `select count(distinct version_id) from goose_db_version where version_id > 18`).Scan(&above); err != nil {
		t.Fatal(err)
	}
	if err := migrations.DownTo(ctx, url, 18); err != nil {
		t.Fatal(err)
	}
	var waiting bool
	if err := pool.QueryRow(ctx, `select exists (select 1 from information_schema.columns
		where table_name = 'worklist_entries' and column_name = 'waiting_since')`).Scan(&waiting); err != nil {
		t.Fatal(err)
	}
	if waiting {
		t.Error("down left worklist_entries.waiting_since")
	}
	refill("after down")
	pool.Reset()
	if n, err := migrations.Up(ctx, url, log); err != nil || n != above || above < 1 {
		t.Fatalf("up again: %d applied (%d were undone), %v", n, above, err)
	}
	refill("after up again")
}
