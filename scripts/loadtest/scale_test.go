package main

import (
	"strings"
	"testing"
)

// The seeded-scale section has marks of its own: writing it keeps make bench's section and
// the hand-written text, and rewriting it replaces only itself.
func TestSpliceMarksKeepsTheOtherSection(t *testing.T) {
	doc := "# Performance\n\nBy hand.\n\n" + beginMark + "\n\nbench figures\n\n" + endMark + "\n\nMore by hand.\n"
	once, err := spliceMarks(doc, "scale figures 1", scaleBeginMark, scaleEndMark)
	if err != nil {
		t.Fatal(err)
	}
	twice, err := spliceMarks(once, "scale figures 2", scaleBeginMark, scaleEndMark)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"By hand.", "bench figures", "More by hand.", "scale figures 2", scaleBeginMark, scaleEndMark} {
		if !strings.Contains(twice, want) {
			t.Errorf("the document lost %q:\n%s", want, twice)
		}
	}
	if strings.Contains(twice, "scale figures 1") || strings.Count(twice, scaleBeginMark) != 1 {
		t.Errorf("the old section stayed:\n%s", twice)
	}
	// make bench's own splice leaves the scale section alone.
	again, err := splice(twice, "bench figures 2")
	if err != nil || !strings.Contains(again, "scale figures 2") || strings.Contains(again, "bench figures\n") {
		t.Errorf("make bench's splice: %v\n%s", err, again)
	}
	if _, err := spliceMarks(scaleBeginMark+"\nno end", "x", scaleBeginMark, scaleEndMark); err == nil {
		t.Error("a begin mark without an end mark was accepted")
	}
}

func TestThousands(t *testing.T) {
	for n, want := range map[int64]string{0: "0", 999: "999", 1000: "1,000", 1234567: "1,234,567", -45000: "-45,000"} {
		if got := thousands(n); got != want {
			t.Errorf("thousands(%d) = %q, want %q", n, got, want)
		}
	}
}

func scaleFixture() (scaleSize, scaleSize) {
	page := func(name string, p50, p99 float64) scalePage {
		return scalePage{Name: name, Load: loadResult{OK: 100, Seconds: 1, P50MS: p50, P99MS: p99, Concurrency: 8, MaxSeconds: 20}}
	}
	q := func(name string, ms float64, rows int64, seq ...string) scaleQuery {
		pages := map[string]int64{"clinics": 1, "procedures": 2000}
		return scaleQuery{Name: name, Custom: explained{MS: ms, Rows: rows, SeqScans: seq, SeqScanPages: pages},
			Generic: explained{MS: ms / 2, Rows: rows}, Kept: "generic"}
	}
	small := scaleSize{name: "small", sum: scaleSummary{Counts: map[string]int64{}, ReminderStatus: map[string]int64{}}}
	large := small
	small.pages.Pages = []scalePage{page(pageWorklist, 10, 30), page(pageTimeline, 5, 10), page(pageWorklistState, 5, 10)}
	large.pages.Pages = []scalePage{page(pageWorklist, 11, 40), page(pageTimeline, 5, 25), page(pageWorklistState, 5, 25)}
	small.pages.Pages[2].Bytes, large.pages.Pages[2].Bytes = 5000, 14000 // 18 rows, then a full page
	small.queries.Queries = []scaleQuery{q("reminder due-scan", 2, 10), q("reminder due-scan, small tables", 2, 10),
		q("thumbnail claim", 0.1, 1), q("export items, whole protocol", 10, 1000), q("worklist (2 of 3)", 2, 51),
		q("worklist search", 2, 51), q("worklist, overdue only (2 of 3)", 1, 16), q("worklist, due today (2 of 3)", 1, 10)}
	small.sum.SearchMatches = 20
	large.sum.SearchMatches = 40
	large.queries.Queries = []scaleQuery{q("reminder due-scan", 2.5, 12, "procedures", "clinics"), q("reminder due-scan, small tables", 2.5, 12, "clinics"),
		q("thumbnail claim", 0.5, 1), q("export items, whole protocol", 85, 8000), q("worklist (2 of 3)", 2.9, 51),
		q("worklist search", 8, 51), q("worklist, overdue only (2 of 3)", 2.6, 51), q("worklist, due today (2 of 3)", 4, 20)}
	large.queries.Queries[4].Kept = "custom"
	return small, large
}

// The report judges each figure against its target: growth within 1.5x, the worklist's own
// latency at the small size, the floor under which a statement is not judged, the export per
// row, and no sequential scan in the reminder scan's plan.
func TestScaleMarkdownVerdicts(t *testing.T) {
	small, large := scaleFixture()
	text, misses := scaleMarkdown(small, large, "abc1234")
	lines := map[string]string{}
	for _, l := range strings.Split(text, "\n") {
		if f := strings.Split(l, " | "); len(f) > 1 {
			if name := strings.TrimPrefix(f[0], "| "); lines[name] == "" { // the first table that has it
				lines[name] = l
			}
		}
	}
	for name, want := range map[string]string{
		pageWorklist:                      "PASS", // 30 -> 40 ms: 1.33x, and within 20 / 50 ms
		pageTimeline:                      "MISS", // 10 -> 25 ms: 2.5x
		"reminder due-scan":               "MISS", // 1.25x, but a sequential scan of procedures
		"reminder due-scan, small tables": "PASS", // only the clinics (1 page) read sequentially
		"thumbnail claim":                 "PASS", // 5x, but under the floor
		"export items, whole protocol":    "PASS", // 8.5x for 8x the rows: 1.06x per row
		"worklist (2 of 3)":               "PASS", // 1.45x
		"worklist, overdue only (2 of 3)": "PASS", // 2.6x for 3.2x the rows of a page not full at the small size
		"worklist, due today (2 of 3)":    "MISS", // 4x for 2x the rows: 2x per row
	} {
		if !strings.HasSuffix(strings.TrimSpace(lines[name]), " "+want+" |") {
			t.Errorf("%s: %q, want %s", name, lines[name], want)
		}
	}
	if misses != 4 || !strings.Contains(text, "Targets missed in this run: 4.") {
		t.Errorf("misses = %d, want 4", misses)
	}
	if l := lines["worklist (2 of 3)"]; !strings.Contains(l, " | generic / custom | ") {
		t.Errorf("worklist (2 of 3): %q does not say which plan each size keeps (generic / custom)", l)
	}
	if !strings.Contains(text, "commit `abc1234`") {
		t.Error("the commit is not named")
	}
}
