package jpegscale

import (
	"bytes"
	"fmt"
	"image"
	"image/jpeg"
	"math/rand/v2"
	"sync"
	"testing"

	"github.com/dermfollow/dermfollow/imagestore/internal/jpegscale/jpegtest"
)

// benchPhotos are a 12 MP photo-like picture (gradients and sensor-like noise, 4:2:0) as a
// sequential JPEG from image/jpeg and as a progressive one from jpegtest, both at quality 92.
var benchPhotos = sync.OnceValues(func() (map[string][]byte, error) {
	const w, h = 4000, 3000
	img := image.NewYCbCr(image.Rect(0, 0, w, h), image.YCbCrSubsampleRatio420)
	rng := rand.New(rand.NewPCG(1, 2))
	for y := range h {
		for x := range w {
			img.Y[y*img.YStride+x] = uint8(min(40+150*x/w+40*y/h+int(rng.Uint32()%24), 255))
		}
	}
	for y := range h / 2 {
		for x := range w / 2 {
			img.Cb[y*img.CStride+x] = uint8(110 + 30*y/h + int(rng.Uint32()%6))
			img.Cr[y*img.CStride+x] = uint8(140 + 20*x/w + int(rng.Uint32()%6))
		}
	}
	var seq, prog bytes.Buffer
	if err := jpeg.Encode(&seq, img, &jpeg.Options{Quality: 92}); err != nil {
		return nil, err
	}
	if err := jpegtest.Encode(&prog, img, jpegtest.Options{Quality: 92, Progressive: true}); err != nil {
		return nil, err
	}
	return map[string][]byte{"baseline": seq.Bytes(), "progressive": prog.Bytes()}, nil
})

// BenchmarkDecode12MP: image/jpeg against jpegscale at each scale.
func BenchmarkDecode12MP(b *testing.B) {
	photos, err := benchPhotos()
	if err != nil {
		b.Fatal(err)
	}
	for _, kind := range []string{"baseline", "progressive"} {
		data := photos[kind]
		b.Run(kind+"/image-jpeg", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := jpeg.Decode(bytes.NewReader(data)); err != nil {
					b.Fatal(err)
				}
			}
		})
		for _, s := range []int{1, 2, 4, 8} {
			b.Run(fmt.Sprintf("%s/1-%d", kind, s), func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					if _, err := decodeAt(data, s); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}
