package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/textproto"
	"net/url"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/dermfollow/dermfollow/imagestore"
)

// Ingest (issue 5): parent uploads to the server (loadtest ingest; with -kind memory also the
// upload-memory benchmark of memory.go) against a plain PutObject of the same bytes
// (loadtest put), and their section of the report.

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
	r := ratio(in.MBPerS, put.MBPerS)
	res := verdict(r >= targetIngestRatio)
	errNote := ""
	if in.Failed > 0 || put.Failed > 0 || in.OK == 0 || put.OK == 0 {
		rp.errors++
		res = "ERROR"
		errNote = fmt.Sprintf("\n**Errors**: %d of %d uploads and %d of %d puts failed: %s\n",
			in.Failed, in.Requests, put.Failed, put.Requests, strings.Join(append(in.Errors, put.Errors...), "; "))
	}
	rp.rows = append(rp.rows, row{name, fmt.Sprintf("%.1f MB/s", in.MBPerS), fmt.Sprintf("%.1f MB/s", put.MBPerS),
		fmt.Sprintf("%.2f", r), "≥ 0.8", res})
	rp.sections = append(rp.sections, fmt.Sprintf(ingestText, in.Concurrency, in.Files, float64(in.FileBytes)/mb, in.MaxRequests,
		fmtSeconds(in.MaxSeconds), in.Warmup, after.ThumbsPending, after.Photos,
		ingestLine("ingest (server)", in), ingestLine("PutObject (baseline)", put), cpuLine("ingest (server)", in), cpuLine("PutObject (baseline)", put),
		r, res, logs, errNote))
}

func ingestLine(label string, r loadResult) string {
	stop := ""
	if r.StoppedBy == "time" {
		stop = " (time limit)"
	}
	return fmt.Sprintf("| %s | %d/%d | %.1f s%s | %.2f | %.1f | %.0f ms | %.0f ms | %.0f ms |",
		label, r.OK, r.Requests, r.Seconds, stop, r.PhotosPerS, r.MBPerS, r.P50MS, r.P95MS, r.MaxMS)
}

const ingestText = `## 3. Ingest vs PutObject (issue 5)

%d concurrent clients send %d distinct photographic JPEGs (%.2f MB each on average, 2400x1800, quality 95) in turn,
up to %d timed requests or %s, whichever comes first, after %d untimed warm-up requests.
Ingest: ` + "`POST /p/{token}/photos`" + ` (multipart) to the real server binary, which holds the upload in memory
(chunks of a 64 MiB budget; beyond it, a temp file), sanitizes it, streams it to MinIO with SSE-S3 while hashing
it, and commits the row and an audit event. Baseline, just before, same bytes and concurrency: one minio-go ` + "`PutObject`" + ` per photo straight to
the same MinIO with exactly the server's options, through the server's own store code (` + "`imagestore.S3Store.Put`" + `:
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
%s`
