package jpegscale

import (
	"bytes"
	"fmt"
	"image"
	"reflect"
	"testing"
)

// decodeAt decodes data at 1/scale.
func decodeAt(data []byte, scale int) (image.Image, error) {
	return DecodeWith(bytes.NewReader(data), Options{Plan: func(Header) (int, error) { return scale, nil }})
}

// plane is one component's samples as the decoder writes them, block padding included.
type plane struct {
	pix    []byte
	stride int
	rows   int
}

// decodePlanes decodes data at 1/scale and returns the component planes the decoder wrote,
// before any conversion to RGB or CMYK, with the image and the header.
func decodePlanes(data []byte, scale int) ([]plane, image.Image, Header, error) {
	var hdr Header
	d := decoder{plan: func(h Header) (int, error) { hdr = h; return scale, nil }}
	img, err := d.decode(bytes.NewReader(data), false)
	if err != nil {
		return nil, nil, hdr, err
	}
	var ps []plane
	add := func(pix []byte, stride int) { ps = append(ps, plane{pix, stride, len(pix) / stride}) }
	if d.img1 != nil {
		add(d.img1.Pix, d.img1.Stride)
	} else {
		add(d.img3.Y, d.img3.YStride)
		add(d.img3.Cb, d.img3.CStride)
		add(d.img3.Cr, d.img3.CStride)
		if d.blackPix != nil {
			add(d.blackPix, d.blackStride)
		}
	}
	return ps, img, hdr, nil
}

// boxStats compares each sample of a scaled decode with the mean of the scale x scale
// samples of the full decode it stands for.
type boxStats struct {
	n, over1 int
	// over1Unclipped counts the samples more than 1 off whose box has no sample at 0 or 255,
	// where the full decode may have clipped values that the mean of the coefficients keeps.
	over1Unclipped int
	maxDiff        int
	sumAbsDiff     int
}

func (s boxStats) String() string {
	return fmt.Sprintf("%d samples, max diff %d, mean |diff| %.3f, %.3f%% over 1, %d of them unclipped", s.n, s.maxDiff,
		float64(s.sumAbsDiff)/float64(max(1, s.n)), 100*float64(s.over1)/float64(max(1, s.n)), s.over1Unclipped)
}

// compareBoxMeans compares the planes of a full and a scaled decode, padding included.
func compareBoxMeans(full, scaled []plane, scale int) (boxStats, error) {
	var st boxStats
	if len(full) == 0 || len(full) != len(scaled) {
		return st, fmt.Errorf("%d and %d planes", len(full), len(scaled))
	}
	for i := range full {
		f, s := full[i], scaled[i]
		if s.stride*scale != f.stride || s.rows*scale != f.rows {
			return st, fmt.Errorf("plane %d: %dx%d, full %dx%d", i, s.stride, s.rows, f.stride, f.rows)
		}
		for y := range s.rows {
			for x := range s.stride {
				sum, clipped := 0, false
				for dy := range scale {
					for dx := range scale {
						v := f.pix[(y*scale+dy)*f.stride+x*scale+dx]
						sum += int(v)
						clipped = clipped || v == 0 || v == 255
					}
				}
				nn := scale * scale
				mean := (sum + nn/2) / nn
				d := int(s.pix[y*s.stride+x]) - mean
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
	fullPlanes, full, _, err := decodePlanes(data, 1)
	for _, s := range []int{2, 4, 8} {
		planes, img, hdr, serr := decodePlanes(data, s)
		if (err == nil) != (serr == nil) {
			t.Errorf("%s 1/%d: full decode %v, scaled %v", name, s, err, serr)
			continue
		}
		if err != nil {
			continue
		}
		if w, h := hdr.ScaledSize(s); img.Bounds() != image.Rect(0, 0, w, h) ||
			w != scaledLen(full.Bounds().Dx(), s) || h != scaledLen(full.Bounds().Dy(), s) ||
			reflect.TypeOf(img) != reflect.TypeOf(full) {
			t.Errorf("%s 1/%d: %T %v of %T %v", name, s, img, img.Bounds(), full, full.Bounds())
		}
		st, err := compareBoxMeans(fullPlanes, planes, s)
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
