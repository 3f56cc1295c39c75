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
//	loadtest report   -results DIR -doc docs/PERFORMANCE.md [-commit C]
//
// put and cleanup reach MinIO at DERMFOLLOW_TEST_S3_ENDPOINT with the keys in
// DERMFOLLOW_TEST_S3_ACCESS_KEY and DERMFOLLOW_TEST_S3_SECRET_KEY (never on the command line).
// fill reads an API token from LOADTEST_TOKEN and timeline the clinician's password from
// LOADTEST_PASSWORD, for the same reason.
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"image"
	"image/jpeg"
	"io"
	"maps"
	"math"
	"math/rand/v2"
	"mime/multipart"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/textproto"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/dermfollow/dermfollow/imagestore"
)

// mb is the unit of every throughput and size in the report: 10^6 bytes, as `go test` uses.
const mb = 1e6

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: loadtest photo|thumbs|ingest|put|cleanup|freeport|fill|timeline|report [flags]")
		os.Exit(2)
	}
	modes := map[string]func([]string) error{
		"photo": cmdPhoto, "thumbs": cmdThumbs, "ingest": cmdIngest, "put": cmdPut,
		"cleanup": cmdCleanup, "freeport": cmdFreePort, "report": cmdReport,
		"fill": cmdFill, "timeline": cmdTimeline,
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

// ---------------------------------------------------------------------------------------------
// photo: a photographic-looking JPEG

func cmdPhoto(args []string) error {
	fs := flag.NewFlagSet("photo", flag.ExitOnError)
	out := fs.String("out", "", "file to write")
	w := fs.Int("width", 4000, "width in pixels")
	h := fs.Int("height", 3000, "height in pixels")
	q := fs.Int("quality", 92, "JPEG quality")
	noise := fs.Int("noise", 12, "luma noise amplitude (0-127); more noise, bigger file")
	seed := fs.Uint64("seed", 1, "varies the picture")
	minMB := fs.Float64("min-mb", 0, "fail if the file is smaller (MB)")
	maxMB := fs.Float64("max-mb", 0, "fail if the file is larger (MB)")
	fs.Parse(args)
	if *out == "" {
		return errors.New("-out is required")
	}
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, photographic(*w, *h, *seed, *noise), &jpeg.Options{Quality: *q}); err != nil {
		return err
	}
	size := float64(buf.Len()) / mb
	if (*minMB > 0 && size < *minMB) || (*maxMB > 0 && size > *maxMB) {
		return fmt.Errorf("%dx%d q%d noise %d is %.2f MB, want %.1f-%.1f MB: adjust -noise", *w, *h, *q, *noise, size, *minMB, *maxMB)
	}
	if err := os.WriteFile(*out, buf.Bytes(), 0o644); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "photo: %s %dx%d q%d, %.2f MB\n", filepath.Base(*out), *w, *h, *q, size)
	return nil
}

// photographic compresses like a photo: smooth light falloff and broad soft shapes (a
// separable sum of low-frequency waves, cheap for tens of megapixels) under sensor-like noise.
func photographic(w, h int, seed uint64, noise int) *image.YCbCr {
	img := image.NewYCbCr(image.Rect(0, 0, w, h), image.YCbCrSubsampleRatio420)
	rng := rand.New(rand.NewPCG(seed, 0x5eed))
	waves := func(n, k int, amp float64) []float64 {
		out := make([]float64, n)
		for range k {
			f := (0.5 + 3*rng.Float64()) * 2 * math.Pi / float64(n)
			ph := 2 * math.Pi * rng.Float64()
			a := amp * (0.3 + rng.Float64())
			for i := range out {
				out[i] += a * math.Sin(float64(i)*f+ph)
			}
		}
		return out
	}
	colA, rowA := waves(w, 3, 18), waves(h, 3, 18)
	colB, rowB := waves(w, 2, 1), waves(h, 2, 1)
	span := 2*noise + 1
	for y := range h {
		row := img.Y[y*img.YStride : y*img.YStride+w]
		for x := range row {
			v := 70 + 90*x/w + 40*y/h + int(colA[x]+rowA[y]+30*colB[x]*rowB[y])
			if span > 1 {
				v += int(rng.Uint32()%uint32(span)) - noise
			}
			row[x] = uint8(min(max(v, 0), 255))
		}
	}
	cw, ch := (w+1)/2, (h+1)/2
	cspan := uint32(max(1, noise/3)*2 + 1)
	for y := range ch {
		for x := range cw {
			i := y*img.CStride + x
			img.Cb[i] = uint8(105 + 25*y/ch + int(rng.Uint32()%cspan) - int(cspan/2))
			img.Cr[i] = uint8(145 + 20*x/cw + int(10*colB[min(2*x, w-1)]) + int(rng.Uint32()%cspan) - int(cspan/2))
		}
	}
	return img
}

// ---------------------------------------------------------------------------------------------
// thumbs: imagestore.Thumbnails against vipsthumbnail on the same file

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
	deadline := time.Now().Add(*limit)
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
	vipsOut := filepath.Join(tmp, "out.jpg") + "[Q=" + strconv.Itoa(imagestore.ThumbJPEGQuality) + "]"
	sizes := []imagestore.ThumbSize{{Name: "small", MaxSide: *size}}

	ours := func() error {
		f, err := os.Open(*in)
		if err != nil {
			return err
		}
		defer f.Close()
		thumbs, err := imagestore.Thumbnails(f, 1, sizes, imagestore.DefaultLimits())
		if err == nil && len(thumbs[0].JPEG) == 0 {
			err = errors.New("empty thumbnail")
		}
		return err
	}
	theirs := func() error {
		ctx, cancel := context.WithDeadline(context.Background(), deadline)
		defer cancel()
		out, err := exec.CommandContext(ctx, *vips, *in, "-s", strconv.Itoa(*size), "-o", vipsOut).CombinedOutput()
		if err != nil {
			return fmt.Errorf("%s: %v: %s", *vips, err, bytes.TrimSpace(out))
		}
		return nil
	}
	timed := func(f func() error) (float64, error) {
		start := time.Now()
		err := f()
		return float64(time.Since(start).Microseconds()) / 1000, err
	}
	r := thumbResult{File: filepath.Base(*in), FileBytes: st.Size(), Width: cfg.Width, Height: cfg.Height, Size: *size, VipsVersion: vipsVersion(*vips)}
	// One untimed run of each warms the page cache and the Go heap.
	if err := ours(); err != nil {
		return fmt.Errorf("imagestore.Thumbnails: %w", err)
	}
	if err := theirs(); err != nil {
		return err
	}
	// Alternate the two, so that a noisy neighbour slows both alike.
	for i := 0; i < *n && time.Now().Before(deadline); i++ {
		runtime.GC()
		ms, err := timed(ours)
		if err != nil {
			return fmt.Errorf("imagestore.Thumbnails: %w", err)
		}
		r.GoMS = append(r.GoMS, ms)
		if ms, err = timed(theirs); err != nil {
			return err
		}
		r.VipsMS = append(r.VipsMS, ms)
	}
	r.N = len(r.GoMS)
	r.GoMedianMS, r.VipsMedianMS = median(r.GoMS), median(r.VipsMS)
	if r.VipsMedianMS > 0 {
		r.Ratio = r.GoMedianMS / r.VipsMedianMS
	}
	fmt.Fprintf(os.Stderr, "thumbs: %d runs at %d px: imagestore %.0f ms, vipsthumbnail %.0f ms (median), ratio %.2f\n",
		r.N, *size, r.GoMedianMS, r.VipsMedianMS, r.Ratio)
	return writeJSON(*out, r)
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

