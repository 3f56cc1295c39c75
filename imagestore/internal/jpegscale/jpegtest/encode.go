// Package jpegtest writes the JPEG files the tests of jpegscale and imagestore decode: the
// variants that image/jpeg's encoder cannot make (progressive scans with successive
// approximation, restart intervals, 4:4:4 and 4:2:2 and 4:4:0 sampling, RGB, CMYK and YCCK
// with an Adobe marker), and a file whose frame header claims more than its scans hold.
//
// It is a test encoder: clear rather than fast (a floating-point DCT), with optimal Huffman
// tables for every scan, as libjpeg's "optimize" writes them. Progressive files follow
// libjpeg's default script (jpeg_simple_progression in jcparam.c); the entropy coding of the
// successive-approximation scans follows ITU-T T.81 Annex G as libjpeg's jcphuff.c does it.
package jpegtest

import (
	"bufio"
	"errors"
	"fmt"
	"image"
	"image/color"
	"io"
	"math"
)

// Options says what kind of file Encode writes.
type Options struct {
	Quality int // 1-100; 0 means 90
	// Sampling is each component's horizontal and vertical sampling factor, e.g.
	// {{2, 2}, {1, 1}, {1, 1}} for 4:2:0; nil means 4:2:0 for three components and 1x1 for the
	// others.
	Sampling [][2]int
	// Progressive writes a progressive file with libjpeg's default script, or with spectral
	// selection alone when NoSuccessiveApprox is set.
	Progressive        bool
	NoSuccessiveApprox bool
	// RestartInterval puts a restart marker after every that many MCUs (0: none).
	RestartInterval int
	// Color is how a colour image is stored: YCbCr with a JFIF marker (the default), RGB
	// (Adobe transform 0), CMYK (4 components, Adobe transform 0) or YCCK (Adobe transform 2).
	Color ColorKind
}

// ColorKind is how Encode stores colour.
type ColorKind int

// The colour kinds; a *image.Gray is always stored as one grey component.
const (
	YCbCr ColorKind = iota
	RGB
	CMYK
	YCCK
)

// component is one component's samples, padded to whole MCUs, and its quantized coefficients.
type component struct {
	id      byte
	hv      byte // sampling factors in the frame header
	h, v    int  // the sampling factors the layout follows
	tq      int
	w, ht   int       // size in samples, padded to whole MCUs
	bw, bh  int       // blocks, padded to whole MCUs
	realBW  int       // blocks that cover the component's real samples
	realBH  int       //
	coef    [][64]int // by*bw+bx, in zig-zag order
	dcTable int
	acTable int
	samples []float64
}

