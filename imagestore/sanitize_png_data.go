package imagestore

import (
	"compress/zlib"
	"encoding/binary"
	"hash/crc32"
	"io"
)

// pngHeader is what IHDR says about the image data.
type pngHeader struct {
	width, height    int64
	depth, colorType byte
	interlaced       bool
}

// pngChannels is the number of samples per pixel of a color type (PNG table 11.1).
func pngChannels(colorType byte) int64 {
	switch colorType {
	case 2:
		return 3
	case 4:
		return 2
	case 6:
		return 4
	}
	return 1 // 0 greyscale, 3 palette
}

// pngPass is one run of scanlines of the image data: rows of rowLen bytes, each a filter type
// byte and the row's samples.
type pngPass struct{ rows, rowLen int64 }

// adam7 are the origins and steps of the seven interlace passes (PNG section 8.2).
var adam7 = [7]struct{ x, y, dx, dy int64 }{
	{0, 0, 8, 8}, {4, 0, 8, 8}, {0, 4, 4, 8}, {2, 0, 4, 4}, {0, 2, 2, 4}, {1, 0, 2, 2}, {0, 1, 1, 2},
}

// passes lists the non-empty passes the header declares: one for a plain image, up to seven
// for an interlaced one (an empty pass has no scanlines, not even filter bytes).
func (h pngHeader) passes() []pngPass {
	bits := int64(h.depth) * pngChannels(h.colorType)
	rowLen := func(w int64) int64 { return 1 + (w*bits+7)/8 }
	if !h.interlaced {
		return []pngPass{{rows: h.height, rowLen: rowLen(h.width)}}
	}
	var ps []pngPass
	for _, a := range adam7 {
		w := (h.width - a.x + a.dx - 1) / a.dx
		rows := (h.height - a.y + a.dy - 1) / a.dy
		if w > 0 && rows > 0 {
			ps = append(ps, pngPass{rows: rows, rowLen: rowLen(w)})
		}
	}
	return ps
}

// rawSize is the exact length of the decompressed image data the header declares.
func (h pngHeader) rawSize() int64 {
	var n int64
	for _, p := range h.passes() {
		n += p.rows * p.rowLen
	}
	return n
}

// scanlines follows the decompressed data row by row, checking each filter type byte, and
// refuses a byte beyond the declared size.
type scanlines struct {
	passes     []pngPass
	pass       int
	rowsDone   int64
	left       int64 // bytes left in the current row; 0 at a filter type byte
	total, max int64
}

func (s *scanlines) write(p []byte) error {
	s.total += int64(len(p))
	if s.total > s.max {
		return rejectf(ReasonMalformed, "png: image data inflates to more than the %d bytes its header declares", s.max)
	}
	for len(p) > 0 {
		if s.left == 0 {
			// The size check above keeps pass within the passes.
			if p[0] > 4 {
				return rejectf(ReasonMalformed, "png: filter type %d", p[0])
			}
			s.left = s.passes[s.pass].rowLen
		}
		k := min(s.left, int64(len(p)))
		p, s.left = p[k:], s.left-k
		if s.left == 0 {
			if s.rowsDone++; s.rowsDone == s.passes[s.pass].rows {
				s.pass, s.rowsDone = s.pass+1, 0
			}
		}
	}
	return nil
}

// checkPNGImageData reads the run of IDAT chunks that starts at pos, checking each chunk's CRC,
// and inflates their concatenated data with fixed buffers (halves of buf), never holding more
// than a window of it: the zlib stream must end with a good checksum exactly where the image
// data ends, after exactly the bytes h declares, every scanline starting with a known filter
// type. A stream that ends early or late, or is corrupt, would make every thumbnail attempt
// decode and fail; data after the stream would be kept unread. It returns the offset of the
// chunk after the run.
func checkPNGImageData(r io.ReaderAt, pos, size int64, h pngHeader, buf []byte) (int64, error) {
	in, out := buf[:len(buf)/2], buf[len(buf)/2:]
	ir := &idatReader{r: r, size: size, next: pos, buf: in}
	// The inflater is the one allocation here: about 45 KiB, mostly its 32 KiB window.
	z, err := zlib.NewReader(ir)
	rows := &scanlines{passes: h.passes(), max: h.rawSize()}
	for err == nil {
		var n int
		n, err = z.Read(out)
		if werr := rows.write(out[:n]); werr != nil {
			return 0, werr
		}
	}
	if ir.err != nil && ir.err != io.EOF {
		return 0, ir.err // the chunks themselves are broken, or reading failed
	}
	if err != io.EOF {
		// A damaged chunk is the better explanation, when its CRC says so.
		if cerr := ir.finishChunk(); cerr != nil {
			return 0, cerr
		}
		return 0, rejectf(ReasonMalformed, "png: image data does not inflate: %v", err)
	}
	if rows.total != rows.max {
		return 0, rejectf(ReasonMalformed, "png: image data inflates to %d bytes, its header declares %d", rows.total, rows.max)
	}
	// The rest of the run must be empty (zero-length IDATs at most); its CRCs are checked too.
	var one [1]byte
	if n, _ := ir.Read(one[:]); n != 0 {
		return 0, reject(ReasonMalformed, "png: data after the end of the compressed image")
	}
	if ir.err != io.EOF {
		return 0, ir.err
	}
	return ir.next, nil
}

