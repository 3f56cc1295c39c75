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

// 00024_concern_uploads_grades.sql goes down and up again on a database without concern
// uploads or grades of concern photos. (What its checks allow is tested through the code that
// writes the rows: followup's TestStagedConcernUpload and TestAssessConcernPhoto.)
func TestConcernUploadsGradesMigration(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	url := pgtest.NewEmptyDatabase(t)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	if _, err := migrations.Up(ctx, url, log); err != nil {
		t.Fatal(err)
	}
	pool := pgtest.OpenPool(t, url)
	checks := func(when string) {
		t.Helper()
		var n int
		if err := pool.QueryRow(ctx, `select count(*) from pg_constraint where conname in ('resumable_uploads_kind', 'assessments_target')`).Scan(&n); err != nil || n != 2 {
			t.Fatalf("%s: %d of the two constraints, %v", when, n, err)
		}
	}
	checks("after up")
	if err := migrations.DownTo(ctx, url, 19); err != nil {
		t.Fatal(err)
	}
	var cols int
	if err := pool.QueryRow(ctx, `select count(*) from information_schema.columns
		where (table_name, column_name) in (('resumable_uploads', 'kind'), ('assessments', 'photo_id'))`).Scan(&cols); err != nil || cols != 0 {
		t.Fatalf("down left %d of the new columns, %v", cols, err)
	}
	if n, err := migrations.Up(ctx, url, log); err != nil || n < 1 {
		t.Fatalf("up again: %d applied, %v", n, err)
	}
	checks("after up again")
}
