package main

import (
	"math"
	"slices"
	"sort"
)

// What compares figures: the targets, the statistics of a sample and the ratio to a baseline.

// Targets of make bench's sections (the research export's are in export.go).
const (
	targetSanitizeMBs = 1000 // 1 GB/s
	// sanitizeProductionPath is the sub-benchmark the sanitizer's targets are checked on:
	// Sanitize read out through Clean.NewReader, as uploads, the export and `dermfollow scrub`
	// use it. SanitizeBytes (sub-benchmark "bytes") serves tests and the fuzzers only.
	sanitizeProductionPath = "stream"
	// sanitizeStateBytes is what "at most one copy" allows beyond the copy itself: the parse
	// state (segment list, EXIF values) of a fixed size that does not grow with the photo.
	sanitizeStateBytes = 256 << 10
	targetThumbRatio   = 1.0 // baseline 12 MP to 320 px: vipsthumbnail's time (progressive: thumbs.go)
	targetIngestRatio  = 0.8 // at least 80% of a plain PutObject's MB/s, everything sharing the cores
	// targetIngestPinnedRatio is the same with MinIO on a core of its own, as a store on its
	// own machine: the upload path's own work then no longer takes CPU from the store.
	targetIngestPinnedRatio = 0.9
	targetUploadPeakMB      = 300 // server peak RSS under 16 concurrent 20 MB uploads
	targetTimelineP99MS     = 50  // the timeline page's p99 at 32 concurrent requests
	// targetResumableRatio: the resumable upload's throughput on a fast link against the
	// one-request upload of the same bytes (resumable.go).
	targetResumableRatio = 0.9
)

// Targets of the seeded-scale benchmark (scale_report.go).
const (
	targetWorklistP50MS = 20  // the worklist page at the small size, 8 clients
	targetWorklistP99MS = 50  // idem
	targetScaleGrowth   = 1.5 // large / small, for every page and statement whose work does not grow
	// scaleFloorMS is the time under which a statement's growth is not judged: on a shared
	// machine its run-to-run spread is larger than the statement.
	scaleFloorMS = 1.0
	// smallTablePages is the size (8 KB pages) up to which a table read sequentially does not
	// count against a plan: the clinics, the reminder settings.
	smallTablePages = 10
)

func verdict(ok bool) string {
	if ok {
		return "PASS"
	}
	return "MISS"
}

// ratio is measured / baseline, 0 when there is no baseline to compare with.
func ratio(measured, baseline float64) float64 {
	if baseline <= 0 {
		return 0
	}
	return measured / baseline
}

func median(xs []float64) float64 { return percentile(xs, 50) }

// percentile by the nearest-rank method: the smallest value with at least p% of the sample at
// or below it; 0 for an empty sample.
func percentile(xs []float64, p float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	sort.Float64s(s)
	i := int(math.Ceil(p/100*float64(len(s)))) - 1
	return s[min(max(i, 0), len(s)-1)]
}

// perItemMS is the CPU milliseconds a process spent per successful request, and whether it
// was measured at all.
func perItemMS(cpuSeconds map[string]float64, name string, ok int) (float64, bool) {
	v, found := cpuSeconds[name]
	if !found || ok <= 0 {
		return 0, false
	}
	return 1000 * v / float64(ok), true
}

// latency is the summary of a sample of request times.
type latency struct{ p50, p95, p99, max float64 }

func summarize(ms []float64) latency {
	if len(ms) == 0 {
		return latency{}
	}
	return latency{percentile(ms, 50), percentile(ms, 95), percentile(ms, 99), slices.Max(ms)}
}
