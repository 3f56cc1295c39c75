package imagestore

import (
	"encoding/binary"
	"io"
	"slices"
)

// jpegPlanner walks a JPEG's marker segments once, front to back, deciding for each what the
// output keeps (the frame, scans and tables here; the APPn segments in sanitize_jpeg_app.go),
// and lays the output out when it meets the end of the image.
type jpegPlanner struct {
	r    io.ReaderAt
	size int64
	lim  Limits
	b    *planBuilder
	buf  []byte

	sawSOF, sawSOS bool
	frameInfo      *jpegFrame
	scans          int
	scanMinBits    int64 // of the scan being read
	jfif           *piece
	adobeAt        int // index in rest of the Adobe segment kept, or -1
	exifBlock      []byte
	sawEXIF        bool
	icc            []iccChunk
	// rest are the kept segments after SOI in file order; an item with off -1 marks where the
	// ICC chunks go, so that they come out together and in sequence order.
	rest []piece
}

// planJPEG plans the clean copy of the JPEG in r.
func planJPEG(r io.ReaderAt, size int64, lim Limits) (*planBuilder, error) {
	buf := getScanBlock()
	defer putScanBlock(buf)
	p := &jpegPlanner{r: r, size: size, lim: lim, b: newPlanBuilder(), buf: *buf, adobeAt: -1}
	return p.run()
}

// run reads one marker segment after another, and each scan's image data, up to the first
// end of image.
func (p *jpegPlanner) run() (*planBuilder, error) {
	var hdr [4]byte
	pos := int64(2) // after SOI, which Sniff checked
	for segments := 1; ; segments++ {
		if err := readFull(p.r, hdr[:2], pos); err != nil {
			return nil, err
		}
		if !isSegmentMarker(hdr[0], hdr[1]) {
			// Bytes that belong to no segment: a writer's padding or garbage after a segment
			// (libjpeg: "extraneous bytes before marker"), fill bytes, or a stuffed zero or
			// restart marker out of place. image/jpeg and libjpeg skip them; they carry no
			// image data, so they are dropped and reported.
			next, found, err := findMarker(p.r, pos, p.size, p.buf)
			if err != nil {
				return nil, err
			}
			if !found {
				return nil, rejectf(ReasonMalformed, "jpeg: no marker after offset %d", pos)
			}
			p.b.drop(RemovedStrayBytes, next-pos)
			pos = next
			if err := readFull(p.r, hdr[:2], pos); err != nil {
				return nil, err
			}
		}
		if err := p.lim.checkSegments(segments); err != nil {
			return nil, err
		}
		marker := hdr[1]
		switch {
		case marker == jpegEOI:
			if !p.sawSOS {
				return nil, rejectf(ReasonMalformed, "jpeg: end of image before image data")
			}
			p.rest = append(p.rest, piece{off: pos, n: 2})
			return p.finish(pos + 2)
		case marker == jpegTEM || marker == 0x00 || (marker >= jpegRST0 && marker <= jpegSOI):
			return nil, rejectf(ReasonMalformed, "jpeg: unexpected marker %#x at offset %d", marker, pos)
		}
		if err := readFull(p.r, hdr[2:4], pos+2); err != nil {
			return nil, err
		}
		length := int64(binary.BigEndian.Uint16(hdr[2:4]))
		if length < 2 {
			return nil, rejectf(ReasonMalformed, "jpeg: segment %#x at offset %d has length %d", marker, pos, length)
		}
		end := pos + 2 + length
		if end > p.size {
			return nil, rejectf(ReasonMalformed, "jpeg: segment %#x at offset %d runs past the end", marker, pos)
		}
		if err := p.segment(marker, pos, end); err != nil {
			return nil, err
		}
		pos = end
		if marker == jpegSOS {
			next, found, err := findMarker(p.r, pos, p.size, p.buf)
			if err != nil {
				return nil, err
			}
			if !found {
				return nil, rejectf(ReasonMalformed, "jpeg: image data ends without end of image")
			}
			p.scans++
			if have := (next - pos) * 8; have < p.scanMinBits {
				return nil, rejectf(ReasonMalformed, "jpeg: scan %d has %d bytes of image data; the %dx%d frame needs at least %d",
					p.scans, next-pos, p.b.meta.Width, p.b.meta.Height, ceilDiv(p.scanMinBits, 8))
			}
			p.rest = append(p.rest, piece{off: pos, n: next - pos})
			pos = next
		}
	}
}

