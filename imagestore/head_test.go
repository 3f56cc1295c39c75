package imagestore

import (
	"errors"
	"testing"
)

// CheckHead refuses from the first bytes exactly what Sanitize refuses of the whole file, and
// never a file Sanitize accepts, whatever prefix it is given.
func TestCheckHeadAgreesWithSanitize(t *testing.T) {
	t.Parallel()
	all := append(acceptedFixtures(t), refusedFixtures(t)...)
	all = append(all, pngFixtures(t)...)
	all = append(all, webpFixtures(t)...)
	decidedEarly := 0
	for _, fx := range all {
		_, whole := Sanitize(headReader(fx.data), int64(len(fx.data)), Limits{})
		var wantReason Reason
		var re *RejectError
		if errors.As(whole, &re) {
			wantReason = re.Reason
		}
		for _, n := range []int{0, 1, 12, SniffLen, 200, 4 << 10, 64 << 10, len(fx.data)} {
			n = min(n, len(fx.data))
			err := CheckHead(fx.data[:n], int64(len(fx.data)), Limits{})
			if err == nil {
				continue
			}
			if !errors.As(err, &re) {
				t.Errorf("%s, first %d bytes: %v is not a *RejectError", fx.name, n, err)
				continue
			}
			if wantReason == "" {
				t.Errorf("%s, first %d bytes: refused (%v), but Sanitize accepts the whole file", fx.name, n, err)
			} else if re.Reason != wantReason && wantReason != ReasonUnclean {
				t.Errorf("%s, first %d bytes: refused for %s, Sanitize for %s", fx.name, n, re.Reason, wantReason)
			}
			if n < len(fx.data) {
				decidedEarly++
			}
		}
	}
	if decidedEarly == 0 {
		t.Error("no refusal was decided before the whole file: the check reads nothing early")
	}
}

// The refusals the issue names come from the first bytes: HEIC, the declared size, the pixel
// dimensions in the header.
func TestCheckHeadRefusesEarly(t *testing.T) {
	t.Parallel()
	heic := append([]byte("\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic"), make([]byte, SniffLen)...)
	if err := CheckHead(heic, 3<<20, Limits{}); !isReason(err, ReasonHEIC) {
		t.Errorf("HEIC head = %v, want %s", err, ReasonHEIC)
	}
	photo := encodeJPEG(t, testImage(64, 48), 90)
	if err := CheckHead(photo[:SniffLen], 40<<20, Limits{}); !isReason(err, ReasonTooLarge) {
		t.Errorf("a declared 40 MiB = %v, want %s", err, ReasonTooLarge)
	}
	if err := CheckHead(photo[:200], int64(len(photo)), Limits{MaxSide: 32}); !isReason(err, ReasonTooManyPixels) {
		t.Errorf("64x48 against a 32 px limit = %v, want %s", err, ReasonTooManyPixels)
	}
	if err := CheckHead(photo[:200], int64(len(photo)), Limits{}); err != nil {
		t.Errorf("the head of a good photo = %v, want nil", err)
	}
}

func isReason(err error, r Reason) bool {
	var re *RejectError
	return errors.As(err, &re) && re.Reason == r
}
