package main

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

func TestPercentileNearestRank(t *testing.T) {
	hundred := make([]float64, 100)
	for i := range hundred {
		hundred[i] = float64(i + 1)
	}
	rand.New(rand.NewPCG(1, 2)).Shuffle(len(hundred), func(i, j int) { hundred[i], hundred[j] = hundred[j], hundred[i] })
	for _, c := range []struct {
		name string
		xs   []float64
		p    float64
		want float64
	}{
		{"empty", nil, 50, 0},
		{"one value", []float64{7}, 99, 7},
		{"p0 is the smallest", []float64{3, 1, 2}, 0, 1},
		{"odd median", []float64{3, 1, 2}, 50, 2},
		{"even median is the lower middle", []float64{4, 1, 3, 2}, 50, 2},
		{"p100 is the largest", []float64{4, 1, 3, 2}, 100, 4},
		{"p50 of 1..100", hundred, 50, 50},
		{"p95 of 1..100", hundred, 95, 95},
		{"p99 of 1..100", hundred, 99, 99},
		{"p99.9 of 1..100 rounds up", hundred, 99.9, 100},
		// With 10 values, p95 and p99 are both the largest: the nearest rank is ceil(9.5) and ceil(9.9).
		{"p95 of ten", []float64{10, 20, 30, 40, 50, 60, 70, 80, 90, 1000}, 95, 1000},
		{"p90 of ten", []float64{10, 20, 30, 40, 50, 60, 70, 80, 90, 1000}, 90, 90},
		{"ties", []float64{5, 5, 5, 9}, 75, 5},
	} {
		if got := percentile(c.xs, c.p); got != c.want {
			t.Errorf("%s: percentile(%v, %v) = %v, want %v", c.name, c.xs, c.p, got, c.want)
		}
	}
}

func TestPercentileLeavesItsInputAlone(t *testing.T) {
	xs := []float64{3, 1, 2}
	median(xs)
	if !slices.Equal(xs, []float64{3, 1, 2}) {
		t.Fatalf("input reordered: %v", xs)
	}
}

func TestSummarize(t *testing.T) {
	// 200 requests of 10-209 ms and one stall, 201 in all: the stall is the max, not the p99,
	// which is the 199th value (ceil(0.99 x 201)), 208 ms.
	var ms []float64
	for i := range 200 {
		ms = append(ms, float64(10+i))
	}
	ms = append(ms, 5000)
	got := summarize(ms)
	want := latency{p50: 110, p95: 200, p99: 208, max: 5000}
	if got != want {
		t.Fatalf("summarize = %+v, want %+v", got, want)
	}
	if got := summarize(nil); got != (latency{}) {
		t.Fatalf("summarize(nil) = %+v, want zeros", got)
	}
}

func TestRatio(t *testing.T) {
	for _, c := range []struct{ measured, baseline, want float64 }{
		{215.9, 337.0, 0.6407},
		{337.0, 337.0, 1},
		{125.5, 158.8, 0.7903},
		{5, 0, 0},  // no baseline: nothing to compare with
		{5, -1, 0}, // nonsense baseline likewise
		{0, 10, 0},
	} {
		if got := ratio(c.measured, c.baseline); math.Abs(got-c.want) > 5e-5 {
			t.Errorf("ratio(%v, %v) = %.4f, want %.4f", c.measured, c.baseline, got, c.want)
		}
	}
}

func TestVerdict(t *testing.T) {
	if verdict(true) != "PASS" || verdict(false) != "MISS" {
		t.Fatal("verdict words changed: the document and readers of it rely on PASS and MISS")
	}
}
