package imagestore

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"io"
	"io/fs"
	"runtime"

	"golang.org/x/image/webp"

	"github.com/dermfollow/dermfollow/imagestore/internal/jpegscale"
)

// decodePlan is what a decode will hold, known from the header before any pixel is
// allocated.
type decodePlan struct {
	width, height int   // full size
	scale         int   // JPEG: the DCT-domain reduction, 1, 2, 4 or 8
	decodeBytes   int64 // what the decoder allocates
	opaque        bool  // the decoded image has no alpha
	ycbcr         bool  // the decoded image is an *image.YCbCr
	convert       bool  // CMYK or NYCbCrA, converted for the resampler (toResampleable)
}

// decoded is a photo decoded for its thumbnails, with its share of the budget.
type decoded struct {
	img     image.Image
	plan    decodePlan
	release func()
}

// decodeForThumbnails sniffs the format, reads the header, computes what decoding and making
// the thumbnails will hold, takes that from the budget (waiting for it if need be), and
// decodes: a JPEG at the largest reduction that keeps its longer side at or above the largest
// thumbnail. The caller calls release once the thumbnails are made.
//
// size is the file's length in bytes, or -1 when unknown. The decoders the standard library
// and x/image provide are used for their format alone (never the global registry, which
// imaging fills with GIF, BMP and TIFF), under recover: a decoder's panic on crafted input is a
// malformed file. A read error of r is returned as it is (the store failed, not the file).
func (b *DecodeBudget) decodeForThumbnails(ctx context.Context, r io.Reader, size int64, sizes []ThumbSize, lim Limits) (_ *decoded, err error) {
	src := &readErrReader{r: r}
	br := bufio.NewReader(src)
	head, _ := br.Peek(SniffLen)
	f, err := Sniff(head)
	if err != nil {
		if src.err != nil {
			return nil, src.err
		}
		return nil, err
	}
	out := &decoded{release: func() {}}
	defer func() {
		if p := recover(); p != nil {
			err = &RejectError{Reason: ReasonMalformed, Detail: fmt.Sprintf("thumbnail: %s decoder panicked: %v", f, p)}
		}
		if err != nil {
			out.release()
			if src.err != nil {
				err = src.err
			}
		}
	}()
	// Called with the plan read from the header, before the decoder allocates any pixel.
	reserve := func(p decodePlan) error {
		release, err := b.reserve(ctx, p, size, sizes, lim)
		if err != nil {
			return err
		}
		out.plan, out.release = p, release
		return nil
	}
	if f == FormatJPEG {
		out.img, err = jpegscale.DecodeWith(br, jpegscale.Options{Plan: func(h jpegscale.Header) (int, error) {
			p := b.jpegPlan(h, sizes)
			return p.scale, reserve(p)
		}})
		return out, decodeError(err)
	}
	var header bytes.Buffer
	var p decodePlan
	var decode func(io.Reader) (image.Image, error)
	switch f {
	case FormatPNG:
		p, err = pngPlan(io.TeeReader(br, &header))
		decode = png.Decode
	case FormatWebP:
		p, err = webpPlan(io.TeeReader(br, &header), size)
		decode = webp.Decode
	}
	if err != nil {
		return out, err
	}
	if err := reserve(p); err != nil {
		return out, err
	}
	out.img, err = decode(io.MultiReader(&header, br))
	return out, decodeError(err)
}

// reserve checks a decode's plan against lim, and against the file's size when known (-1 when
// not), and takes what the decode and the thumbnails will hold from the budget.
func (b *DecodeBudget) reserve(ctx context.Context, p decodePlan, size int64, sizes []ThumbSize, lim Limits) (release func(), err error) {
	if err := lim.checkDims(p.width, p.height); err != nil {
		return nil, err
	}
	// A header that claims more pixels than its file can hold is a decompression bomb (the
	// sanitizer refuses them too; photos stored before it did may be such).
	if size > 0 {
		if err := lim.checkDensity(p.width, p.height, size); err != nil {
			return nil, err
		}
	}
	return b.acquire(ctx, decodeNeed(p, sizes))
}

// decodeNeed is what a decode holds in all: the decoded image at its scale and the working
// images of the thumbnails made from it.
func decodeNeed(p decodePlan, sizes []ThumbSize) int64 {
	w, h := scaledSize(p.width, p.height, p.scale)
	return p.decodeBytes + thumbnailWorkBytes(w, h, p, sizes)
}

