package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Concurrent requests, bounded in count and time: what ingest, put, memory and timeline share.

type loadResult struct {
	Kind        string         `json:"kind"`
	Concurrency int            `json:"concurrency"`
	Files       int            `json:"files"`
	FileBytes   int64          `json:"file_bytes"` // mean size of the files sent
	Requests    int            `json:"requests"`
	OK          int            `json:"ok"`
	Failed      int            `json:"failed"`
	Statuses    map[string]int `json:"statuses"`
	Errors      []string       `json:"errors,omitempty"`
	StoppedBy   string         `json:"stopped_by"` // "count" or "time"
	MaxRequests int            `json:"max_requests"`
	MaxSeconds  float64        `json:"max_seconds"`
	Warmup      int            `json:"warmup"`
	Rounds      int            `json:"rounds,omitempty"` // a merge of rounds (mergeRounds): how many; each has its own MaxRequests, MaxSeconds and Warmup
	Bytes       int64          `json:"bytes"`            // payload bytes of the successful requests
	Seconds     float64        `json:"seconds"`
	PhotosPerS  float64        `json:"photos_per_s"`
	MBPerS      float64        `json:"mb_per_s"`
	P50MS       float64        `json:"p50_ms"`
	P95MS       float64        `json:"p95_ms"`
	P99MS       float64        `json:"p99_ms"`
	MaxMS       float64        `json:"max_ms"`
	// CPU seconds each watched process (and this load generator, "loadtest") used during the
	// timed part, and how busy the whole machine was.
	CPUSeconds     map[string]float64 `json:"cpu_seconds,omitempty"`
	MachineBusyPct float64            `json:"machine_busy_pct"`
	// With -pid: the server's resident memory, from /proc/PID/status.
	PID       int   `json:"pid,omitempty"`
	IdleRSSKB int64 `json:"idle_rss_kb,omitempty"` // VmRSS before the first request
	PeakRSSKB int64 `json:"peak_rss_kb,omitempty"` // highest VmRSS sampled during the run
	HWMKB     int64 `json:"hwm_kb,omitempty"`      // VmHWM right after the last response
}

type loadFlags struct {
	files    *string
	c, n     *int
	warmup   *int
	duration *time.Duration
	cpu      *string
	out      *string
}

func addLoadFlags(fs *flag.FlagSet) loadFlags {
	return loadFlags{
		files:    fs.String("files", "", "comma-separated photos to send, in turn"),
		c:        fs.Int("c", 8, "concurrent clients"),
		n:        fs.Int("n", 200, "timed requests at most"),
		warmup:   fs.Int("warmup", 8, "untimed requests first"),
		duration: fs.Duration("duration", 60*time.Second, "stop starting requests after this long"),
		cpu:      fs.String("cpu", "", "processes whose CPU time to account, name=pid,..."),
		out:      fs.String("out", "", "result JSON"),
	}
}

func (lf loadFlags) check() ([][]byte, error) {
	if *lf.files == "" || *lf.out == "" || *lf.c < 1 || *lf.n < 1 {
		return nil, errors.New("-files, -out, -c >= 1 and -n >= 1 are required")
	}
	var files [][]byte
	for _, p := range strings.Split(*lf.files, ",") {
		b, err := os.ReadFile(p)
		if err != nil {
			return nil, err
		}
		files = append(files, b)
	}
	return files, nil
}

// send is one request: the photo's bytes and a sequence number; it returns a status label
// ("201", "500", "error") and, for failures, a short description.
type send func(ctx context.Context, seq int, photo []byte) (status string, fail error)

// outcome is what one timed request gave; a zero status means it never started.
type outcome struct {
	status string
	err    error
	bytes  int
	ms     float64
}

