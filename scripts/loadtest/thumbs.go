package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"image"
	"image/jpeg"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/dermfollow/dermfollow/imagestore"
)

// Thumbnails: imagestore's thumbnails against vipsthumbnail on the same file,
// a baseline and a progressive JPEG. The measurement (loadtest thumbs) and its section of the
// report are both in this file.

// targetThumbRatioProgressive: 320 px of a 12 MP progressive JPEG in at most half of
// vipsthumbnail's time (the baseline target is targetThumbRatio).
const targetThumbRatioProgressive = 0.5

type thumbResult struct {
	Kind         string    `json:"kind"` // "baseline" or "progressive"; empty in older results
	File         string    `json:"file"`
	FileBytes    int64     `json:"file_bytes"`
	Width        int       `json:"width"`
	Height       int       `json:"height"`
	Size         int       `json:"size"`
	N            int       `json:"n"`
	GoMS         []float64 `json:"go_ms"`
	VipsMS       []float64 `json:"vips_ms"`
	GoMedianMS   float64   `json:"go_median_ms"`
	VipsMedianMS float64   `json:"vips_median_ms"`
	Ratio        float64   `json:"ratio"`
	VipsVersion  string    `json:"vips_version"`
	// Memory of our thumbnail: what it took from the decode budget (what decoding and making
	// it holds, computed from the header), and what the Go heap allocated for it (median).
	ReservedMB    float64 `json:"reserved_mb"`
	AllocMedianMB float64 `json:"alloc_median_mb"`
	// CPUs is the CPU list this process (and the vipsthumbnail it starts) may run on, and
	// GoMaxProcs its GOMAXPROCS: one core for both is the fair comparison.
	CPUs       string `json:"cpus"`
	GoMaxProcs int    `json:"gomaxprocs"`
}

// thumbJob is one thumbnail of one file, made either way.
type thumbJob struct {
	in, vips, vipsOut string
	size              int
	deadline          time.Time
	budget            *imagestore.DecodeBudget // ours draw from it: its Peak is what one holds
	allocMB           []float64                // what the Go heap allocated for each of ours
}

// ours makes the thumbnail with imagestore, from the file, as the thumbnailer does: through a
// decode budget, with the file's size.
func (j *thumbJob) ours() error {
	f, err := os.Open(j.in)
	if err != nil {
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	sizes := []imagestore.ThumbSize{{Name: "small", MaxSide: j.size}}
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	thumbs, err := j.budget.Thumbnails(context.Background(), f, st.Size(), 1, sizes, imagestore.DefaultLimits())
	runtime.ReadMemStats(&after)
	j.allocMB = append(j.allocMB, float64(after.TotalAlloc-before.TotalAlloc)/mb)
	if err == nil && len(thumbs[0].JPEG) == 0 {
		err = errors.New("empty thumbnail")
	}
	if err != nil {
		return fmt.Errorf("imagestore thumbnails: %w", err)
	}
	return nil
}

// theirs makes the thumbnail with a new vipsthumbnail process.
func (j *thumbJob) theirs() error {
	ctx, cancel := context.WithDeadline(context.Background(), j.deadline)
	defer cancel()
	out, err := exec.CommandContext(ctx, j.vips, j.in, "-s", strconv.Itoa(j.size), "-o", j.vipsOut).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s: %v: %s", j.vips, err, bytes.TrimSpace(out))
	}
	return nil
}

func cmdThumbs(args []string) error {
	fs := flag.NewFlagSet("thumbs", flag.ExitOnError)
	in := fs.String("in", "", "JPEG to thumbnail")
	n := fs.Int("n", 10, "timed runs of each (after one untimed warm-up run)")
	size := fs.Int("size", 320, "longer side of the thumbnail")
	vips := fs.String("vips", "vipsthumbnail", "vipsthumbnail program")
	kind := fs.String("kind", "baseline", "what the file is, for the report: baseline or progressive")
	out := fs.String("out", "", "result JSON")
	limit := fs.Duration("timeout", 3*time.Minute, "give up after this long")
	fs.Parse(args)
	if *in == "" || *out == "" || *n < 1 {
		return errors.New("-in, -out and -n >= 1 are required")
	}
	st, err := os.Stat(*in)
	if err != nil {
		return err
	}
	cfg, err := decodeConfigFile(*in)
	if err != nil {
		return err
	}
	tmp, err := os.MkdirTemp("", "loadtest-thumbs-*")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	job := &thumbJob{in: *in, vips: *vips, size: *size, deadline: time.Now().Add(*limit),
		vipsOut: filepath.Join(tmp, "out.jpg") + "[Q=" + strconv.Itoa(imagestore.ThumbJPEGQuality) + "]",
		budget:  imagestore.NewDecodeBudget(imagestore.DefaultDecodeBudgetTotal, imagestore.DefaultDecodeBudgetPerDecode)}
	r := thumbResult{Kind: *kind, File: filepath.Base(*in), FileBytes: st.Size(), Width: cfg.Width, Height: cfg.Height, Size: *size,
		VipsVersion: vipsVersion(*vips), CPUs: allowedCPUs(), GoMaxProcs: runtime.GOMAXPROCS(0)}
	if r.GoMS, r.VipsMS, err = alternate(job, *n); err != nil {
		return err
	}
	r.N = len(r.GoMS)
	r.GoMedianMS, r.VipsMedianMS = median(r.GoMS), median(r.VipsMS)
	r.Ratio = ratio(r.GoMedianMS, r.VipsMedianMS)
	r.ReservedMB, r.AllocMedianMB = float64(job.budget.Peak())/mb, median(job.allocMB)
	fmt.Fprintf(os.Stderr, "thumbs (%s): %d runs at %d px on CPUs %s: imagestore %.0f ms, vipsthumbnail %.0f ms (median), ratio %.2f; "+
		"%.1f MB reserved, %.1f MB allocated\n", r.Kind, r.N, *size, r.CPUs, r.GoMedianMS, r.VipsMedianMS, r.Ratio, r.ReservedMB, r.AllocMedianMB)
	return writeJSON(*out, r)
}