// ---------------------------------------------------------------------------------------------
// ingest and put: concurrent uploads, bounded in count and time

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
	Bytes       int64          `json:"bytes"` // payload bytes of the successful requests
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

	// Warm-up: connections, the server's pools and caches. Not counted, but must succeed.
	var wg sync.WaitGroup
	warmErr := make(chan error, *lf.warmup)
	for i := range *lf.warmup {
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
	if err := <-warmErr; err != nil {
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
	type outcome struct {
		status string
		err    error
		bytes  int
		ms     float64
	}
	outcomes := make([]outcome, n)
	cpu, err := startCPUAccount(*lf.cpu)
	if err != nil {
		return r, err
	}
	var next atomic.Int64
	var timedOut atomic.Bool
	start := time.Now()
	deadline := start.Add(*lf.duration)
	for range c {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				if time.Now().After(deadline) {
					timedOut.Store(true)
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
	r.Seconds = time.Since(start).Seconds()
	r.CPUSeconds, r.MachineBusyPct = cpu.stop()
	if sampler != nil {
		r.PeakRSSKB, r.HWMKB = sampler.stop()
	}
	r.StoppedBy = "count"
	if timedOut.Load() {
		r.StoppedBy = "time"
	}
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
	r.P50MS, r.P95MS, r.P99MS = percentile(lat, 50), percentile(lat, 95), percentile(lat, 99)
	if len(lat) > 0 {
		r.MaxMS = slices.Max(lat)
	}
	fmt.Fprintf(os.Stderr, "%s: %d requests (%d ok, %d failed) in %.1f s, %d clients: %.2f photos/s, %.1f MB/s, p50 %.0f ms, p95 %.0f ms\n",
		kind, r.Requests, r.OK, r.Failed, r.Seconds, c, r.PhotosPerS, r.MBPerS, r.P50MS, r.P95MS)
	fmt.Fprintf(os.Stderr, "%s: CPU seconds %v, machine %.0f%% busy\n", kind, r.CPUSeconds, r.MachineBusyPct)
	if pid > 0 {
		fmt.Fprintf(os.Stderr, "%s: server RSS idle %.0f MB, peak sampled %.0f MB, VmHWM %.0f MB\n",
			kind, kbToMB(r.IdleRSSKB), kbToMB(r.PeakRSSKB), kbToMB(r.HWMKB))
	}
	return r, nil
}

func cmdIngest(args []string) error {
	fs := flag.NewFlagSet("ingest", flag.ExitOnError)
	lf := addLoadFlags(fs)
	target := fs.String("url", "", "upload URL: the parent link followed by /photos")
	kind := fs.String("kind", "ingest", "name of the result")
	timepoint := fs.String("timepoint", "day-1", "timepoint key of the uploads")
	views := fs.String("views", "front,left-oblique,right-oblique", "views to use in turn")
	pid := fs.Int("pid", 0, "server process whose memory to sample (0: none)")
	fs.Parse(args)
	files, err := lf.check()
	if err != nil {
		return err
	}
	u, err := url.Parse(*target)
	if err != nil || u.Scheme != "http" {
		return fmt.Errorf("-url %q: want an http:// URL", *target)
	}
	if err := loopbackOnly(u.Host); err != nil {
		return err
	}
	viewList := strings.Split(*views, ",")
	client := &http.Client{
		Timeout:   2 * time.Minute,
		Transport: &http.Transport{MaxIdleConnsPerHost: *lf.c, DisableCompression: true, Proxy: nil},
	}
	runID := strconv.FormatInt(time.Now().UnixNano(), 36)
	do := func(ctx context.Context, seq int, photo []byte) (string, error) {
		id := fmt.Sprintf("bench-%s-%d", runID, seq)
		if seq < 0 {
			id = fmt.Sprintf("bench-%s-w%d", runID, -seq)
		}
		body, ctype, length := multipartBody(*timepoint, viewList[(seq%len(viewList)+len(viewList))%len(viewList)], id, photo)
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, *target, body)
		if err != nil {
			return "error", err
		}
		req.Header.Set("Content-Type", ctype)
		req.ContentLength = length
		resp, err := client.Do(req)
		if err != nil {
			return "error", errors.New(redactToken(err.Error()))
		}
		defer resp.Body.Close()
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		st := strconv.Itoa(resp.StatusCode)
		if resp.StatusCode != http.StatusCreated {
			return st, fmt.Errorf("%s", bytes.TrimSpace(msg))
		}
		return st, nil
	}
	r, err := drive(*kind, lf, files, do, "201", *pid)
	if err != nil {
		return err
	}
	return writeJSON(*lf.out, r)
}

// multipartBody streams the form the parent page sends: timepoint, view, upload_id, file.
func multipartBody(timepoint, view, uploadID string, photo []byte) (io.Reader, string, int64) {
	var head bytes.Buffer
	w := multipart.NewWriter(&head)
	w.WriteField("timepoint", timepoint)
	w.WriteField("view", view)
	w.WriteField("upload_id", uploadID)
	hdr := textproto.MIMEHeader{}
	hdr.Set("Content-Disposition", `form-data; name="file"; filename="photo.jpg"`)
	hdr.Set("Content-Type", "image/jpeg")
	w.CreatePart(hdr)
	headLen := head.Len()
	w.Close() // writes the closing boundary after the (empty) file part
	tail := append([]byte{}, head.Bytes()[headLen:]...)
	head.Truncate(headLen)
	length := int64(head.Len() + len(photo) + len(tail))
	return io.MultiReader(&head, bytes.NewReader(photo), bytes.NewReader(tail)), w.FormDataContentType(), length
}

// redactToken keeps parent-link tokens out of error messages that end up in the report.
func redactToken(s string) string { return linkToken.ReplaceAllString(s, "/p/TOKEN") }

var linkToken = regexp.MustCompile(`/p/[A-Za-z0-9_-]+`)

func cmdPut(args []string) error {
	fs := flag.NewFlagSet("put", flag.ExitOnError)
	lf := addLoadFlags(fs)
	bucket := fs.String("bucket", "", "bucket to put into (created if missing)")
	fs.Parse(args)
	files, err := lf.check()
	if err != nil {
		return err
	}
	// The baseline is one PutObject per photo with exactly the options the server's store
	// uses (SSE-S3, its part size, a trailing CRC32C instead of payload signing): the store's
	// own Put, which is that call and nothing else. What the comparison measures is then what
	// the upload path adds to storing the bytes: receiving, sanitizing, hashing, the database.
	cfg, err := s3Config(*bucket)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	store, err := imagestore.NewS3Store(ctx, cfg)
	cancel()
	if err != nil {
		return err
	}
	do := func(ctx context.Context, seq int, photo []byte) (string, error) {
		// A plain reader, as the server hands the store (a sanitized stream): no Seek or ReadAt,
		// so both take the same path through minio-go.
		err := store.Put(ctx, fmt.Sprintf("bench/%d", seq), plainReader{bytes.NewReader(photo)}, int64(len(photo)), "image/jpeg")
		if err != nil {
			return "error", err
		}
		return "ok", nil
	}
	r, err := drive("put", lf, files, do, "ok", 0)
	if err != nil {
		return err
	}
	return writeJSON(*lf.out, r)
}

type plainReader struct{ r io.Reader }

func (p plainReader) Read(b []byte) (int, error) { return p.r.Read(b) }

// s3Config is the test MinIO (services.sh) with a bucket, SSE-S3 on, as the server uses it.
func s3Config(bucket string) (imagestore.S3Config, error) {
	endpoint := os.Getenv("DERMFOLLOW_TEST_S3_ENDPOINT")
	if endpoint == "" {
		return imagestore.S3Config{}, errors.New("DERMFOLLOW_TEST_S3_ENDPOINT is not set (eval \"$(scripts/services.sh up test)\")")
	}
	if err := loopbackOnly(endpoint); err != nil {
		return imagestore.S3Config{}, err
	}
	return imagestore.S3Config{Endpoint: endpoint, Bucket: bucket, SSE: true,
		AccessKey: os.Getenv("DERMFOLLOW_TEST_S3_ACCESS_KEY"), SecretKey: os.Getenv("DERMFOLLOW_TEST_S3_SECRET_KEY")}, nil
}

func s3Client() (*minio.Client, error) {
	cfg, err := s3Config("")
	if err != nil {
		return nil, err
	}
	return minio.New(cfg.Endpoint, &minio.Options{Creds: credentials.NewStaticV4(cfg.AccessKey, cfg.SecretKey, "")})
}

func makeBucket(ctx context.Context, client *minio.Client, bucket string) error {
	ok, err := client.BucketExists(ctx, bucket)
	if err != nil || ok {
		return err
	}
	return client.MakeBucket(ctx, bucket, minio.MakeBucketOptions{})
}

// cleanup removes the benchmark's buckets with everything in them.
func cmdCleanup(args []string) error {
	fs := flag.NewFlagSet("cleanup", flag.ExitOnError)
	var buckets []string
	fs.Func("bucket", "bucket to remove (repeatable)", func(s string) error {
		if !strings.HasPrefix(s, "bench-") {
			return fmt.Errorf("%q: only bench-* buckets are removed", s)
		}
		buckets = append(buckets, s)
		return nil
	})
	fs.Parse(args)
	client, err := s3Client()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var errs []error
	for _, b := range buckets {
		if ok, err := client.BucketExists(ctx, b); err != nil || !ok {
			errs = append(errs, err)
			continue
		}
		objects := client.ListObjects(ctx, b, minio.ListObjectsOptions{Recursive: true})
		for e := range client.RemoveObjects(ctx, b, objects, minio.RemoveObjectsOptions{}) {
			errs = append(errs, fmt.Errorf("remove %s/%s: %w", b, e.ObjectName, e.Err))
		}
		errs = append(errs, client.RemoveBucket(ctx, b))
	}
	return errors.Join(errs...)
}

func cmdFreePort([]string) error {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	defer ln.Close()
	fmt.Println(ln.Addr().(*net.TCPAddr).Port)
	return nil
}

func loopbackOnly(hostport string) error {
	host, _, err := net.SplitHostPort(hostport)
	if err != nil {
		host = hostport
	}
	if ip := net.ParseIP(host); host == "localhost" || (ip != nil && ip.IsLoopback()) {
		return nil
	}
	return fmt.Errorf("%s is not on 127.0.0.1: the benchmarks send traffic only to this machine", hostport)
}

// ---------------------------------------------------------------------------------------------
// memory sampling from /proc

type rssSampler struct {
	pid  int
	idle int64
	peak atomic.Int64
	done chan struct{}
	wg   sync.WaitGroup
}

func startRSSSampler(pid int) (*rssSampler, error) {
	st, err := procStatus(pid)
	if err != nil {
		return nil, err
	}
	s := &rssSampler{pid: pid, idle: st["VmRSS"], done: make(chan struct{})}
	s.peak.Store(st["VmRSS"])
	s.wg.Go(func() {
		t := time.NewTicker(20 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-s.done:
				return
			case <-t.C:
			}
			if st, err := procStatus(pid); err == nil && st["VmRSS"] > s.peak.Load() {
				s.peak.Store(st["VmRSS"])
			}
		}
	})
	return s, nil
}

func (s *rssSampler) stop() (peakKB, hwmKB int64) {
	close(s.done)
	s.wg.Wait()
	st, _ := procStatus(s.pid)
	return s.peak.Load(), st["VmHWM"]
}

// procStatus reads the kB fields of /proc/PID/status (VmRSS, VmHWM, ...).
func procStatus(pid int) (map[string]int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return nil, fmt.Errorf("server process %d: %w", pid, err)
	}
	out := map[string]int64{}
	for _, line := range strings.Split(string(b), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if f := strings.Fields(v); ok && len(f) == 2 && f[1] == "kB" {
			out[k], _ = strconv.ParseInt(f[0], 10, 64)
		}
	}
	return out, nil
}

