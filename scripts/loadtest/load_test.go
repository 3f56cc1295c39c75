package main

import "testing"

// A load's figures over its rounds (a page at one size, a path of the ingest): counts summed,
// each latency the (upper) median of the rounds', so that one disturbed round moves none of
// them, and a round cut short by its time limit is said.
func TestMergeRounds(t *testing.T) {
	r := func(p50, p99 float64, ok int, cpu float64) loadResult {
		return loadResult{OK: ok, Requests: ok, Seconds: 5, MaxSeconds: 5, P50MS: p50, P95MS: p99 - 1, P99MS: p99, MaxMS: p99 * 2,
			Statuses: map[string]int{"200": ok}, CPUSeconds: map[string]float64{"server": cpu}, IdleRSSKB: int64(ok), PeakRSSKB: int64(ok) * 10}
	}
	rs := []loadResult{r(2, 9, 100, 1), r(3, 40, 50, 2), r(2.5, 10, 100, 1), r(2.2, 11, 100, 1)}
	for i := range rs {
		rs[i].StoppedBy = "count"
	}
	rs[1].StoppedBy = "time"
	m := mergeRounds(rs)
	if m.P50MS != 2.5 || m.P99MS != 11 || m.P95MS != 10 {
		t.Errorf("p50 %v, p95 %v, p99 %v: want the upper medians 2.5, 10, 11", m.P50MS, m.P95MS, m.P99MS)
	}
	if m.OK != 350 || m.Requests != 350 || m.Seconds != 20 || m.Statuses["200"] != 350 || m.CPUSeconds["server"] != 5 {
		t.Errorf("sums: ok %d, requests %d, seconds %v, statuses %v, cpu %v", m.OK, m.Requests, m.Seconds, m.Statuses, m.CPUSeconds)
	}
	if m.MaxMS != 80 || m.IdleRSSKB != 50 || m.PeakRSSKB != 1000 {
		t.Errorf("extremes: max %v ms, idle %d KB, peak %d KB", m.MaxMS, m.IdleRSSKB, m.PeakRSSKB)
	}
	if m.StoppedBy != "time" {
		t.Errorf("stopped by %q: a round hit its time limit", m.StoppedBy)
	}
	if m.MaxSeconds != 5 || m.Rounds != 4 {
		t.Errorf("max seconds %v, rounds %d: want the round's 5 s, and 4 rounds", m.MaxSeconds, m.Rounds)
	}
}
