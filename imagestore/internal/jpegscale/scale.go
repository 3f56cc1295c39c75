// Copyright 2026 The Dermfollow Authors. The decoder this file extends is Go's image/jpeg
// (Copyright 2009 The Go Authors), under the BSD-style licence in LICENSE.

package jpegscale

import (
	"bytes"
	"fmt"
	"image"
	"image/color"
	"io"
	mathbits "math/bits"
	"unsafe"
)

// Scaled decoding: each 8x8 block of DCT coefficients becomes n x n pixels, n = 8/scale, and
// each of those pixels is the mean of the (8/n) x (8/n) pixels a full decode would give,
// computed from the coefficients (as libjpeg's reduced inverse DCTs do):
//
//   - 1/8: the DC coefficient alone is the block's mean. A progressive file's AC scans are
//     then skipped unread (skipScan): only its DC scans are decoded and kept, 2 bytes a block.
//   - 1/4 and 1/2: the means of 4x4 and 2x2 quarters, by a separable transform of the
//     coefficients that contribute (25 and 49 of the 64): idct2x2 and idct4x4.
//
// A progressive file keeps, between scans, only the coefficients its scale reads (as int16),
// and a bit per coefficient that says whether it is non-zero, which is all that the parsing
// of later refinement scans depends on (coefStore). Its rows are allocated as scans reach
// them, and the image once the last scan is read, so a file that ends early never costs its
// declared size.

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
// for RGB and 4-component files, the converted image. The tests hold the decoder to it.
func (h Header) Bytes(scale int) int64 {
	if scale != 1 && scale != 2 && scale != 4 && scale != 8 {
		return 0
	}
	n := int64(8 / scale)
	mxx, myy := int64(h.mxx), int64(h.myy)
	total := decoderBytes
	if h.Components == 1 {
		total += n * mxx * n * myy
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
		total += w*ht + 2*cw*ch
		if h.Components == 4 {
			total += n * int64(h.comp[3].h) * mxx * n * int64(h.comp[3].v) * myy
		}
	}
	if h.convert {
		sw, sh := h.ScaledSize(scale)
		total += 4 * int64(sw) * int64(sh)
	}
	if h.Progressive {
		for i := range h.Components {
			rows := myy * int64(h.comp[i].v)
			blocks := mxx * int64(h.comp[i].h) * rows
			total += blocks * blockBytes(scale)
			if scale == 4 {
				total += blocks * 8 // the non-zero bitmaps
			}
			if scale > 1 {
				total += 2 * rows * int64(unsafe.Sizeof([]int16(nil))) // row headers
			}
		}
	}
	return total
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

// keptAt reports the coefficients (by natural index) that a decode at 1/scale reads: the DC
// at 1/8; rows and columns 0, 1, 3, 5 and 7 at 1/4 (the even ones above 0 have no part in the
// mean of a half block); all but row and column 4 at 1/2.
func keptAt(scale, natural int) bool {
	r, c := natural/8, natural%8
	switch scale {
	case 8:
		return natural == 0
	case 4:
		return (r == 0 || r%2 == 1) && (c == 0 || c%2 == 1)
	case 2:
		return r != 4 && c != 4
	}
	return true
}

// At 1/4 a progressive block keeps its 25 coefficients in zig-zag order, and a bit for each
// of the 64 that says whether it is non-zero.
var (
	keptZig4 []int32         // the zig-zag indexes kept at 1/4, in order
	slot4    [blockSize]int8 // a zig-zag index's place in keptZig4, or -1
)

func init() {
	for zig := range int32(blockSize) {
		slot4[zig] = -1
		if keptAt(4, unzig[zig]) {
			slot4[zig] = int8(len(keptZig4))
			keptZig4 = append(keptZig4, zig)
		}
	}
}

// coefStore keeps one component's coefficients between the scans of a progressive file
// decoded at 1/2, 1/4 or 1/8: at 1/8 the DC alone; at 1/4 the 25 coefficients that count,
// with a bitmap of the non-zero ones (all that steers the decoding of refinement scans); at
// 1/2, where 49 count, simply all 64 (as int16, half of what image/jpeg keeps).
type coefStore struct {
	scale  int
	slots  int        // values per block
	perRow int        // blocks per row
	rows   [][]int16  // rows[by]: perRow*slots values; nil until a scan saves into the row
	nz     [][]uint64 // at 1/4, nz[by][bx]: bit zig is set where coefficient zig is not zero
}

// blockBytes is what a progressive file's block costs between scans at 1/scale.
func blockBytes(scale int) int64 {
	switch scale {
	case 8:
		return 2
	case 4:
		return int64(2 * len(keptZig4)) // and 8 for the bitmap, counted by Header.Bytes
	case 2:
		return 2 * blockSize
	}
	return int64(unsafe.Sizeof(block{}))
}

func (st *coefStore) init(d *decoder, compIndex, mxx, myy int) {
	if st.rows != nil {
		return
	}
	st.scale = d.scale
	st.slots = int(blockBytes(d.scale) / 2)
	st.perRow = mxx * d.comp[compIndex].h
	st.rows = make([][]int16, myy*d.comp[compIndex].v)
	if d.scale == 4 {
		st.nz = make([][]uint64, len(st.rows))
	}
}

// bandIsZero reports whether the coefficients zigStart to zigEnd of block (bx, by) are all
// zero (at 1/4 from the bitmap, at 1/2 from the values).
func (st *coefStore) bandIsZero(bx, by int, zigStart, zigEnd int32) bool {
	row := st.rows[by]
	if row == nil {
		return true
	}
	if st.scale == 4 {
		band := (^uint64(0) >> uint(63-zigEnd)) &^ (1<<uint(zigStart) - 1)
		return st.nz[by][bx]&band == 0
	}
	vals := row[bx*blockSize : (bx+1)*blockSize]
	for zig := zigStart; zig <= zigEnd; zig++ {
		if vals[unzig[zig]] != 0 {
			return false
		}
	}
	return true
}

// load puts the coefficients zigStart to zigEnd of block (bx, by) into b, as image/jpeg's
// progressive decoder would find them, except that at 1/4 a coefficient that is not kept but
// is known to be non-zero is given as 1: only its being non-zero steers the decoding.
func (st *coefStore) load(b *block, bx, by int, zigStart, zigEnd int32) {
	row := st.rows[by]
	switch st.scale {
	case 8: // DC scans only
		b[0] = 0
		if row != nil {
			b[0] = int32(row[bx])
		}
		return
	case 2:
		if row == nil {
			for zig := zigStart; zig <= zigEnd; zig++ {
				b[unzig[zig]] = 0
			}
			return
		}
		vals := row[bx*blockSize : (bx+1)*blockSize : (bx+1)*blockSize]
		for zig := zigStart; zig <= zigEnd; zig++ {
			u := unzig[zig]
			b[u] = int32(vals[u])
		}
		return
	}
	for zig := zigStart; zig <= zigEnd; zig++ {
		b[unzig[zig]] = 0
	}
	if row == nil {
		return
	}
	vals := row[bx*st.slots : (bx+1)*st.slots]
	if zigStart == 0 {
		b[0] = int32(vals[0])
	}
	band := (^uint64(0) >> uint(63-zigEnd)) &^ (1<<uint(zigStart) - 1) &^ 1
	for m := st.nz[by][bx] & band; m != 0; m &= m - 1 {
		zig := mathbits.TrailingZeros64(m)
		v := int32(1)
		if k := slot4[zig]; k >= 0 && vals[k] != 0 {
			v = int32(vals[k])
		}
		b[unzig[zig]] = v
	}
}

// save stores the coefficients zigStart to zigEnd of b as block (bx, by)'s.
func (st *coefStore) save(b *block, bx, by int, zigStart, zigEnd int32) {
	row := st.rows[by]
	if row == nil {
		row = make([]int16, st.perRow*st.slots)
		st.rows[by] = row
		if st.nz != nil {
			st.nz[by] = make([]uint64, st.perRow)
		}
	}
	switch st.scale {
	case 8:
		row[bx] = int16(b[0])
		return
	case 2:
		vals := row[bx*blockSize : (bx+1)*blockSize : (bx+1)*blockSize]
		for zig := zigStart; zig <= zigEnd; zig++ {
			u := unzig[zig]
			vals[u] = int16(b[u])
		}
		return
	}
	vals := row[bx*st.slots : (bx+1)*st.slots]
	if zigStart == 0 {
		vals[0] = int16(b[0])
	}
	var nz uint64
	for zig := max(zigStart, 1); zig <= zigEnd; zig++ {
		v := b[unzig[zig]]
		nz |= uint64(uint32(v|-v)>>31) << uint(zig) // 1 where v != 0
	}
	band := (^uint64(0) >> uint(63-zigEnd)) &^ (1<<uint(zigStart) - 1) &^ 1
	st.nz[by][bx] = st.nz[by][bx]&^band | nz
	for k, zig := range keptZig4 {
		if zig >= zigStart && zig <= zigEnd {
			vals[k] = int16(b[unzig[zig]])
		}
	}
}

// block puts every kept coefficient of block (bx, by) into b, the others zero.
func (st *coefStore) block(b *block, bx, by int) {
	*b = block{}
	row := st.rows[by]
	if row == nil {
		return
	}
	switch st.scale {
	case 8:
		b[0] = int32(row[bx])
	case 4:
		for k, v := range row[bx*st.slots : (bx+1)*st.slots] {
			b[unzig[keptZig4[k]]] = int32(v)
		}
	case 2:
		for u, v := range row[bx*blockSize : (bx+1)*blockSize] {
			b[u] = int32(v)
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