// Encode writes img as a JPEG.
func Encode(w io.Writer, img image.Image, o Options) error {
	q := o.Quality
	if q == 0 {
		q = 90
	}
	if q < 1 || q > 100 {
		return fmt.Errorf("jpegtest: quality %d", q)
	}
	b := img.Bounds()
	W, H := b.Dx(), b.Dy()
	if W < 1 || H < 1 || W > 65535 || H > 65535 {
		return fmt.Errorf("jpegtest: size %dx%d", W, H)
	}
	planes, ids := splitPlanes(img, o.Color)
	n := len(planes)
	sampling := append([][2]int(nil), o.Sampling...)
	if o.Sampling == nil {
		sampling = make([][2]int, n)
		for i := range sampling {
			sampling[i] = [2]int{1, 1}
		}
		if n == 3 {
			sampling[0] = [2]int{2, 2}
		}
	}
	if len(sampling) != n {
		return fmt.Errorf("jpegtest: %d sampling factors for %d components", len(sampling), n)
	}
	hmax, vmax := 1, 1
	for _, s := range sampling {
		hmax, vmax = max(hmax, s[0]), max(vmax, s[1])
	}
	mxx, myy := (W+8*hmax-1)/(8*hmax), (H+8*vmax-1)/(8*vmax)
	nominal := make([]byte, n) // the sampling factors as the frame header says them
	for i, s := range sampling {
		if s[0] < 1 || s[0] > 4 || s[1] < 1 || s[1] > 4 {
			return fmt.Errorf("jpegtest: sampling %v", s)
		}
		nominal[i] = byte(s[0]<<4 | s[1])
	}
	if n == 1 { // a single component is not interleaved: its MCU is one block, whatever it says
		hmax, vmax = 1, 1
		sampling[0] = [2]int{1, 1}
		mxx, myy = (W+7)/8, (H+7)/8
	}
	qt := [2][64]int{scaleQuant(lumaQuant, q), scaleQuant(chromaQuant, q)}
	comps := make([]*component, n)
	for i, p := range planes {
		c := &component{id: ids[i], h: sampling[i][0], v: sampling[i][1], hv: nominal[i]}
		if i > 0 {
			// Huffman tables 1 for all but the first component; quantization table 1 for
			// chroma.
			c.dcTable, c.acTable = 1, 1
			if o.Color == YCbCr || o.Color == YCCK && i < 3 {
				c.tq = 1
			}
		}
		c.bw, c.bh = mxx*c.h, myy*c.v
		c.w, c.ht = 8*c.bw, 8*c.bh
		// The component's real size (A.1.1), and the blocks that cover it.
		cw := (W*c.h + hmax - 1) / hmax
		ch := (H*c.v + vmax - 1) / vmax
		c.realBW, c.realBH = (cw+7)/8, (ch+7)/8
		c.samples = resample(p, W, H, c.w, c.ht, cw, ch, hmax/c.h, vmax/c.v)
		c.transform(&qt[c.tq])
		comps[i] = c
	}

	bw := bufio.NewWriter(w)
	e := &encoder{w: bw}
	e.marker(0xd8)
	switch {
	case o.Color == YCbCr || n == 1:
		e.segment(0xe0, []byte("JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"))
	default:
		transform := byte(0)
		if o.Color == YCCK {
			transform = 2
		}
		e.segment(0xee, []byte{'A', 'd', 'o', 'b', 'e', 0, 100, 0, 0, 0, 0, transform})
	}
	for t := range 2 {
		if t == 1 && n == 1 {
			break
		}
		seg := []byte{byte(t)}
		for zig := range 64 {
			seg = append(seg, byte(qt[t][zig]))
		}
		e.segment(0xdb, seg)
	}
	sof := byte(0xc0)
	if o.Progressive {
		sof = 0xc2
	}
	seg := []byte{8, byte(H >> 8), byte(H), byte(W >> 8), byte(W), byte(n)}
	for _, c := range comps {
		seg = append(seg, c.id, c.hv, byte(c.tq))
	}
	e.segment(sof, seg)
	if o.RestartInterval > 0 {
		e.segment(0xdd, []byte{byte(o.RestartInterval >> 8), byte(o.RestartInterval)})
	}
	scans := []scan{{comps: allIndexes(n), ss: 0, se: 63}}
	if o.Progressive {
		scans = progression(n, !o.NoSuccessiveApprox)
	}
	for _, s := range scans {
		e.scan(comps, s, mxx, myy, o.RestartInterval)
	}
	e.marker(0xd9)
	if e.err != nil {
		return e.err
	}
	return bw.Flush()
}

func allIndexes(n int) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = i
	}
	return out
}

