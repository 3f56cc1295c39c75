package main

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
)

// The sanitizer: bench.sh runs `go test -run '^$' -bench . -benchmem ./imagestore/`
// into gotest-bench.txt; this is its section of the report.

func (rp *report) sanitizer() {
	const name = "Sanitizer 12 MP JPEG"
	raw, err := os.ReadFile(filepath.Join(rp.dir, "gotest-bench.txt"))
	if err != nil {
		rp.fail(name, "no `go test -bench` output: "+err.Error())
		return
	}
	benches := parseBench(string(raw))
	size := sanitizedSize(string(raw), benches)
	var sec strings.Builder
	fmt.Fprintf(&sec, sanitizerText, size/mb)
	sec.WriteString("| sub-benchmark | time/op | MB/s | B/op | allocs/op | result |\n|---|---|---|---|---|---|\n")
	found := 0
	for _, sb := range benches.subs("BenchmarkSanitizeJPEG12MP") {
		sub, mbPerS, bPerOp := sb.sub, sb.values["MB/s"], sb.values["B/op"]
		found++
		oneCopy := size > 0 && bPerOp <= size+sanitizeStateBytes
		pass := mbPerS >= targetSanitizeMBs && oneCopy
		why := verdict(pass)
		target := "≥ 1000 MB/s, ≤ 1 copy + 256 KiB"
		if sub != sanitizeProductionPath {
			why, target = "for information", "-"
		} else if !pass {
			var miss []string
			if mbPerS < targetSanitizeMBs {
				miss = append(miss, "speed")
			}
			if !oneCopy {
				miss = append(miss, "memory")
			}
			why += " (" + strings.Join(miss, ", ") + ")"
		}
		fmt.Fprintf(&sec, "| %s | %s | %.0f | %.0f | %.0f | %s |\n", sub, fmtNs(sb.values["ns/op"]), mbPerS, bPerOp, sb.values["allocs/op"], why)
		rp.rows = append(rp.rows, row{"Sanitizer " + sub, fmt.Sprintf("%.0f MB/s, %.2f MB/op", mbPerS, bPerOp/mb),
			fmt.Sprintf("file %.2f MB", size/mb), fmt.Sprintf("%.2f copies", bPerOp/max(size, 1)),
			target, why})
	}
	if found == 0 {
		rp.fail(name, "BenchmarkSanitizeJPEG12MP is missing from the `go test -bench` output (renamed? failed?)")
		return
	}
	sec.WriteString(thumbnailBenches(benches))
	rp.sections = append(rp.sections, sec.String())
}

// sanitizedSize is the size in bytes of the benchmark's photo: from its log line (printed with
// -v only) or else from MB/s times s/op.
func sanitizedSize(raw string, benches benchOutput) float64 {
	if m := regexp.MustCompile(`photo: (\d+)x(\d+), (\d+) bytes`).FindStringSubmatch(raw); m != nil {
		if size, _ := strconv.ParseFloat(m[3], 64); size > 0 {
			return size
		}
	}
	for _, sb := range benches.subs("BenchmarkSanitizeJPEG12MP") {
		if v := sb.values["MB/s"]; v > 0 {
			return math.Round(v * mb * sb.values["ns/op"] / 1e9)
		}
	}
	return 0
}

// thumbnailBenches lists BenchmarkThumbnail12MP of the same run, for information.
func thumbnailBenches(benches benchOutput) string {
	var thumbs []string
	for _, sb := range benches.subs("BenchmarkThumbnail12MP") {
		thumbs = append(thumbs, fmt.Sprintf("| %s | %s | %.1f | %.0f |", sb.sub, fmtNs(sb.values["ns/op"]), sb.values["B/op"]/mb, sb.values["allocs/op"]))
	}
	if len(thumbs) == 0 {
		return ""
	}
	return "\nBenchmarkThumbnail12MP from the same run (orientation 6, for information; the target is checked in section 2):\n\n" +
		"| sub-benchmark | time/op | MB/op | allocs/op |\n|---|---|---|---|\n" + strings.Join(thumbs, "\n") + "\n"
}

const sanitizerText = "## 1. Sanitizer (issue 3)\n\n" +
	"`go test -run '^$' -bench . -benchmem ./imagestore/`, BenchmarkSanitizeJPEG12MP: the 12 MP phone-like JPEG " +
	"of imagestore/bench_test.go (about %.2f MB, with EXIF, XMP and a motion-photo trailer to strip). " +
	"`stream` is Sanitize on a bytes.Reader read out through Clean.NewReader: the path uploads, the export and `dermfollow scrub` take, " +
	"on which the targets are checked. `bytes` is SanitizeBytes (returns a new slice), which only tests and the fuzzers call; " +
	"it is shown for information, and its time is mostly the page faults of a fresh 4 MB output buffer, which move with the " +
	"machine's memory state (from about 800 to 2,000 MB/s across runs). " +
	"Target: at least 1 GB/s (1000 MB/s; an absolute figure, so it moves with the machine and its load) " +
	"and at most one copy of the file allocated per run: B/op at most the file's size plus 256 KiB of parse state " +
	"(the segment list and the EXIF values goexif decodes, about 60 KB, whatever the photo's size).\n\n"
