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
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/dermfollow/dermfollow/imagestore"
)

// Ingest: parent uploads to the server (loadtest ingest; with -kind memory
// also the upload-memory benchmark of memory.go) against a plain PutObject of the same bytes
// (loadtest put). Their section of the report is in ingest_report.go.

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