// splitPlanes returns the image's component planes at full size, as the file stores them,
// and their component identifiers.
func splitPlanes(img image.Image, kind ColorKind) ([][]float64, []byte) {
	b := img.Bounds()
	W, H := b.Dx(), b.Dy()
	if g, ok := img.(*image.Gray); ok {
		p := make([]float64, W*H)
		for y := range H {
			for x := range W {
				p[y*W+x] = float64(g.GrayAt(b.Min.X+x, b.Min.Y+y).Y)
			}
		}
		return [][]float64{p}, []byte{1}
	}
	n := 3
	if kind == CMYK || kind == YCCK {
		n = 4
	}
	planes := make([][]float64, n)
	for i := range planes {
		planes[i] = make([]float64, W*H)
	}
	for y := range H {
		for x := range W {
			i := y*W + x
			c := img.At(b.Min.X+x, b.Min.Y+y)
			switch kind {
			case RGB:
				r, g, bl, _ := c.RGBA()
				planes[0][i], planes[1][i], planes[2][i] = float64(r>>8), float64(g>>8), float64(bl>>8)
			case CMYK, YCCK:
				k := color.CMYKModel.Convert(c).(color.CMYK)
				// Adobe files store ink inverted: 255 means none.
				cc, mm, yy, kk := 255-k.C, 255-k.M, 255-k.Y, 255-k.K
				if kind == CMYK {
					planes[0][i], planes[1][i], planes[2][i] = float64(cc), float64(mm), float64(yy)
				} else {
					// YCCK: CMY as if RGB, in YCbCr, and K inverted (as libjpeg and image/jpeg
					// read it: the inversion of RGB to CMY cancels the Adobe inversion).
					yv, cb, cr := rgbToYCbCr(float64(k.C), float64(k.M), float64(k.Y))
					planes[0][i], planes[1][i], planes[2][i] = yv, cb, cr
				}
				planes[3][i] = float64(kk)
			default:
				r, g, bl, _ := c.RGBA()
				yv, cb, cr := rgbToYCbCr(float64(r>>8), float64(g>>8), float64(bl>>8))
				planes[0][i], planes[1][i], planes[2][i] = yv, cb, cr
			}
		}
	}
	ids := []byte{1, 2, 3, 4}[:n]
	if kind == RGB {
		ids = []byte{'R', 'G', 'B'}
	}
	return planes, ids
}

func rgbToYCbCr(r, g, b float64) (float64, float64, float64) {
	return 0.299*r + 0.587*g + 0.114*b,
		128 - 0.168736*r - 0.331264*g + 0.5*b,
		128 + 0.5*r - 0.418688*g - 0.081312*b
}

// resample averages the full-size plane p (W x H) by fx x fy into a padded plane of w x h
// samples, of which cw x ch are real; the padding repeats the edge samples.
func resample(p []float64, W, H, w, h, cw, ch, fx, fy int) []float64 {
	out := make([]float64, w*h)
	for y := range h {
		for x := range w {
			sx, sy := min(x, cw-1), min(y, ch-1)
			sum, k := 0.0, 0
			for dy := range fy {
				for dx := range fx {
					px, py := min(sx*fx+dx, W-1), min(sy*fy+dy, H-1)
					sum += p[py*W+px]
					k++
				}
			}
			out[y*w+x] = sum / float64(k)
		}
	}
	return out
}

var cosTable = func() (t [8][8]float64) {
	for x := range 8 {
		for u := range 8 {
			t[x][u] = math.Cos(float64(2*x+1) * float64(u) * math.Pi / 16)
		}
	}
	return t
}()

// transform computes the quantized DCT coefficients of every block.
func (c *component) transform(qt *[64]int) {
	c.coef = make([][64]int, c.bw*c.bh)
	var tmp [8][8]float64
	for by := range c.bh {
		for bx := range c.bw {
			// Rows, then columns (F = 1/4 C(u) C(v) sum sum).
			for y := range 8 {
				row := c.samples[(by*8+y)*c.w+bx*8:]
				for u := range 8 {
					s := 0.0
					for x := range 8 {
						s += (row[x] - 128) * cosTable[x][u]
					}
					tmp[y][u] = s
				}
			}
			blk := &c.coef[by*c.bw+bx]
			for v := range 8 {
				for u := range 8 {
					s := 0.0
					for y := range 8 {
						s += tmp[y][u] * cosTable[y][v]
					}
					cu, cv := 1.0, 1.0
					if u == 0 {
						cu = math.Sqrt2 / 2
					}
					if v == 0 {
						cv = math.Sqrt2 / 2
					}
					f := s * cu * cv / 4
					zig := zigOf[v*8+u]
					blk[zig] = int(math.Round(f / float64(qt[zig])))
				}
			}
		}
	}
	c.samples = nil
}

// scan is one scan of the file: its components (indexes) and spectral and successive
// approximation parameters.
type scan struct {
	comps          []int
	ss, se, ah, al int
}