func kbToMB(kb int64) float64 { return float64(kb) * 1024 / mb }

// ---------------------------------------------------------------------------------------------
// report: docs/PERFORMANCE.md and the summary table

// The generated part of the document lies between these lines; the rest is written by hand.
const (
	beginMark = "<!-- BEGIN generated by `make bench` (scripts/bench.sh): edits between these lines are overwritten -->"
	endMark   = "<!-- END generated by `make bench` -->"
)

// Targets, from issues 3 and 5.
const (
	targetSanitizeMBs = 1000 // 1 GB/s
	// sanitizeProductionPath is the sub-benchmark the sanitizer's targets are checked on:
	// Sanitize read out through Clean.NewReader, as uploads, the export and `dermfollow scrub`
	// use it. SanitizeBytes (sub-benchmark "bytes") serves tests and the fuzzers only.
	sanitizeProductionPath = "stream"
	// sanitizeStateBytes is what "at most one copy" allows beyond the copy itself: the parse
	// state (segment list, EXIF values) of a fixed size that does not grow with the photo.
	sanitizeStateBytes = 256 << 10
	targetThumbRatio   = 2.0 // at most twice vipsthumbnail's time
	targetIngestRatio  = 0.8 // at least 80% of a plain PutObject's MB/s
	targetUploadPeakMB = 300 // server peak RSS under 16 concurrent 20 MB uploads
)

// errUnmeasured is returned when a benchmark could not be measured cleanly (failed
// requests, missing results); a missed target alone is not an error.
type errUnmeasured struct{ n int }

func (e errUnmeasured) Error() string {
	return fmt.Sprintf("%d benchmark(s) had errors; see the report", e.n)
}

type row struct {
	name, measured, baseline, ratio, target, result string
}

type goBench struct {
	name                    string
	nsPerOp, mbPerS, bPerOp float64
	allocsPerOp             float64
	iterations              int
}

type report struct {
	dir      string
	rows     []row
	sections []string
	errors   int
}

func cmdReport(args []string) error {
	fs := flag.NewFlagSet("report", flag.ExitOnError)
	dir := fs.String("results", "", "directory of result files")
	doc := fs.String("doc", "docs/PERFORMANCE.md", "document to update")
	commit := fs.String("commit", "", "commit measured")
	fs.Parse(args)
	if *dir == "" {
		return errors.New("-results is required")
	}
	rp := &report{dir: *dir}
	rp.sanitizer()
	rp.thumbnails()
	rp.ingest()
	rp.memory()
	rp.timeline()
	rp.export()

	var b strings.Builder
	fmt.Fprintf(&b, "## Latest run\n\n%s\n\n", rp.machine(*commit))
	b.WriteString(table(rp.rows, true))
	for _, s := range rp.sections {
		b.WriteString("\n" + s)
	}
	if err := spliceDoc(*doc, b.String()); err != nil {
		return err
	}
	fmt.Println()
	fmt.Print(table(rp.rows, false))
	fmt.Printf("\nwritten to %s\n", *doc)
	if rp.errors > 0 {
		return errUnmeasured{rp.errors}
	}
	return nil
}

