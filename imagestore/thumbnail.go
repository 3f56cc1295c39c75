package imagestore

import (
	"bytes"
	"context"
	"fmt"
	"image"
	"image/color"
	"io"
	"strconv"
	"strings"

	"github.com/disintegration/imaging"
)

// ThumbSize is one entry of the thumbnail table.
type ThumbSize struct {
	Name    string
	MaxSide int // the longer side of the thumbnail, in pixels; smaller images are not enlarged
}

// ThumbSizes is the thumbnail table: "small" for timelines and lists, "large" for the
// side-by-side review. A function, so that nobody can change the table at run time.
func ThumbSizes() []ThumbSize {
	return []ThumbSize{{Name: "small", MaxSide: 320}, {Name: "large", MaxSide: 1280}}
}

// ThumbKey is the object key of a thumbnail, derived from the SHA-256 (hex) of the stored
// original; the size is part of the key so that a changed table never serves stale images.
func ThumbKey(contentSHA256 string, size ThumbSize) string {
	return "thumbs/" + strings.ToLower(contentSHA256) + "/" + size.Name + "-" +
		strconv.Itoa(size.MaxSide) + ".jpg"
}

// ThumbJPEGQuality is the JPEG quality of thumbnails.
const ThumbJPEGQuality = 85

// Thumbnail decodes a sanitized photo, scales it to fit maxSide, applies the EXIF orientation
// (from CaptureMeta: the caller passes it) and encodes a JPEG. It is Thumbnails for one size.
func Thumbnail(r io.Reader, orientation int, maxSide int) ([]byte, error) {
	thumbs, err := Thumbnails(r, orientation, []ThumbSize{{MaxSide: maxSide}}, DefaultLimits())
	if err != nil {
		return nil, err
	}
	return thumbs[0].JPEG, nil
}

// Thumb is one encoded thumbnail.
type Thumb struct {
	Size ThumbSize
	JPEG []byte
}

// Thumbnails is DefaultDecodeBudget().Thumbnails without a context, for a reader whose size
// it takes from r when r can tell it (a bytes.Reader, an *os.File), unknown otherwise.
func Thumbnails(r io.Reader, orientation int, sizes []ThumbSize, lim Limits) ([]Thumb, error) {
	return DefaultDecodeBudget().Thumbnails(context.Background(), r, readerSize(r), orientation, sizes, lim)
}

// Thumbnails makes the thumbnails of a sanitized photo of size bytes (-1 if unknown) for
// several sizes from one decode: the photo is decoded once, a JPEG at the largest DCT-domain
// reduction (1/2, 1/4 or 1/8) that keeps its longer side at or above the largest size; the
// largest thumbnail is resampled from that, each smaller one from the one before; each is
// turned upright by the EXIF orientation (from CaptureMeta) and encoded as a JPEG.
//
// Before any pixel is decoded, the dimensions are checked against lim (the pixels per byte
// too, when the size is known), and what the decode and the
// thumbnails will hold is computed from the header and taken from b: a photo that needs more
// than b.PerDecode() is refused, and one that fits waits (until ctx ends) while other decodes
// hold too much of b. A refusal or a damaged photo is a *RejectError (permanent: the same
// bytes fail again); a read error of r, or ctx's end while waiting, is returned as it is.
func (b *DecodeBudget) Thumbnails(ctx context.Context, r io.Reader, size int64, orientation int, sizes []ThumbSize, lim Limits) ([]Thumb, error) {
	thumbs, _, err := b.ThumbnailsAndQuality(ctx, r, size, orientation, sizes, lim)
	return thumbs, err
}

// ThumbnailsAndQuality is Thumbnails that also measures the photo's Quality, from the largest
// thumbnail it makes anyway: no second decode.
func (b *DecodeBudget) ThumbnailsAndQuality(ctx context.Context, r io.Reader, size int64, orientation int, sizes []ThumbSize, lim Limits) ([]Thumb, Quality, error) {
	lim = lim.WithDefaults()
	for _, s := range sizes {
		if s.MaxSide <= 0 {
			return nil, Quality{}, fmt.Errorf("imagestore: thumbnail size %d", s.MaxSide)
		}
	}
	if len(sizes) == 0 {
		return nil, Quality{}, nil
	}
	dec, err := b.decodeForThumbnails(ctx, r, size, sizes, lim)
	if err != nil {
		return nil, Quality{}, err
	}
	defer dec.release()
	order := make([]int, len(sizes))
	for i := range order {
		order[i] = i
	}
	// Largest first: scaling 1280 -> 320 is far cheaper than 12 MP -> 320 and looks the same.
	for i := 1; i < len(order); i++ {
		for j := i; j > 0 && sizes[order[j]].MaxSide > sizes[order[j-1]].MaxSide; j-- {
			order[j], order[j-1] = order[j-1], order[j]
		}
	}
	out := make([]Thumb, len(sizes))
	var q Quality
	measured := false
	src := toResampleable(dec.img)
	dec.img = nil // the decode is garbage once the largest thumbnail is made from it
	for _, i := range order {
		// The size comes from the photo's, not from the reduced image's (whose sides are
		// rounded up), so that every path gives the same thumbnail size.
		w, h := fitSize(dec.plan.width, dec.plan.height, sizes[i].MaxSide)
		scaled := fitWithin(src, w, h)
		if !measured { // the largest thumbnail, the first made: the closest to the original
			q, measured = MeasureQuality(scaled), true
		}
		src = scaled
		var buf bytes.Buffer
		final := flattenOnWhite(orient(scaled, orientation))
		if err := imaging.Encode(&buf, final, imaging.JPEG, imaging.JPEGQuality(ThumbJPEGQuality)); err != nil {
			return nil, Quality{}, fmt.Errorf("imagestore: encode thumbnail: %w", err)
		}
		out[i] = Thumb{Size: sizes[i], JPEG: buf.Bytes()}
	}
	return out, q, nil
}