// progression is libjpeg's jpeg_simple_progression: for YCbCr, DC first, then luma's low AC
// coarsely, chroma's AC, the rest of luma, and the refinements; for other colour spaces the
// same per component. Without successive approximation, each band is sent whole.
func progression(n int, approx bool) []scan {
	if !approx {
		out := []scan{{comps: allIndexes(n)}}
		for c := range n {
			out = append(out, scan{comps: []int{c}, ss: 1, se: 5}, scan{comps: []int{c}, ss: 6, se: 63})
		}
		return out
	}
	if n == 3 {
		return []scan{
			{comps: []int{0, 1, 2}, al: 1},
			{comps: []int{0}, ss: 1, se: 5, al: 2},
			{comps: []int{2}, ss: 1, se: 63, al: 1},
			{comps: []int{1}, ss: 1, se: 63, al: 1},
			{comps: []int{0}, ss: 6, se: 63, al: 2},
			{comps: []int{0}, ss: 1, se: 63, ah: 2, al: 1},
			{comps: []int{0, 1, 2}, ah: 1},
			{comps: []int{2}, ss: 1, se: 63, ah: 1},
			{comps: []int{1}, ss: 1, se: 63, ah: 1},
			{comps: []int{0}, ss: 1, se: 63, ah: 1},
		}
	}
	out := []scan{{comps: allIndexes(n), al: 1}}
	for c := range n {
		out = append(out, scan{comps: []int{c}, ss: 1, se: 5, al: 2}, scan{comps: []int{c}, ss: 6, se: 63, al: 2},
			scan{comps: []int{c}, ss: 1, se: 63, ah: 2, al: 1})
	}
	out = append(out, scan{comps: allIndexes(n), ah: 1})
	for c := range n {
		out = append(out, scan{comps: []int{c}, ss: 1, se: 63, ah: 1})
	}
	return out
}

// encoder writes markers, segments and entropy-coded data.
type encoder struct {
	w   *bufio.Writer
	err error

	// entropy coding state
	acc   uint32
	nacc  uint
	count bool // gathering statistics: nothing is written
	freq  [4][257]int
	codes [4]huffCode
}

func (e *encoder) write(p []byte) {
	if e.err == nil {
		_, e.err = e.w.Write(p)
	}
}

func (e *encoder) marker(m byte) { e.write([]byte{0xff, m}) }

func (e *encoder) segment(m byte, data []byte) {
	if len(data)+2 > 0xffff {
		e.err = errors.New("jpegtest: segment too long")
		return
	}
	e.write([]byte{0xff, m, byte((len(data) + 2) >> 8), byte(len(data) + 2)})
	e.write(data)
}

// bits writes the n low bits of v, most significant first, stuffing 0xff bytes.
func (e *encoder) bits(v uint32, n uint) {
	if e.count || n == 0 {
		return
	}
	for n > 0 {
		k := min(n, 8)
		n -= k
		e.acc = e.acc<<k | (v>>n)&(1<<k-1)
		e.nacc += k
		for e.nacc >= 8 {
			e.nacc -= 8
			c := byte(e.acc >> e.nacc)
			e.write([]byte{c})
			if c == 0xff {
				e.write([]byte{0})
			}
		}
	}
}

// flush pads the last byte with 1 bits.
func (e *encoder) flush() {
	if e.nacc > 0 && !e.count {
		e.bits(1<<(8-e.nacc)-1, 8-e.nacc)
	}
	e.acc, e.nacc = 0, 0
}

func (e *encoder) symbol(table int, s byte) {
	if e.count {
		e.freq[table][s]++
		return
	}
	c := e.codes[table]
	if c.size[s] == 0 {
		e.err = fmt.Errorf("jpegtest: symbol %#x has no code", s)
		return
	}
	e.bits(uint32(c.code[s]), uint(c.size[s]))
}

// sizeOf is the number of bits of |v| (the JPEG "category").
func sizeOf(v int) uint {
	v = max(v, -v)
	n := uint(0)
	for v > 0 {
		n++
		v >>= 1
	}
	return n
}

// valueBits are the bits that follow a symbol for value v of the given size: v itself when
// positive, v-1 in the low bits when negative (one's complement).
func valueBits(v int, size uint) uint32 {
	if v < 0 {
		v--
	}
	return uint32(v) & (1<<size - 1)
}

// scanState is the per-scan state of the progressive entropy coder.
type scanState struct {
	dcPred  []int
	eobRun  int
	eobBits []uint32 // correction bits held back with the end-of-band run
	table   int
}

