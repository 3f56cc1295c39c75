// Copyright 2026 The Dermfollow Authors. The decoder this file extends is Go's image/jpeg
// (Copyright 2009 The Go Authors), under the BSD-style licence in LICENSE.

package jpegscale

import (
	"bytes"
	"fmt"
	"image"
	"image/color"
	"io"
	"unsafe"
)

// Scaled decoding: each 8x8 block of DCT coefficients becomes n x n pixels, n = 8/scale, and
// each of those pixels is the mean of the (8/n) x (8/n) pixels a full decode would give,
// computed from the coefficients (as libjpeg's reduced inverse DCTs do):
//
//   - 1/8: the DC coefficient alone is the block's mean. A progressive file's AC scans are
//     then skipped unread (skipScan): only its DC scans are decoded and kept, 2 bytes a block.
//   - 1/4 and 1/2: the means of 4x4 and 2x2 quarters, by a separable transform of the
//     coefficients that contribute (25 and 49 of the 64): idct2x2 and idct4x4. A progressive
//     file keeps its coefficients between scans as int16, half of what image/jpeg keeps, and
//     the scans decode into them in place (decodeProgressive16).
//
// A progressive file's rows of coefficients are allocated as the scans reach them and its
// image once the last scan is read, so a file that ends early never costs its declared size.

// Header is what a JPEG says about itself up to its first scan: enough to tell, before the
// decoder allocates anything the size of the image, what a decode will hold at each scale.
type Header struct {
	Width, Height int // full size, in pixels
	Components    int // 1 (grey), 3 (YCbCr or RGB) or 4 (CMYK or YCbCrK)
	Progressive   bool
	// ColorModel is that of the decoded image: Gray, YCbCr, RGBA (RGB files) or CMYK.
	ColorModel color.Model

	mxx, myy int
	comp     [maxComponents]component
	convert  bool // the planes are converted into an interleaved 4-byte-a-pixel copy
}

// Options controls DecodeWith.
type Options struct {
	// Plan chooses the scale (1, 2, 4 or 8) from the header. It is called once, at the first
	// scan, before anything the size of the image is allocated; an error from it stops the
	// decode, and DecodeWith returns that error as it is. Nil means scale 1.
	Plan func(Header) (scale int, err error)
}

// DecodeWith decodes a JPEG at the scale opt.Plan chooses: the image is ScaledSize(scale) of
// the header. At scale 1 it is exactly what Decode (and image/jpeg) returns.
func DecodeWith(r io.Reader, opt Options) (image.Image, error) {
	d := decoder{plan: opt.Plan}
	return d.decode(r, false)
}

// scaledLen is the length of n pixels at 1/scale, rounded up (as libjpeg rounds).
func scaledLen(n, scale int) int { return (n + scale - 1) / scale }

// ScaledSize is the size of the image a decode at 1/scale returns.
func (h Header) ScaledSize(scale int) (w, ht int) {
	return scaledLen(h.Width, scale), scaledLen(h.Height, scale)
}

// decoderBytes is the decoder's own state (buffers and Huffman tables), allocated per decode.
const decoderBytes = int64(unsafe.Sizeof(decoder{}))

// Bytes is what a decode at 1/scale allocates, at most, from the header on: the decoder's
// state, the image planes (padded to whole blocks), a progressive file's coefficients and,
// for RGB and 4-component files, the converted image; each allocation rounded up as the Go
// heap rounds it. The tests hold the decoder to it.
func (h Header) Bytes(scale int) int64 {
	if scale != 1 && scale != 2 && scale != 4 && scale != 8 {
		return 0
	}
	n := int64(8 / scale)
	mxx, myy := int64(h.mxx), int64(h.myy)
	total := heapBytes(decoderBytes)
	if h.Components == 1 {
		total += heapBytes(n * mxx * n * myy)
	} else {
		h0, v0 := int64(h.comp[0].h), int64(h.comp[0].v)
		w, ht := n*h0*mxx, n*v0*myy
		cw, ch := w, ht
		switch h0/int64(h.comp[1].h)<<4 | v0/int64(h.comp[1].v) {
		case 0x12:
			ch = (ht + 1) / 2
		case 0x21:
			cw = (w + 1) / 2
		case 0x22:
			cw, ch = (w+1)/2, (ht+1)/2
		case 0x41:
			cw = (w + 3) / 4
		case 0x42:
			cw, ch = (w+3)/4, (ht+1)/2
		}
		total += heapBytes(w*ht + 2*cw*ch)
		if h.Components == 4 {
			total += heapBytes(n * int64(h.comp[3].h) * mxx * n * int64(h.comp[3].v) * myy)
		}
	}
	if h.convert {
		sw, sh := h.ScaledSize(scale)
		total += heapBytes(4 * int64(sw) * int64(sh))
	}
	if h.Progressive {
		for i := range h.Components {
			rows := myy * int64(h.comp[i].v)
			perRow := mxx * int64(h.comp[i].h)
			if scale == 1 {
				total += heapBytes(perRow * rows * int64(unsafe.Sizeof(block{})))
				continue
			}
			total += heapBytes(rows*int64(unsafe.Sizeof([]int16(nil)))) + rows*heapBytes(perRow*blockBytes(scale))
		}
	}
	return total
}

