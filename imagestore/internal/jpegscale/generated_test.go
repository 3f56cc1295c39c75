package jpegscale

import (
	"fmt"
	"image"
	"image/color"
	"math"
	"math/rand/v2"
	"sync"
	"testing"

	"github.com/dermfollow/dermfollow/imagestore/internal/jpegscale/jpegtest"
)

// photoLike is smooth colour with edges and noise, w x h: what a photo of skin and a ruler
// looks like to a decoder (every coefficient band in use, some clipping at the extremes).
func photoLike(w, h int, seed uint64) *image.NRGBA {
	rng := rand.New(rand.NewPCG(seed, 7))
	img := image.NewNRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			r := 150 + 70*math.Sin(float64(x)/23) + float64(rng.IntN(21)) - 10
			g := 110 + 60*math.Cos(float64(y)/17) + float64(rng.IntN(21)) - 10
			b := 100 + 50*math.Sin(float64(x+y)/11)
			if (x/13+y/9)%5 == 0 { // sharp-edged marks
				r, g, b = 30, 30, 40
			}
			img.SetNRGBA(x, y, color.NRGBA{clamp(r), clamp(g), clamp(b), 255})
		}
	}
	return img
}

func clamp(v float64) uint8 { return uint8(min(max(v, 0), 255)) }

func grey(img image.Image) *image.Gray {
	g := image.NewGray(img.Bounds())
	for y := img.Bounds().Min.Y; y < img.Bounds().Max.Y; y++ {
		for x := img.Bounds().Min.X; x < img.Bounds().Max.X; x++ {
			g.Set(x, y, img.At(x, y))
		}
	}
	return g
}

// generatedFiles are JPEGs of every kind the decoder handles, written by jpegtest: baseline
// and progressive (with successive approximation and with spectral selection alone), with and
// without restart intervals, at 4:4:4, 4:2:2, 4:2:0, 4:4:0 and 4:1:1, grey (also with the 2x2
// sampling factors a single component may claim), RGB, CMYK and YCCK (Adobe), at sizes that
// are and are not whole blocks.
var generatedFiles = sync.OnceValues(func() (map[string][]byte, error) {
	out := map[string][]byte{}
	add := func(name string, img image.Image, o jpegtest.Options) error {
		var buf bytesBuffer
		if err := jpegtest.Encode(&buf, img, o); err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		out[name] = buf.b
		return nil
	}
	samplings := map[string][][2]int{
		"444": {{1, 1}, {1, 1}, {1, 1}}, "422": {{2, 1}, {1, 1}, {1, 1}}, "420": {{2, 2}, {1, 1}, {1, 1}},
		"440": {{1, 2}, {1, 1}, {1, 1}}, "411": {{4, 1}, {1, 1}, {1, 1}},
	}
	sizes := [][2]int{{77, 51}, {64, 48}, {1, 1}, {17, 9}, {203, 141}}
	for i, sz := range sizes {
		img := photoLike(sz[0], sz[1], uint64(i))
		for sname, s := range samplings {
			for _, kind := range []string{"baseline", "progressive", "spectral"} {
				for _, ri := range []int{0, 3} {
					// image/jpeg (and so jpegscale) cannot read restart intervals in progressive
					// files with subsampled components: see jpegtest's tests.
					if ri > 0 && kind != "baseline" && sname != "444" {
						continue
					}
					o := jpegtest.Options{Quality: 85 + i, Sampling: s, RestartInterval: ri,
						Progressive: kind != "baseline", NoSuccessiveApprox: kind == "spectral"}
					if err := add(fmt.Sprintf("%dx%d-%s-%s-ri%d", sz[0], sz[1], sname, kind, ri), img, o); err != nil {
						return nil, err
					}
				}
			}
		}
		for _, prog := range []bool{false, true} {
			for _, s := range [][][2]int{{{1, 1}}, {{2, 2}}} {
				for _, ri := range []int{0, 2} {
					name := fmt.Sprintf("%dx%d-grey%dx%d-progressive=%v-ri%d", sz[0], sz[1], s[0][0], s[0][1], prog, ri)
					if err := add(name, grey(img), jpegtest.Options{Quality: 80, Sampling: s, Progressive: prog, RestartInterval: ri}); err != nil {
						return nil, err
					}
				}
			}
			for kind, name := range map[jpegtest.ColorKind]string{jpegtest.RGB: "rgb", jpegtest.CMYK: "cmyk", jpegtest.YCCK: "ycck"} {
				s := [][2]int{{1, 1}, {1, 1}, {1, 1}, {1, 1}}
				switch kind {
				case jpegtest.RGB:
					s = [][2]int{{2, 2}, {1, 1}, {1, 1}}
				case jpegtest.YCCK:
					s = [][2]int{{2, 2}, {1, 1}, {1, 1}, {2, 2}}
				}
				n := fmt.Sprintf("%dx%d-%s-progressive=%v", sz[0], sz[1], name, prog)
				if err := add(n, img, jpegtest.Options{Quality: 90, Color: kind, Sampling: s, Progressive: prog}); err != nil {
					return nil, err
				}
			}
		}
	}
	return out, nil
})

type bytesBuffer struct{ b []byte }

func (w *bytesBuffer) Write(p []byte) (int, error) {
	w.b = append(w.b, p...)
	return len(p), nil
}

func mustGenerated(t testing.TB) map[string][]byte {
	t.Helper()
	files, err := generatedFiles()
	if err != nil {
		t.Fatal(err)
	}
	return files
}

func TestScaleOneIdenticalOnGenerated(t *testing.T) {
	t.Parallel()
	for name, data := range mustGenerated(t) {
		sameDecode(t, name, data)
	}
}

func TestScaledMatchesBoxMeansOnGenerated(t *testing.T) {
	t.Parallel()
	for name, data := range mustGenerated(t) {
		checkBoxMeans(t, name, data)
	}
}