// fitSize is the size of a w x h image scaled down to fit maxSide (not enlarged).
func fitSize(w, h, maxSide int) (int, int) {
	switch {
	case max(w, h) <= maxSide:
		return w, h
	case w >= h:
		return maxSide, max(1, int(int64(h)*int64(maxSide)/int64(w)))
	}
	return max(1, int(int64(w)*int64(maxSide)/int64(h))), maxSide
}

// thumbFilter resamples what the decoder leaves: at most a factor below 2 for a JPEG (which
// the DCT-domain reduction brought within it, its means an exact box filter), more for the
// other formats, after shrinkYCbCr for lossy WebP.
var thumbFilter = imaging.Lanczos

// fitWithin scales img down to w x h (at most its size: never up). A YCbCr image at twice the
// size or more (a lossy WebP; a JPEG the DCT-domain reduction could not bring within twice
// the size, past 8 times) is first box-averaged by an integer factor straight from its planes,
// which costs a fraction of resampling all its pixels through RGBA; the resampler then only
// bridges the last factor below 2.
func fitWithin(img image.Image, w, h int) image.Image {
	b := img.Bounds()
	if w >= b.Dx() && h >= b.Dy() {
		return img
	}
	if y, ok := img.(*image.YCbCr); ok && b.Min == (image.Point{}) {
		if k := min(b.Dx()/w, b.Dy()/h); k >= 2 {
			img = shrinkYCbCr(y, k)
		}
	}
	return imaging.Resize(img, w, h, thumbFilter)
}

// shrinkYCbCr box-averages each plane of src by the factor k.
func shrinkYCbCr(src *image.YCbCr, k int) *image.YCbCr {
	sw, sh := src.Rect.Dx(), src.Rect.Dy()
	dst := image.NewYCbCr(image.Rect(0, 0, max(1, sw/k), max(1, sh/k)), src.SubsampleRatio)
	dw, dh := dst.Rect.Dx(), dst.Rect.Dy()
	shrinkPlane(dst.Y, dst.YStride, dw, dh, src.Y, src.YStride, sw, sh, k)
	scw, sch := chromaSize(sw, sh, src.SubsampleRatio)
	dcw, dch := chromaSize(dw, dh, src.SubsampleRatio)
	shrinkPlane(dst.Cb, dst.CStride, dcw, dch, src.Cb, src.CStride, scw, sch, k)
	shrinkPlane(dst.Cr, dst.CStride, dcw, dch, src.Cr, src.CStride, scw, sch, k)
	return dst
}

// shrinkPlane sets each dst sample to the mean of a k-by-k block of src, clipped at the edges.
func shrinkPlane(dst []byte, dstride, dw, dh int, src []byte, sstride, sw, sh, k int) {
	for y := range dh {
		y0 := min(y*k, sh-1)
		y1 := min(y0+k, sh)
		row := dst[y*dstride : y*dstride+dw]
		for x := range row {
			x0 := min(x*k, sw-1)
			x1 := min(x0+k, sw)
			sum := 0
			for yy := y0; yy < y1; yy++ {
				for _, v := range src[yy*sstride+x0 : yy*sstride+x1] {
					sum += int(v)
				}
			}
			n := (y1 - y0) * (x1 - x0)
			row[x] = byte((sum + n/2) / n)
		}
	}
}

// chromaSize is the size of the chroma planes of a w-by-h image (as image.NewYCbCr lays
// them out).
func chromaSize(w, h int, r image.YCbCrSubsampleRatio) (int, int) {
	switch r {
	case image.YCbCrSubsampleRatio422:
		return (w + 1) / 2, h
	case image.YCbCrSubsampleRatio420:
		return (w + 1) / 2, (h + 1) / 2
	case image.YCbCrSubsampleRatio440:
		return w, (h + 1) / 2
	case image.YCbCrSubsampleRatio411:
		return (w + 3) / 4, h
	case image.YCbCrSubsampleRatio410:
		return (w + 3) / 4, (h + 1) / 2
	}
	return w, h
}

// orient turns the image upright according to the EXIF orientation (1 to 8).
func orient(img image.Image, orientation int) image.Image {
	switch orientation {
	case 2:
		return imaging.FlipH(img)
	case 3:
		return imaging.Rotate180(img)
	case 4:
		return imaging.FlipV(img)
	case 5:
		return imaging.Transpose(img)
	case 6:
		return imaging.Rotate270(img)
	case 7:
		return imaging.Transverse(img)
	case 8:
		return imaging.Rotate90(img)
	}
	return img
}

// flattenOnWhite composes transparent images onto white: JPEG has no alpha, and transparent
// pixels would otherwise turn black.
func flattenOnWhite(img image.Image) image.Image {
	if o, ok := img.(interface{ Opaque() bool }); ok && o.Opaque() {
		return img
	}
	b := img.Bounds()
	bg := imaging.New(b.Dx(), b.Dy(), color.White)
	return imaging.Overlay(bg, img, image.Point{}, 1)
}
