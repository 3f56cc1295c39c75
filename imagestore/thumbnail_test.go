package imagestore

import (
	"bytes"
	"image"
	"image/color"
	"image/jpeg"
	"strings"
	"testing"
)

// TestThumbnailOrientation: a landscape photo with a red top-left corner, stored with each
// EXIF orientation, must come out upright: dimensions swapped for 5-8 and the corner where
// the orientation puts it.
func TestThumbnailOrientation(t *testing.T) {
	t.Parallel()
	src := encodeJPEG(t, testImage(80, 40), 95)
	// Where the stored top-left corner appears once displayed upright.
	corner := map[int]string{1: "tl", 2: "tr", 3: "br", 4: "bl", 5: "tl", 6: "tr", 7: "br", 8: "bl"}
	for o := 1; o <= 8; o++ {
		out, err := Thumbnail(bytes.NewReader(src), o, 320)
		if err != nil {
			t.Fatal(err)
		}
		img, err := jpeg.Decode(bytes.NewReader(out))
		if err != nil {
			t.Fatal(err)
		}
		w, h := img.Bounds().Dx(), img.Bounds().Dy()
		if (o >= 5) != (h > w) {
			t.Errorf("orientation %d: %dx%d", o, w, h)
		}
		at := map[string]image.Point{"tl": {2, 2}, "tr": {w - 3, 2}, "br": {w - 3, h - 3}, "bl": {2, h - 3}}
		for name, p := range at {
			if red := isRed(img.At(p.X, p.Y)); red != (name == corner[o]) {
				t.Errorf("orientation %d: corner %s red=%v", o, name, red)
			}
		}
	}
}

func isRed(c color.Color) bool {
	r, g, b, _ := c.RGBA()
	return r>>8 > 200 && g>>8 < 80 && b>>8 < 80
}

func TestThumbnailSizes(t *testing.T) {
	t.Parallel()
	big := encodeJPEG(t, testImage(1300, 650), 50)
	thumbs, err := Thumbnails(bytes.NewReader(big), 1, ThumbSizes(), DefaultLimits())
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]image.Point{"small": {320, 160}, "large": {1280, 640}}
	if len(thumbs) != len(want) {
		t.Fatalf("%d thumbnails", len(thumbs))
	}
	for _, th := range thumbs {
		cfg, err := jpeg.DecodeConfig(bytes.NewReader(th.JPEG))
		if err != nil {
			t.Fatal(err)
		}
		if p := want[th.Size.Name]; cfg.Width != p.X || cfg.Height != p.Y {
			t.Errorf("%s: %dx%d", th.Size.Name, cfg.Width, cfg.Height)
		}
	}
	// Small images are not enlarged.
	small, err := Thumbnail(bytes.NewReader(encodeJPEG(t, testImage(100, 50), 80)), 6, 1280)
	if err != nil {
		t.Fatal(err)
	}
	if cfg, _ := jpeg.DecodeConfig(bytes.NewReader(small)); cfg.Width != 50 || cfg.Height != 100 {
		t.Errorf("small image: %dx%d", cfg.Width, cfg.Height)
	}
}

// TestThumbnailFormats: PNG with alpha is flattened onto white; WebP decodes.
func TestThumbnailFormats(t *testing.T) {
	t.Parallel()
	img := image.NewNRGBA(image.Rect(0, 0, 40, 40))
	img.SetNRGBA(20, 20, color.NRGBA{0, 0, 255, 255})
	out, err := Thumbnail(bytes.NewReader(encodePNG(t, img)), 1, 320)
	if err != nil {
		t.Fatal(err)
	}
	dec, err := jpeg.Decode(bytes.NewReader(out))
	if err != nil {
		t.Fatal(err)
	}
	if r, g, b, _ := dec.At(2, 2).RGBA(); r>>8 < 240 || g>>8 < 240 || b>>8 < 240 {
		t.Errorf("transparent area not white: %v", dec.At(2, 2))
	}
	for _, name := range []string{"yellow_rose.lossy-with-alpha.webp", "gopher-doc.with-alpha.lossless.webp"} {
		if _, err := Thumbnail(bytes.NewReader(readTestdata(t, name)), 1, 64); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	if _, err := Thumbnail(strings.NewReader("GIF89a......"), 1, 64); err == nil {
		t.Error("GIF accepted")
	}
}

func TestThumbKey(t *testing.T) {
	t.Parallel()
	const sum = "9F86D081884C7D659A2FEAA0C55AD015A3BF4F1B2B0B822CD15D6C15B0F00A08"
	got := ThumbKey(sum, ThumbSizes()[0])
	if got != "thumbs/"+strings.ToLower(sum)+"/small-320.jpg" {
		t.Errorf("ThumbKey = %s", got)
	}
	sizes := ThumbSizes()
	sizes[0].MaxSide = 1
	if ThumbSizes()[0].MaxSide != 320 {
		t.Error("the size table can be changed by a caller")
	}
}