// drive runs warm-up requests, then up to n timed requests from c workers, starting none
// after the duration has passed; a hard deadline cancels whatever is still in flight.
func drive(kind string, lf loadFlags, files [][]byte, do send, okStatus string, pid int) (loadResult, error) {
	c, n := *lf.c, *lf.n
	r := loadResult{Kind: kind, Concurrency: c, Files: len(files), Statuses: map[string]int{}, PID: pid,
		MaxRequests: n, MaxSeconds: lf.duration.Seconds(), Warmup: *lf.warmup}
	var total int64
	for _, f := range files {
		total += int64(len(f))
	}
	r.FileBytes = total / int64(len(files))
	hard := *lf.duration + 2*time.Minute
	ctx, cancel := context.WithTimeout(context.Background(), hard)
	defer cancel()
	if err := warmUp(ctx, *lf.warmup, c, files, do, okStatus); err != nil {
		return r, err
	}

	var sampler *rssSampler
	if pid > 0 {
		var err error
		if sampler, err = startRSSSampler(pid); err != nil {
			return r, err
		}
		r.IdleRSSKB = sampler.idle
	}
	outcomes := make([]outcome, n)
	cpu, err := startCPUAccount(*lf.cpu)
	if err != nil {
		return r, err
	}
	start := time.Now()
	timedOut := runTimed(ctx, c, start.Add(*lf.duration), files, do, outcomes)
	r.Seconds = time.Since(start).Seconds()
	r.CPUSeconds, r.MachineBusyPct = cpu.stop()
	if sampler != nil {
		r.PeakRSSKB, r.HWMKB = sampler.stop()
	}
	r.StoppedBy = "count"
	if timedOut {
		r.StoppedBy = "time"
	}
	tally(&r, outcomes, okStatus)
	logLoad(r)
	return r, nil
}

// warmUp sends untimed requests, c at a time: connections, the server's pools and caches. They
// are not counted, but must succeed.
func warmUp(ctx context.Context, warmup, c int, files [][]byte, do send, okStatus string) error {
	var wg sync.WaitGroup
	warmErr := make(chan error, warmup)
	for i := range warmup {
		wg.Go(func() {
			if st, err := do(ctx, -1-i, files[i%len(files)]); st != okStatus {
				warmErr <- fmt.Errorf("warm-up request: %s: %v", st, err)
			}
		})
		if (i+1)%c == 0 {
			wg.Wait()
		}
	}
	wg.Wait()
	close(warmErr)
	return <-warmErr
}

// runTimed fills outcomes from c workers, starting no request after the deadline; it reports
// whether the deadline, rather than the count, ended the run.
func runTimed(ctx context.Context, c int, deadline time.Time, files [][]byte, do send, outcomes []outcome) (timedOut bool) {
	var wg sync.WaitGroup
	var next atomic.Int64
	var late atomic.Bool
	for range c {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= len(outcomes) {
					return
				}
				if time.Now().After(deadline) {
					late.Store(true)
					return
				}
				photo := files[i%len(files)]
				t := time.Now()
				st, err := do(ctx, i, photo)
				outcomes[i] = outcome{st, err, len(photo), float64(time.Since(t).Microseconds()) / 1000}
			}
		})
	}
	wg.Wait()
	return late.Load()
}

// tally counts the outcomes into r: statuses, bytes, the first few errors, throughput and the
// latency summary of the successful requests.
func tally(r *loadResult, outcomes []outcome, okStatus string) {
	var lat []float64
	for _, o := range outcomes {
		if o.status == "" {
			continue // never started: the time bound came first
		}
		r.Requests++
		r.Statuses[o.status]++
		if o.status == okStatus {
			r.OK++
			r.Bytes += int64(o.bytes)
			lat = append(lat, o.ms)
			continue
		}
		r.Failed++
		if len(r.Errors) < 5 && o.err != nil {
			r.Errors = append(r.Errors, o.status+": "+o.err.Error())
		}
	}
	r.PhotosPerS = float64(r.OK) / r.Seconds
	r.MBPerS = float64(r.Bytes) / mb / r.Seconds
	s := summarize(lat)
	r.P50MS, r.P95MS, r.P99MS, r.MaxMS = s.p50, s.p95, s.p99, s.max
}

