package imagestore

import (
	"bytes"
	"errors"
	"image"
	"image/jpeg"
	"strings"
	"testing"

	"github.com/disintegration/imaging"
)

// fuzzLimits keep each fuzz iteration small: pixel data is never decoded, but scans and CRCs
// are linear in the input.
func fuzzLimits() Limits {
	return Limits{MaxBytes: 1 << 20, MaxPixels: 1 << 24, MaxSide: 8192, MaxSegments: 256}
}

func addFixtureSeeds(f *testing.F, withOutputs bool) {
	for _, fx := range append(acceptedFixtures(f), refusedFixtures(f)...) {
		if len(fx.data) > 64<<10 {
			continue
		}
		f.Add(fx.data)
		if withOutputs {
			if out, _, err := SanitizeBytes(fx.data, fuzzLimits()); err == nil {
				f.Add(out)
			}
		}
	}
}

// FuzzSanitize: no panic, no hang; refusals are RejectErrors and never "unclean" (that would
// mean the sanitizer produced output its verifier rejects); every output verifies and is a
// fixed point.
func FuzzSanitize(f *testing.F) {
	addFixtureSeeds(f, false)
	lim := fuzzLimits()
	f.Fuzz(func(t *testing.T, in []byte) {
		out, c, err := SanitizeBytes(in, lim)
		if err != nil {
			var rej *RejectError
			if !errors.As(err, &rej) {
				t.Fatalf("not a RejectError: %v", err)
			}
			if rej.Reason == ReasonUnclean {
				t.Fatalf("sanitizer output failed verification: %v", err)
			}
			return
		}
		if got, err := Verify(bytes.NewReader(out), int64(len(out))); err != nil || got != c.Format {
			t.Fatalf("output does not verify: %v", err)
		}
		again, _, err := SanitizeBytes(out, lim)
		if err != nil {
			t.Fatalf("sanitized output refused: %v", err)
		}
		if !bytes.Equal(again, out) {
			t.Fatalf("not idempotent: %d -> %d bytes", len(out), len(again))
		}
	})
}

// FuzzVerify: no panic, no hang; and whatever the verifier accepts the sanitizer leaves
// exactly as it is (it may still refuse it, for limits or for broken image structure, which
// the verifier does not judge).
func FuzzVerify(f *testing.F) {
	addFixtureSeeds(f, true)
	lim := fuzzLimits()
	f.Fuzz(func(t *testing.T, in []byte) {
		if _, err := Verify(bytes.NewReader(in), int64(len(in))); err != nil {
			return
		}
		out, _, err := SanitizeBytes(in, lim)
		if err != nil {
			var rej *RejectError
			if !errors.As(err, &rej) || rej.Reason == ReasonUnclean {
				t.Fatalf("verified input: %v", err)
			}
			return
		}
		if !bytes.Equal(out, in) {
			t.Fatalf("sanitizer changed a verified file: %d -> %d bytes", len(in), len(out))
		}
	})
}

// FuzzJPEGDecodable is the stray-bytes rule as a property: a JPEG that image/jpeg (which
// makes the thumbnails) decodes is accepted, unless it is refused for a stated limit or for a
// header that claims more than its data can hold, and the output decodes to the same pixels.
func FuzzJPEGDecodable(f *testing.F) {
	addFixtureSeeds(f, false)
	lim := fuzzLimits()
	f.Fuzz(func(t *testing.T, in []byte) {
		cfg, err := jpeg.DecodeConfig(bytes.NewReader(in))
		if err != nil || cfg.Width*cfg.Height > 1<<16 {
			return // not a JPEG, or too slow to decode in every iteration
		}
		want, err := jpeg.Decode(bytes.NewReader(in))
		if err != nil {
			return
		}
		out, _, err := SanitizeBytes(in, lim)
		var rej *RejectError
		switch {
		case err == nil:
		case !errors.As(err, &rej):
			t.Fatalf("not a RejectError: %v", err)
		case rej.Reason == ReasonTooLarge || rej.Reason == ReasonTooManyPixels || rej.Reason == ReasonTooComplex:
			return
		case rej.Reason == ReasonMalformed && isPlausibilityRefusal(rej):
			return // image/jpeg makes up the missing data; a photo never lacks it
		case rej.Reason == ReasonUnsupported && len(in) > 2 && in[2] != 0xFF:
			return // a JPEG starts FF D8 FF for every sniffer, browsers' too
		default:
			t.Fatalf("image/jpeg decodes it, the sanitizer refuses it: %v", err)
		}
		got, err := jpeg.Decode(bytes.NewReader(out))
		if err != nil {
			t.Fatalf("the sanitized file does not decode: %v", err)
		}
		if !sameImage(want, got) {
			t.Fatal("the sanitized file decodes to other pixels")
		}
	})
}

// isPlausibilityRefusal tells the refusals of a JPEG whose scans hold less than its frame
// needs, which image/jpeg pads with zero bits instead.
func isPlausibilityRefusal(rej *RejectError) bool {
	return strings.Contains(rej.Detail, "bytes of image data") || strings.Contains(rej.Detail, "before its DC scan")
}

func sameImage(a, b image.Image) bool {
	na, nb := imaging.Clone(a), imaging.Clone(b)
	return na.Rect == nb.Rect && bytes.Equal(na.Pix, nb.Pix)
}
