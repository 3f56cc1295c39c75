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

// Thumbnails (issue 3): imagestore.Thumbnails against vipsthumbnail on the same file. The
// measurement (loadtest thumbs) and its section of the report are both in this file.

type thumbResult struct {
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
}

// thumbJob is one thumbnail of one file, made either way.
type thumbJob struct {
	in, vips, vipsOut string
	size              int
	deadline          time.Time
}

// ours makes the thumbnail with imagestore, from the file.
func (j thumbJob) ours() error {
	f, err := os.Open(j.in)
	if err != nil {
		return err
	}
	defer f.Close()
	sizes := []imagestore.ThumbSize{{Name: "small", MaxSide: j.size}}
	thumbs, err := imagestore.Thumbnails(f, 1, sizes, imagestore.DefaultLimits())
	if err == nil && len(thumbs[0].JPEG) == 0 {
		err = errors.New("empty thumbnail")
	}
	if err != nil {
		return fmt.Errorf("imagestore.Thumbnails: %w", err)
	}
	return nil
}

// theirs makes the thumbnail with a new vipsthumbnail process.
func (j thumbJob) theirs() error {
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
	job := thumbJob{in: *in, vips: *vips, size: *size, deadline: time.Now().Add(*limit),
		vipsOut: filepath.Join(tmp, "out.jpg") + "[Q=" + strconv.Itoa(imagestore.ThumbJPEGQuality) + "]"}
	r := thumbResult{File: filepath.Base(*in), FileBytes: st.Size(), Width: cfg.Width, Height: cfg.Height, Size: *size, VipsVersion: vipsVersion(*vips)}
	if r.GoMS, r.VipsMS, err = alternate(job, *n); err != nil {
		return err
	}
	r.N = len(r.GoMS)
	r.GoMedianMS, r.VipsMedianMS = median(r.GoMS), median(r.VipsMS)
	r.Ratio = ratio(r.GoMedianMS, r.VipsMedianMS)
	fmt.Fprintf(os.Stderr, "thumbs: %d runs at %d px: imagestore %.0f ms, vipsthumbnail %.0f ms (median), ratio %.2f\n",
		r.N, *size, r.GoMedianMS, r.VipsMedianMS, r.Ratio)
	return writeJSON(*out, r)
}

// alternate runs each way once untimed, to warm the page cache and the Go heap, then up to n
// timed runs of each, alternating, so that a noisy neighbour slows both alike. It returns the
// wall times in milliseconds.
func alternate(job thumbJob, n int) (goMS, vipsMS []float64, err error) {
	if err := job.ours(); err != nil {
		return nil, nil, err
	}
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
	const name = "Thumbnail 320 px vs vipsthumbnail"
	var r thumbResult
	if err := readJSON(filepath.Join(rp.dir, "thumbs.json"), &r); err != nil {
		rp.fail(name, err.Error())
		return
	}
	if r.N == 0 || r.VipsMedianMS == 0 {
		rp.fail(name, "no timed runs")
		return
	}
	ok := r.Ratio <= targetThumbRatio
	rp.rows = append(rp.rows, row{name, fmt.Sprintf("%.0f ms", r.GoMedianMS), fmt.Sprintf("vips %.0f ms", r.VipsMedianMS),
		fmt.Sprintf("%.2fx", r.Ratio), "≤ 2x", verdict(ok)})
	rp.sections = append(rp.sections, fmt.Sprintf(thumbsText, r.Width, r.Height, float64(r.FileBytes)/mb, r.Size, r.N,
		imagestore.ThumbJPEGQuality, r.Size, imagestore.ThumbJPEGQuality, r.VipsVersion,
		r.GoMedianMS, fmtList(r.GoMS), r.VipsMedianMS, fmtList(r.VipsMS), r.Ratio, verdict(ok)))
}

const thumbsText = `## 2. Thumbnails vs vipsthumbnail (issue 3)

One %dx%d JPEG (%.2f MB, quality 92, gradients and noise, written by ` + "`loadtest photo`" + `), thumbnailed to %d px
on the longer side %d times each, alternating: ` + "`imagestore.Thumbnails`" + ` (decode, scale, orient, encode at quality %d;
from the file, in the loadtest helper) and ` + "`vipsthumbnail FILE -s %d -o out.jpg[Q=%d]`" + ` (%s; a new process
each time, so its figure includes process start). Median wall time per thumbnail.
Target: at most 2x vipsthumbnail's time.

| tool | median | all runs (ms) |
|---|---|---|
| imagestore.Thumbnails | %.0f ms | %s |
| vipsthumbnail | %.0f ms | %s |

Ratio %.2fx: **%s**.
`
