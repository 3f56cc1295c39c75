package imagestore

import (
	"bufio"
	"bytes"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"io"
	"strconv"
	"strings"

	"github.com/disintegration/imaging"
	"golang.org/x/image/webp"
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
// (from CaptureMeta: the caller passes it) and encodes a JPEG. Dimensions are checked against
// DefaultLimits before any pixel is decoded.
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

// Thumbnails is Thumbnail for several sizes from one decode, largest first internally so that
// each smaller size is scaled from the previous one. Decoding holds the whole image (about
// 20-45 MB for 12 MP), so callers should run no more of these at once than they have cores.
func Thumbnails(r io.Reader, orientation int, sizes []ThumbSize, lim Limits) ([]Thumb, error) {
	lim = lim.WithDefaults()
	img, err := decodeLimited(r, lim)
	if err != nil {
		return nil, err
	}
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
	src := img
	for _, i := range order {
		if sizes[i].MaxSide <= 0 {
			return nil, fmt.Errorf("imagestore: thumbnail size %d", sizes[i].MaxSide)
		}
		scaled := fitWithin(src, sizes[i].MaxSide)
		src = scaled
		var buf bytes.Buffer
		final := flattenOnWhite(orient(scaled, orientation))
		if err := imaging.Encode(&buf, final, imaging.JPEG, imaging.JPEGQuality(ThumbJPEGQuality)); err != nil {
			return nil, fmt.Errorf("imagestore: encode thumbnail: %w", err)
		}
		out[i] = Thumb{Size: sizes[i], JPEG: buf.Bytes()}
	}
	return out, nil
}

// decodeLimited sniffs the format, reads only the header to check the dimensions, and then
// decodes with the decoder for that format alone (never the global registry, which imaging
// fills with GIF, BMP and TIFF).
func decodeLimited(r io.Reader, lim Limits) (image.Image, error) {
	br := bufio.NewReader(r)
	head, _ := br.Peek(SniffLen)
	f, err := Sniff(head)
	if err != nil {
		return nil, err
	}
	var (
		decodeConfig func(io.Reader) (image.Config, error)
		decode       func(io.Reader) (image.Image, error)
	)
	switch f {
	case FormatJPEG:
		decodeConfig, decode = jpeg.DecodeConfig, jpeg.Decode
	case FormatPNG:
		decodeConfig, decode = png.DecodeConfig, png.Decode
	case FormatWebP:
		decodeConfig, decode = webp.DecodeConfig, webp.Decode
	}
	var header bytes.Buffer
	cfg, err := decodeConfig(io.TeeReader(br, &header))
	if err != nil {
		return nil, &RejectError{Reason: ReasonMalformed, Detail: "thumbnail: read header", Err: err}
	}
	if err := lim.checkDims(cfg.Width, cfg.Height); err != nil {
		return nil, err
	}
	img, err := decode(io.MultiReader(&header, br))
	if err != nil {
		return nil, &RejectError{Reason: ReasonMalformed, Detail: "thumbnail: decode", Err: err}
	}
	return img, nil
}

// fitWithin scales img down so that its longer side is maxSide. A decoded JPEG (YCbCr) is
// first box-averaged by an integer factor straight from its planes, which costs a fraction of
// what resampling all 12 megapixels through RGBA does; the resampler then only bridges the
// last factor below 2.
func fitWithin(img image.Image, maxSide int) image.Image {
	b := img.Bounds()
	w, h := b.Dx(), b.Dy()
	long := max(w, h)
	if long <= maxSide {
		return img
	}
	if y, ok := img.(*image.YCbCr); ok && b.Min == (image.Point{}) {
		if k := long / maxSide; k >= 2 {
			img = shrinkYCbCr(y, k)
		}
	}
	if w >= h {
		h, w = max(1, int(int64(h)*int64(maxSide)/int64(w))), maxSide
	} else {
		w, h = max(1, int(int64(w)*int64(maxSide)/int64(h))), maxSide
	}
	return imaging.Resize(img, w, h, imaging.CatmullRom)
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
