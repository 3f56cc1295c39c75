package imagestore

import (
	"bytes"
	"errors"
	"testing"
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
