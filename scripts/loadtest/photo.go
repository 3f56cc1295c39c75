package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"image"
	"image/jpeg"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
)

// photo: a photographic-looking JPEG, the input of every image benchmark.

func cmdPhoto(args []string) error {
	fs := flag.NewFlagSet("photo", flag.ExitOnError)
	out := fs.String("out", "", "file to write")
	w := fs.Int("width", 4000, "width in pixels")
	h := fs.Int("height", 3000, "height in pixels")
	q := fs.Int("quality", 92, "JPEG quality")
	noise := fs.Int("noise", 12, "luma noise amplitude (0-127); more noise, bigger file")
	seed := fs.Uint64("seed", 1, "varies the picture")
	minMB := fs.Float64("min-mb", 0, "fail if the file is smaller (MB)")
	maxMB := fs.Float64("max-mb", 0, "fail if the file is larger (MB)")
	fs.Parse(args)
	if *out == "" {
		return errors.New("-out is required")
	}
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, photographic(*w, *h, *seed, *noise), &jpeg.Options{Quality: *q}); err != nil {
		return err
	}
	size := float64(buf.Len()) / mb
	if (*minMB > 0 && size < *minMB) || (*maxMB > 0 && size > *maxMB) {
		return fmt.Errorf("%dx%d q%d noise %d is %.2f MB, want %.1f-%.1f MB: adjust -noise", *w, *h, *q, *noise, size, *minMB, *maxMB)
	}
	if err := os.WriteFile(*out, buf.Bytes(), 0o644); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "photo: %s %dx%d q%d, %.2f MB\n", filepath.Base(*out), *w, *h, *q, size)
	return nil
}

// photographic compresses like a photo: smooth light falloff and broad soft shapes (a
// separable sum of low-frequency waves, cheap for tens of megapixels) under sensor-like noise.
func photographic(w, h int, seed uint64, noise int) *image.YCbCr {
	img := image.NewYCbCr(image.Rect(0, 0, w, h), image.YCbCrSubsampleRatio420)
	rng := rand.New(rand.NewPCG(seed, 0x5eed))
	waves := func(n, k int, amp float64) []float64 {
		out := make([]float64, n)
		for range k {
			f := (0.5 + 3*rng.Float64()) * 2 * math.Pi / float64(n)
			ph := 2 * math.Pi * rng.Float64()
			a := amp * (0.3 + rng.Float64())
			for i := range out {
				out[i] += a * math.Sin(float64(i)*f+ph)
			}
		}
		return out
	}
	colA, rowA := waves(w, 3, 18), waves(h, 3, 18)
	colB, rowB := waves(w, 2, 1), waves(h, 2, 1)
	span := 2*noise + 1
	for y := range h {
		row := img.Y[y*img.YStride : y*img.YStride+w]
		for x := range row {
			v := 70 + 90*x/w + 40*y/h + int(colA[x]+rowA[y]+30*colB[x]*rowB[y])
			if span > 1 {
				v += int(rng.Uint32()%uint32(span)) - noise
			}
			row[x] = uint8(min(max(v, 0), 255))
		}
	}
	cw, ch := (w+1)/2, (h+1)/2
	cspan := uint32(max(1, noise/3)*2 + 1)
	for y := range ch {
		for x := range cw {
			i := y*img.CStride + x
			img.Cb[i] = uint8(105 + 25*y/ch + int(rng.Uint32()%cspan) - int(cspan/2))
			img.Cr[i] = uint8(145 + 20*x/cw + int(10*colB[min(2*x, w-1)]) + int(rng.Uint32()%cspan) - int(cspan/2))
		}
	}
	return img
}
