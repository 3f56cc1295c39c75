package jpegscale

import (
	"bytes"
	"fmt"
	"image"
	"testing"
)

// decodeAt decodes data at 1/scale.
func decodeAt(data []byte, scale int) (image.Image, error) {
	return DecodeWith(bytes.NewReader(data), Options{Plan: func(Header) (int, error) { return scale, nil }})
}

// planes are an image's sample planes as the decoder writes them, padding included.
type plane struct {
	pix    []byte
	stride int
	rows   int
	step   int // bytes between samples of the plane in a row (4 for interleaved images)
}

func planesOf(img image.Image) []plane {
	switch m := img.(type) {
	case *image.Gray:
		return []plane{{m.Pix, m.Stride, len(m.Pix) / m.Stride, 1}}
	case *image.YCbCr:
		return []plane{{m.Y, m.YStride, len(m.Y) / m.YStride, 1},
			{m.Cb, m.CStride, len(m.Cb) / m.CStride, 1}, {m.Cr, m.CStride, len(m.Cr) / m.CStride, 1}}
	case *image.RGBA:
		var ps []plane
		for c := range 3 {
			ps = append(ps, plane{m.Pix[c:], m.Stride, m.Rect.Dy(), 4})
		}
		return ps
	case *image.CMYK:
		var ps []plane
		for c := range 4 {
			ps = append(ps, plane{m.Pix[c:], m.Stride, m.Rect.Dy(), 4})
		}
		return ps
	}
	return nil
}

// boxStats compares each sample of the scaled decode with the mean of the scale x scale
// samples of the full decode it stands for.
type boxStats struct {
	n, over1 int
	// over1Unclipped counts the samples more than 1 off whose box has no pixel at 0 or 255,
	// where the full decode may have clipped values that the mean of the coefficients keeps.
	over1Unclipped int
	maxDiff        int
	sumAbsDiff     int
}

func (s boxStats) String() string {
	return fmt.Sprintf("%d samples, max diff %d, mean |diff| %.3f, %.3f%% over 1, %d of them unclipped", s.n, s.maxDiff,
		float64(s.sumAbsDiff)/float64(max(1, s.n)), 100*float64(s.over1)/float64(max(1, s.n)), s.over1Unclipped)
}

// compareBoxMeans compares the planes of a full and a scaled decode. Planar images (grey,
// YCbCr) are compared plane by plane, block padding included; interleaved ones (RGB, CMYK)
// channel by channel inside the image, where a subsampled channel's scaled sample stands for
// a box of the channel's own resolution (hdr says which channels are subsampled).
func compareBoxMeans(full, scaled image.Image, scale int, hdr Header) (boxStats, error) {
	var st boxStats
	fp, sp := planesOf(full), planesOf(scaled)
	if len(fp) == 0 || len(fp) != len(sp) {
		return st, fmt.Errorf("images %T and %T", full, scaled)
	}
	interleaved := fp[0].step > 1
	for i := range fp {
		f, s := fp[i], sp[i]
		rows, cols := s.rows, s.stride/s.step
		fx, fy := 1, 1
		if interleaved {
			fx, fy = hdr.comp[0].h/hdr.comp[i].h, hdr.comp[0].v/hdr.comp[i].v
			// Only boxes wholly inside the full image.
			rows = min(rows, full.Bounds().Dy()/(scale*fy)*fy)
			cols = min(cols, full.Bounds().Dx()/(scale*fx)*fx)
		}
		for y := range rows {
			for x := range cols {
				x0, y0 := x/fx*fx*scale, y/fy*fy*scale
				sum, clipped := 0, false
				for dy := range scale * fy {
					for dx := range scale * fx {
						v := f.pix[(y0+dy)*f.stride+(x0+dx)*f.step]
						sum += int(v)
						clipped = clipped || v == 0 || v == 255
					}
				}
				nn := scale * scale * fx * fy
				mean := (sum + nn/2) / nn
				d := int(s.pix[y*s.stride+x*s.step]) - mean
				d = max(d, -d)
				st.n++
				st.sumAbsDiff += d
				st.maxDiff = max(st.maxDiff, d)
				if d > 1 {
					st.over1++
					if !clipped {
						st.over1Unclipped++
					}
				}
			}
		}
	}
	return st, nil
}

// Tolerances of a scaled decode against the box means of the full decode: the scaled sample
// is the mean of the coefficients, rounded once, where the box mean averages pixels that were
// each rounded and clipped to 0-255. So every sample whose box has no pixel at 0 or 255 is
// within 1 level; near clipped pixels the scaled sample may differ more (it keeps what the
// full decode clipped), and the mean difference stays under maxMeanDiff.
const maxMeanDiff = 0.4

func checkBoxMeans(t *testing.T, name string, data []byte) {
	t.Helper()
	full, err := Decode(bytes.NewReader(data))
	for _, s := range []int{2, 4, 8} {
		var hdr Header
		sc, serr := DecodeWith(bytes.NewReader(data), Options{Plan: func(h Header) (int, error) { hdr = h; return s, nil }})
		if (err == nil) != (serr == nil) {
			t.Errorf("%s 1/%d: full decode %v, scaled %v", name, s, err, serr)
			continue
		}
		if err != nil {
			continue
		}
		if w, h := hdr.ScaledSize(s); sc.Bounds() != image.Rect(0, 0, w, h) ||
			w != scaledLen(full.Bounds().Dx(), s) || h != scaledLen(full.Bounds().Dy(), s) {
			t.Errorf("%s 1/%d: bounds %v of %v", name, s, sc.Bounds(), full.Bounds())
		}
		st, err := compareBoxMeans(full, sc, s, hdr)
		if err != nil {
			t.Errorf("%s 1/%d: %v", name, s, err)
			continue
		}
		mean := float64(st.sumAbsDiff) / float64(st.n)
		if st.n == 0 || st.over1Unclipped > 0 || mean > maxMeanDiff {
			t.Errorf("%s 1/%d: %v", name, s, st)
		}
	}
}

func TestScaledMatchesBoxMeansOnFixtures(t *testing.T) {
	t.Parallel()
	for name, data := range fixtureFiles(t) {
		checkBoxMeans(t, name, data)
	}
}
