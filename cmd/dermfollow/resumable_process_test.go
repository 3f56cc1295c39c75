package main

import (
	"bytes"
	"context"
	"image"
	"image/jpeg"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/dermfollow/dermfollow/imagestore"
	"github.com/dermfollow/dermfollow/imagestore/imagetest"
	"github.com/dermfollow/dermfollow/web/browsertest"
)

// noisePhoto is a phone JPEG (EXIF with GPS, XMP, a trailer) of about size bytes of noise.
func noisePhoto(t *testing.T, size int) []byte {
	t.Helper()
	side := 64
	for side*side*6/5 < size {
		side += 16
	}
	img := image.NewRGBA(image.Rect(0, 0, side, side))
	r := rand.New(rand.NewPCG(uint64(size), 3))
	for i := range img.Pix {
		img.Pix[i] = byte(r.IntN(256))
		if i%4 == 3 {
			img.Pix[i] = 255
		}
	}
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, img, &jpeg.Options{Quality: 95}); err != nil {
		t.Fatal(err)
	}
	exif := imagetest.EXIF(1, imagetest.JPEG(16, 12, 1))
	n := len(exif) + 8
	app1 := append([]byte{0xFF, 0xE1, byte(n >> 8), byte(n)}, append([]byte("Exif\x00\x00"), exif...)...)
	out := append([]byte{0xFF, 0xD8}, app1...)
	return imagetest.WithTrailer(append(out, buf.Bytes()[2:]...))
}

// A server that dies mid-upload (SIGKILL) and is started again, or that stops (SIGTERM) with a
// second server beside it behind the balancer, does not cost the family its photo or its
// bytes: the page, in Chromium behind a slow link, goes on with the server that takes the
// requests, from the offset the first one had staged. (With two servers the balancer sends
// each request to the next one, so the upload's pieces alternate between them throughout.)
func TestResumableUploadOutlivesItsServer(t *testing.T) {
	t.Parallel()
	for _, sig := range []syscall.Signal{syscall.SIGKILL, syscall.SIGTERM} {
		t.Run(sig.String(), func(t *testing.T) {
			t.Parallel()
			// A stopping server drains first (its in-flight upload ends, its bytes staged).
			d := newDeployment(t, map[string]string{"DERMFOLLOW_SHUTDOWN_TIMEOUT": "5s", "DERMFOLLOW_DRAIN_DELAY": "1s"})
			a := d.start(t)
			d.open(t)
			urls := []string{a.URL}
			var b *proc
			if sig == syscall.SIGTERM {
				b = d.start(t)
				urls = append(urls, b.URL)
			}
			lb, lbURL := newBalancer(t, urls...)
			waitReady(t, lb, len(urls))
			f := d.newFamily(t, "UTC", "")
			photo := noisePhoto(t, 900<<10)
			path := filepath.Join(t.TempDir(), "IMG_0042.JPG")
			if err := os.WriteFile(path, photo, 0o600); err != nil {
				t.Fatal(err)
			}
			proxy := browsertest.NewNetProxy(t, lbURL)
			tab := browsertest.NewLong(t, browsertest.Phone, 3*time.Minute)
			if err := chromedp.Do(tab, chromedp.Navigate(proxy.URL()+"/p/"+f.linkToken), chromedp.WaitVisible(chromedp.CSS("#now"))); err != nil {
				t.Fatal(err)
			}
			proxy.SetRate(60 << 10)
			base := proxy.Upstream()
			if err := chromedp.Do(tab, chromedp.SetUploadFiles(chromedp.CSS("#card-1-camera"), []string{path})); err != nil {
				t.Fatal(err)
			}
			if err := proxy.WaitUpstream(tab, base+int64(len(photo))/2); err != nil {
				t.Fatal(err)
			}
			var staged int64
			if sig == syscall.SIGKILL {
				a.kill()
			} else if err := a.term(t, 30*time.Second); err != nil {
				t.Errorf("the stopped server did not stop cleanly: %v", err)
			}
			// What the proxy sent the first server includes what filled the socket buffers of a
			// connection it had stopped reading: counted from here, the bytes are the second's.
			gone := proxy.Upstream()
			d.pool.QueryRow(context.Background(), `select coalesce(max(offset_bytes), 0) from resumable_uploads`).Scan(&staged)
			t.Logf("%d of %d bytes staged when the first server was gone", staged, len(photo))
			if staged == 0 {
				t.Error("nothing was staged before the server went: the upload would start over")
			}
			if sig == syscall.SIGKILL {
				b = d.start(t)
				lb.Set(0, b.URL)
			}
			if err := chromedp.Do(tab, chromedp.WaitVisible(chromedp.CSS(`#card-1 li[data-state="sent"]`))); err != nil {
				text, _ := chromedp.Run(tab, chromedp.Evaluate[string](`(document.querySelector("#card-1 li")||{}).textContent||""`))
				t.Fatalf("the photo did not arrive on the second server: %v (%q)\n%s", err, text, b.logs)
			}
			sent, after := proxy.Upstream()-base, proxy.Upstream()-gone
			t.Logf("%d bytes up for a %d byte photo (%.2fx), %d of them after the first server was gone (%d left to send)",
				sent, len(photo), float64(sent)/float64(len(photo)), after, int64(len(photo))-staged)
			// Going on from the offset sends what was left; starting over, the whole photo again.
			if float64(after) > float64(int64(len(photo))-staged)+0.15*float64(len(photo)) {
				t.Errorf("%d bytes sent after the first server for %d left: the second server did not go on from the offset",
					after, int64(len(photo))-staged)
				if os.Getenv("DEBUG_TUS") != "" {
					t.Logf("first:\n%s\nsecond:\n%s", a.logs, b.logs)
				}
			}
			var key string
			var n int
			d.pool.QueryRow(context.Background(), `select count(*), min(object_key) from photos where procedure_id = $1`, f.procedure).Scan(&n, &key)
			if n != 1 {
				t.Fatalf("%d photos stored, want 1", n)
			}
			rc, _, err := d.store.Open(context.Background(), key)
			if err != nil {
				t.Fatal(err)
			}
			stored, _ := io.ReadAll(rc)
			rc.Close()
			imagetest.ExiftoolFindsNoMetadata(t, stored)
			left := 0
			d.store.List(context.Background(), "staging/", func(imagestore.ObjectInfo) error { left++; return nil })
			if left != 0 {
				t.Errorf("%d staged objects left after the photo was stored", left)
			}
		})
	}
}
