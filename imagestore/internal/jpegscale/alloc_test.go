package jpegscale

import (
	"bytes"
	"runtime"
	"testing"

	"github.com/dermfollow/dermfollow/imagestore/internal/jpegscale/jpegtest"
)

// allocSlack is what a decode allocates beyond Header.Bytes: the image structs and the
// sub-image, the closure of the plan, the reader's state.
const allocSlack = 2 << 10

// decodeAllocated decodes data at 1/scale and returns the bytes the process allocated in the
// meantime (the caller runs alone: not in parallel with other tests) and the header's figure.
// The counter is the whole process's: the runtime's own work (the race detector's, the
// scheduler's) sometimes lands in it, so the fewest bytes of three decodes is what the decode
// allocates; every one of them allocates at least that.
func decodeAllocated(data []byte, scale int) (allocated, predicted int64, err error) {
	allocated = -1
	for range 3 {
		var got int64
		got, predicted, err = decodeAllocatedOnce(data, scale)
		if allocated < 0 || got < allocated {
			allocated = got
		}
	}
	return allocated, predicted, err
}

func decodeAllocatedOnce(data []byte, scale int) (allocated, predicted int64, err error) {
	r := bytes.NewReader(data)
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	_, err = DecodeWith(r, Options{Plan: func(h Header) (int, error) {
		predicted = h.Bytes(scale)
		return scale, nil
	}})
	runtime.ReadMemStats(&after)
	return int64(after.TotalAlloc - before.TotalAlloc), predicted, err
}

// TestHeaderBytesBoundsAllocation: what Header.Bytes says a decode will allocate bounds what
// it allocates, at every scale and for every kind of file (not in parallel: it reads the
// process's allocation counter).
func TestHeaderBytesBoundsAllocation(t *testing.T) {
	files := mustGenerated(t)
	for name, data := range fixtureFiles(t) {
		files[name] = data
	}
	for name, data := range files {
		for _, s := range []int{1, 2, 4, 8} {
			got, predicted, err := decodeAllocated(data, s)
			if predicted == 0 {
				t.Errorf("%s 1/%d: no header (%v)", name, s, err)
				continue
			}
			if got > predicted+allocSlack {
				t.Errorf("%s 1/%d: allocated %d bytes, Header.Bytes said %d", name, s, got, predicted)
			}
		}
	}
}

// craftedProgressive is a small progressive photo whose frame header is patched to claim
// 10000x10000 pixels (the pixel limit, which the check lets through), as a crafted upload may claim.
func craftedProgressive(t testing.TB) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := jpegtest.Encode(&buf, photoLike(300, 200, 9), jpegtest.Options{Quality: 75, Progressive: true}); err != nil {
		t.Fatal(err)
	}
	data, err := jpegtest.WithSize(buf.Bytes(), 10000, 10000)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// TestCraftedHeaderFailsCheaply: a file whose scans end long before its declared 100 MP are
// filled fails, at every scale but 1, after allocating what its data reached, not what its
// header claims (image/jpeg allocates about 750 MB for it).
func TestCraftedHeaderFailsCheaply(t *testing.T) {
	data := craftedProgressive(t)
	t.Logf("crafted file: %d bytes", len(data))
	for _, s := range []int{2, 4, 8} {
		got, predicted, err := decodeAllocated(data, s)
		if err == nil {
			t.Errorf("1/%d: decoded", s)
		}
		t.Logf("1/%d: %v; allocated %.1f MB, header says up to %.1f MB", s, err, float64(got)/1e6, float64(predicted)/1e6)
		if got > 8<<20 {
			t.Errorf("1/%d: allocated %d bytes", s, got)
		}
	}
}
