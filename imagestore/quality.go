package imagestore

import (
	"image"
	"math"

	"github.com/disintegration/imaging"
)

// Quality is what a photo's pixels say about how it was taken: sharp or blurred, well
// exposed or not. The family's page measures the same on the phone before sending
// (web/static/quality.js, the same formula on the same downscale), so that the clinic and the
// family see one judgement.
type Quality struct {
	// Sharpness is the variance of the Laplacian of the luminance (0-255) at QualitySide: an
	// edge-rich, sharp photo scores in the hundreds, a blurred one near zero.
	Sharpness float64 `json:"sharpness"`
	// MeanLuminance is the mean luminance, 0 (black) to 1 (white).
	MeanLuminance float64 `json:"mean_luminance"`
	// ClippedHighlights and ClippedShadows are the shares (0-1) of pixels burnt out (luminance
	// at or above 250) and crushed (at or below 5).
	ClippedHighlights float64 `json:"clipped_highlights"`
	ClippedShadows    float64 `json:"clipped_shadows"`
	// Flags names what is out of range: QualityBlurry, QualityDark, QualityOverexposed.
	Flags []string `json:"flags"`
}

// QualitySide is the longer side, in pixels, of the common downscale the measures are taken
// at: large enough to see the skin's texture, small enough to measure in a few milliseconds on
// a phone, and the same on both sides whatever the camera's resolution.
const QualitySide = 512

// The quality flags.
const (
	QualityBlurry      = "blurry"
	QualityDark        = "dark"
	QualityOverexposed = "overexposed"
)

// The thresholds, in one place (web/static/quality.js has the same numbers; a test checks).
//
//   - Blurry below a Laplacian variance of 15 at 512 px. On the calibration set of
//     quality_test.go (photo-like skin scenes with detail at several scales, and real fixture
//     photos) sharp originals score 50 to 280 and a slight blur (Gaussian, 0.1 % of the width:
//     4 px of a 4000 px photo) 49 to 92, while a blur of 0.5 % of the width (a moving infant,
//     a hand that shook) scores under 9: three times under the threshold, which is three
//     times under the sharp originals. No sharp original is flagged.
//   - Dark when the mean luminance is under 0.2 (about a stop and a half under a normal
//     exposure of skin), or when over half the pixels are crushed to black.
//   - Overexposed when over 15 % of the pixels are burnt out (flash straight on the skin), or
//     the mean luminance is over 0.9. Well exposed originals clip 0 to 6 %.
const (
	blurryBelow            = 15.0
	darkMeanBelow          = 0.2
	darkShadowsOver        = 0.5
	overexposedHighsOver   = 0.15
	overexposedMeanAbove   = 0.9
	clippedHighAtOrAbove   = 250
	clippedShadowAtOrBelow = 5
)

// QualityThresholds names the thresholds, for the page's copy of them (web/static/quality.js)
// to be checked against.
func QualityThresholds() map[string]float64 {
	return map[string]float64{"blurryBelow": blurryBelow, "darkMeanBelow": darkMeanBelow, "darkShadowsOver": darkShadowsOver,
		"overexposedHighsOver": overexposedHighsOver, "overexposedMeanAbove": overexposedMeanAbove,
		"clippedHighAtOrAbove": clippedHighAtOrAbove, "clippedShadowAtOrBelow": clippedShadowAtOrBelow}
}

// MeasureQuality takes the measures of img (any size; it is scaled to QualitySide first, as
// the page's canvas does).
func MeasureQuality(img image.Image) Quality {
	b := img.Bounds()
	w, h := b.Dx(), b.Dy()
	if w == 0 || h == 0 {
		return Quality{}
	}
	if long := max(w, h); long != QualitySide {
		if w >= h {
			w, h = QualitySide, max(1, int(math.Round(float64(h)*QualitySide/float64(w))))
		} else {
			w, h = max(1, int(math.Round(float64(w)*QualitySide/float64(h)))), QualitySide
		}
		img = imaging.Resize(img, w, h, imaging.Linear)
	}
	return measureLuminance(luminance(img), w, h)
}

// qualityWorkBytes bounds what MeasureQuality holds for a w x h image: the scaled copy (with
// imaging's horizontal pass and weights), an NRGBA copy when the source is not one, and the
// luma.
func qualityWorkBytes(w, h int64) int64 {
	if w <= 0 || h <= 0 {
		return 0
	}
	qw, qh := w, h
	var total int64
	if long := max(w, h); long != QualitySide {
		if w >= h {
			qw, qh = QualitySide, max(1, h*QualitySide/w+1)
		} else {
			qw, qh = max(1, w*QualitySide/h+1), QualitySide
		}
		total += resampleBytes(w, h, qw, qh, 1) // Linear
	} else {
		total += 4 * qw * qh // imaging.Clone of a source that is not NRGBA
	}
	return total + 8*qw*qh + 4<<10
}

// luminance returns the BT.601 luma (0-255) of every pixel of img, row by row.
func luminance(img image.Image) []float64 {
	nrgba, ok := img.(*image.NRGBA)
	if !ok || nrgba.Rect.Min != (image.Point{}) {
		nrgba = imaging.Clone(img)
	}
	w, h := nrgba.Rect.Dx(), nrgba.Rect.Dy()
	y := make([]float64, w*h)
	for row := range h {
		px := nrgba.Pix[row*nrgba.Stride : row*nrgba.Stride+4*w]
		for x := range w {
			r, g, b := float64(px[4*x]), float64(px[4*x+1]), float64(px[4*x+2])
			y[row*w+x] = 0.299*r + 0.587*g + 0.114*b
		}
	}
	return y
}

func measureLuminance(y []float64, w, h int) Quality {
	var q Quality
	var sum float64
	var highs, shadows int
	for _, v := range y {
		sum += v
		if v >= clippedHighAtOrAbove {
			highs++
		}
		if v <= clippedShadowAtOrBelow {
			shadows++
		}
	}
	n := float64(len(y))
	q.MeanLuminance = sum / n / 255
	q.ClippedHighlights, q.ClippedShadows = float64(highs)/n, float64(shadows)/n
	// The Laplacian's variance over the interior pixels.
	var ls, lss float64
	count := 0
	for row := 1; row < h-1; row++ {
		for x := 1; x < w-1; x++ {
			i := row*w + x
			l := y[i-1] + y[i+1] + y[i-w] + y[i+w] - 4*y[i]
			ls += l
			lss += l * l
			count++
		}
	}
	if count > 0 {
		mean := ls / float64(count)
		q.Sharpness = lss/float64(count) - mean*mean
	}
	q.Flags = qualityFlags(q)
	return q
}

func qualityFlags(q Quality) []string {
	flags := []string{}
	if q.Sharpness < blurryBelow {
		flags = append(flags, QualityBlurry)
	}
	if q.MeanLuminance < darkMeanBelow || q.ClippedShadows > darkShadowsOver {
		flags = append(flags, QualityDark)
	}
	if q.ClippedHighlights > overexposedHighsOver || q.MeanLuminance > overexposedMeanAbove {
		flags = append(flags, QualityOverexposed)
	}
	return flags
}