// scan writes one scan: statistics first, then the tables and the data.
func (e *encoder) scan(comps []*component, s scan, mxx, myy, ri int) {
	e.count = true
	e.freq = [4][257]int{}
	e.scanData(comps, s, mxx, myy, ri)
	e.count = false
	var dht []byte
	for t := range 4 {
		used := false
		for _, f := range e.freq[t][:256] {
			used = used || f > 0
		}
		if !used {
			continue
		}
		bits, vals := optimalTable(e.freq[t])
		e.codes[t] = canonical(bits, vals)
		class := byte(0)
		if t >= 2 {
			class = 1
		}
		dht = append(dht, class<<4|byte(t%2))
		dht = append(dht, bits[1:17]...)
		dht = append(dht, vals...)
	}
	if len(dht) > 0 {
		e.segment(0xc4, dht)
	}
	sos := []byte{byte(len(s.comps))}
	for _, ci := range s.comps {
		c := comps[ci]
		sos = append(sos, c.id, byte(c.dcTable<<4|c.acTable))
	}
	sos = append(sos, byte(s.ss), byte(s.se), byte(s.ah<<4|s.al))
	e.segment(0xda, sos)
	e.scanData(comps, s, mxx, myy, ri)
}

// Tables 0-1 are DC tables, 2-3 AC tables (by the component's table number).
func dcTableOf(c *component) int { return c.dcTable }
func acTableOf(c *component) int { return 2 + c.acTable }

func (e *encoder) scanData(comps []*component, s scan, mxx, myy, ri int) {
	st := &scanState{dcPred: make([]int, len(comps))}
	var mcus [][][2]int // MCUs as lists of blocks: component index and block index
	if len(s.comps) == 1 {
		// Not interleaved: one block per MCU, only the blocks that cover the component.
		c := comps[s.comps[0]]
		for by := range c.realBH {
			for bx := range c.realBW {
				mcus = append(mcus, [][2]int{{s.comps[0], by*c.bw + bx}})
			}
		}
	} else {
		for my := range myy {
			for mx := range mxx {
				var mcu [][2]int
				for _, ci := range s.comps {
					c := comps[ci]
					for y := range c.v {
						for x := range c.h {
							mcu = append(mcu, [2]int{ci, (my*c.v+y)*c.bw + mx*c.h + x})
						}
					}
				}
				mcus = append(mcus, mcu)
			}
		}
	}
	rst := 0
	for i, mcu := range mcus {
		if ri > 0 && i > 0 && i%ri == 0 {
			e.endEOBRun(st)
			e.flush()
			if !e.count {
				e.marker(0xd0 + byte(rst%8))
			}
			rst++
			clear(st.dcPred)
		}
		for _, u := range mcu {
			c := comps[u[0]]
			blk := &c.coef[u[1]]
			switch {
			case s.ss == 0 && s.ah == 0:
				e.dcFirst(st, u[0], c, blk, s.al)
				if s.se > 0 { // sequential: the AC coefficients follow
					e.acFirst(st, c, blk, 1, 63, 0, true)
				}
			case s.ss == 0:
				e.bits(uint32(blk[0]>>s.al)&1, 1)
			case s.ah == 0:
				e.acFirst(st, c, blk, s.ss, s.se, s.al, false)
			default:
				e.acRefine(st, c, blk, s.ss, s.se, s.al)
			}
		}
	}
	e.endEOBRun(st)
	e.flush()
}

func (e *encoder) dcFirst(st *scanState, ci int, c *component, blk *[64]int, al int) {
	v := blk[0] >> al // arithmetic shift, as libjpeg's IRIGHT_SHIFT
	diff := v - st.dcPred[ci]
	st.dcPred[ci] = v
	size := sizeOf(diff)
	e.symbol(dcTableOf(c), byte(size))
	e.bits(valueBits(diff, size), size)
}