// jpegPlan plans a JPEG's decode at the largest reduction that keeps its longer side at or
// above the largest thumbnail.
func (b *DecodeBudget) jpegPlan(h jpegscale.Header, sizes []ThumbSize) decodePlan {
	largest := 0
	for _, s := range sizes {
		largest = max(largest, s.MaxSide)
	}
	p := decodePlan{width: h.Width, height: h.Height, scale: jpegScale(h.Width, h.Height, largest), opaque: true,
		ycbcr: h.ColorModel == color.YCbCrModel, convert: h.ColorModel == color.CMYKModel}
	p.decodeBytes = h.Bytes(p.scale)
	// A photo whose decode at that scale would not fit one decode's share (a progressive one
	// near the pixel limit) is decoded smaller: its largest thumbnail comes out a little under
	// the size, rather than not at all.
	for p.scale < 8 && decodeNeed(p, sizes) > b.perDecode {
		p.scale *= 2
		p.decodeBytes = h.Bytes(p.scale)
	}
	return p
}

// decodeError makes a decoder's error a malformed photo, and lets refusals and the budget's
// errors through as they are.
func decodeError(err error) error {
	var rej *RejectError
	if err == nil || errors.As(err, &rej) || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	return &RejectError{Reason: ReasonMalformed, Detail: "thumbnail: decode", Err: err}
}

// readErrReader remembers the first error of r other than io.EOF: a store that fails half-way
// is not a damaged photo.
type readErrReader struct {
	r   io.Reader
	err error
}

func (e *readErrReader) Read(p []byte) (int, error) {
	n, err := e.r.Read(p)
	if err != nil && err != io.EOF && e.err == nil {
		e.err = err
	}
	return n, err
}

// jpegScale is the largest reduction (8, 4, 2 or 1) that keeps the longer side of a w x h
// image at or above target.
func jpegScale(w, h, target int) int {
	long := max(w, h)
	for _, s := range []int{8, 4, 2} {
		if (long+s-1)/s >= target {
			return s
		}
	}
	return 1
}

func scaledSize(w, h, scale int) (int, int) {
	if scale <= 1 {
		return w, h
	}
	return (w + scale - 1) / scale, (h + scale - 1) / scale
}

// pngPlan reads a PNG's header (the IHDR chunk). Go's decoder holds the image at 1 byte a
// pixel for a palette, 4 for 8-bit colour or grey with alpha or transparency (a tRNS chunk,
// which may follow, makes 8-bit grey NRGBA), 8 for 16 bits a sample (as 16-bit grey with
// transparency becomes NRGBA64); an interlaced file's passes besides; two rows and the zlib
// state.
func pngPlan(r io.Reader) (decodePlan, error) {
	var head [33]byte // signature, then the IHDR chunk
	if _, err := io.ReadFull(r, head[:]); err != nil || binary.BigEndian.Uint32(head[8:12]) != 13 ||
		string(head[12:16]) != "IHDR" {
		return decodePlan{}, &RejectError{Reason: ReasonMalformed, Detail: "thumbnail: PNG header", Err: err}
	}
	w, h := int64(binary.BigEndian.Uint32(head[16:20])), int64(binary.BigEndian.Uint32(head[20:24]))
	depth, colorType, interlace := int64(head[24]), head[25], head[28]
	if w <= 0 || h <= 0 || w > 1<<31-1 || h > 1<<31-1 {
		return decodePlan{}, rejectf(ReasonMalformed, "thumbnail: PNG size %dx%d", w, h)
	}
	bpp := int64(4)
	switch {
	case colorType == 3:
		bpp = 1
	case depth > 8:
		bpp = 8
	}
	need := w * h * bpp
	if interlace != 0 {
		need *= 2
	}
	row := (w*4*max(depth, 8) + 7) / 8 // at most 4 samples a pixel
	need += 2*(row+1) + 128<<10
	return decodePlan{width: int(w), height: int(h), scale: 1, decodeBytes: need}, nil
}

// webpPlan reads a WebP's header. Lossy (VP8) decodes to YCbCr 4:2:0 in whole macroblocks,
// 1.5 bytes a pixel, after reading the compressed frame; lossy with alpha adds the alpha plane
// and the lossless image the alpha is coded as; lossless (VP8L) holds its ARGB pixels and, for
// a colour-indexed image, a second copy: 9 bytes a pixel is the bound taken for it.
func webpPlan(r io.Reader, size int64) (decodePlan, error) {
	cfg, err := webp.DecodeConfig(r)
	if err != nil {
		return decodePlan{}, &RejectError{Reason: ReasonMalformed, Detail: "thumbnail: read header", Err: err}
	}
	w, h := int64(cfg.Width), int64(cfg.Height)
	mb := ((w + 15) &^ 15) * ((h + 15) &^ 15)
	file := max(size, 0)
	if size < 0 {
		file = 30 << 20 // DefaultLimits().MaxBytes: the frame is read whole
	}
	p := decodePlan{width: cfg.Width, height: cfg.Height, scale: 1}
	switch cfg.ColorModel {
	case color.YCbCrModel:
		p.decodeBytes, p.opaque, p.ycbcr = mb*3/2+file, true, true
	case color.NYCbCrAModel:
		p.decodeBytes, p.convert = mb*3/2+w*h*(1+9)+file, true
	default:
		p.decodeBytes = w*h*9 + file
	}
	return p, nil
}