// heapBytes bounds what an allocation of n bytes takes from the Go heap: small ones are
// rounded up to a size class (at most an eighth more), large ones to whole 8 KiB pages.
func heapBytes(n int64) int64 {
	if n <= 32<<10 {
		return n + n/8 + 16
	}
	return (n + 8<<10 - 1) &^ (8<<10 - 1)
}

func (d *decoder) header(mxx, myy int) Header {
	h := Header{Width: d.width, Height: d.height, Components: d.nComp, Progressive: d.progressive,
		mxx: mxx, myy: myy, comp: d.comp}
	switch d.nComp {
	case 1:
		h.ColorModel = color.GrayModel
	case 3:
		h.ColorModel = color.YCbCrModel
		if d.isRGB() {
			h.ColorModel, h.convert = color.RGBAModel, true
		}
	case 4:
		h.ColorModel, h.convert = color.CMYKModel, true
	}
	return h
}

// planScale asks the plan for the scale, once, at the first scan.
func (d *decoder) planScale(mxx, myy int) error {
	if d.plan == nil {
		d.scale = 1
		return nil
	}
	s, err := d.plan(d.header(mxx, myy))
	if err != nil {
		return err
	}
	if s != 1 && s != 2 && s != 4 && s != 8 {
		return fmt.Errorf("jpegscale: scale 1/%d", s)
	}
	d.scale = s
	return nil
}

// coefStore keeps one component's coefficients between the scans of a progressive file
// decoded at 1/2, 1/4 or 1/8: at 1/8 the DC alone; at 1/2 and 1/4 all 64 as int16 in
// zig-zag order (half of what image/jpeg keeps), which the scans decode in place
// (decodeProgressive16).
type coefStore struct {
	slots  int       // values per block
	perRow int       // blocks per row
	rows   [][]int16 // rows[by]: perRow*slots values; nil until a scan reaches the row
}

// blockBytes is what a progressive file's block costs between scans at 1/scale.
func blockBytes(scale int) int64 {
	switch scale {
	case 8:
		return 2
	case 4, 2:
		return 2 * blockSize
	}
	return int64(unsafe.Sizeof(block{}))
}

func (st *coefStore) init(d *decoder, compIndex, mxx, myy int) {
	if st.rows != nil {
		return
	}
	st.slots = int(blockBytes(d.scale) / 2)
	st.perRow = mxx * d.comp[compIndex].h
	st.rows = make([][]int16, myy*d.comp[compIndex].v)
}

// row returns block row by, allocating it when a scan first reaches it.
func (st *coefStore) row(by int) []int16 {
	row := st.rows[by]
	if row == nil {
		row = make([]int16, st.perRow*st.slots)
		st.rows[by] = row
	}
	return row
}

// at is block (bx, by)'s coefficients (at 1/2 and 1/4).
func (st *coefStore) at(bx, by int) *[blockSize]int16 {
	return (*[blockSize]int16)(st.row(by)[bx*blockSize:])
}

// loadDC and saveDC move block (bx, by)'s DC coefficient (at 1/8, where it is all that is
// kept and AC scans are skipped) into b[0] and back.
func (st *coefStore) loadDC(b *block, bx, by int) {
	b[0] = 0
	if row := st.rows[by]; row != nil {
		b[0] = int32(row[bx])
	}
}

func (st *coefStore) saveDC(b *block, bx, by int) { st.row(by)[bx] = int16(b[0]) }

// block puts block (bx, by)'s coefficients into b in natural order.
func (st *coefStore) block(b *block, bx, by int) {
	*b = block{}
	row := st.rows[by]
	switch {
	case row == nil:
	case st.slots == 1:
		b[0] = int32(row[bx])
	default:
		for zig, v := range row[bx*blockSize : (bx+1)*blockSize] {
			b[unzig[zig]] = int32(v)
		}
	}
}

