package imagestore

import (
	"bytes"
	"compress/zlib"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"image"
	"image/color"
	"image/jpeg"
	"io"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dermfollow/dermfollow/imagestore/internal/jpegscale/jpegtest"
)

// TestThumbnailOrientation: a landscape photo with a red top-left corner, stored with each
// EXIF orientation, must come out upright: dimensions swapped for 5-8 and the corner where
// the orientation puts it.
func TestThumbnailOrientation(t *testing.T) {
	t.Parallel()
	src := encodeJPEG(t, testImage(80, 40), 95)
	// Where the stored top-left corner appears once displayed upright.
	corner := map[int]string{1: "tl", 2: "tr", 3: "br", 4: "bl", 5: "tl", 6: "tr", 7: "br", 8: "bl"}
	for o := 1; o <= 8; o++ {
		out, err := Thumbnail(bytes.NewReader(src), o, 320)
		if err != nil {
			t.Fatal(err)
		}
		img, err := jpeg.Decode(bytes.NewReader(out))
		if err != nil {
			t.Fatal(err)
		}
		w, h := img.Bounds().Dx(), img.Bounds().Dy()
		if (o >= 5) != (h > w) {
			t.Errorf("orientation %d: %dx%d", o, w, h)
		}
		at := map[string]image.Point{"tl": {2, 2}, "tr": {w - 3, 2}, "br": {w - 3, h - 3}, "bl": {2, h - 3}}
		for name, p := range at {
			if red := isRed(img.At(p.X, p.Y)); red != (name == corner[o]) {
				t.Errorf("orientation %d: corner %s red=%v", o, name, red)
			}
		}
	}
}

func isRed(c color.Color) bool {
	r, g, b, _ := c.RGBA()
	return r>>8 > 200 && g>>8 < 80 && b>>8 < 80
}

func TestThumbnailSizes(t *testing.T) {
	t.Parallel()
	big := encodeJPEG(t, testImage(1300, 650), 50)
	thumbs, err := Thumbnails(bytes.NewReader(big), 1, ThumbSizes(), DefaultLimits())
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]image.Point{"small": {320, 160}, "large": {1280, 640}}
	if len(thumbs) != len(want) {
		t.Fatalf("%d thumbnails", len(thumbs))
	}
	for _, th := range thumbs {
		cfg, err := jpeg.DecodeConfig(bytes.NewReader(th.JPEG))
		if err != nil {
			t.Fatal(err)
		}
		if p := want[th.Size.Name]; cfg.Width != p.X || cfg.Height != p.Y {
			t.Errorf("%s: %dx%d", th.Size.Name, cfg.Width, cfg.Height)
		}
	}
	// Small images are not enlarged.
	small, err := Thumbnail(bytes.NewReader(encodeJPEG(t, testImage(100, 50), 80)), 6, 1280)
	if err != nil {
		t.Fatal(err)
	}
	if cfg, _ := jpeg.DecodeConfig(bytes.NewReader(small)); cfg.Width != 50 || cfg.Height != 100 {
		t.Errorf("small image: %dx%d", cfg.Width, cfg.Height)
	}
}