func (rp *report) machine(commit string) string {
	cpu := "unknown CPU"
	if b, err := os.ReadFile(filepath.Join(rp.dir, "gotest-bench.txt")); err == nil {
		if m := regexp.MustCompile(`(?m)^cpu:\s*(.+)$`).FindSubmatch(b); m != nil {
			cpu = strings.TrimSpace(string(m[1]))
		}
	}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil && cpu == "unknown CPU" {
		if m := regexp.MustCompile(`(?m)^model name\s*:\s*(.+)$`).FindSubmatch(b); m != nil {
			cpu = strings.TrimSpace(string(m[1]))
		}
	}
	memGB := 0.0
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		if m := regexp.MustCompile(`MemTotal:\s*(\d+) kB`).FindSubmatch(b); m != nil {
			kb, _ := strconv.ParseFloat(string(m[1]), 64)
			memGB = kb * 1024 / 1e9
		}
	}
	if commit == "" {
		commit = "unknown"
	}
	load, busy := "unknown", ""
	if b, err := os.ReadFile(filepath.Join(rp.dir, "loadavg-start")); err == nil {
		if f := strings.Fields(string(b)); len(f) >= 3 {
			load = strings.Join(f[:3], " ")
			if l, _ := strconv.ParseFloat(f[0], 64); l > float64(runtime.NumCPU()) {
				busy = "\n\n**The machine was busy with other work during this run**: absolute figures " +
					"(the sanitizer's MB/s, times) are lower than on a quiet machine; the ratios suffer less."
			}
		}
	}
	return fmt.Sprintf("%s, commit `%s`; %s, %d cores, %.0f GB RAM; %s %s/%s. "+
		"Load average when the run started (1, 5, 15 min): %s.%s",
		time.Now().UTC().Format("2006-01-02 15:04 MST"), commit, cpu, runtime.NumCPU(), memGB,
		runtime.Version(), runtime.GOOS, runtime.GOARCH, load, busy)
}

func (rp *report) fail(name, why string) {
	rp.errors++
	rp.rows = append(rp.rows, row{name, "-", "-", "-", "-", "ERROR"})
	rp.sections = append(rp.sections, fmt.Sprintf("### %s\n\nERROR: %s\n", name, why))
}

func verdict(ok bool) string {
	if ok {
		return "PASS"
	}
	return "MISS"
}

func (rp *report) sanitizer() {
	const name = "Sanitizer 12 MP JPEG"
	raw, err := os.ReadFile(filepath.Join(rp.dir, "gotest-bench.txt"))
	if err != nil {
		rp.fail(name, "no `go test -bench` output: "+err.Error())
		return
	}
	benches := parseGoBench(string(raw))
	size := 0.0
	if m := regexp.MustCompile(`photo: (\d+)x(\d+), (\d+) bytes`).FindStringSubmatch(string(raw)); m != nil {
		size, _ = strconv.ParseFloat(m[3], 64) // printed with -v only
	}
	if size == 0 {
		// Without -v the benchmark's log line is not printed: size = MB/s * s/op.
		for _, gb := range benches {
			if strings.HasPrefix(gb.name, "BenchmarkSanitizeJPEG12MP/") && gb.mbPerS > 0 {
				size = math.Round(gb.mbPerS * mb * gb.nsPerOp / 1e9)
				break
			}
		}
	}
	var sec strings.Builder
	fmt.Fprintf(&sec, "## 1. Sanitizer (issue 3)\n\n")
	fmt.Fprintf(&sec, "`go test -run '^$' -bench . -benchmem ./imagestore/`, BenchmarkSanitizeJPEG12MP: the 12 MP phone-like JPEG "+
		"of imagestore/bench_test.go (about %.2f MB, with EXIF, XMP and a motion-photo trailer to strip). "+
		"`stream` is Sanitize on a bytes.Reader read out through Clean.NewReader: the path uploads, the export and `dermfollow scrub` take, "+
		"on which the targets are checked. `bytes` is SanitizeBytes (returns a new slice), which only tests and the fuzzers call; "+
		"it is shown for information, and its time is mostly the page faults of a fresh 4 MB output buffer, which move with the "+
		"machine's memory state (from about 800 to 2,000 MB/s across runs). "+
		"Target: at least 1 GB/s (1000 MB/s; an absolute figure, so it moves with the machine and its load) "+
		"and at most one copy of the file allocated per run: B/op at most the file's size plus 256 KiB of parse state "+
		"(the segment list and the EXIF values goexif decodes, about 60 KB, whatever the photo's size).\n\n", size/mb)
	sec.WriteString("| sub-benchmark | time/op | MB/s | B/op | allocs/op | result |\n|---|---|---|---|---|---|\n")
	found := 0
	for _, gb := range benches {
		sub, ok := strings.CutPrefix(gb.name, "BenchmarkSanitizeJPEG12MP/")
		if !ok {
			continue
		}
		found++
		oneCopy := size > 0 && gb.bPerOp <= size+sanitizeStateBytes
		pass := gb.mbPerS >= targetSanitizeMBs && oneCopy
		why := verdict(pass)
		target := "≥ 1000 MB/s, ≤ 1 copy + 256 KiB"
		if sub != sanitizeProductionPath {
			why, target = "for information", "-"
		} else if !pass {
			var miss []string
			if gb.mbPerS < targetSanitizeMBs {
				miss = append(miss, "speed")
			}
			if !oneCopy {
				miss = append(miss, "memory")
			}
			why += " (" + strings.Join(miss, ", ") + ")"
		}
		fmt.Fprintf(&sec, "| %s | %s | %.0f | %.0f | %.0f | %s |\n", sub, fmtNs(gb.nsPerOp), gb.mbPerS, gb.bPerOp, gb.allocsPerOp, why)
		rp.rows = append(rp.rows, row{"Sanitizer " + sub, fmt.Sprintf("%.0f MB/s, %.2f MB/op", gb.mbPerS, gb.bPerOp/mb),
			fmt.Sprintf("file %.2f MB", size/mb), fmt.Sprintf("%.2f copies", gb.bPerOp/max(size, 1)),
			target, why})
	}
	if found == 0 {
		rp.fail(name, "BenchmarkSanitizeJPEG12MP is missing from the `go test -bench` output (renamed? failed?)")
		return
	}
	var thumbs []string
	for _, gb := range benches {
		if sub, ok := strings.CutPrefix(gb.name, "BenchmarkThumbnail12MP/"); ok {
			thumbs = append(thumbs, fmt.Sprintf("| %s | %s | %.1f | %.0f |", sub, fmtNs(gb.nsPerOp), gb.bPerOp/mb, gb.allocsPerOp))
		}
	}
	if len(thumbs) > 0 {
		sec.WriteString("\nBenchmarkThumbnail12MP from the same run (orientation 6, for information; the target is checked in section 2):\n\n" +
			"| sub-benchmark | time/op | MB/op | allocs/op |\n|---|---|---|---|\n" + strings.Join(thumbs, "\n") + "\n")
	}
	rp.sections = append(rp.sections, sec.String())
}

