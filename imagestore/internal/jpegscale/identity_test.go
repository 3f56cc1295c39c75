package jpegscale

import (
	"bytes"
	"image"
	"image/jpeg"
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

// fixtureFiles are real encoder output: the Go distribution's JPEG test images (testdata/,
// copied from src/image/testdata) and the ones imagestore's tests use.
func fixtureFiles(t testing.TB) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	for _, pattern := range []string{"testdata/*.jpeg", "../../testdata/*.jpeg"} {
		names, err := filepath.Glob(pattern)
		if err != nil {
			t.Fatal(err)
		}
		for _, name := range names {
			b, err := os.ReadFile(name)
			if err != nil {
				t.Fatal(err)
			}
			out[name] = b
		}
	}
	if len(out) < 20 {
		t.Fatalf("only %d JPEG fixtures found", len(out))
	}
	return out
}

// sameDecode reports whether our scale-1 decode of data equals image/jpeg's, error for error
// and byte for byte.
func sameDecode(t testing.TB, name string, data []byte) {
	t.Helper()
	want, wantErr := jpeg.Decode(bytes.NewReader(data))
	got, gotErr := Decode(bytes.NewReader(data))
	if (wantErr == nil) != (gotErr == nil) {
		t.Fatalf("%s: image/jpeg error %v, ours %v", name, wantErr, gotErr)
	}
	if wantErr != nil {
		if wantErr.Error() != gotErr.Error() {
			t.Errorf("%s: image/jpeg error %q, ours %q", name, wantErr, gotErr)
		}
		return
	}
	if !sameImage(want, got) {
		t.Errorf("%s: pixels differ from image/jpeg", name)
	}
}

// sameImage compares type, bounds, strides and every byte of the pixel buffers.
func sameImage(a, b image.Image) bool {
	if reflect.TypeOf(a) != reflect.TypeOf(b) || a.Bounds() != b.Bounds() {
		return false
	}
	switch a := a.(type) {
	case *image.YCbCr:
		b := b.(*image.YCbCr)
		return a.SubsampleRatio == b.SubsampleRatio && a.YStride == b.YStride && a.CStride == b.CStride &&
			bytes.Equal(a.Y, b.Y) && bytes.Equal(a.Cb, b.Cb) && bytes.Equal(a.Cr, b.Cr)
	case *image.Gray:
		b := b.(*image.Gray)
		return a.Stride == b.Stride && bytes.Equal(a.Pix, b.Pix)
	case *image.RGBA:
		b := b.(*image.RGBA)
		return a.Stride == b.Stride && bytes.Equal(a.Pix, b.Pix)
	case *image.CMYK:
		b := b.(*image.CMYK)
		return a.Stride == b.Stride && bytes.Equal(a.Pix, b.Pix)
	}
	return false
}

func TestScaleOneIdenticalOnFixtures(t *testing.T) {
	t.Parallel()
	for name, data := range fixtureFiles(t) {
		sameDecode(t, name, data)
	}
}