func logLoad(r loadResult) {
	fmt.Fprintf(os.Stderr, "%s: %d requests (%d ok, %d failed) in %.1f s, %d clients: %.2f photos/s, %.1f MB/s, p50 %.0f ms, p95 %.0f ms\n",
		r.Kind, r.Requests, r.OK, r.Failed, r.Seconds, r.Concurrency, r.PhotosPerS, r.MBPerS, r.P50MS, r.P95MS)
	fmt.Fprintf(os.Stderr, "%s: CPU seconds %v, machine %.0f%% busy\n", r.Kind, r.CPUSeconds, r.MachineBusyPct)
	if r.PID > 0 {
		fmt.Fprintf(os.Stderr, "%s: server RSS idle %.0f MB, peak sampled %.0f MB, VmHWM %.0f MB\n",
			r.Kind, kbToMB(r.IdleRSSKB), kbToMB(r.PeakRSSKB), kbToMB(r.HWMKB))
	}
}

// mergeRounds is one load over its rounds (a page at one size, a path of the ingest): the requests, bytes, seconds,
// CPU and failures summed, the memory's extremes, and each latency figure the median of the
// rounds' (the upper median for an even count, the more demanding).
func mergeRounds(rs []loadResult) loadResult {
	m := rs[0]
	m.Rounds = len(rs)
	m.Statuses, m.CPUSeconds, m.Errors = map[string]int{}, map[string]float64{}, nil
	m.Requests, m.OK, m.Failed, m.Bytes, m.Seconds, m.MachineBusyPct = 0, 0, 0, 0, 0, 0
	for _, r := range rs {
		m.Requests, m.OK, m.Failed, m.Bytes, m.Seconds = m.Requests+r.Requests, m.OK+r.OK, m.Failed+r.Failed, m.Bytes+r.Bytes, m.Seconds+r.Seconds
		m.MachineBusyPct += r.MachineBusyPct / float64(len(rs))
		for k, v := range r.Statuses {
			m.Statuses[k] += v
		}
		for k, v := range r.CPUSeconds {
			m.CPUSeconds[k] += v
		}
		m.Errors = append(m.Errors, r.Errors...)
		m.IdleRSSKB, m.PeakRSSKB, m.HWMKB = min(m.IdleRSSKB, r.IdleRSSKB), max(m.PeakRSSKB, r.PeakRSSKB), max(m.HWMKB, r.HWMKB)
		m.MaxMS = max(m.MaxMS, r.MaxMS)
		if r.StoppedBy == "time" { // a round cut short by its time limit is what the figures must say
			m.StoppedBy = "time"
		}
	}
	median := func(f func(r loadResult) float64) float64 {
		v := make([]float64, len(rs))
		for i, r := range rs {
			v[i] = f(r)
		}
		slices.Sort(v)
		return v[len(v)/2]
	}
	m.P50MS = median(func(r loadResult) float64 { return r.P50MS })
	m.P95MS = median(func(r loadResult) float64 { return r.P95MS })
	m.P99MS = median(func(r loadResult) float64 { return r.P99MS })
	if m.Seconds > 0 {
		m.PhotosPerS, m.MBPerS = float64(m.OK)/m.Seconds, float64(m.Bytes)/m.Seconds/1e6
	}
	return m
}

// cmdMerge writes the merge of round results (mergeRounds): loadtest merge -out FILE IN...
func cmdMerge(args []string) error {
	fs := flag.NewFlagSet("merge", flag.ExitOnError)
	out := fs.String("out", "", "the merged result (JSON)")
	_ = fs.Parse(args)
	if *out == "" || fs.NArg() == 0 {
		return errors.New("usage: loadtest merge -out FILE ROUND_JSON [ROUND_JSON ...]")
	}
	rs := make([]loadResult, fs.NArg())
	for i, path := range fs.Args() {
		if err := readJSON(path, &rs[i]); err != nil {
			return err
		}
	}
	return writeJSON(*out, mergeRounds(rs))
}