// parseGoBench reads `go test -bench -benchmem` lines: name-P  N  v unit  v unit ...
func parseGoBench(out string) []goBench {
	var res []goBench
	procs := regexp.MustCompile(`-\d+$`)
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) < 4 || !strings.HasPrefix(f[0], "Benchmark") {
			continue
		}
		it, err := strconv.Atoi(f[1])
		if err != nil {
			continue
		}
		gb := goBench{name: procs.ReplaceAllString(f[0], ""), iterations: it}
		for i := 2; i+1 < len(f); i += 2 {
			v, err := strconv.ParseFloat(f[i], 64)
			if err != nil {
				continue
			}
			switch f[i+1] {
			case "ns/op":
				gb.nsPerOp = v
			case "MB/s":
				gb.mbPerS = v
			case "B/op":
				gb.bPerOp = v
			case "allocs/op":
				gb.allocsPerOp = v
			}
		}
		res = append(res, gb)
	}
	return res
}

func fmtNs(ns float64) string {
	return (time.Duration(ns) * time.Nanosecond).Round(10 * time.Microsecond).String()
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
	rp.sections = append(rp.sections, fmt.Sprintf(`## 2. Thumbnails vs vipsthumbnail (issue 3)

One %dx%d JPEG (%.2f MB, quality 92, gradients and noise, written by `+"`loadtest photo`"+`), thumbnailed to %d px
on the longer side %d times each, alternating: `+"`imagestore.Thumbnails`"+` (decode, scale, orient, encode at quality %d;
from the file, in the loadtest helper) and `+"`vipsthumbnail FILE -s %d -o out.jpg[Q=%d]`"+` (%s; a new process
each time, so its figure includes process start). Median wall time per thumbnail.
Target: at most 2x vipsthumbnail's time.

| tool | median | all runs (ms) |
|---|---|---|
| imagestore.Thumbnails | %.0f ms | %s |
| vipsthumbnail | %.0f ms | %s |

Ratio %.2fx: **%s**.
`, r.Width, r.Height, float64(r.FileBytes)/mb, r.Size, r.N, imagestore.ThumbJPEGQuality, r.Size, imagestore.ThumbJPEGQuality,
		r.VipsVersion, r.GoMedianMS, fmtList(r.GoMS), r.VipsMedianMS, fmtList(r.VipsMS), r.Ratio, verdict(ok)))
}

func (rp *report) ingest() {
	const name = "Ingest vs PutObject"
	var in, put loadResult
	if err := readJSON(filepath.Join(rp.dir, "put.json"), &put); err != nil {
		rp.fail(name, err.Error())
		return
	}
	if err := readJSON(filepath.Join(rp.dir, "ingest.json"), &in); err != nil {
		rp.fail(name, err.Error())
		return
	}
	var after struct {
		ThumbsPending int `json:"thumbs_pending"`
		Photos        int `json:"photos"`
	}
	_ = readJSON(filepath.Join(rp.dir, "ingest-after.json"), &after)
	logs := countLog(filepath.Join(rp.dir, "server-ingest.log"))
	ratio := 0.0
	if put.MBPerS > 0 {
		ratio = in.MBPerS / put.MBPerS
	}
	res := verdict(ratio >= targetIngestRatio)
	errNote := ""
	if in.Failed > 0 || put.Failed > 0 || in.OK == 0 || put.OK == 0 {
		rp.errors++
		res = "ERROR"
		errNote = fmt.Sprintf("\n**Errors**: %d of %d uploads and %d of %d puts failed: %s\n",
			in.Failed, in.Requests, put.Failed, put.Requests, strings.Join(append(in.Errors, put.Errors...), "; "))
	}
	rp.rows = append(rp.rows, row{name, fmt.Sprintf("%.1f MB/s", in.MBPerS), fmt.Sprintf("%.1f MB/s", put.MBPerS),
		fmt.Sprintf("%.2f", ratio), "≥ 0.8", res})
	line := func(label string, r loadResult) string {
		stop := ""
		if r.StoppedBy == "time" {
			stop = " (time limit)"
		}
		return fmt.Sprintf("| %s | %d/%d | %.1f s%s | %.2f | %.1f | %.0f ms | %.0f ms | %.0f ms |",
			label, r.OK, r.Requests, r.Seconds, stop, r.PhotosPerS, r.MBPerS, r.P50MS, r.P95MS, r.MaxMS)
	}
	rp.sections = append(rp.sections, fmt.Sprintf(`## 3. Ingest vs PutObject (issue 5)

%d concurrent clients send %d distinct photographic JPEGs (%.2f MB each on average, 2400x1800, quality 95) in turn,
up to %d timed requests or %s, whichever comes first, after %d untimed warm-up requests.
Ingest: `+"`POST /p/{token}/photos`"+` (multipart) to the real server binary, which holds the upload in memory
(chunks of a 64 MiB budget; beyond it, a temp file), sanitizes it, streams it to MinIO with SSE-S3 while hashing
it, and commits the row and an audit event. Baseline, just before, same bytes and concurrency: one minio-go `+"`PutObject`"+` per photo straight to
the same MinIO with exactly the server's options, through the server's own store code (`+"`imagestore.S3Store.Put`"+`:
SSE-S3, a 32 MiB part size so a photo is one PUT, and a trailing CRC32C of the bytes that MinIO verifies
instead of minio-go's SHA-256 payload signing over plain HTTP). Client, server, MinIO and PostgreSQL share
the 2 cores, so when they are busy the ratio is mostly the ratio of CPU spent per byte on each path (table
below). The server's background thumbnailer runs too, as in production, but gives uploads the CPU first:
it starts a photo only after 500 ms without upload work, or once a photo has waited 30 s
(%d of %d photos still had no thumbnails when the run ended; they are made after the burst).
MB/s counts photo bytes acknowledged (201 or stored).
Target: ingest MB/s at least 0.8 of PutObject's.

| path | ok/sent | time | photos/s | MB/s | p50 | p95 | max |
|---|---|---|---|---|---|---|---|
%s
%s

Where the CPU went during each timed part (CPU seconds from /proc/PID/stat; the server's include its
thumbnailer; "the rest" is PostgreSQL and whatever else ran on the machine):

| path | machine busy | server | MinIO | load generator | PostgreSQL and the rest | server CPU per photo |
|---|---|---|---|---|---|---|
%s
%s

Ratio %.2f: **%s**. Server log (level warn): %s.
%s`, in.Concurrency, in.Files, float64(in.FileBytes)/mb, in.MaxRequests, fmtSeconds(in.MaxSeconds), in.Warmup, after.ThumbsPending, after.Photos,
		line("ingest (server)", in), line("PutObject (baseline)", put), cpuLine("ingest (server)", in), cpuLine("PutObject (baseline)", put),
		ratio, res, logs, errNote))
}

func cpuLine(label string, r loadResult) string {
	cell := func(name string) string {
		if v, ok := r.CPUSeconds[name]; ok {
			return fmt.Sprintf("%.1f s", v)
		}
		return "-"
	}
	per := "-"
	if v, ok := r.CPUSeconds["server"]; ok && r.OK > 0 {
		ms := 1000 * v / float64(r.OK)
		per = fmt.Sprintf("%.0f ms", ms)
		if ms < 10 {
			per = fmt.Sprintf("%.2f ms", ms)
		}
	}
	// Whatever else kept the cores busy: PostgreSQL, and any other work on the machine.
	others := r.MachineBusyPct / 100 * float64(runtime.NumCPU()) * r.Seconds
	for _, v := range r.CPUSeconds {
		others -= v
	}
	return fmt.Sprintf("| %s | %.0f%% of %d cores | %s | %s | %s | %.1f s | %s |", label, r.MachineBusyPct, runtime.NumCPU(),
		cell("server"), cell("minio"), cell("loadtest"), max(others, 0), per)
}