// idatReader reads the data of consecutive IDAT chunks as one stream, checking each chunk's
// CRC as it ends; it stops (io.EOF) at the first chunk of another type, leaving next at its
// offset. It is an io.ByteReader, so that the inflater reads no byte past the zlib stream.
type idatReader struct {
	r    io.ReaderAt
	size int64
	next int64 // offset of the next unread byte of the file
	left int64 // data bytes of the current chunk not yet buffered
	crc  uint32
	open bool // inside an IDAT chunk
	buf  []byte
	a, b int // buffered bytes are buf[a:b]
	err  error
}

func (d *idatReader) Read(p []byte) (int, error) {
	if d.a == d.b && !d.fill() {
		return 0, d.err
	}
	n := copy(p, d.buf[d.a:d.b])
	d.a += n
	return n, nil
}

func (d *idatReader) ReadByte() (byte, error) {
	if d.a == d.b && !d.fill() {
		return 0, d.err
	}
	c := d.buf[d.a]
	d.a++
	return c, nil
}

// finishChunk reads the rest of the current chunk and checks its CRC.
func (d *idatReader) finishChunk() error {
	if d.err != nil || !d.open {
		return nil // at the end of the run, every CRC has been checked
	}
	for d.left > 0 {
		n := min(int64(len(d.buf)), d.left)
		if err := readFull(d.r, d.buf[:n], d.next); err != nil {
			return err
		}
		d.crc = crc32.Update(d.crc, crc32.IEEETable, d.buf[:n])
		d.next, d.left = d.next+n, d.left-n
	}
	var stored [4]byte
	if err := readFull(d.r, stored[:], d.next); err != nil {
		return err
	}
	if binary.BigEndian.Uint32(stored[:]) != d.crc {
		return rejectf(ReasonMalformed, "png: bad CRC in chunk before offset %d", d.next)
	}
	return nil
}

// fill buffers the next data bytes, crossing chunk boundaries; false with d.err set at the
// end of the run or on an error.
func (d *idatReader) fill() bool {
	for d.err == nil {
		if d.open && d.left > 0 {
			n := min(int64(len(d.buf)), d.left)
			if err := readFull(d.r, d.buf[:n], d.next); err != nil {
				d.err = err
				return false
			}
			d.crc = crc32.Update(d.crc, crc32.IEEETable, d.buf[:n])
			d.next, d.left, d.a, d.b = d.next+n, d.left-n, 0, int(n)
			return true
		}
		var hdr [8]byte
		if d.open {
			if err := readFull(d.r, hdr[:4], d.next); err != nil {
				d.err = err
				return false
			}
			if binary.BigEndian.Uint32(hdr[:4]) != d.crc {
				d.err = rejectf(ReasonMalformed, "png: bad CRC in chunk before offset %d", d.next)
				return false
			}
			d.next += 4
			d.open = false
		}
		if err := readFull(d.r, hdr[:], d.next); err != nil {
			d.err = err
			return false
		}
		if string(hdr[4:]) != "IDAT" {
			d.err = io.EOF
			return false
		}
		length := int64(binary.BigEndian.Uint32(hdr[:4]))
		if length > maxPNGChunk || d.next+12+length > d.size {
			d.err = rejectf(ReasonMalformed, "png: chunk at offset %d runs past the end", d.next)
			return false
		}
		d.crc = crc32.ChecksumIEEE(hdr[4:])
		d.next, d.left, d.open = d.next+8, length, true
	}
	return false
}
