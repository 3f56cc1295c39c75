package imagestore

import (
	"image"
	"image/color"
	"math"
	"math/rand/v2"
	"os"
	"slices"
	"testing"

	"github.com/disintegration/imaging"
)

// skinScene is a photo-like scene of what this product photographs: skin whose texture has
// detail at several scales (pores, folds), a port-wine stain with a soft edge, a few hairs,
// lit from one side. The detail scales with the image, as a photo's does with its resolution,
// so that every size of the scene looks the same at the measure's 512 px.
func skinScene(w, h int, seed uint64) *image.NRGBA {
	img := image.NewNRGBA(image.Rect(0, 0, w, h))
	rng := rand.New(rand.NewPCG(seed, 7))
	fine, coarse := valueNoise(rng, 320, 240), valueNoise(rng, 80, 60)
	cx, cy, rx, ry := float64(w)*0.55, float64(h)*0.45, float64(w)*0.18, float64(h)*0.14
	for y := range h {
		for x := range w {
			u, v := float64(x)/float64(w), float64(y)/float64(h)
			light := 0.85 + 0.15*u
			r, g, b := 224.0, 178.0, 150.0
			d := math.Hypot((float64(x)-cx)/rx, (float64(y)-cy)/ry)
			stain := 1 / (1 + math.Exp((d-1)*18)) // a stain with a soft edge
			r, g, b = r-45*stain, g-95*stain, b-60*stain
			n := 22*sample(fine, u, v) + 12*sample(coarse, u, v)
			img.SetNRGBA(x, y, color.NRGBA{clamp8((r + n) * light), clamp8((g + n*0.9) * light), clamp8((b + n*0.8) * light), 255})
		}
	}
	width := max(1, w/500)
	for range 14 { // hairs: thin dark curves
		x0, y0 := rng.Float64()*float64(w), rng.Float64()*float64(h)
		a := rng.Float64() * 2 * math.Pi
		for t := range w / 3 {
			a += (rng.Float64() - 0.5) * 0.05
			x0, y0 = x0+math.Cos(a), y0+math.Sin(a)
			for k := range width {
				if p := image.Pt(int(x0)+k, int(y0)); p.In(img.Rect) {
					img.SetNRGBA(p.X, p.Y, color.NRGBA{85, 60, 45, 255})
				}
			}
			_ = t
		}
	}
	return img
}

// valueNoise is a w×h grid of random values in [-1, 1].
func valueNoise(rng *rand.Rand, w, h int) [][]float64 {
	g := make([][]float64, h)
	for y := range g {
		g[y] = make([]float64, w)
		for x := range g[y] {
			g[y][x] = rng.Float64()*2 - 1
		}
	}
	return g
}

// sample reads the grid at (u, v) in [0, 1), smoothly (bilinear).
func sample(g [][]float64, u, v float64) float64 {
	h, w := len(g), len(g[0])
	fx, fy := u*float64(w-1), v*float64(h-1)
	x0, y0 := int(fx), int(fy)
	x1, y1 := min(x0+1, w-1), min(y0+1, h-1)
	tx, ty := fx-float64(x0), fy-float64(y0)
	top := g[y0][x0]*(1-tx) + g[y0][x1]*tx
	bottom := g[y1][x0]*(1-tx) + g[y1][x1]*tx
	return top*(1-ty) + bottom*ty
}

func clamp8(v float64) uint8 { return uint8(max(0, min(255, math.Round(v)))) }

// exposed scales every channel by k, clipping as a sensor does.
func exposed(img image.Image, k float64) *image.NRGBA {
	return imaging.AdjustFunc(img, func(c color.NRGBA) color.NRGBA {
		return color.NRGBA{clamp8(float64(c.R) * k), clamp8(float64(c.G) * k), clamp8(float64(c.B) * k), c.A}
	})
}

// qualityScenes is the calibration set: sharp photo-like scenes at phone-photo sizes and the
// real fixture photos.
func qualityScenes(t *testing.T) map[string]image.Image {
	scenes := map[string]image.Image{
		"skin 1200x900": skinScene(1200, 900, 1),
		"skin 900x1200": skinScene(900, 1200, 2),
		"skin, dimmer":  exposed(skinScene(1200, 900, 4), 0.75),
	}
	for _, name := range []string{"video-001.progressive.jpeg", "video-001.cmyk.jpeg"} {
		f, err := os.Open("testdata/" + name)
		if err != nil {
			t.Fatal(err)
		}
		img, _, err := image.Decode(f)
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
		scenes[name] = img
	}
	return scenes
}

// TestQualityCalibration: on the calibration set, the measures order the degradations
// rightly (blur lowers sharpness step by step; exposure moves the mean luminance with it),
// the advice appears for the clearly bad versions and never for a sharp, well exposed
// original (a false-advice rate of 0).
func TestQualityCalibration(t *testing.T) {
	t.Parallel()
	scenes := qualityScenes(t)
	falseAdvice := 0
	for name, img := range scenes {
		orig := MeasureQuality(img)
		if len(orig.Flags) != 0 {
			falseAdvice++
			t.Errorf("%s: a sharp, well exposed original is flagged %v (%+v)", name, orig.Flags, orig)
		}
		// Blur in proportion to the photo's width: 0.1 % (slight: 4 px of a 4000 px photo),
		// 0.25 %, then 0.5 %, 1 % and 2 % (clearly blurred: 20 px and more).
		w := float64(img.Bounds().Dx())
		prev := orig.Sharpness
		for i, frac := range []float64{0.001, 0.0025, 0.005, 0.01, 0.02} {
			q := MeasureQuality(imaging.Blur(img, w*frac))
			// A blur under half a pixel changes nothing (imaging skips it): equal is right there.
			if q.Sharpness > prev || w*frac >= 0.5 && q.Sharpness >= prev {
				t.Errorf("%s: blur of %.2f %% of the width scores %.1f, not below the lesser blur's %.1f", name, frac*100, q.Sharpness, prev)
			}
			prev = q.Sharpness
			clearly := frac >= 0.005
			if flagged := slices.Contains(q.Flags, QualityBlurry); clearly && !flagged {
				t.Errorf("%s: blurred by %.1f %% of the width, sharpness %.1f, not flagged blurry", name, frac*100, q.Sharpness)
			} else if i == 0 && flagged {
				t.Errorf("%s: a slight blur (%.2f %%) is flagged blurry (%.1f)", name, frac*100, q.Sharpness)
			}
		}
		prevMean := -1.0
		for _, k := range []float64{0.25, 0.5, 1, 1.6, 3} {
			q := MeasureQuality(exposed(img, k))
			if q.MeanLuminance <= prevMean {
				t.Errorf("%s: exposure x%.2f gives mean %.3f, not above %.3f", name, k, q.MeanLuminance, prevMean)
			}
			prevMean = q.MeanLuminance
			switch {
			case k <= 0.25 && !slices.Contains(q.Flags, QualityDark):
				t.Errorf("%s: exposure x%.2f (mean %.2f) not flagged dark", name, k, q.MeanLuminance)
			case k >= 3 && !slices.Contains(q.Flags, QualityOverexposed):
				t.Errorf("%s: exposure x%.1f (highlights %.2f, mean %.2f) not flagged overexposed", name, k, q.ClippedHighlights, q.MeanLuminance)
			}
		}
		t.Logf("%-28s sharpness %6.1f, mean %.2f, highlights %.3f, shadows %.3f", name, orig.Sharpness, orig.MeanLuminance,
			orig.ClippedHighlights, orig.ClippedShadows)
	}
	t.Logf("false advice on %d sharp originals: %d", len(scenes), falseAdvice)
}
