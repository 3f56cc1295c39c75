package jpegscale

import (
	"bytes"
	"errors"
	"image/jpeg"
	"runtime"
	"testing"
)

var errTooBig = errors.New("over the fuzz budget")

// fuzzBudget bounds what one fuzz input may make the decoder allocate.
const fuzzBudget = 16 << 20

// FuzzDecode: no input makes the decoder panic; at scale 1 it decodes as image/jpeg does
// (same pixels, same error) wherever that is cheap to check; at every scale it allocates no
// more than Header.Bytes says (plus allocSlack), and nothing the size of the image once the
// plan refuses. Seeds: the fixtures, small generated files and the crafted bomb, and
// testdata/fuzz/FuzzDecode.
func FuzzDecode(f *testing.F) {
	for _, data := range fixtureFiles(f) {
		f.Add(data)
	}
	files := mustGenerated(f)
	for _, name := range []string{"17x9-420-progressive-ri0", "77x51-422-baseline-ri3", "17x9-444-progressive-ri3",
		"17x9-grey2x2-progressive=true-ri2", "17x9-ycck-progressive=true", "17x9-rgb-progressive=false", "17x9-411-spectral-ri0"} {
		data, ok := files[name]
		if !ok {
			f.Fatalf("no generated file %s", name)
		}
		f.Add(data)
	}
	f.Add(craftedProgressive(f))
	f.Fuzz(func(t *testing.T, data []byte) {
		// Scale 1 against image/jpeg, for images small enough to decode twice.
		small := func(h Header) (int, error) {
			if h.Width*h.Height > 1<<20 {
				return 0, errTooBig
			}
			return 1, nil
		}
		ours, err := DecodeWith(bytes.NewReader(data), Options{Plan: small})
		if !errors.Is(err, errTooBig) {
			want, wantErr := jpeg.Decode(bytes.NewReader(data))
			if (err == nil) != (wantErr == nil) || err != nil && err.Error() != wantErr.Error() {
				t.Fatalf("errors: image/jpeg %v, ours %v", wantErr, err)
			}
			if err == nil && !sameImage(want, ours) {
				t.Fatal("pixels differ from image/jpeg")
			}
		}
		for _, s := range []int{1, 2, 4, 8} {
			var predicted int64
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			_, err := DecodeWith(bytes.NewReader(data), Options{Plan: func(h Header) (int, error) {
				predicted = h.Bytes(s)
				if predicted > fuzzBudget {
					return 0, errTooBig
				}
				return s, nil
			}})
			runtime.ReadMemStats(&after)
			allocated := int64(after.TotalAlloc - before.TotalAlloc)
			limit := min(predicted, fuzzBudget) + allocSlack
			if errors.Is(err, errTooBig) {
				limit = heapBytes(decoderBytes) + allocSlack
			}
			if predicted > 0 && allocated > limit {
				t.Fatalf("1/%d: allocated %d bytes, allowed %d (%v)", s, allocated, limit, err)
			}
		}
	})
}
