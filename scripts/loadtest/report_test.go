package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The report of a fixed set of results (testdata/results: the figures of a real run) gives
// the ratios and verdicts worked out by hand.
func TestReportOfFixedResults(t *testing.T) {
	rp := buildReport("testdata/results")
	if rp.errors != 0 {
		t.Fatalf("%d errors: %v", rp.errors, rp.sections)
	}
	got := map[string]row{}
	for _, r := range rp.rows {
		got[r.name] = r
	}
	for _, want := range []row{
		{"Sanitizer bytes", "1298 MB/s, 4.19 MB/op", "file 4.13 MB", "1.01 copies", "-", "for information"},
		{"Sanitizer stream", "5851 MB/s, 0.08 MB/op", "file 4.13 MB", "0.02 copies", "≥ 1000 MB/s, ≤ 1 copy + 256 KiB", "PASS"},
		{"Thumbnail 320 px vs vipsthumbnail", "67 ms, 1.7 MB", "vips 117 ms", "0.57x", "≤ 1x", "PASS"},
		{"Thumbnail 320 px vs vipsthumbnail, progressive", "32 ms, 2.4 MB", "vips 250 ms", "0.13x", "≤ 0.5x", "PASS"},
		// 215.9 / 337.0 and 225.0 / 243.0; the server's CPU per photo is 3.6 s / 300 and 3.3 s / 300.
		{"Ingest vs PutObject, shared cores", "215.9 MB/s; CPU per photo: server 12 ms, MinIO 16 ms",
			"337.0 MB/s; MinIO 15 ms per photo", "0.64", "≥ 0.8", "MISS"},
		{"Ingest vs PutObject, MinIO on its own core", "225.0 MB/s; CPU per photo: server 11 ms, MinIO 16 ms",
			"243.0 MB/s; MinIO 15 ms per photo", "0.93", "≥ 0.9", "PASS"},
		// 125.5 / 158.8 is checked; 125.5 / 193.2 is for information.
		{"Research export vs plain copy", "125.5 MB/s, heap 66 MB", "plain copy 158.8 MB/s (plain read 193.2 MB/s, 0.65)",
			"0.79", "≥ 0.9, heap < 150 MB", "MISS (speed)"},
		{"Upload memory, 16 x 20 MB", "peak 110 MB", "idle 30 MB", "+80 MB", "< 300 MB", "PASS"},
		{"Timeline p99, 32 clients", "p99 32.1 ms", "static p99 12.5 ms", "2.6x", "p99 < 50 ms", "PASS"},
		// medians (the lower middle of ten) 9.41 and 9.85 MB/s of the photos sent each way through a 100 Mbit/s proxy
		{"Resumable upload, fast link", "9.4 MB/s", "9.8 MB/s", "0.96x", ">= 0.9x", "PASS"},
		// 134.3 / 56.48 is for information; 134.3 ms is under the absolute 300.
		{"Photo quality measure in the browser, 12 MP, CPU x4", "134 ms", "decode whole 56 ms", "2.38", "< 300 ms", "PASS"},
	} {
		if got[want.name] != want {
			t.Errorf("row\n got %q\nwant %q", got[want.name], want)
		}
	}
	doc := rp.markdown("abc123")
	for _, s := range []string{"commit `abc123`", "Load average when the run started (1, 5, 15 min): 1.26 1.91 2.50.",
		"1 ERROR, 2 WARN lines", "| imagestore thumbnails | 32 ms | 22, 34, 54, 25, 32, 33, 62, 48, 27, 23, 32, 28, 33, 22, 24 |",
		"Decode memory per thumbnail: 1.7 MB taken from the decode budget",
		"| static file (baseline) | 20000/20000 in 1.9 s (stopped by count) | 10526 | 2.5 | 7.8 | 12.5 | 23.0 |",
		"| 320 | 273.44ms | 19.3 | 63 |",
		"| MinIO on its own core | ingest (server) | 88% of 2 cores | 3.3 s | 4.7 s | 0.8 s |",
		"9 PostgreSQL backends of the bench database on CPU 1",
		"the export runs at 0.65 of the sequential plain read and 0.32 of the parallel read; plain-copy, with no work of ours, reaches 0.82"} {
		if !strings.Contains(doc, s) {
			t.Errorf("the document lacks %q", s)
		}
	}
}

