package imagestore

import (
	"bytes"
	"encoding/binary"
	"io"
	"slices"
)

// JPEG marker codes (ITU T.81 table B.1).
const (
	jpegSOF0  = 0xC0
	jpegSOF1  = 0xC1
	jpegSOF2  = 0xC2
	jpegDHT   = 0xC4
	jpegDAC   = 0xCC
	jpegRST0  = 0xD0
	jpegRST7  = 0xD7
	jpegSOI   = 0xD8
	jpegEOI   = 0xD9
	jpegSOS   = 0xDA
	jpegDQT   = 0xDB
	jpegDNL   = 0xDC
	jpegDRI   = 0xDD
	jpegDHP   = 0xDE
	jpegEXP   = 0xDF
	jpegAPP0  = 0xE0
	jpegAPP1  = 0xE1
	jpegAPP2  = 0xE2
	jpegAPP13 = 0xED
	jpegAPP14 = 0xEE
	jpegAPP15 = 0xEF
	jpegJPG0  = 0xF0
	jpegSOF55 = 0xF7 // JPEG-LS
	jpegJPG13 = 0xFD
	jpegCOM   = 0xFE
	jpegTEM   = 0x01
)

// APPn identifiers.
const (
	jfifID        = "JFIF\x00"
	jfxxID        = "JFXX\x00"
	exifID        = "Exif\x00"
	xmpID         = "http://ns.adobe.com/xap/1.0/\x00"
	xmpExtendedID = "http://ns.adobe.com/xmp/extension/\x00"
	iccID         = "ICC_PROFILE\x00"
	mpfID         = "MPF\x00"
	flashPixID    = "FPXR\x00"
	photoshopID   = "Photoshop 3.0\x00"
	adobeID       = "Adobe"
)

const (
	// scanBlock is the read size for image data: large enough that per-read costs vanish,
	// small enough that 16 concurrent uploads need about 1 MiB for it.
	scanBlock = 64 << 10
	// jfifLen is the APP0 JFIF payload without a thumbnail.
	jfifLen = 14
	// adobeLen is the APP14 Adobe payload libjpeg reads.
	adobeLen = 12
	// iccHeaderLen is the ICC_PROFILE identifier plus sequence number and chunk count.
	iccHeaderLen = 14
)

// isShownSOF reports the frame types the product can show: Huffman-coded baseline (SOF0),
// extended sequential (SOF1) and progressive (SOF2), the ones image/jpeg (which makes the
// thumbnails), browsers and every phone use.
func isShownSOF(m byte) bool {
	return m == jpegSOF0 || m == jpegSOF1 || m == jpegSOF2
}

// unshownFrame names the other frame types (T.81 table B.1), which the sanitizer could copy
// but nobody could look at: SOF3 lossless, SOF5-7 hierarchical, SOF9-11 arithmetic-coded,
// SOF13-15 both; and SOF55, JPEG-LS (T.87). "" for any other marker.
func unshownFrame(m byte) string {
	switch m {
	case 0xC3:
		return "lossless"
	case 0xC5, 0xC6:
		return "hierarchical"
	case 0xC7:
		return "hierarchical lossless"
	case 0xC9, 0xCA:
		return "arithmetic-coded"
	case 0xCB:
		return "arithmetic-coded lossless"
	case 0xCD, 0xCE:
		return "hierarchical arithmetic-coded"
	case 0xCF:
		return "hierarchical arithmetic-coded lossless"
	case jpegSOF55:
		return "JPEG-LS"
	}
	return ""
}

type iccChunk struct {
	seq, count byte
	off, n     int64
}

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

func planJPEG(r io.ReaderAt, size int64, lim Limits) (*planBuilder, error) {
	buf := getScanBlock()
	defer putScanBlock(buf)
	p := &jpegPlanner{r: r, size: size, lim: lim, b: newPlanBuilder(), buf: *buf, adobeAt: -1}
	return p.run()
}

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