// allowedCPUs is this process's CPU list (Cpus_allowed_list in /proc/self/status), or "all".
func allowedCPUs() string {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return "all"
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "Cpus_allowed_list:"); ok {
			return strings.TrimSpace(v)
		}
	}
	return "all"
}

// alternate runs each way once untimed, to warm the page cache and the Go heap, then up to n
// timed runs of each, alternating, so that a noisy neighbour slows both alike. It returns the
// wall times in milliseconds.
func alternate(job *thumbJob, n int) (goMS, vipsMS []float64, err error) {
	if err := job.ours(); err != nil {
		return nil, nil, err
	}
	job.allocMB = job.allocMB[:0]
	if err := job.theirs(); err != nil {
		return nil, nil, err
	}
	for i := 0; i < n && time.Now().Before(job.deadline); i++ {
		runtime.GC()
		ms, err := timedMS(job.ours)
		if err != nil {
			return nil, nil, err
		}
		goMS = append(goMS, ms)
		if ms, err = timedMS(job.theirs); err != nil {
			return nil, nil, err
		}
		vipsMS = append(vipsMS, ms)
	}
	return goMS, vipsMS, nil
}

func timedMS(f func() error) (float64, error) {
	start := time.Now()
	err := f()
	return float64(time.Since(start).Microseconds()) / 1000, err
}

func decodeConfigFile(path string) (image.Config, error) {
	f, err := os.Open(path)
	if err != nil {
		return image.Config{}, err
	}
	defer f.Close()
	return jpeg.DecodeConfig(bufio.NewReader(f))
}

func vipsVersion(prog string) string {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, prog, "--vips-version").Output()
	if err != nil {
		return "unknown"
	}
	return strings.TrimSpace(string(out))
}

func (rp *report) thumbnails() {
	for _, t := range []struct {
		file, name string
		target     float64
	}{
		{"thumbs.json", "Thumbnail 320 px vs vipsthumbnail", targetThumbRatio},
		{"thumbs-progressive.json", "Thumbnail 320 px vs vipsthumbnail, progressive", targetThumbRatioProgressive},
	} {
		var r thumbResult
		if err := readJSON(filepath.Join(rp.dir, t.file), &r); err != nil {
			rp.fail(t.name, err.Error())
			continue
		}
		if r.N == 0 || r.VipsMedianMS == 0 {
			rp.fail(t.name, "no timed runs")
			continue
		}
		ok := r.Ratio <= t.target
		measured := fmt.Sprintf("%.0f ms", r.GoMedianMS)
		if r.ReservedMB > 0 {
			measured += fmt.Sprintf(", %.1f MB", r.ReservedMB)
		}
		rp.rows = append(rp.rows, row{t.name, measured, fmt.Sprintf("vips %.0f ms", r.VipsMedianMS),
			fmt.Sprintf("%.2fx", r.Ratio), fmt.Sprintf("≤ %gx", t.target), verdict(ok)})
		if r.Kind == "" {
			r.Kind = "baseline"
		}
		cores := "CPUs " + r.CPUs
		if r.CPUs == "" {
			cores = "not pinned"
		}
		source := "gradients and noise, written by `loadtest photo`"
		if r.Kind == "progressive" {
			source = "the same picture re-encoded by `vips copy` as a progressive 4:2:0 JPEG with libjpeg's default script"
		}
		rp.sections = append(rp.sections, fmt.Sprintf(thumbsText, r.Kind, r.Kind, r.Width, r.Height, float64(r.FileBytes)/mb, source, r.Size, r.N,
			imagestore.ThumbJPEGQuality, r.Size, imagestore.ThumbJPEGQuality, r.VipsVersion, cores, r.GoMaxProcs, t.target,
			r.GoMedianMS, fmtList(r.GoMS), r.VipsMedianMS, fmtList(r.VipsMS), r.Ratio, verdict(ok), r.ReservedMB, r.AllocMedianMB))
	}
}

const thumbsText = `## 2. Thumbnails vs vipsthumbnail: %s (issues 3 and 27)

One %s %dx%d JPEG (%.2f MB, quality 92, %s), thumbnailed to %d px on the longer side %d times each,
alternating: imagestore (` + "`DecodeBudget.Thumbnails`" + `: decode at the largest DCT-domain reduction that keeps the
longer side at or above the size, resample, orient, encode at quality %d; from the file, in the loadtest helper) and
` + "`vipsthumbnail FILE -s %d -o out.jpg[Q=%d]`" + ` (%s; a new process each time, so its figure includes process start).
Single core: both run on %s (the helper and the vipsthumbnail it starts), GOMAXPROCS %d, VIPS_CONCURRENCY 1.
Median wall time per thumbnail. Target: at most %gx vipsthumbnail's time.

| tool | median | all runs (ms) |
|---|---|---|
| imagestore thumbnails | %.0f ms | %s |
| vipsthumbnail | %.0f ms | %s |

Ratio %.2fx: **%s**. Decode memory per thumbnail: %.1f MB taken from the decode budget (what decoding and
making the thumbnail hold, computed from the header before any pixel is allocated); %.1f MB allocated by the
Go heap (median).
`