func (rp *report) memory() {
	const name = "Upload memory, 16 x 20 MB"
	var m loadResult
	if err := readJSON(filepath.Join(rp.dir, "memory.json"), &m); err != nil {
		rp.fail(name, err.Error())
		return
	}
	var after struct {
		HWMKB         int64   `json:"hwm_kb"`
		ThumbsPending int     `json:"thumbs_pending"`
		WaitedS       float64 `json:"waited_s"`
	}
	_ = readJSON(filepath.Join(rp.dir, "memory-after.json"), &after)
	logs := countLog(filepath.Join(rp.dir, "server-memory.log"))
	peak := kbToMB(m.HWMKB)
	res := verdict(peak < targetUploadPeakMB)
	errNote := ""
	if m.Failed > 0 || m.OK == 0 {
		rp.errors++
		res = "ERROR"
		errNote = fmt.Sprintf("\n**Errors**: %d of %d uploads failed: %s\n", m.Failed, m.Requests, strings.Join(m.Errors, "; "))
	}
	rp.rows = append(rp.rows, row{name, fmt.Sprintf("peak %.0f MB", peak), fmt.Sprintf("idle %.0f MB", kbToMB(m.IdleRSSKB)),
		fmt.Sprintf("+%.0f MB", peak-kbToMB(m.IdleRSSKB)), "< 300 MB", res})
	afterLine := "not measured"
	if after.HWMKB > 0 {
		afterLine = fmt.Sprintf("%.0f MB after the background thumbnailer had worked %.0f s on the new photos (%d still pending)",
			kbToMB(after.HWMKB), after.WaitedS, after.ThumbsPending)
	}
	rp.sections = append(rp.sections, fmt.Sprintf(`## 4. Upload memory (issue 5)

A fresh server process (its demo data seeded by the CLI before it started), then %d concurrent uploads of one
%.1f MB JPEG (6000x4500, quality 100, noise) through `+"`POST /p/{token}/photos`"+`; the server's upload limit is
its default, 30 MiB. Peak resident memory is the process's VmHWM from /proc (it cannot be reset, hence the
fresh process); the baseline is its VmRSS at rest just before the uploads.
Target: peak under 300 MB.

| figure | value |
|---|---|
| uploads ok/sent | %d/%d in %.1f s (p50 %.0f ms, max %.0f ms) |
| idle RSS (baseline) | %.0f MB |
| highest RSS sampled every 20 ms | %.0f MB |
| peak RSS (VmHWM) when the last upload was answered | **%.0f MB** |
| peak RSS including background thumbnails | %s |

Result: **%s**. Server log (level warn): %s.
%s`, m.Requests, float64(m.FileBytes)/mb, m.OK, m.Requests, m.Seconds, m.P50MS, m.MaxMS, kbToMB(m.IdleRSSKB),
		kbToMB(m.PeakRSSKB), peak, afterLine, res, logs, errNote))
}

func (rp *report) timeline() {
	const name = "Timeline p99, 32 clients"
	var t timelineResult
	if err := readJSON(filepath.Join(rp.dir, "timeline.json"), &t); err != nil {
		rp.fail(name, err.Error())
		return
	}
	logs := countLog(filepath.Join(rp.dir, "server-timeline.log"))
	tl, st := t.Timeline, t.Static
	res := verdict(tl.P99MS < targetTimelineP99MS)
	errNote := ""
	if tl.Failed > 0 || st.Failed > 0 || tl.OK == 0 || st.OK == 0 || t.Thumbnails < 24 {
		rp.errors++
		res = "ERROR"
		errNote = fmt.Sprintf("\n**Errors**: %d of %d page and %d of %d static requests failed (%s); %d thumbnails on the page (want 24 or more).\n",
			tl.Failed, tl.Requests, st.Failed, st.Requests, strings.Join(append(tl.Errors, st.Errors...), "; "), t.Thumbnails)
	}
	ratio := "-"
	if st.P99MS > 0 {
		ratio = fmt.Sprintf("%.1fx", tl.P99MS/st.P99MS)
	}
	rp.rows = append(rp.rows, row{name, fmt.Sprintf("p99 %.1f ms", tl.P99MS), fmt.Sprintf("static p99 %.1f ms", st.P99MS),
		ratio, fmt.Sprintf("p99 < %d ms", targetTimelineP99MS), res})
	line := func(label string, r loadResult) string {
		return fmt.Sprintf("| %s | %d/%d in %.1f s (%s) | %.0f | %.1f | %.1f | %.1f | %.1f |", label, r.OK, r.Requests, r.Seconds,
			"stopped by "+r.StoppedBy, float64(r.OK)/r.Seconds, r.P50MS, r.P95MS, r.P99MS, r.MaxMS)
	}
	rp.sections = append(rp.sections, fmt.Sprintf(`## 5. Timeline page p99 (issue 7)

A fresh server with the demo procedure (PWS protocol, %s timepoints), every view of every timepoint given a photo
through the clinic API (`+"`loadtest fill`"+`) and all thumbnails made before the load starts. The load generator signs
in through the login form as a browser does (session cookie, the form's CSRF token), then %d clients GET, for at
most %d requests or %.0f s each, first the static file `+"`%s`"+` of the same server (the baseline), then the
timeline page `+"`/procedures/{id}`"+` (%d bytes, %d thumbnails). Each load starts with %d untimed requests.
Target: p99 under %d ms.

| load | ok/sent | requests/s | p50 ms | p95 ms | p99 ms | max ms |
|---|---|---|---|---|---|---|
%s
%s

Where the CPU went during the timed page load (CPU seconds from /proc/PID/stat):

| load | machine busy | server | MinIO | load generator | PostgreSQL and the rest | server CPU per request |
|---|---|---|---|---|---|---|
%s

Result: **%s**. Server log (level warn): %s.

The page decodes no image per request: the handler (`+"`timeline`"+` in web/clinic_procedure.go) reads rows only
and renders the page; each cell is an `+"`<img src=\"/api/v1/photos/{id}/thumbnail\">`"+`, a separate request for a
thumbnail that the background worker made once, after the upload, and that is streamed from the store as stored.
The page's own work is two database round trips: the session with its user's standing in one query
(web/session_store.go), and one pgx batch of the procedure's reads (`+"`followup.ProcedureRecord`"+`). That batch
reads the procedure with its patient, its clinic and its rows version, which database triggers replace with every
change to its photos, grades, messages, links and reminders; the rows of those, and the schedule, which never changes,
come from a per-process cache while the version says they are current (followup/record_cache.go), so that a page
costs PostgreSQL two statements instead of seven. The page is written in Go with
explicit escaping (web/clinic_timeline_body.go, web/clinic_timeline_grid.go); html/template draws only its frame.
The session is stored in a small binary format (web/session_codec.go) rather than gob, ids travel in binary
(pgx-google-uuid), and the page is rendered into a reused buffer and sent with its length.
`+"`go test -bench TimelinePage ./web/`"+` measures the same page without the network.
%s`, timepointsNote(t), tl.Concurrency, tl.MaxRequests, tl.MaxSeconds, t.StaticPath, t.PageBytes, t.Thumbnails, tl.Warmup,
		targetTimelineP99MS, line("static file (baseline)", st), line("timeline page", tl), cpuLine("timeline page", tl), res, logs, errNote))
}