// acFirst codes coefficients ss to se, shifted right by al (of their magnitude). In a
// sequential scan there are no end-of-band runs: each block ends with its own EOB.
func (e *encoder) acFirst(st *scanState, c *component, blk *[64]int, ss, se, al int, sequential bool) {
	table := acTableOf(c)
	st.table = table
	r := 0
	for k := ss; k <= se; k++ {
		v := blk[k]
		mag := max(v, -v) >> al
		if mag == 0 {
			r++
			continue
		}
		if v < 0 {
			v = -mag
		} else {
			v = mag
		}
		e.endEOBRun(st)
		for r > 15 {
			e.symbol(table, 0xf0)
			r -= 16
		}
		size := sizeOf(v)
		e.symbol(table, byte(r<<4)|byte(size))
		e.bits(valueBits(v, size), size)
		r = 0
	}
	if r > 0 {
		if sequential {
			e.symbol(table, 0x00)
			return
		}
		st.eobRun++
		if st.eobRun == 0x7fff {
			e.endEOBRun(st)
		}
	}
}

// acRefine codes one more bit of coefficients ss to se (T.81 G.1.2.3, as jcphuff.c).
func (e *encoder) acRefine(st *scanState, c *component, blk *[64]int, ss, se, al int) {
	table := acTableOf(c)
	st.table = table
	var abs [64]int
	eob := 0 // the last coefficient that becomes non-zero in this scan
	for k := ss; k <= se; k++ {
		abs[k] = max(blk[k], -blk[k]) >> al
		if abs[k] == 1 {
			eob = k
		}
	}
	r := 0
	var held []uint32 // correction bits of coefficients already non-zero
	for k := ss; k <= se; k++ {
		a := abs[k]
		if a == 0 {
			r++
			continue
		}
		for r > 15 && k <= eob {
			e.endEOBRun(st)
			e.symbol(table, 0xf0)
			r -= 16
			for _, b := range held {
				e.bits(b, 1)
			}
			held = held[:0]
		}
		if a > 1 {
			held = append(held, uint32(a&1))
			continue
		}
		e.endEOBRun(st)
		e.symbol(table, byte(r<<4)|1)
		sign := uint32(1)
		if blk[k] < 0 {
			sign = 0
		}
		e.bits(sign, 1)
		for _, b := range held {
			e.bits(b, 1)
		}
		held = held[:0]
		r = 0
	}
	if r > 0 || len(held) > 0 {
		st.eobRun++
		st.eobBits = append(st.eobBits, held...)
		if st.eobRun == 0x7fff || len(st.eobBits) > 900 {
			e.endEOBRun(st)
		}
	}
}

// endEOBRun writes a pending end-of-band run and the correction bits held with it.
func (e *encoder) endEOBRun(st *scanState) {
	if st.eobRun > 0 {
		n := sizeOf(st.eobRun) - 1
		e.symbol(st.table, byte(n<<4))
		e.bits(uint32(st.eobRun), n)
		st.eobRun = 0
	}
	for _, b := range st.eobBits {
		e.bits(b, 1)
	}
	st.eobBits = st.eobBits[:0]
}

// huffCode is a table's code and length for every symbol.
type huffCode struct {
	code [256]uint16
	size [256]uint8
}

// optimalTable builds code-length counts (bits[1..16]) and the symbols in code order from
// symbol frequencies, as libjpeg's jpeg_gen_optimal_table (T.81 K.2): freq[256] is a reserved
// symbol that keeps any code from being all ones.
func optimalTable(freq [257]int) ([]byte, []byte) {
	var codesize [257]int
	others := [257]int{}
	for i := range others {
		others[i] = -1
	}
	freq[256] = 1
	for {
		c1, c2 := -1, -1
		for i := range 257 {
			if freq[i] > 0 && (c1 < 0 || freq[i] <= freq[c1]) {
				c1 = i
			}
		}
		for i := range 257 {
			if freq[i] > 0 && i != c1 && (c2 < 0 || freq[i] <= freq[c2]) {
				c2 = i
			}
		}
		if c2 < 0 {
			break
		}
		freq[c1] += freq[c2]
		freq[c2] = 0
		codesize[c1]++
		for others[c1] >= 0 {
			c1 = others[c1]
			codesize[c1]++
		}
		others[c1] = c2
		codesize[c2]++
		for others[c2] >= 0 {
			c2 = others[c2]
			codesize[c2]++
		}
	}
	var bits [33]int
	for i := range 257 {
		if codesize[i] > 0 {
			bits[codesize[i]]++
		}
	}
	for i := 32; i > 16; i-- {
		for bits[i] > 0 {
			j := i - 2
			for bits[j] == 0 {
				j--
			}
			bits[i] -= 2
			bits[i-1]++
			bits[j+1] += 2
			bits[j]--
		}
	}
	i := 16
	for bits[i] == 0 {
		i--
	}
	bits[i]-- // the reserved symbol
	out := make([]byte, 17)
	for k := 1; k <= 16; k++ {
		out[k] = byte(bits[k])
	}
	var vals []byte
	for size := 1; size <= 32; size++ {
		for s := range 256 {
			if codesize[s] == size {
				vals = append(vals, byte(s))
			}
		}
	}
	return out, vals
}