// TestThumbnailFormats: PNG with alpha is flattened onto white; WebP decodes.
func TestThumbnailFormats(t *testing.T) {
	t.Parallel()
	img := image.NewNRGBA(image.Rect(0, 0, 40, 40))
	img.SetNRGBA(20, 20, color.NRGBA{0, 0, 255, 255})
	out, err := Thumbnail(bytes.NewReader(encodePNG(t, img)), 1, 320)
	if err != nil {
		t.Fatal(err)
	}
	dec, err := jpeg.Decode(bytes.NewReader(out))
	if err != nil {
		t.Fatal(err)
	}
	if r, g, b, _ := dec.At(2, 2).RGBA(); r>>8 < 240 || g>>8 < 240 || b>>8 < 240 {
		t.Errorf("transparent area not white: %v", dec.At(2, 2))
	}
	for _, name := range []string{"yellow_rose.lossy-with-alpha.webp", "gopher-doc.with-alpha.lossless.webp"} {
		if _, err := Thumbnail(bytes.NewReader(readTestdata(t, name)), 1, 64); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	if _, err := Thumbnail(strings.NewReader("GIF89a......"), 1, 64); err == nil {
		t.Error("GIF accepted")
	}
}

func TestThumbKey(t *testing.T) {
	t.Parallel()
	const sum = "9F86D081884C7D659A2FEAA0C55AD015A3BF4F1B2B0B822CD15D6C15B0F00A08"
	got := ThumbKey(sum, ThumbSizes()[0])
	if got != "thumbs/"+strings.ToLower(sum)+"/small-320.jpg" {
		t.Errorf("ThumbKey = %s", got)
	}
	sizes := ThumbSizes()
	sizes[0].MaxSide = 1
	if ThumbSizes()[0].MaxSide != 320 {
		t.Error("the size table can be changed by a caller")
	}
}

func TestJPEGScaleChoice(t *testing.T) {
	t.Parallel()
	cases := []struct{ w, h, target, want int }{
		{4000, 3000, 1280, 2}, // 2000 >= 1280, 1000 is not
		{4000, 3000, 320, 8},  // 500
		{3000, 4000, 320, 8},  // the longer side, whichever it is
		{10000, 10000, 1280, 4},
		{2560, 1920, 1280, 2},
		{2559, 1919, 1280, 2}, // 1280 after rounding up
		{2558, 1918, 1280, 1},
		{1280, 960, 1280, 1},
		{100, 50, 320, 1},
		{20000, 5000, 320, 8},
	}
	for _, c := range cases {
		if got := jpegScale(c.w, c.h, c.target); got != c.want {
			t.Errorf("%dx%d to %d: 1/%d, want 1/%d", c.w, c.h, c.target, got, c.want)
		}
	}
}

// allocatedBy runs f and returns the bytes the process allocated meanwhile (the caller must not
// run in parallel with other tests).
func allocatedBy(f func()) int64 {
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return int64(after.TotalAlloc - before.TotalAlloc)
}

// craftedJPEG is the crafted photo of the fault tests: a small (about 12 KB) progressive JPEG whose frame header
// is patched to claim 10000x10000 pixels, exactly the pixel limit (which the check lets
// through).
func craftedJPEG(t testing.TB) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := jpegtest.Encode(&buf, skinPhoto(500, 375), jpegtest.Options{Quality: 75, Progressive: true}); err != nil {
		t.Fatal(err)
	}
	data, err := jpegtest.WithSize(buf.Bytes(), 10000, 10000)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// unsized hides a reader's size.
type unsized struct{ r io.Reader }

func (u unsized) Read(p []byte) (int, error) { return u.r.Read(p) }

// TestThumbnailsCraftedHeader: the crafted 10000x10000 JPEG fails fast, for less than 20 MB,
// when its size is known (refused from its header: more pixels than bytes can hold) and when
// it is not (a damaged photo: the decoder allocates as its scans reach rows, and they end
// early).
func TestThumbnailsCraftedHeader(t *testing.T) {
	data := craftedJPEG(t)
	t.Logf("crafted file: %d bytes", len(data))
	for name, r := range map[string]func() io.Reader{
		"sized":   func() io.Reader { return bytes.NewReader(data) },
		"unsized": func() io.Reader { return unsized{bytes.NewReader(data)} },
	} {
		for _, sizes := range [][]ThumbSize{ThumbSizes(), ThumbSizes()[:1]} {
			var err error
			start := time.Now()
			allocated := allocatedBy(func() { _, err = Thumbnails(r(), 1, sizes, DefaultLimits()) })
			took := time.Since(start)
			want := map[string]Reason{"sized": ReasonTooManyPixels, "unsized": ReasonMalformed}[name]
			var rej *RejectError
			if !errors.As(err, &rej) || rej.Reason != want {
				t.Errorf("%s %v: %v, want %s", name, sizes, err, want)
			}
			t.Logf("%s %v: %v in %v, %.2f MB allocated", name, sizes, err, took, float64(allocated)/1e6)
			if allocated > 20<<20 || took > 2*time.Second {
				t.Errorf("%s %v: %d bytes allocated in %v", name, sizes, allocated, took)
			}
		}
	}
}

// png16 is a 16-bit RGB PNG of w x h whose IDAT holds only the first rows, padded with a
// text chunk to about the size of the crafted JPEG, which decodes to 800 MB (so that the
// pixels-per-byte limit lets it through, as it let that file through).
func png16(t testing.TB, w, h int) []byte {
	t.Helper()
	var out bytes.Buffer
	out.WriteString("\x89PNG\r\n\x1a\n")
	chunk := func(typ string, data []byte) {
		var n [4]byte
		binary.BigEndian.PutUint32(n[:], uint32(len(data)))
		out.Write(n[:])
		c := crc32.NewIEEE()
		c.Write([]byte(typ))
		c.Write(data)
		out.WriteString(typ)
		out.Write(data)
		binary.BigEndian.PutUint32(n[:], c.Sum32())
		out.Write(n[:])
	}
	ihdr := make([]byte, 13)
	binary.BigEndian.PutUint32(ihdr[0:], uint32(w))
	binary.BigEndian.PutUint32(ihdr[4:], uint32(h))
	ihdr[8], ihdr[9] = 16, 2 // 16-bit, truecolour
	chunk("IHDR", ihdr)
	var z bytes.Buffer
	zw := zlib.NewWriter(&z)
	zw.Write(make([]byte, 4*(1+6*w)))
	zw.Close()
	chunk("IDAT", z.Bytes())
	chunk("tEXt", append([]byte("Comment\x00"), bytes.Repeat([]byte("x"), w*h/1000)...))
	chunk("IEND", nil)
	return out.Bytes()
}

func TestThumbnails16BitPNGRefusedBeforeDecoding(t *testing.T) {
	data := png16(t, 20000, 5000)
	var err error
	allocated := allocatedBy(func() { _, err = Thumbnails(bytes.NewReader(data), 1, ThumbSizes(), DefaultLimits()) })
	var rej *RejectError
	if !errors.As(err, &rej) || rej.Reason != ReasonTooManyPixels {
		t.Fatalf("%v, want too many pixels", err)
	}
	t.Logf("%d-byte file: %v; %.2f MB allocated", len(data), err, float64(allocated)/1e6)
	if allocated > 2<<20 {
		t.Errorf("%d bytes allocated before refusing", allocated)
	}
	// A 16-bit PNG the budget lets through is thumbnailed.
	if _, err := Thumbnails(bytes.NewReader(png16(t, 2000, 500)), 1, ThumbSizes(), DefaultLimits()); err == nil {
		t.Error("the truncated 2000x500 PNG decoded") // its IDAT ends after 4 rows
	} else if !errors.As(err, &rej) || rej.Reason != ReasonMalformed {
		t.Errorf("2000x500: %v, want a malformed photo", err)
	}
}

// failingReader gives n bytes of data, then err.
type failingReader struct {
	data []byte
	n    int
	err  error
}

func (f *failingReader) Read(p []byte) (int, error) {
	if f.n <= 0 {
		return 0, f.err
	}
	k := copy(p[:min(len(p), f.n)], f.data)
	f.data, f.n = f.data[k:], f.n-k
	return k, nil
}

// TestThumbnailsReadErrorIsNotARejection: a store that fails half-way is not a damaged photo.
func TestThumbnailsReadErrorIsNotARejection(t *testing.T) {
	t.Parallel()
	storeDown := errors.New("connection reset")
	for _, data := range [][]byte{encodeJPEG(t, testImage(400, 300), 90), encodePNG(t, testImage(400, 300))} {
		for _, n := range []int{10, 2000, len(data) / 2} {
			_, err := NewDecodeBudget(1<<30, 0).Thumbnails(context.Background(), &failingReader{data, n, storeDown}, int64(len(data)), 1, ThumbSizes(), Limits{})
			if !errors.Is(err, storeDown) {
				t.Errorf("after %d bytes: %v, want the read error", n, err)
			}
		}
	}
}

// TestDecodeBudget: decodes over the per-decode ceiling are refused before decoding; the
// decodes in flight never hold more than the total; one that waits for room gives up when its
// context ends.
func TestDecodeBudget(t *testing.T) {
	t.Parallel()
	photo := encodeJPEG(t, testImage(1600, 1200), 90)
	if raceEnabled {
		photo = encodeJPEG(t, testImage(800, 600), 90)
	}
	probe := NewDecodeBudget(1<<40, 0)
	if _, err := probe.Thumbnails(context.Background(), bytes.NewReader(photo), int64(len(photo)), 6, ThumbSizes(), Limits{}); err != nil {
		t.Fatal(err)
	}
	need := probe.Peak()
	t.Logf("one JPEG's thumbnails hold %.1f MB", float64(need)/1e6)

	// Over the per-decode ceiling, a JPEG is decoded at the next reduction, and its large
	// thumbnail comes out smaller (half the photo's width); a PNG, which has none, is refused.
	thumbs, err := NewDecodeBudget(need*4, need-1).Thumbnails(context.Background(), bytes.NewReader(photo), int64(len(photo)), 1, ThumbSizes(), Limits{})
	if err != nil {
		t.Fatal(err)
	}
	photoCfg, _ := jpeg.DecodeConfig(bytes.NewReader(photo))
	if cfg, err := jpeg.DecodeConfig(bytes.NewReader(thumbs[1].JPEG)); err != nil || cfg.Width != photoCfg.Width/2 {
		t.Errorf("large thumbnail over the ceiling: %+v %v", cfg, err)
	}
	pngPhoto := encodePNG(t, testImage(1600, 1200))
	if raceEnabled {
		pngPhoto = encodePNG(t, testImage(800, 600))
	}
	_, err = NewDecodeBudget(need*4, need-1).Thumbnails(context.Background(), bytes.NewReader(pngPhoto), int64(len(pngPhoto)), 1, ThumbSizes(), Limits{})
	var rej *RejectError
	if !errors.As(err, &rej) || rej.Reason != ReasonTooManyPixels {
		t.Errorf("PNG over the per-decode ceiling: %v", err)
	}

	b := NewDecodeBudget(2*need+need/2, 0) // room for two at once
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for range 8 {
		wg.Go(func() {
			_, err := b.Thumbnails(context.Background(), bytes.NewReader(photo), int64(len(photo)), 6, ThumbSizes(), Limits{})
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	if b.Peak() > b.Total() || b.Peak() < need || b.Held() != 0 {
		t.Errorf("peak %d of %d, held after %d", b.Peak(), b.Total(), b.Held())
	}

	full := NewDecodeBudget(need, 0)
	release, err := full.acquire(context.Background(), need)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, err = full.Thumbnails(ctx, bytes.NewReader(photo), int64(len(photo)), 6, ThumbSizes(), Limits{})
	if !errors.Is(err, context.DeadlineExceeded) || errors.As(err, &rej) {
		t.Errorf("waiting past the deadline: %v", err)
	}
	release()
	if full.Held() != 0 {
		t.Errorf("held %d after release", full.Held())
	}
}

// TestThumbnailMemoryWithinReservation: what making thumbnails allocates (decode, resampling,
// orientation, encoding) stays within what it took from the budget, for every format and kind
// (not in parallel: it reads the process's allocation counter).
func TestThumbnailMemoryWithinReservation(t *testing.T) {
	big := 4000
	if raceEnabled {
		big = 2600
	}
	inputs := map[string][]byte{
		"jpeg-baseline-large": encodeJPEG(t, testImage(big, big*3/4), 85),
		"jpeg-grey-1200x900":  encodeJPEG(t, grayOf(testImage(1200, 900)), 85),
		"jpeg-small-200x100":  encodeJPEG(t, testImage(200, 100), 85),
		"png-rgba-1500x1000":  encodePNG(t, testImage(1500, 1000)),
		"png-16bit-600x400":   encodePNG(t, rgba64Of(testImage(600, 400))),
	}
	for _, o := range []jpegtest.Options{{Progressive: true}, {Sampling: [][2]int{{1, 1}, {1, 1}, {1, 1}}, RestartInterval: 4},
		{Color: jpegtest.CMYK}, {Color: jpegtest.RGB, Progressive: true}} {
		w := 1300 // 1/1 for the large thumbnail, 1/4 for the small one
		if o.Progressive && o.Color == jpegtest.YCbCr {
			w = 2600 // 1/2 and 1/8
		}
		var buf bytes.Buffer
		if err := jpegtest.Encode(&buf, testImage(w, w*2/3), o); err != nil {
			t.Fatal(err)
		}
		inputs[fmt.Sprintf("jpeg-%+v", o)] = buf.Bytes()
	}
	for _, name := range []string{"blue-purple-pink.lossy.webp", "yellow_rose.lossy-with-alpha.webp",
		"gopher-doc.with-alpha.lossless.webp", "video-001.cmyk.jpeg"} {
		inputs[name] = readTestdata(t, name)
	}
	orientations := []int{1, 6}
	if raceEnabled {
		orientations = []int{6}
	}
	for name, data := range inputs {
		for _, o := range orientations {
			b := NewDecodeBudget(1<<40, 0)
			var err error
			allocated := allocatedBy(func() {
				_, err = b.Thumbnails(context.Background(), bytes.NewReader(data), int64(len(data)), o, ThumbSizes(), Limits{})
			})
			if err != nil {
				t.Errorf("%s: %v", name, err)
				continue
			}
			// bufio's buffer, the thumbs' slices, imaging's goroutines: a few KB (some 100 KB
			// under the race detector).
			if allocated > b.Peak()+256<<10 {
				t.Errorf("%s orientation %d: allocated %.2f MB, reserved %.2f MB", name, o, float64(allocated)/1e6, float64(b.Peak())/1e6)
			}
		}
	}
}

func grayOf(img image.Image) *image.Gray {
	g := image.NewGray(img.Bounds())
	for y := img.Bounds().Min.Y; y < img.Bounds().Max.Y; y++ {
		for x := img.Bounds().Min.X; x < img.Bounds().Max.X; x++ {
			g.Set(x, y, img.At(x, y))
		}
	}
	return g
}

func rgba64Of(img image.Image) *image.RGBA64 {
	m := image.NewRGBA64(img.Bounds())
	for y := img.Bounds().Min.Y; y < img.Bounds().Max.Y; y++ {
		for x := img.Bounds().Min.X; x < img.Bounds().Max.X; x++ {
			m.Set(x, y, img.At(x, y))
		}
	}
	return m
}
