// Command scalegen fills a migrated, empty Dermfollow database with a hospital's years of
// follow-up, in the shapes the service writes them, for `make bench-scale`
// (scripts/bench_scale.sh): several clinics; patients and procedures over two years; the
// schedules the protocols compute; photos with realistic compliance (complete, partial and
// missed timepoints, late photos, retakes); grades; retake requests and notes; parent links
// and the fresh link of every reminder attempt; reminders sent, skipped and failed on the
// channels the clinic has; exports; and the audit events of all of it (uploads, photo views,
// grades, links, logins).
//
//	scalegen -size small|large [-seed 1] [-now RFC3339] -summary out.json
//
// It reads DATABASE_URL (a PostgreSQL superuser: it loads with session_replication_role =
// replica, so that COPY does not fire a trigger per row) and writes with COPY in batches of
// procedures, then rebuilds the rows that triggers keep (procedure_row_versions,
// worklist_refill()) in one statement each, and ANALYZEs. No photo objects are stored: the
// measured pages read rows only.
//
// The data are a function of the seed, the size and now: each clinic has its own random
// stream. The summary names what the benchmark measures: the measured clinic, a procedure
// with a full timeline, a patient with several procedures, a search term and how many of the
// clinic's patients it matches, and the count of every table.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/jackc/pgx/v5"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "scalegen:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	fs := flag.NewFlagSet("scalegen", flag.ContinueOnError)
	size := fs.String("size", "small", "small (~1,000 procedures) or large (~100,000)")
	seed := fs.Uint64("seed", 1, "random seed")
	nowFlag := fs.String("now", "", "the present of the data, RFC 3339 (default: now)")
	summaryPath := fs.String("summary", "", "write the summary JSON here")
	if err := fs.Parse(args); err != nil {
		return err
	}
	cfg, ok := Sizes[*size]
	if !ok {
		return fmt.Errorf("unknown -size %q (small or large)", *size)
	}
	cfg.Seed = *seed
	cfg.Now = time.Now().UTC().Truncate(time.Microsecond)
	if *nowFlag != "" {
		t, err := time.Parse(time.RFC3339, *nowFlag)
		if err != nil {
			return fmt.Errorf("-now: %w", err)
		}
		cfg.Now = t.UTC()
	}
	url := os.Getenv("DATABASE_URL")
	if url == "" {
		return errors.New("DATABASE_URL is not set")
	}
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	started := time.Now()
	sum, err := Generate(ctx, conn, cfg, func(format string, args ...any) {
		fmt.Fprintf(os.Stderr, "scalegen: %s (%.0f s)\n", fmt.Sprintf(format, args...), time.Since(started).Seconds())
	})
	if err != nil {
		return err
	}
	if *summaryPath == "" {
		return json.NewEncoder(os.Stdout).Encode(sum)
	}
	b, err := json.MarshalIndent(sum, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(*summaryPath, append(b, '\n'), 0o644)
}