// app sorts an APPn segment into kept (JFIF, ICC, Adobe) or removed, by its identifier.
func (p *jpegPlanner) app(m byte, pos, n int64) error {
	payloadLen := n - 4
	var idBuf [40]byte
	id := idBuf[:min(payloadLen, int64(len(idBuf)))]
	if err := readFull(p.r, id, pos+4); err != nil {
		return err
	}
	has := func(prefix string) bool { return bytes.HasPrefix(id, []byte(prefix)) }
	beforeScan := !p.sawSOS
	switch {
	case m == jpegAPP0 && has(jfifID) && payloadLen >= jfifLen && p.jfif == nil && beforeScan:
		if payloadLen == jfifLen && id[12] == 0 && id[13] == 0 {
			p.jfif = &piece{off: pos, n: n}
			return nil
		}
		// Rewrite without the thumbnail, which may show an uncropped original.
		lit := append([]byte{0xFF, jpegAPP0, 0, 2 + jfifLen}, id[:12]...)
		p.jfif = &piece{lit: append(lit, 0, 0)}
		p.b.drop(RemovedJFIFThumbnail, payloadLen-jfifLen)
	case m == jpegAPP0 && has(jfxxID):
		p.b.drop(RemovedJFIFThumbnail, n)
	case m == jpegAPP1 && has(exifID):
		p.b.drop(RemovedEXIF, n)
		p.b.meta.HadEXIF = true
		if p.sawEXIF || !beforeScan {
			return nil
		}
		p.sawEXIF = true
		if payloadLen < 6 {
			p.b.meta.EXIFUnreadable = true
			return nil
		}
		p.exifBlock = make([]byte, payloadLen-6)
		return readFull(p.r, p.exifBlock, pos+4+6)
	case m == jpegAPP1 && has(xmpID):
		p.b.drop(RemovedXMP, n)
		p.b.meta.HadXMP = true
	case m == jpegAPP1 && has(xmpExtendedID):
		p.b.drop(RemovedXMPExtended, n)
		p.b.meta.HadXMP = true
	case m == jpegAPP2 && has(iccID) && payloadLen >= iccHeaderLen && beforeScan:
		if len(p.icc) == 0 {
			p.rest = append(p.rest, piece{off: -1})
		}
		p.icc = append(p.icc, iccChunk{seq: id[12], count: id[13], off: pos, n: n})
	case m == jpegAPP2 && has(iccID):
		// libjpeg reads the profile only from the header; a chunk between scans is ignored.
		p.b.drop(RemovedICCInvalid, n)
	case m == jpegAPP2 && has(mpfID):
		p.b.drop(RemovedMPF, n)
	case m == jpegAPP2 && has(flashPixID):
		p.b.drop(RemovedFlashPix, n)
	case m == jpegAPP13 && has(photoshopID):
		p.b.drop(RemovedIPTC, n)
	case m == jpegAPP14 && has(adobeID) && payloadLen >= adobeLen && beforeScan:
		// libjpeg and image/jpeg both use the last Adobe segment of the header: keep that one.
		if k := p.adobeAt; k >= 0 {
			old := p.rest[k]
			p.b.drop(RemovedAppOther, old.n+int64(len(old.lit)))
			p.rest[k] = piece{} // keeps nothing
		}
		p.adobeAt = len(p.rest)
		if payloadLen == adobeLen {
			p.rest = append(p.rest, piece{off: pos, n: n})
			return nil
		}
		lit := append([]byte{0xFF, jpegAPP14, 0, 2 + adobeLen}, id[:adobeLen]...)
		p.rest = append(p.rest, piece{lit: lit})
		p.b.drop(RemovedAppOther, payloadLen-adobeLen)
	default:
		p.b.drop(RemovedAppOther, n)
	}
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

func (b *planBuilder) addPiece(it piece) {
	if it.lit != nil {
		b.add(it.lit)
	} else {
		b.keep(it.off, it.n)
	}
}

// validICC checks that the chunks form one complete profile: the same count everywhere and
// every sequence number from 1 to count exactly once. Viewers ignore an incomplete profile.
func validICC(chunks []iccChunk) bool {
	if len(chunks) == 0 || len(chunks) != int(chunks[0].count) {
		return false
	}
	var seen [256]bool
	for _, c := range chunks {
		if c.count != chunks[0].count || c.seq == 0 || c.seq > c.count || seen[c.seq] {
			return false
		}
		seen[c.seq] = true
	}
	return true
}

// orientationEXIFSegment builds the only EXIF a JPEG output may carry: an APP1 holding
// orientationTIFF.
func orientationEXIFSegment(orientation int) []byte {
	seg := []byte{0xFF, jpegAPP1, 0, 0}
	seg = append(seg, "Exif\x00\x00"...)
	seg = append(seg, orientationTIFF(orientation)...)
	binary.BigEndian.PutUint16(seg[2:4], uint16(len(seg)-2))
	return seg
}

// orientationTIFF is the only EXIF data an output may carry (in a JPEG APP1, a PNG eXIf or a
// WebP EXIF chunk): a big-endian TIFF header and one IFD holding one entry, Orientation, and no next
// IFD.
func orientationTIFF(orientation int) []byte {
	be := binary.BigEndian
	t := []byte("MM\x00\x2a")
	t = be.AppendUint32(t, 8) // IFD0 right after the header
	t = be.AppendUint16(t, 1) // one entry
	t = be.AppendUint16(t, tagOrientation)
	t = be.AppendUint16(t, tiffShort)
	t = be.AppendUint32(t, 1) // count
	t = be.AppendUint16(t, uint16(orientation))
	t = be.AppendUint16(t, 0) // value padding
	t = be.AppendUint32(t, 0) // no next IFD
	return t
}

// isSegmentMarker tells whether a and b are a marker findMarker would stop at: 0xFF followed
// by neither a stuffed zero, a restart marker nor another 0xFF.
func isSegmentMarker(a, b byte) bool {
	return a == 0xFF && b != 0x00 && b != 0xFF && (b < jpegRST0 || b > jpegRST7)
}

// findMarker finds the first marker at or after pos that is not part of entropy-coded data:
// the first 0xFF followed by neither a stuffed zero, a restart marker nor another 0xFF (fill).
// It ends a scan's data, and it is where a segment starts after bytes that belong to no
// segment. found is false when the file ends first. It reads blocks into buf and jumps
// between 0xFF bytes with bytes.IndexByte.
func findMarker(r io.ReaderAt, pos, size int64, buf []byte) (at int64, found bool, err error) {
	for pos < size {
		n, err := r.ReadAt(buf[:min(int64(len(buf)), size-pos)], pos)
		if n == 0 {
			if err == nil || err == io.EOF {
				break
			}
			return 0, false, err
		}
		blk := buf[:n]
		advance := int64(n)
		for i := 0; ; {
			j := bytes.IndexByte(blk[i:], 0xFF)
			if j < 0 {
				break
			}
			k := i + j
			if k+1 == n {
				// The byte after this 0xFF is in the next block; start it here.
				if pos+int64(n) >= size {
					return 0, false, nil
				}
				advance = int64(k)
				break
			}
			if isSegmentMarker(0xFF, blk[k+1]) {
				return pos + int64(k), true, nil
			}
			if blk[k+1] == 0xFF {
				i = k + 1
			} else {
				i = k + 2
			}
		}
		if advance == 0 {
			return 0, false, nil
		}
		pos += advance
	}
	return 0, false, nil
}