// thumbnailWorkBytes bounds what making the thumbnails holds beside the decoded image, from
// the decoded image's size (w x h): for each size, largest first, each made from the one
// before, imaging's two resampling passes (NRGBA, the horizontal pass at the source's
// height), the oriented copy, a flattened copy for images with alpha, the JPEG being written,
// the box-shrunk planes for YCbCr sources, the resampling weights, and the quality measure
// of the largest.
func thumbnailWorkBytes(w, h int, p decodePlan, sizes []ThumbSize) int64 {
	order := append([]ThumbSize(nil), sizes...)
	for i := 1; i < len(order); i++ {
		for j := i; j > 0 && order[j].MaxSide > order[j-1].MaxSide; j-- {
			order[j], order[j-1] = order[j-1], order[j]
		}
	}
	cw, ch := int64(w), int64(h)
	var total int64
	if p.convert {
		total += 4 * cw * ch
	}
	for i, s := range order {
		tw, th := fitSize(p.width, p.height, s.MaxSide)
		nw, nh := min(int64(tw), cw), min(int64(th), ch)
		if i == 0 && p.ycbcr && max(cw, ch)/int64(s.MaxSide) >= 2 {
			k := max(cw, ch) / int64(s.MaxSide)
			total += (cw / k) * (ch / k) * 2
		}
		if nw != cw || nh != ch {
			total += resampleBytes(cw, ch, nw, nh, 3) // Lanczos
		}
		total += 4 * nw * nh // oriented copy
		if !p.opaque {
			total += 2 * 4 * nw * nh
		}
		total += 2*nw*nh + 64<<10 // the JPEG and the encoder's state
		if i == 0 {
			total += qualityWorkBytes(nw, nh) // measured from the largest thumbnail
		}
		cw, ch = nw, nh
	}
	return total
}

// resampleBytes bounds what imaging.Resize holds to scale sw x sh to dw x dh with a filter of
// the given support (source pixels either side): the horizontal pass (dw x sh) and the result
// (dw x dh), both NRGBA; the weights (16 bytes each, the support scaled when shrinking, and two
// more); and each worker's row buffers.
func resampleBytes(sw, sh, dw, dh, support int64) int64 {
	taps := func(s, d int64) int64 { return 2*support*max(s/d, 1) + 2 }
	return 4*dw*sh + 4*dw*dh + 16*(dw*taps(sw, dw)+dh*taps(sh, dh)) + int64(runtime.GOMAXPROCS(0))*4*(sw+sh)
}

// readerSize is the size of r when it can tell it without reading (a bytes.Reader, an
// io.SectionReader, a file), or -1.
func readerSize(r io.Reader) int64 {
	switch v := r.(type) {
	case interface{ Size() int64 }:
		return v.Size()
	case interface{ Stat() (fs.FileInfo, error) }:
		if st, err := v.Stat(); err == nil && st.Mode().IsRegular() {
			return st.Size()
		}
	}
	return -1
}

// toResampleable converts the decoded images imaging has no fast path for, CMYK (from JPEG) and
// NYCbCrA (lossy WebP with alpha), which it would read a pixel at a time through color.Color,
// allocating for each; the others pass as they are.
func toResampleable(img image.Image) image.Image {
	switch m := img.(type) {
	case *image.CMYK:
		b := m.Bounds()
		out := image.NewRGBA(b)
		for y := b.Min.Y; y < b.Max.Y; y++ {
			src := m.Pix[m.PixOffset(b.Min.X, y):][:4*b.Dx()]
			dst := out.Pix[out.PixOffset(b.Min.X, y):][:4*b.Dx()]
			for i := 0; i < len(src); i += 4 {
				r, g, bl := color.CMYKToRGB(src[i], src[i+1], src[i+2], src[i+3])
				dst[i], dst[i+1], dst[i+2], dst[i+3] = r, g, bl, 255
			}
		}
		return out
	case *image.NYCbCrA:
		b := m.Bounds()
		out := image.NewNRGBA(b)
		for y := b.Min.Y; y < b.Max.Y; y++ {
			dst := out.Pix[out.PixOffset(b.Min.X, y):][:4*b.Dx()]
			for x := b.Min.X; x < b.Max.X; x++ {
				yi, ci := m.YOffset(x, y), m.COffset(x, y)
				r, g, bl := color.YCbCrToRGB(m.Y[yi], m.Cb[ci], m.Cr[ci])
				i := 4 * (x - b.Min.X)
				dst[i], dst[i+1], dst[i+2], dst[i+3] = r, g, bl, m.A[m.AOffset(x, y)]
			}
		}
		return out
	}
	return img
}