// canonical assigns the codes of T.81 C.2 to the symbols.
func canonical(bits, vals []byte) huffCode {
	var h huffCode
	code, k := 0, 0
	for size := 1; size <= 16; size++ {
		for range int(bits[size]) {
			h.code[vals[k]] = uint16(code)
			h.size[vals[k]] = uint8(size)
			code++
			k++
		}
		code <<= 1
	}
	return h
}

// zigOf maps a natural index (row*8+column) to its zig-zag index.
var zigOf = func() (z [64]int) {
	i := 0
	for s := 0; s < 15; s++ {
		if s%2 == 0 {
			for y := min(s, 7); y >= 0 && s-y < 8; y-- {
				z[y*8+s-y] = i
				i++
			}
		} else {
			for x := min(s, 7); x >= 0 && s-x < 8; x-- {
				z[(s-x)*8+x] = i
				i++
			}
		}
	}
	return z
}()

// The quantization tables of T.81 Annex K.1, in natural order, and their scaling by quality
// (as libjpeg and image/jpeg scale them).
var (
	lumaQuant = [64]int{
		16, 11, 10, 16, 24, 40, 51, 61,
		12, 12, 14, 19, 26, 58, 60, 55,
		14, 13, 16, 24, 40, 57, 69, 56,
		14, 17, 22, 29, 51, 87, 80, 62,
		18, 22, 37, 56, 68, 109, 103, 77,
		24, 35, 55, 64, 81, 104, 113, 92,
		49, 64, 78, 87, 103, 121, 120, 101,
		72, 92, 95, 98, 112, 100, 103, 99,
	}
	chromaQuant = [64]int{
		17, 18, 24, 47, 99, 99, 99, 99,
		18, 21, 26, 66, 99, 99, 99, 99,
		24, 26, 56, 99, 99, 99, 99, 99,
		47, 66, 99, 99, 99, 99, 99, 99,
		99, 99, 99, 99, 99, 99, 99, 99,
		99, 99, 99, 99, 99, 99, 99, 99,
		99, 99, 99, 99, 99, 99, 99, 99,
		99, 99, 99, 99, 99, 99, 99, 99,
	}
)

// scaleQuant returns the table scaled for quality q, in zig-zag order.
func scaleQuant(natural [64]int, q int) [64]int {
	scale := 200 - 2*q
	if q < 50 {
		scale = 5000 / q
	}
	var out [64]int
	for i, v := range natural {
		out[zigOf[i]] = min(max((v*scale+50)/100, 1), 255)
	}
	return out
}

// WithSize returns a copy of a JPEG whose frame header claims w x h instead: the kind of file
// a decompression bomb is, whose scans hold far fewer blocks than the frame says.
func WithSize(data []byte, w, h int) ([]byte, error) {
	out := append([]byte(nil), data...)
	for i := 2; i+4 <= len(out); {
		if out[i] != 0xff {
			return nil, errors.New("jpegtest: no frame header")
		}
		m := out[i+1]
		n := int(out[i+2])<<8 | int(out[i+3])
		if m >= 0xc0 && m <= 0xc2 && i+9 <= len(out) {
			out[i+5], out[i+6] = byte(h>>8), byte(h)
			out[i+7], out[i+8] = byte(w>>8), byte(w)
			return out, nil
		}
		i += 2 + n
	}
	return nil, errors.New("jpegtest: no frame header")
}