// skipScan passes over the entropy-coded data of the current scan without decoding it, up to
// the marker that ends the scan (restart markers inside it are passed over), and leaves the
// reader at that marker.
func (d *decoder) skipScan() error {
	d.bits = bits{}
	d.bytes.nUnreadable = 0
	for {
		k := bytes.IndexByte(d.bytes.buf[d.bytes.i:d.bytes.j], 0xff)
		if k < 0 {
			d.bytes.i = d.bytes.j
			if err := d.fill(); err != nil {
				return shortData(err)
			}
			continue
		}
		d.bytes.i += k
		if d.bytes.i+1 == d.bytes.j {
			// The 0xff is the last byte buffered: refill (fill keeps the last two bytes in
			// front) and look at it again.
			d.bytes.i = d.bytes.j
			if err := d.fill(); err != nil {
				return shortData(err)
			}
			d.bytes.i--
			continue
		}
		switch next := d.bytes.buf[d.bytes.i+1]; {
		case next == 0x00 || rst0Marker <= next && next <= rst7Marker:
			d.bytes.i += 2
		case next == 0xff: // a fill byte before a marker
			d.bytes.i++
		default:
			return nil
		}
	}
}

func shortData(err error) error {
	if err == io.ErrUnexpectedEOF {
		return errShortHuffmanData
	}
	return err
}

// reconstructScaled dequantizes the coefficients that count at d.scale, takes the means and
// writes the block's n x n pixels.
func (d *decoder) reconstructScaled(b *block, bx, by, compIndex int) {
	qt := &d.quant[d.comp[compIndex].tq]
	n := 8 / d.scale
	var dst []byte
	var stride int
	if d.nComp == 1 {
		dst, stride = d.img1.Pix, d.img1.Stride
	} else {
		switch compIndex {
		case 0:
			dst, stride = d.img3.Y, d.img3.YStride
		case 1:
			dst, stride = d.img3.Cb, d.img3.CStride
		case 2:
			dst, stride = d.img3.Cr, d.img3.CStride
		default:
			dst, stride = d.blackPix, d.blackStride
		}
	}
	dst = dst[n*(by*stride+bx):]
	switch d.scale {
	case 8:
		dst[0] = clampPixel((int(b[0])*int(qt[0]) + 4) >> 3)
	case 4:
		idct2x2(b, qt, dst, stride)
	case 2:
		idct4x4(b, qt, dst, stride)
	}
}

// reconstructScaledProgressive makes the image of a progressive file decoded at 1/2, 1/4 or
// 1/8 once all its scans are read.
func (d *decoder) reconstructScaledProgressive(mxx int) error {
	v0 := d.comp[0].v
	myy := (d.height + 8*v0 - 1) / (8 * v0)
	d.makeImg(mxx, myy)
	var b block
	for i := 0; i < d.nComp; i++ {
		st := &d.coefs[i]
		if st.rows == nil {
			continue
		}
		v := 8 * d.comp[0].v / d.comp[i].v
		h := 8 * d.comp[0].h / d.comp[i].h
		for by := 0; by*v < d.height; by++ {
			for bx := 0; bx*h < d.width; bx++ {
				st.block(&b, bx, by)
				d.reconstructScaled(&b, bx, by, i)
			}
		}
	}
	return nil
}

func clampPixel(v int) uint8 {
	v += 128
	if uint(v) > 255 {
		if v < 0 {
			return 0
		}
		return 255
	}
	return uint8(v)
}

// zigOf maps a natural index to its zig-zag index (the order of the quantization tables).
var zigOf = func() (z [blockSize]int) {
	for zig, nat := range unzig {
		z[nat] = zig
	}
	return z
}()

// The weights of the reduced transforms, in fixed point with meanBits fraction bits. With
// X[k] the dequantized coefficients of one column (or row) of a block and C(0) = 1/√2,
// C(k) = 1 otherwise, a full decode's samples are
//
//	x[i] = Σk C(k)/2 X[k] cos((2i+1)kπ/16)
//
// and the mean of x over the samples of a part of the column is Σk w[k] X[k], with w[k] the
// mean of C(k)/2 cos((2i+1)kπ/16) over those samples (TestMeanWeights checks these against
// that formula):
//
//	halves (1/4):   ±q[k] for the two halves, where q[0] = 1/(2√2) and the even k > 0 are 0
//	quarters (1/2): 4 parts, where k = 4 is 0; an even part (h) that is the same for part m
//	                and 3-m, and an odd part (a for m = 0, b for m = 1) that changes sign
const (
	meanBits = 15

	q0 = 11585 // 1/(2√2)
	q1 = 10498 // mean of cos((2i+1)π/16)/2, i = 0..3
	q3 = 3686  // minus the mean of cos((2i+1)3π/16)/2
	q5 = 2463
	q7 = 2088 // minus

	h0 = 11585 // 1/(2√2)
	h2 = 10703 // cos(2π/16) cos(2π/8) / 2
	h6 = 4433  // minus cos(6π/16) cos(6π/8) / 2
	a1 = 14846 // cos(kπ/16) cos(kπ/8) / 2 for k = 1, 3, -5, -7
	a3 = 5213
	a5 = 3483
	a7 = 2953
	b1 = 6149 // cos(kπ/16) cos(3kπ/8) / 2 for k = 1, -3, 5, -7
	b3 = 12586
	b5 = 8410
	b7 = 1223
)

