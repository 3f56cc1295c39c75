package main

import (
	"bytes"
	"io"
	"mime"
	"mime/multipart"
	"testing"
)

func TestMultipartBody(t *testing.T) {
	photo := bytes.Repeat([]byte{0xff, 0xd8, 1, 2, 3}, 1000)
	body, ctype, length := multipartBody("day-1", "front", "bench-x-1", photo)
	raw, err := io.ReadAll(body)
	if err != nil {
		t.Fatal(err)
	}
	if int64(len(raw)) != length {
		t.Fatalf("Content-Length %d for a body of %d bytes", length, len(raw))
	}
	_, params, err := mime.ParseMediaType(ctype)
	if err != nil {
		t.Fatal(err)
	}
	form, err := multipart.NewReader(bytes.NewReader(raw), params["boundary"]).ReadForm(1 << 20)
	if err != nil {
		t.Fatal(err)
	}
	if form.Value["timepoint"][0] != "day-1" || form.Value["view"][0] != "front" || form.Value["upload_id"][0] != "bench-x-1" {
		t.Fatalf("fields = %v", form.Value)
	}
	f, err := form.File["file"][0].Open()
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(f)
	if !bytes.Equal(got, photo) {
		t.Fatalf("file part of %d bytes, want the photo's %d", len(got), len(photo))
	}
}

func TestRedactToken(t *testing.T) {
	got := redactToken(`Post "http://127.0.0.1:4000/p/abc_DEF-123/photos": connection reset`)
	if got != `Post "http://127.0.0.1:4000/p/TOKEN/photos": connection reset` {
		t.Fatalf("redactToken = %q", got)
	}
}
