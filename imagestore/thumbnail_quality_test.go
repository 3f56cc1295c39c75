package imagestore

import (
	"bytes"
	"image"
	"image/jpeg"
	"math"
	"strings"
	"testing"

	"github.com/disintegration/imaging"

	"github.com/dermfollow/dermfollow/imagestore/internal/jpegscale"
)

// skinPhoto looks like a follow-up photo to a resampler: skin-coloured gradients, a soft
// darker patch, a ruler with sharp marks, and sensor noise.
func skinPhoto(w, h int) *image.NRGBA {
	img := image.NewNRGBA(image.Rect(0, 0, w, h))
	seed := uint32(1)
	for y := range h {
		for x := range w {
			seed = seed*1664525 + 1013904223
			n := float64(seed>>24)/255*12 - 6
			fx, fy := float64(x)/float64(w), float64(y)/float64(h)
			r, g, b := 205-40*fy+n, 150-30*fy+20*fx+n, 125-20*fy+n
			dx, dy := fx-0.55, fy-0.45
			if d := dx*dx + dy*dy; d < 0.04 { // the lesion, soft-edged
				k := 1 - d/0.04
				r, g, b = r-60*k, g-70*k, b-40*k
			}
			if y > h*7/8 { // the ruler, with a mark every 40 px
				r, g, b = 235, 235, 225
				if x%40 < 3 && y < h*7/8+h/20 {
					r, g, b = 20, 20, 20
				}
			}
			img.Pix[img.PixOffset(x, y)+0] = uint8(min(max(r, 0), 255))
			img.Pix[img.PixOffset(x, y)+1] = uint8(min(max(g, 0), 255))
			img.Pix[img.PixOffset(x, y)+2] = uint8(min(max(b, 0), 255))
			img.Pix[img.PixOffset(x, y)+3] = 255
		}
	}
	return img
}

// psnrRGB is the PSNR of b against a over the RGB channels of two NRGBA images.
func psnrRGB(a, b *image.NRGBA) float64 {
	if a.Bounds() != b.Bounds() {
		return 0
	}
	var se float64
	n := 0
	for i := 0; i < len(a.Pix); i += 4 {
		for c := range 3 {
			d := float64(a.Pix[i+c]) - float64(b.Pix[i+c])
			se += d * d
			n++
		}
	}
	if se == 0 {
		return math.Inf(1)
	}
	return 10 * math.Log10(255*255*float64(n)/se)
}

// thumbnailPaths makes a maxSide thumbnail of a JPEG, before encoding, three ways: the
// reference (every pixel decoded, resized with Lanczos3), the path before jpegscale (every
// pixel decoded, box-shrunk by an integer factor, resized with Catmull-Rom), and ours.
func thumbnailPaths(tb testing.TB, data []byte, maxSide int) (ref, before, ours *image.NRGBA) {
	tb.Helper()
	full, err := jpeg.Decode(bytes.NewReader(data))
	if err != nil {
		tb.Fatal(err)
	}
	w, h := fitSize(full.Bounds().Dx(), full.Bounds().Dy(), maxSide)
	ref = imaging.Resize(full, w, h, imaging.Lanczos)
	before = imaging.Resize(full, w, h, imaging.CatmullRom)
	if y, ok := full.(*image.YCbCr); ok {
		if k := max(full.Bounds().Dx(), full.Bounds().Dy()) / maxSide; k >= 2 {
			before = imaging.Resize(shrinkYCbCr(y, k), w, h, imaging.CatmullRom)
		}
	}
	scaled, err := jpegscale.DecodeWith(bytes.NewReader(data), jpegscale.Options{Plan: func(hd jpegscale.Header) (int, error) {
		return jpegScale(hd.Width, hd.Height, maxSide), nil
	}})
	if err != nil {
		tb.Fatal(err)
	}
	ours = imaging.Clone(fitWithin(scaled, w, h))
	return ref, before, ours
}

// TestThumbnailQuality: thumbnails from the DCT-domain reduction are at least as close to a
// full decode resized with Lanczos3 as those of the path before it (full decode, box shrink,
// Catmull-Rom), and close in absolute terms (40 dB), at both sizes, on a photo-like picture
// (skin, a lesion, a ruler) and on two harder ones: the noisy benchmark photo and a pattern of
// high frequencies (the xor of the coordinates) that aliases in any box filter.
func TestThumbnailQuality(t *testing.T) {
	t.Parallel()
	type photo struct {
		data  []byte
		sizes []int
	}
	photos := map[string]photo{
		"skin-4000x3000":        {encodeJPEG(t, skinPhoto(4000, 3000), 92), []int{320, 1280}},
		"skin-2600x1950":        {encodeJPEG(t, skinPhoto(2600, 1950), 92), []int{320, 1280}},
		"noise-2600x1950":       {encodeJPEG(t, photographic(2600, 1950), 92), []int{320, 1280}},
		"xor-pattern-2600x1950": {encodeJPEG(t, testImage(2600, 1950), 92), []int{320, 1280}},
	}
	if raceEnabled { // the same reductions, 1/8, 1/4 and 1/2, on a smaller photo
		photos = map[string]photo{"skin-1300x975": {encodeJPEG(t, skinPhoto(1300, 975), 92), []int{160, 320, 640}}}
	}
	for name, p := range photos {
		for _, size := range p.sizes {
			ref, before, ours := thumbnailPaths(t, p.data, size)
			pb, po := psnrRGB(ref, before), psnrRGB(ref, ours)
			t.Logf("%s at %d px: PSNR against full decode + Lanczos3: ours %.1f dB, before %.1f dB", name, size, po, pb)
			// Never worse than before (0.3 dB of slack for rounding), and close to the
			// reference wherever the picture is not built to alias.
			if po < pb-0.3 || !strings.HasPrefix(name, "xor") && po < 35 {
				t.Errorf("%s at %d px: ours %.1f dB, before %.1f dB", name, size, po, pb)
			}
		}
	}
}