// idct2x2 writes the means of the four 4x4 quarters of the block: a separable transform of
// the 25 coefficients in rows and columns 0, 1, 3, 5 and 7.
func idct2x2(b *block, qt *block, dst []byte, stride int) {
	var t [2][8]int // t[m][c]: column c's mean over the half m of its rows
	for _, c := range [...]int{0, 1, 3, 5, 7} {
		x0 := int(b[c]) * int(qt[zigOf[c]])
		odd := 0
		if b[8+c]|b[24+c]|b[40+c]|b[56+c] != 0 {
			odd = q1*int(b[8+c])*int(qt[zigOf[8+c]]) - q3*int(b[24+c])*int(qt[zigOf[24+c]]) +
				q5*int(b[40+c])*int(qt[zigOf[40+c]]) - q7*int(b[56+c])*int(qt[zigOf[56+c]])
		}
		t[0][c], t[1][c] = q0*x0+odd, q0*x0-odd
	}
	const round = 1 << (2*meanBits - 1)
	for m := range 2 {
		r := &t[m]
		even := q0 * r[0]
		odd := q1*r[1] - q3*r[3] + q5*r[5] - q7*r[7]
		row := dst[m*stride : m*stride+2]
		row[0] = clampPixel((even + odd + round) >> (2 * meanBits))
		row[1] = clampPixel((even - odd + round) >> (2 * meanBits))
	}
}

// idct4x4 writes the means of the sixteen 2x2 parts of the block: a separable transform of
// the 49 coefficients outside row and column 4.
func idct4x4(b *block, qt *block, dst []byte, stride int) {
	var t [4][8]int // t[m][c]: column c's mean over the rows 2m and 2m+1
	for _, c := range [...]int{0, 1, 2, 3, 5, 6, 7} {
		x0 := int(b[c]) * int(qt[zigOf[c]])
		if b[8+c]|b[16+c]|b[24+c]|b[40+c]|b[48+c]|b[56+c] == 0 {
			v := h0 * x0
			t[0][c], t[1][c], t[2][c], t[3][c] = v, v, v, v
			continue
		}
		x1 := int(b[8+c]) * int(qt[zigOf[8+c]])
		x2 := int(b[16+c]) * int(qt[zigOf[16+c]])
		x3 := int(b[24+c]) * int(qt[zigOf[24+c]])
		x5 := int(b[40+c]) * int(qt[zigOf[40+c]])
		x6 := int(b[48+c]) * int(qt[zigOf[48+c]])
		x7 := int(b[56+c]) * int(qt[zigOf[56+c]])
		e0 := h0*x0 + h2*x2 - h6*x6
		e1 := h0*x0 - h2*x2 + h6*x6
		o0 := a1*x1 + a3*x3 - a5*x5 - a7*x7
		o1 := b1*x1 - b3*x3 + b5*x5 - b7*x7
		t[0][c], t[3][c] = e0+o0, e0-o0
		t[1][c], t[2][c] = e1+o1, e1-o1
	}
	const round = 1 << (2*meanBits - 1)
	for m := range 4 {
		r := &t[m]
		e0 := h0*r[0] + h2*r[2] - h6*r[6]
		e1 := h0*r[0] - h2*r[2] + h6*r[6]
		o0 := a1*r[1] + a3*r[3] - a5*r[5] - a7*r[7]
		o1 := b1*r[1] - b3*r[3] + b5*r[5] - b7*r[7]
		row := dst[m*stride : m*stride+4]
		row[0] = clampPixel((e0 + o0 + round) >> (2 * meanBits))
		row[1] = clampPixel((e1 + o1 + round) >> (2 * meanBits))
		row[2] = clampPixel((e1 - o1 + round) >> (2 * meanBits))
		row[3] = clampPixel((e0 - o0 + round) >> (2 * meanBits))
	}
}