// With no results at all, every benchmark is an ERROR row and counts as an error.
func TestReportWithoutResults(t *testing.T) {
	rp := buildReport(t.TempDir())
	if rp.errors != len(rp.rows) || rp.errors < 6 {
		t.Fatalf("%d errors for %d rows", rp.errors, len(rp.rows))
	}
	for _, r := range rp.rows {
		if r.result != "ERROR" {
			t.Errorf("row %q is %s", r.name, r.result)
		}
	}
}

// A failed request makes the benchmark an ERROR, whatever its ratio.
func TestReportFailedRequests(t *testing.T) {
	dir := t.TempDir()
	for _, f := range []string{"put.json", "ingest.json"} {
		b, err := os.ReadFile(filepath.Join("testdata/results", f))
		if err != nil {
			t.Fatal(err)
		}
		if f == "ingest.json" {
			b = []byte(strings.Replace(string(b), `"failed":0`, `"failed":2,"errors":["503: try again"]`, 1))
		}
		if err := os.WriteFile(filepath.Join(dir, f), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	os.WriteFile(filepath.Join(dir, "ingest-pinned-after.json"), []byte(`{"skipped": "not this time"}`), 0o644)
	rp := &report{dir: dir}
	rp.ingest()
	if rp.errors != 1 || rp.rows[0].result != "ERROR" || !strings.Contains(rp.sections[0], "503: try again") {
		t.Fatalf("errors %d, rows %v", rp.errors, rp.rows)
	}
}

// A setup that could not run is SKIPPED, not an error; one whose results are missing is an
// ERROR; the other setup is reported either way.
func TestReportIngestSetups(t *testing.T) {
	for _, c := range []struct {
		name, after, want string
		errors            int
	}{
		{"skipped", `{"skipped": "this machine has 1 core"}`, "SKIPPED", 0},
		{"missing", "", "ERROR", 1},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			for _, f := range []string{"put.json", "ingest.json", "ingest-after.json"} {
				b, err := os.ReadFile(filepath.Join("testdata/results", f))
				if err != nil {
					t.Fatal(err)
				}
				os.WriteFile(filepath.Join(dir, f), b, 0o644)
			}
			if c.after != "" {
				os.WriteFile(filepath.Join(dir, "ingest-pinned-after.json"), []byte(c.after), 0o644)
			}
			rp := &report{dir: dir}
			rp.ingest()
			if len(rp.rows) != 2 || rp.rows[0].result != "MISS" || rp.rows[1].result != c.want || rp.errors != c.errors {
				t.Fatalf("rows %q, %d errors", rp.rows, rp.errors)
			}
			if len(rp.sections) != 1 || !strings.Contains(rp.sections[0], "| shared cores | ingest (server) | 300/300 |") {
				t.Fatalf("sections %q", rp.sections)
			}
		})
	}
}

func TestSplice(t *testing.T) {
	hand := "# Performance\n\nHand text.\n"
	first, err := splice(hand, "## Latest run\n\nfigures 1\n")
	if err != nil {
		t.Fatal(err)
	}
	want := "# Performance\n\nHand text.\n\n" + beginMark + "\n\n## Latest run\n\nfigures 1\n\n" + endMark + "\n"
	if first != want {
		t.Fatalf("first splice:\n%s\nwant:\n%s", first, want)
	}
	// Again, with hand text after the generated part: only the part between the marks changes.
	second, err := splice(first+"\nAfter.\n", "figures 2")
	if err != nil {
		t.Fatal(err)
	}
	want = "# Performance\n\nHand text.\n\n" + beginMark + "\n\nfigures 2\n\n" + endMark + "\n\nAfter.\n"
	if second != want {
		t.Fatalf("second splice:\n%s\nwant:\n%s", second, want)
	}
	if out, _ := splice("", "x"); !strings.HasPrefix(out, "# Performance\n\n"+beginMark) {
		t.Fatalf("a new document: %q", out)
	}
	if _, err := splice("text "+beginMark+" no end", "x"); err == nil {
		t.Fatal("a begin mark without its end was accepted")
	}
}

func TestCountLog(t *testing.T) {
	if got := countLog("testdata/results/server-ingest.log"); got != "1 ERROR, 2 WARN lines (see the server log of the run)" {
		t.Errorf("countLog = %q", got)
	}
	if got := countLog("testdata/results/server-memory.log"); got != "no warnings or errors" {
		t.Errorf("countLog of an empty log = %q", got)
	}
	if got := countLog("testdata/results/missing.log"); got != "not read" {
		t.Errorf("countLog of no log = %q", got)
	}
}
