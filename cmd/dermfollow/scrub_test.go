package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/dermfollow/dermfollow/imagestore"
	"github.com/dermfollow/dermfollow/imagestore/imagetest"
)

func TestScrub(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	in, out := filepath.Join(dir, "in.jpg"), filepath.Join(dir, "out.jpg")
	os.WriteFile(in, imagetest.PhoneJPEG(64, 48, 1, 6), 0o644)
	stdout, _, err := runCmd(t, nil, "", "scrub", "-v", in, out)
	if err != nil {
		t.Fatal(err)
	}
	clean, _ := os.ReadFile(out)
	if _, err := imagestore.Verify(bytes.NewReader(clean), int64(len(clean))); err != nil {
		t.Errorf("scrubbed file fails the verifier: %v", err)
	}
	// The same bytes an upload would store.
	want, _, err := imagestore.SanitizeBytes(imagetest.PhoneJPEG(64, 48, 1, 6), imagestore.DefaultLimits())
	if err != nil || !bytes.Equal(clean, want) {
		t.Errorf("scrub output differs from the upload sanitizer's (%v)", err)
	}
	for _, marker := range []string{imagetest.SerialMarker, imagetest.XMPMarker, imagetest.OwnerMarker} {
		if bytes.Contains(clean, []byte(marker)) || strings.Contains(stdout, marker) {
			t.Errorf("%q survived scrub or was printed", marker)
		}
	}
	for _, want := range []string{"removed exif", "removed xmp", "removed trailer", "orientation 6"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("scrub -v output lacks %q:\n%s", want, stdout)
		}
	}

	// Refusals: non-zero, one line, OUT untouched.
	heic := filepath.Join(dir, "x.heic")
	os.WriteFile(heic, imagetest.HEIC(), 0o644)
	os.WriteFile(out, []byte("previous"), 0o644)
	_, _, err = runCmd(t, nil, "", "scrub", heic, out)
	if err == nil || strings.Contains(err.Error(), "\n") || !strings.Contains(err.Error(), "heic") {
		t.Errorf("scrub of a HEIC: %v, want a one-line refusal", err)
	}
	if b, _ := os.ReadFile(out); string(b) != "previous" {
		t.Error("a refused scrub changed OUT")
	}
	if _, _, err := runCmd(t, nil, "", "scrub", filepath.Join(dir, "missing.jpg"), out); err == nil {
		t.Error("scrub of a missing file succeeded")
	}
	if _, _, err := runCmd(t, nil, "", "scrub", in); err == nil {
		t.Error("scrub without OUT succeeded")
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 3 {
		t.Errorf("scrub left temp files: %v", entries)
	}
}

// TestScrubStrayBytes: a JPEG with bytes between two segments is accepted, -v says
// how many were dropped, and the output is what the same photo without them gives.
func TestScrubStrayBytes(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	photo := imagetest.PhoneJPEG(64, 48, 1, 6)
	first := 4 + int(photo[4])<<8 + int(photo[5]) // SOI, then the first segment's marker and length
	stray := []byte("\x00\x00STRAY-BYTES!")
	in, out := filepath.Join(dir, "in.jpg"), filepath.Join(dir, "out.jpg")
	os.WriteFile(in, slices.Concat(photo[:first], stray, photo[first:]), 0o644)
	stdout, _, err := runCmd(t, nil, "", "scrub", "-v", in, out)
	if err != nil {
		t.Fatalf("scrub refused a JPEG with stray bytes: %v", err)
	}
	if want := fmt.Sprintf("removed stray-bytes %d bytes", len(stray)); !strings.Contains(stdout, want) {
		t.Errorf("scrub -v output lacks %q:\n%s", want, stdout)
	}
	clean, _ := os.ReadFile(out)
	want, _, err := imagestore.SanitizeBytes(photo, imagestore.DefaultLimits())
	if err != nil || !bytes.Equal(clean, want) {
		t.Errorf("output differs from the same photo's without stray bytes (%v)", err)
	}
}