// timepointsNote says how many timepoints the page had: 8 x 3 views hold 24 thumbnails, the
// baseline's close-up one more.
func timepointsNote(t timelineResult) string {
	if t.Thumbnails >= 24 {
		return "8"
	}
	return "not all 8"
}

// countLog summarises the server's JSON log lines by level.
func countLog(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return "not read"
	}
	levels := map[string]int{}
	for _, line := range strings.Split(string(b), "\n") {
		var e struct {
			Level string `json:"level"`
		}
		if json.Unmarshal([]byte(line), &e) == nil && e.Level != "" {
			levels[e.Level]++
		}
	}
	if len(levels) == 0 {
		return "no warnings or errors"
	}
	var parts []string
	for _, l := range slices.Sorted(maps.Keys(levels)) {
		parts = append(parts, fmt.Sprintf("%d %s", levels[l], l))
	}
	return strings.Join(parts, ", ") + " lines (see the server log of the run)"
}

func table(rows []row, markdown bool) string {
	head := row{"benchmark", "measured", "baseline", "ratio", "target", "result"}
	all := append([]row{head}, rows...)
	var b strings.Builder
	if markdown {
		for i, r := range all {
			fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s |\n", r.name, r.measured, r.baseline, r.ratio, r.target, r.result)
			if i == 0 {
				b.WriteString("|---|---|---|---|---|---|\n")
			}
		}
		return b.String()
	}
	width := make([]int, 6)
	cells := func(r row) []string { return []string{r.name, r.measured, r.baseline, r.ratio, r.target, r.result} }
	for _, r := range all {
		for i, c := range cells(r) {
			width[i] = max(width[i], len([]rune(c)))
		}
	}
	for _, r := range all {
		for i, c := range cells(r) {
			fmt.Fprintf(&b, "%s%s  ", c, strings.Repeat(" ", width[i]-len([]rune(c))))
		}
		b.WriteString("\n")
	}
	return b.String()
}

// spliceDoc replaces the generated part of the document, keeping what is around it.
func spliceDoc(path, generated string) error {
	old, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	text := string(old)
	if text == "" {
		text = "# Performance\n\n"
	}
	before, rest, found := strings.Cut(text, beginMark)
	after := ""
	if found {
		_, after, found = strings.Cut(rest, endMark)
		if !found {
			return fmt.Errorf("%s: %q without %q", path, beginMark, endMark)
		}
	} else {
		before = strings.TrimRight(text, "\n") + "\n\n"
	}
	out := before + beginMark + "\n\n" + strings.TrimSpace(generated) + "\n\n" + endMark + after
	if !strings.HasSuffix(out, "\n") {
		out += "\n"
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return os.WriteFile(path, []byte(out), 0o644)
}

// ---------------------------------------------------------------------------------------------

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

func median(xs []float64) float64 { return percentile(xs, 50) }

// percentile by the nearest-rank method.
func percentile(xs []float64, p float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	sort.Float64s(s)
	i := int(math.Ceil(p/100*float64(len(s)))) - 1
	return s[min(max(i, 0), len(s)-1)]
}

func fmtList(xs []float64) string {
	parts := make([]string, len(xs))
	for i, x := range xs {
		parts[i] = strconv.FormatFloat(x, 'f', 0, 64)
	}
	return strings.Join(parts, ", ")
}

func fmtSeconds(s float64) string { return (time.Duration(s) * time.Second).String() }

// ---------------------------------------------------------------------------------------------
// CPU accounting from /proc: where the cores went during a load

type cpuAccount struct {
	pids      map[string]int
	procs     map[string]float64
	busy, all float64
}

func startCPUAccount(spec string) (*cpuAccount, error) {
	a := &cpuAccount{pids: map[string]int{"loadtest": os.Getpid()}}
	for _, kv := range strings.Split(spec, ",") {
		if kv == "" {
			continue
		}
		name, p, ok := strings.Cut(kv, "=")
		pid, err := strconv.Atoi(p)
		if !ok || err != nil || pid <= 0 {
			return nil, fmt.Errorf("-cpu %q: want name=pid", kv)
		}
		a.pids[name] = pid
	}
	a.procs = a.sample()
	a.busy, a.all = machineCPU()
	return a, nil
}

// stop returns the CPU seconds each process used since the start, and the machine's busy share.
func (a *cpuAccount) stop() (map[string]float64, float64) {
	now := a.sample()
	out := map[string]float64{}
	for name, s := range now {
		if was, ok := a.procs[name]; ok {
			out[name] = math.Round((s-was)*100) / 100
		}
	}
	busy, all := machineCPU()
	pct := 0.0
	if all > a.all {
		pct = math.Round(100*(busy-a.busy)/(all-a.all)*10) / 10
	}
	return out, pct
}

func (a *cpuAccount) sample() map[string]float64 {
	out := map[string]float64{}
	for name, pid := range a.pids {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			continue
		}
		// Fields after the command name, which may hold spaces: state is field 3, utime 14, stime 15.
		f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
		if len(f) < 13 {
			continue
		}
		ut, _ := strconv.ParseFloat(f[11], 64)
		st, _ := strconv.ParseFloat(f[12], 64)
		out[name] = (ut + st) / clockTicks
	}
	return out
}

// clockTicks is USER_HZ, 100 on every Linux architecture Go supports in practice.
const clockTicks = 100

// machineCPU returns busy and total jiffies of all cores from /proc/stat.
func machineCPU() (busy, all float64) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, 0
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	for i, v := range f[1:] {
		x, _ := strconv.ParseFloat(v, 64)
		if i >= 8 { // guest time is already counted in user time
			break
		}
		all += x
		if i != 3 && i != 4 { // idle, iowait
			busy += x
		}
	}
	return busy, all
}

// ---------------------------------------------------------------------------------------------
// fill and timeline: the clinician's timeline page under concurrent requests

// targetTimelineP99MS is issue 7's target for the timeline page at 32 concurrent requests.
const targetTimelineP99MS = 50

// procedureJSON is the part of GET /api/v1/procedures/{id} that fill reads.
type procedureJSON struct {
	Timepoints []struct {
		Key   string   `json:"key"`
		Views []string `json:"views"`
	} `json:"timepoints"`
	Photos []struct {
		Timepoint string `json:"timepoint"`
		View      string `json:"view"`
		Status    string `json:"status"`
	} `json:"photos"`
}

// benchBase checks that base is an http URL on this machine and returns it without a
// trailing slash.
func benchBase(base string) (string, error) {
	u, err := url.Parse(base)
	if err != nil || u.Scheme != "http" || u.Host == "" {
		return "", fmt.Errorf("-base %q: want http://127.0.0.1:PORT", base)
	}
	if err := loopbackOnly(u.Host); err != nil {
		return "", err
	}
	return strings.TrimSuffix(base, "/"), nil
}

