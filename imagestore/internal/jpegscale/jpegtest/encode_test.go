package jpegtest

import (
	"bytes"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"math"
	"testing"
)

// testImage is smooth colour with some texture, w x h.
func testImage(w, h int) *image.NRGBA {
	img := image.NewNRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			r := 128 + 100*math.Sin(float64(x)/9)
			g := 128 + 90*math.Cos(float64(y)/7)
			b := 128 + 60*math.Sin(float64(x+y)/5)
			img.SetNRGBA(x, y, color.NRGBA{uint8(r), uint8(g), uint8(b), 255})
		}
	}
	return img
}

func psnr(a, b image.Image) float64 {
	var se float64
	n := 0
	r := a.Bounds()
	for y := r.Min.Y; y < r.Max.Y; y++ {
		for x := r.Min.X; x < r.Max.X; x++ {
			c1 := color.NRGBAModel.Convert(a.At(x, y)).(color.NRGBA)
			c2 := color.NRGBAModel.Convert(b.At(x, y)).(color.NRGBA)
			for _, d := range []float64{float64(c1.R) - float64(c2.R), float64(c1.G) - float64(c2.G), float64(c1.B) - float64(c2.B)} {
				se += d * d
				n++
			}
		}
	}
	if se == 0 {
		return math.Inf(1)
	}
	return 10 * math.Log10(255*255/(se/float64(n)))
}

func TestZigZag(t *testing.T) {
	want := [...]int{0, 1, 8, 16, 9, 2, 3, 10, 17, 24, 32, 25, 18, 11, 4, 5}
	for zig, nat := range want {
		if zigOf[nat] != zig {
			t.Errorf("zigOf[%d] = %d, want %d", nat, zigOf[nat], zig)
		}
	}
}

// TestEncodeDecodes: every variant decodes with image/jpeg close to the source, and a
// progressive file decodes to exactly the pixels of the sequential one (same coefficients).
func TestEncodeDecodes(t *testing.T) {
	t.Parallel()
	src := testImage(77, 51)
	samplings := map[string][][2]int{
		"444": {{1, 1}, {1, 1}, {1, 1}}, "422": {{2, 1}, {1, 1}, {1, 1}}, "420": {{2, 2}, {1, 1}, {1, 1}},
		"440": {{1, 2}, {1, 1}, {1, 1}}, "411": {{4, 1}, {1, 1}, {1, 1}},
	}
	for name, s := range samplings {
		for _, ri := range []int{0, 3} {
			seq := mustEncode(t, src, Options{Quality: 90, Sampling: s, RestartInterval: ri})
			seqImg, err := jpeg.Decode(bytes.NewReader(seq))
			if err != nil {
				t.Fatalf("%s ri %d: %v", name, ri, err)
			}
			if p := psnr(src, seqImg); p < 28 {
				t.Errorf("%s ri %d: PSNR %.1f dB", name, ri, p)
			}
			if ri > 0 && name != "444" {
				// image/jpeg counts a restart interval of a non-interleaved scan in MCUs of
				// h*v blocks, not in blocks as T.81 A.2 says (so does jpegscale, which stays
				// identical to it): it refuses such files with subsampled components.
				continue
			}
			for _, approx := range []bool{true, false} {
				prog := mustEncode(t, src, Options{Quality: 90, Sampling: s, RestartInterval: ri, Progressive: true, NoSuccessiveApprox: !approx})
				progImg, err := jpeg.Decode(bytes.NewReader(prog))
				if err != nil {
					t.Fatalf("%s ri %d progressive: %v", name, ri, err)
				}
				if !samePixels(progImg, seqImg) {
					t.Errorf("%s ri %d approx %v: progressive decodes differently from sequential", name, ri, approx)
				}
			}
		}
	}
	for _, kind := range []ColorKind{RGB, CMYK, YCCK} {
		for _, prog := range []bool{false, true} {
			opt := Options{Quality: 95, Color: kind, Progressive: prog,
				Sampling: [][2]int{{1, 1}, {1, 1}, {1, 1}, {1, 1}}[:3+min(1, int(kind)/2)]}
			if kind == YCCK {
				opt.Sampling = [][2]int{{2, 2}, {1, 1}, {1, 1}, {2, 2}}
			}
			img, err := jpeg.Decode(bytes.NewReader(mustEncode(t, src, opt)))
			if err != nil {
				t.Fatalf("kind %d: %v", kind, err)
			}
			if p := psnr(src, img); p < 28 {
				t.Errorf("kind %d progressive %v: PSNR %.1f dB (%T)", kind, prog, p, img)
			}
		}
	}
	gray := image.NewGray(src.Bounds())
	for y := range 51 {
		for x := range 77 {
			gray.Set(x, y, src.At(x, y))
		}
	}
	for _, prog := range []bool{false, true} {
		img, err := jpeg.Decode(bytes.NewReader(mustEncode(t, gray, Options{Progressive: prog, Sampling: [][2]int{{2, 2}}})))
		if err != nil {
			t.Fatal(err)
		}
		if p := psnr(gray, img); p < 30 {
			t.Errorf("grey progressive %v: PSNR %.1f", prog, p)
		}
	}
}

func mustEncode(t testing.TB, img image.Image, o Options) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := Encode(&buf, img, o); err != nil {
		t.Fatal(fmt.Errorf("%+v: %w", o, err))
	}
	return buf.Bytes()
}

// samePixels compares two decoded images inside their bounds (padding blocks differ: a
// sequential scan codes them, a non-interleaved progressive one does not).
func samePixels(a, b image.Image) bool {
	if a.Bounds() != b.Bounds() {
		return false
	}
	r := a.Bounds()
	for y := r.Min.Y; y < r.Max.Y; y++ {
		for x := r.Min.X; x < r.Max.X; x++ {
			if a.At(x, y) != b.At(x, y) {
				return false
			}
		}
	}
	return true
}
