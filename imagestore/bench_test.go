package imagestore

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"image"
	"image/jpeg"
	"io"
	"math/rand/v2"
	"os"
	"sync"
	"testing"

	"github.com/dermfollow/dermfollow/imagestore/internal/jpegscale/jpegtest"
)

const (
	benchPhotoWidth   = 4000
	benchPhotoHeight  = 3000
	benchPhotoQuality = 92
)

// benchPhoto is the 12 MP benchmark JPEG, built once per process: encoding it takes seconds.
var benchPhoto = sync.OnceValues(func() ([]byte, error) {
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, photographic(benchPhotoWidth, benchPhotoHeight), &jpeg.Options{Quality: benchPhotoQuality}); err != nil {
		return nil, err
	}
	// Phone-like metadata in front: EXIF with GPS, serials, maker note and a thumbnail; XMP.
	tiff := exifTIFF(exifOptions{order: binary.LittleEndian, orientation: 6,
		dateTime: "2024:05:06 07:08:09", offset: "+08:00", full: true})
	return cat(withSegments(buf.Bytes(), exifAPP1(tiff), xmpSegment(secretXMP)), motionTrailer()), nil
})

// photographic makes an image that compresses like a photo: smooth gradients (sky, skin)
// with sensor-like noise, so a 12 MP JPEG at quality 92 lands at a few MB.
func photographic(w, h int) *image.YCbCr {
	img := image.NewYCbCr(image.Rect(0, 0, w, h), image.YCbCrSubsampleRatio420)
	rng := rand.New(rand.NewPCG(1, 2))
	for y := range h {
		row := img.Y[y*img.YStride : y*img.YStride+w]
		for x := range row {
			v := 40 + 150*x/w + 40*y/h + int(rng.Uint32()%24)
			row[x] = uint8(min(v, 255))
		}
	}
	for y := range (h + 1) / 2 {
		for x := range (w + 1) / 2 {
			i := y*img.CStride + x
			img.Cb[i] = uint8(110 + 30*y/h + int(rng.Uint32()%6))
			img.Cr[i] = uint8(140 + 20*x/w + int(rng.Uint32()%6))
		}
	}
	return img
}

// WriteBenchPhoto writes the 12 MP benchmark JPEG to path, for comparisons with other tools
// (make bench runs TestWriteBenchPhoto with DERMFOLLOW_BENCH_PHOTO set).
func WriteBenchPhoto(path string) error {
	b, err := benchPhoto()
	if err != nil {
		return err
	}
	return os.WriteFile(path, b, 0o644)
}

// TestWriteBenchPhoto writes the benchmark photo where DERMFOLLOW_BENCH_PHOTO says; without it
// there is nothing to do.
func TestWriteBenchPhoto(t *testing.T) {
	path := os.Getenv("DERMFOLLOW_BENCH_PHOTO")
	if path == "" {
		t.Log("DERMFOLLOW_BENCH_PHOTO not set; nothing written")
		return
	}
	if err := WriteBenchPhoto(path); err != nil {
		t.Fatal(err)
	}
}

func mustBenchPhoto(b *testing.B) []byte {
	b.Helper()
	photo, err := benchPhoto()
	if err != nil {
		b.Fatal(err)
	}
	return photo
}

func BenchmarkSanitizeJPEG12MP(b *testing.B) {
	photo := mustBenchPhoto(b)
	b.Logf("photo: %dx%d, %d bytes", benchPhotoWidth, benchPhotoHeight, len(photo))
	b.Run("bytes", func(b *testing.B) {
		b.SetBytes(int64(len(photo)))
		b.ReportAllocs()
		for b.Loop() {
			if _, _, err := SanitizeBytes(photo, DefaultLimits()); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("stream", func(b *testing.B) {
		b.SetBytes(int64(len(photo)))
		b.ReportAllocs()
		r := bytes.NewReader(photo)
		for b.Loop() {
			c, err := Sanitize(r, int64(len(photo)), DefaultLimits())
			if err != nil {
				b.Fatal(err)
			}
			if _, err := io.Copy(io.Discard, c.NewReader()); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// benchPhotoProgressive is the benchmark photo's picture as a progressive JPEG (libjpeg's
// default script, at the same quality), as web tools and some apps save photos.
var benchPhotoProgressive = sync.OnceValues(func() ([]byte, error) {
	var buf bytes.Buffer
	err := jpegtest.Encode(&buf, photographic(benchPhotoWidth, benchPhotoHeight), jpegtest.Options{Quality: benchPhotoQuality, Progressive: true})
	return buf.Bytes(), err
})

// BenchmarkThumbnail12MP: thumbnails of the 12 MP benchmark photo, sanitized, as a baseline
// and as a progressive JPEG (orientation 6, so the orientation step is in). reserved-MB is
// what the thumbnails took from the decode budget: what decoding and making them holds.
func BenchmarkThumbnail12MP(b *testing.B) {
	baseline, _, err := SanitizeBytes(mustBenchPhoto(b), DefaultLimits())
	if err != nil {
		b.Fatal(err)
	}
	progressive, err := benchPhotoProgressive()
	if err != nil {
		b.Fatal(err)
	}
	run := func(b *testing.B, photo []byte, sizes []ThumbSize) {
		b.ReportAllocs()
		budget := NewDecodeBudget(1<<30, 0)
		for b.Loop() {
			if _, err := budget.Thumbnails(context.Background(), bytes.NewReader(photo), int64(len(photo)), 6, sizes, Limits{}); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(budget.Peak())/1e6, "reserved-MB")
	}
	for _, kind := range []struct {
		name  string
		photo []byte
	}{{"", baseline}, {"progressive-", progressive}} {
		for _, size := range ThumbSizes() {
			b.Run(fmt.Sprint(kind.name, size.MaxSide), func(b *testing.B) { run(b, kind.photo, []ThumbSize{size}) })
		}
		b.Run(kind.name+"all-sizes-one-decode", func(b *testing.B) { run(b, kind.photo, ThumbSizes()) })
	}
}