// cmdFill uploads one photo through the clinic API into every view of every timepoint of the
// procedure that has no active photo yet, so that the timeline has a thumbnail in each cell.
func cmdFill(args []string) error {
	fs := flag.NewFlagSet("fill", flag.ExitOnError)
	baseFlag := fs.String("base", "", "server URL, http://127.0.0.1:PORT")
	proc := fs.String("procedure", "", "procedure id")
	file := fs.String("file", "", "photo to upload into every empty cell")
	fs.Parse(args)
	token := os.Getenv("LOADTEST_TOKEN")
	if *proc == "" || *file == "" || token == "" {
		return errors.New("-procedure, -file and LOADTEST_TOKEN (an API token of a clinician) are required")
	}
	base, err := benchBase(*baseFlag)
	if err != nil {
		return err
	}
	photo, err := os.ReadFile(*file)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	client := &http.Client{Timeout: time.Minute}
	call := func(req *http.Request) (int, []byte, error) {
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := client.Do(req)
		if err != nil {
			return 0, nil, err
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
		return resp.StatusCode, body, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/api/v1/procedures/"+url.PathEscape(*proc), nil)
	if err != nil {
		return err
	}
	status, body, err := call(req)
	if err != nil || status != http.StatusOK {
		return fmt.Errorf("GET the procedure: %d %v %s", status, err, bytes.TrimSpace(body))
	}
	var p procedureJSON
	if err := json.Unmarshal(body, &p); err != nil {
		return err
	}
	have := map[string]bool{}
	for _, ph := range p.Photos {
		if ph.Status == "active" {
			have[ph.Timepoint+"/"+ph.View] = true
		}
	}
	cells, uploaded := 0, 0
	for _, tp := range p.Timepoints {
		for _, v := range tp.Views {
			cells++
			if have[tp.Key+"/"+v] {
				continue
			}
			mp, ctype, length := multipartBody(tp.Key, v, "bench-fill-"+tp.Key+"-"+v, photo)
			req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/api/v1/procedures/"+url.PathEscape(*proc)+"/photos", mp)
			if err != nil {
				return err
			}
			req.Header.Set("Content-Type", ctype)
			req.ContentLength = length
			status, body, err := call(req)
			if err != nil || (status != http.StatusCreated && status != http.StatusOK) {
				return fmt.Errorf("upload %s/%s: %d %v %s", tp.Key, v, status, err, bytes.TrimSpace(body))
			}
			uploaded++
		}
	}
	fmt.Fprintf(os.Stderr, "fill: %d timepoints, %d cells, %d photos uploaded\n", len(p.Timepoints), cells, uploaded)
	return nil
}

// timelineResult is what the timeline mode writes: both loads and what the page held.
type timelineResult struct {
	PageBytes  int        `json:"page_bytes"`
	Thumbnails int        `json:"thumbnails"` // thumbnail <img> elements on the page
	Timeline   loadResult `json:"timeline"`
	Static     loadResult `json:"static"`
	StaticPath string     `json:"static_path"`
}

var thumbnailImg = regexp.MustCompile(`<img src="/api/v1/photos/[0-9a-f-]{36}/thumbnail"`)

// cmdTimeline signs in through the login form as a browser does (the session cookie and the
// form's CSRF token), then loads the static file and the procedure's timeline page with the
// same clients, each bounded in count and time.
func cmdTimeline(args []string) error {
	fs := flag.NewFlagSet("timeline", flag.ExitOnError)
	baseFlag := fs.String("base", "", "server URL, http://127.0.0.1:PORT")
	proc := fs.String("procedure", "", "procedure id")
	email := fs.String("email", "", "the clinician's email (the password is read from LOADTEST_PASSWORD)")
	staticPath := fs.String("static", "/static/base.css", "static file of the same server: the baseline")
	c := fs.Int("c", 32, "concurrent clients")
	n := fs.Int("n", 20000, "timed requests at most, per load")
	warmup := fs.Int("warmup", 64, "untimed requests first, per load")
	duration := fs.Duration("duration", 30*time.Second, "stop starting requests after this long, per load")
	cpu := fs.String("cpu", "", "processes whose CPU time to account, name=pid,...")
	out := fs.String("out", "", "result JSON")
	fs.Parse(args)
	password := os.Getenv("LOADTEST_PASSWORD")
	if *proc == "" || *email == "" || password == "" || *out == "" || *c < 1 || *n < 1 {
		return errors.New("-procedure, -email, -out, -c >= 1, -n >= 1 and LOADTEST_PASSWORD are required")
	}
	base, err := benchBase(*baseFlag)
	if err != nil {
		return err
	}
	jar, err := cookiejar.New(nil)
	if err != nil {
		return err
	}
	client := &http.Client{Jar: jar, Timeout: 30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		Transport:     &http.Transport{MaxIdleConnsPerHost: *c, Proxy: nil}}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	fetch := func(ctx context.Context, method, path string, form url.Values) (int, http.Header, []byte, error) {
		var body io.Reader
		if form != nil {
			body = strings.NewReader(form.Encode())
		}
		req, err := http.NewRequestWithContext(ctx, method, base+path, body)
		if err != nil {
			return 0, nil, nil, err
		}
		if form != nil {
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		}
		resp, err := client.Do(req)
		if err != nil {
			return 0, nil, nil, err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		return resp.StatusCode, resp.Header, b, err
	}

	pagePath := "/procedures/" + url.PathEscape(*proc)
	status, _, body, err := fetch(ctx, http.MethodGet, "/login", nil)
	if err != nil || status != http.StatusOK {
		return fmt.Errorf("GET /login: %d %v", status, err)
	}
	m := regexp.MustCompile(`name="csrf_token" value="([^"]+)"`).FindSubmatch(body)
	if m == nil {
		return errors.New("GET /login: no CSRF token in the form")
	}
	status, hdr, _, err := fetch(ctx, http.MethodPost, "/login", url.Values{"email": {*email}, "password": {password},
		"csrf_token": {string(m[1])}, "next": {pagePath}})
	if err != nil || status != http.StatusSeeOther || hdr.Get("Location") != pagePath {
		return fmt.Errorf("sign-in: %d %v (redirect to %q)", status, err, hdr.Get("Location"))
	}
	status, _, body, err = fetch(ctx, http.MethodGet, pagePath, nil)
	if err != nil || status != http.StatusOK {
		return fmt.Errorf("GET the timeline: %d %v", status, err)
	}
	res := timelineResult{PageBytes: len(body), Thumbnails: len(thumbnailImg.FindAll(body, -1)), StaticPath: *staticPath}
	fmt.Fprintf(os.Stderr, "timeline: signed in; the page is %d bytes with %d thumbnails\n", res.PageBytes, res.Thumbnails)

	get := func(path string) send {
		return func(ctx context.Context, _ int, _ []byte) (string, error) {
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+path, nil)
			if err != nil {
				return "error", err
			}
			resp, err := client.Do(req)
			if err != nil {
				return "error", err
			}
			defer resp.Body.Close()
			if _, err := io.Copy(io.Discard, resp.Body); err != nil {
				return "error", err
			}
			if resp.StatusCode != http.StatusOK {
				return strconv.Itoa(resp.StatusCode), fmt.Errorf("GET %s answered %s", path, resp.Status)
			}
			return "200", nil
		}
	}
	none := ""
	lf := loadFlags{files: &none, c: c, n: n, warmup: warmup, duration: duration, cpu: cpu, out: out}
	empty := [][]byte{{}}
	if res.Static, err = drive("static", lf, empty, get(*staticPath), "200", 0); err != nil {
		return err
	}
	if res.Timeline, err = drive("timeline", lf, empty, get(pagePath), "200", 0); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "timeline: p99 %.1f ms against static p99 %.1f ms\n", res.Timeline.P99MS, res.Static.P99MS)
	return writeJSON(*out, res)
}
