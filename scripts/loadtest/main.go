// Command loadtest is the load generator and helper behind `make bench` (scripts/bench.sh). It
// writes the benchmark photos, times thumbnails against vipsthumbnail, loads the server's
// upload path and, as the baseline, MinIO directly, loads the clinician's timeline page against
// a static file of the same server, and writes docs/PERFORMANCE.md.
//
// Every mode bounds its work in count and in time and stops by itself, and talks only to
// 127.0.0.1. Results are JSON files that the report mode turns into the document.
//
//	loadtest photo    -out F -width W -height H -quality Q -noise N -seed S [-min-mb A -max-mb B]
//	loadtest thumbs   -in F -n N -size 320 -vips PATH -out R.json
//	loadtest ingest   -url http://127.0.0.1:P/p/TOKEN/photos -files F1,F2 -c 8 -n 200 -duration 60s [-pid PID] -out R.json
//	loadtest put      -bucket B -files F1,F2 -c 8 -n 200 -duration 60s -out R.json
//	loadtest cleanup  -bucket B [-bucket B2 ...]
//	loadtest freeport
//	loadtest fill     -base http://127.0.0.1:P -procedure ID -file F
//	loadtest timeline -base http://127.0.0.1:P -procedure ID -email E -c 32 -n 20000 -duration 30s -out R.json
//	loadtest resumable -link http://127.0.0.1:P/p/TOKEN -file F -n 10 -rate 12500000 -out R.json
//	loadtest report   -results DIR -doc docs/PERFORMANCE.md [-commit C]
//	loadtest scale    -target small=http://127.0.0.1:P1,PID1,S1.json -target large=... -email E -c 8 -duration 20s -out DIR
//	loadtest scalereport -results DIR -doc docs/PERFORMANCE.md [-commit C]
//
// put and cleanup reach MinIO at DERMFOLLOW_TEST_S3_ENDPOINT with the keys in
// DERMFOLLOW_TEST_S3_ACCESS_KEY and DERMFOLLOW_TEST_S3_SECRET_KEY (never on the command line).
// fill reads an API token from LOADTEST_TOKEN and timeline the clinician's password from
// LOADTEST_PASSWORD, for the same reason; scale reads the password and LOADTEST_TOKEN_SIZE.
//
// The files follow the benchmarks: photo.go, thumbs.go (section 2), ingest.go, ingest_report.go
// and store.go (section 3), memory.go (section 4), timeline.go (section 5), export.go (section 6),
// sanitizer.go (section 1), resumable.go (resumable uploads), scale.go and scale_report.go (make
// bench-scale's own section); load.go drives concurrent requests, procfs.go reads CPU time and
// memory from /proc, compare.go holds the statistics and the targets, gobench.go reads `go test
// -bench` output, and report.go writes the document and the summary table.
package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
)

// mb is the unit of every throughput and size in the report: 10^6 bytes, as `go test` uses.
const mb = 1e6

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: loadtest photo|thumbs|ingest|put|merge|cleanup|freeport|fill|timeline|resumable|report|scale|scalereport [flags]")
		os.Exit(2)
	}
	modes := map[string]func([]string) error{
		"photo": cmdPhoto, "thumbs": cmdThumbs, "ingest": cmdIngest, "put": cmdPut,
		"cleanup": cmdCleanup, "freeport": cmdFreePort, "report": cmdReport, "merge": cmdMerge,
		"fill": cmdFill, "timeline": cmdTimeline, "resumable": cmdResumable, "scale": cmdScale, "scalereport": cmdScaleReport,
	}
	run, ok := modes[os.Args[1]]
	if !ok {
		fmt.Fprintf(os.Stderr, "loadtest: unknown mode %q\n", os.Args[1])
		os.Exit(2)
	}
	err := run(os.Args[2:])
	var miss errUnmeasured
	switch {
	case errors.As(err, &miss):
		fmt.Fprintln(os.Stderr, "loadtest:", err)
		os.Exit(3)
	case err != nil:
		fmt.Fprintf(os.Stderr, "loadtest %s: %v\n", os.Args[1], err)
		os.Exit(1)
	}
}

// errUnmeasured is returned when a benchmark could not be measured cleanly (failed
// requests, missing results); a missed target alone is not an error.
type errUnmeasured struct{ n int }

func (e errUnmeasured) Error() string {
	return fmt.Sprintf("%d benchmark(s) had errors; see the report", e.n)
}

func writeJSON(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

func readJSON(path string, v any) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("no result: %w", err)
	}
	return json.Unmarshal(b, v)
}