// segment decides about one marker segment spanning [pos, end).
func (p *jpegPlanner) segment(m byte, pos, end int64) error {
	n := end - pos
	payloadLen := n - 4
	switch {
	case isShownSOF(m):
		return p.frame(m, pos, n)
	case unshownFrame(m) != "":
		return rejectf(ReasonUnsupportedJPEG, "jpeg: %s frame (marker %#x)", unshownFrame(m), m)
	case m == jpegDAC || m == jpegDHP || m == jpegEXP:
		// Arithmetic-coding tables and hierarchical structure, in a file whose frame may
		// come later; image/jpeg refuses them.
		return rejectf(ReasonUnsupportedJPEG, "jpeg: arithmetic or hierarchical marker %#x", m)
	case m == jpegDQT || m == jpegDHT || m == jpegDRI:
		p.rest = append(p.rest, piece{off: pos, n: n})
		return nil
	case m == jpegSOS:
		if !p.sawSOF {
			return rejectf(ReasonMalformed, "jpeg: scan before frame header at offset %d", pos)
		}
		var h [1 + 2*4 + 3]byte
		if payloadLen < 1 || payloadLen > int64(len(h)) {
			return rejectf(ReasonMalformed, "jpeg: bad scan header at offset %d", pos)
		}
		if err := readFull(p.r, h[:payloadLen], pos+4); err != nil {
			return err
		}
		if ns := int64(h[0]); ns < 1 || ns > 4 || payloadLen != 4+2*ns {
			return rejectf(ReasonMalformed, "jpeg: bad scan header at offset %d", pos)
		}
		bits, err := p.frameInfo.scanMinBits(h[:payloadLen])
		if err != nil {
			return err
		}
		p.scanMinBits = bits
		p.sawSOS = true
		p.rest = append(p.rest, piece{off: pos, n: n})
		return nil
	case m == jpegCOM:
		p.b.drop(RemovedComment, n)
		return nil
	case m >= jpegAPP0 && m <= jpegAPP15:
		return p.app(m, pos, n)
	case m == 0xC8 || m == jpegDNL || (m >= jpegJPG0 && m <= jpegJPG13):
		// Reserved and extension markers, and DNL: structures we cannot vouch for.
		return rejectf(ReasonUnsupported, "jpeg: unsupported marker %#x", m)
	}
	return rejectf(ReasonMalformed, "jpeg: reserved marker %#x at offset %d", m, pos)
}

func (p *jpegPlanner) frame(m byte, pos, n int64) error {
	if p.sawSOF {
		return rejectf(ReasonMalformed, "jpeg: second frame header at offset %d", pos)
	}
	var h [6 + 3*4]byte
	if n < 4+6 || n > 4+int64(len(h)) {
		return rejectf(ReasonMalformed, "jpeg: bad frame header at offset %d", pos)
	}
	if err := readFull(p.r, h[:n-4], pos+4); err != nil {
		return err
	}
	height := int(binary.BigEndian.Uint16(h[1:3]))
	width := int(binary.BigEndian.Uint16(h[3:5]))
	components := int64(h[5])
	if components < 1 || components > 4 || n != 4+6+3*components {
		return rejectf(ReasonMalformed, "jpeg: bad frame header at offset %d", pos)
	}
	switch precision := h[0]; precision {
	case 8:
	case 12:
		return reject(ReasonUnsupportedJPEG, "jpeg: 12-bit samples")
	default:
		return rejectf(ReasonMalformed, "jpeg: %d-bit samples", precision)
	}
	if height == 0 {
		// The height would follow the first scan in a DNL segment; nobody writes that.
		return rejectf(ReasonUnsupported, "jpeg: frame height defined by DNL")
	}
	if err := p.lim.checkDims(width, height); err != nil {
		return err
	}
	if err := p.lim.checkDensity(width, height, p.size); err != nil {
		return err
	}
	f, err := parseFrame(width, height, m == jpegSOF2, h[6:n-4])
	if err != nil {
		return err
	}
	p.frameInfo = f
	p.sawSOF = true
	p.b.meta.Width, p.b.meta.Height = width, height
	p.rest = append(p.rest, piece{off: pos, n: n})
	return nil
}

// finish reads the capture metadata and lays out the output: SOI, JFIF, the minimal EXIF,
// then the kept segments in file order; end is just past the first EOI.
func (p *jpegPlanner) finish(end int64) (*planBuilder, error) {
	b := p.b
	if p.exifBlock != nil {
		if gps := readEXIF(p.exifBlock, &b.meta); gps > 0 {
			b.drop(RemovedGPS, gps)
		}
	}
	iccOK := validICC(p.icc)
	if !iccOK {
		for _, c := range p.icc {
			b.drop(RemovedICCInvalid, c.n)
		}
	}
	slices.SortFunc(p.icc, func(a, c iccChunk) int { return int(a.seq) - int(c.seq) })

	b.keep(0, 2)
	if p.jfif != nil {
		b.addPiece(*p.jfif)
	}
	if o := b.meta.Orientation; o != 1 {
		b.add(orientationEXIFSegment(o))
	}
	for _, it := range p.rest {
		switch {
		case it.off == -1:
			if iccOK {
				for _, c := range p.icc {
					b.keep(c.off, c.n)
				}
			}
		default:
			b.addPiece(it)
		}
	}
	if trailer := p.size - end; trailer > 0 {
		b.drop(RemovedTrailer, trailer)
		b.meta.HadTrailer = true
	}
	return b, nil
}
