package imagestore

import (
	"bytes"
	"encoding/binary"
	"hash/crc32"
	"io"
)

const (
	pngIHDRLen = 13
	// maxPNGChunk is the largest chunk length the PNG specification allows.
	maxPNGChunk = 1<<31 - 1
)

// pngAncillaryKept are the ancillary chunks that describe how to display the pixels and
// carry nothing about the person or the device: color space, gamma, transparency, density.
func pngAncillaryKept(typ string) bool {
	switch typ {
	case "iCCP", "sRGB", "gAMA", "cHRM", "cICP", "tRNS", "pHYs", "sBIT":
		return true
	}
	return false
}

// pngRemovalKind classifies a dropped chunk.
func pngRemovalKind(typ string) RemovalKind {
	switch typ {
	case "tEXt", "zTXt", "iTXt":
		return RemovedPNGText
	case "tIME":
		return RemovedPNGTime
	case "eXIf":
		return RemovedPNGEXIF
	case "acTL", "fcTL", "fdAT":
		return RemovedPNGAnimation
	}
	return RemovedPNGOther
}

func isPNGChunkType(t []byte) bool {
	for _, c := range t {
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z') {
			return false
		}
	}
	return true
}

// pngPhase is where a chunk sits relative to the image data, which must be one run of IDATs.
type pngPhase int

const (
	beforeImageData pngPhase = iota
	afterImageData
)

// planPNG keeps the critical chunks and the display allowlist, in order. APNG is flattened to
// its default image (the static IDAT image every non-animating viewer shows) by dropping
// acTL, fcTL and fdAT. Allowlisted chunks after the image data are dropped too: viewers ignore
// them there. Every chunk's CRC is checked, and the image data must inflate to exactly what
// IHDR declares (checkPNGImageData).
func planPNG(r io.ReaderAt, size int64, lim Limits) (*planBuilder, error) {
	block := getScanBlock()
	defer putScanBlock(block)
	p := &pngPlanner{r: r, size: size, lim: lim, b: newPlanBuilder(), buf: *block}
	p.b.keep(0, int64(len(pngSignature)))
	return p.run()
}

// pngPlanner is planPNG's state. A chunk at pos with length bytes of data spans 12+length
// bytes: length, type, data and CRC.
type pngPlanner struct {
	r    io.ReaderAt
	size int64
	lim  Limits
	b    *planBuilder
	buf  []byte // a scanBlock, for the CRCs and for inflating the image data

	phase      pngPhase
	header     pngHeader // from IHDR, the first chunk
	exifParsed bool      // the eXIf read for the capture metadata has been met
}

// run reads one chunk header after another and hands each chunk, or the whole run of IDATs,
// to the method for its type, up to IEND.
func (p *pngPlanner) run() (*planBuilder, error) {
	// The chunk types met so far. A local, not a field, so that it stays off the heap.
	seen := make(map[string]bool)
	var hdr [8]byte
	segments := 0
	for pos := int64(len(pngSignature)); ; {
		if err := readFull(p.r, hdr[:], pos); err != nil {
			return nil, err
		}
		length := int64(binary.BigEndian.Uint32(hdr[:4]))
		typ := string(hdr[4:8])
		if length > maxPNGChunk || !isPNGChunkType(hdr[4:8]) {
			return nil, rejectf(ReasonMalformed, "png: bad chunk header at offset %d", pos)
		}
		end := pos + 12 + length
		if end > p.size {
			return nil, rejectf(ReasonMalformed, "png: chunk at offset %d runs past the end", pos)
		}
		if segments == 0 && typ != "IHDR" {
			return nil, rejectf(ReasonMalformed, "png: first chunk is not IHDR")
		}
		if typ == "IDAT" {
			next, err := p.imageData(pos, seen["PLTE"])
			if err != nil {
				return nil, err
			}
			seen[typ], pos = true, next
			continue
		}
		segments++
		if err := p.lim.checkSegments(segments); err != nil {
			return nil, err
		}
		if err := checkPNGCRC(p.r, pos, length, p.buf); err != nil {
			return nil, err
		}
		var err error
		switch {
		case typ == "IHDR":
			err = p.imageHeader(pos, length, seen[typ])
		case typ == "PLTE":
			err = p.palette(pos, length, seen[typ])
		case typ == "IEND":
			return p.imageEnd(pos, length)
		case hdr[4]&0x20 == 0:
			// An unknown critical chunk: decoders must fail on it, and so do we.
			return nil, rejectf(ReasonMalformed, "png: unknown critical chunk at offset %d", pos)
		case pngAncillaryKept(typ) && p.phase == beforeImageData && !seen[typ]:
			p.b.keep(pos, end-pos)
		default:
			err = p.dropped(typ, pos, length)
		}
		if err != nil {
			return nil, err
		}
		seen[typ] = true
		pos = end
	}
}

// imageHeader reads IHDR (repeated if one came before): the image's size, checked against the
// limits, and what its data must inflate to.
func (p *pngPlanner) imageHeader(pos, length int64, repeated bool) error {
	if repeated || length != pngIHDRLen {
		return rejectf(ReasonMalformed, "png: bad IHDR")
	}
	var h [pngIHDRLen]byte
	if err := readFull(p.r, h[:], pos+8); err != nil {
		return err
	}
	w, ht := binary.BigEndian.Uint32(h[0:4]), binary.BigEndian.Uint32(h[4:8])
	if w > maxPNGChunk || ht > maxPNGChunk || !validPNGDepth(h[8], h[9]) || h[10] != 0 || h[11] != 0 || h[12] > 1 {
		return rejectf(ReasonMalformed, "png: bad IHDR")
	}
	if err := p.lim.checkDims(int(w), int(ht)); err != nil {
		return err
	}
	if err := p.lim.checkDensity(int(w), int(ht), p.size); err != nil {
		return err
	}
	p.header = pngHeader{width: int64(w), height: int64(ht), depth: h[8], colorType: h[9], interlaced: h[12] == 1}
	p.b.meta.Width, p.b.meta.Height = int(w), int(ht)
	p.b.keep(pos, 12+length)
	return nil
}

// palette keeps the one PLTE (repeated if one came before), before the image data, of a color
// type that may have one.
func (p *pngPlanner) palette(pos, length int64, repeated bool) error {
	if repeated || p.phase != beforeImageData || length == 0 || length%3 != 0 || length > 3*256 ||
		p.header.colorType == 0 || p.header.colorType == 4 {
		return rejectf(ReasonMalformed, "png: bad PLTE")
	}
	p.b.keep(pos, 12+length)
	return nil
}

// imageData checks the whole run of IDATs that starts at pos at once (the CRCs, and the zlib
// stream inflated and measured against IHDR), keeps it and returns the offset after it.
// sawPalette tells whether a PLTE came before it.
func (p *pngPlanner) imageData(pos int64, sawPalette bool) (int64, error) {
	if p.phase != beforeImageData {
		return 0, rejectf(ReasonMalformed, "png: image data interrupted at offset %d", pos)
	}
	if p.header.colorType == 3 && !sawPalette {
		return 0, rejectf(ReasonMalformed, "png: palette image without PLTE")
	}
	next, err := checkPNGImageData(p.r, pos, p.size, p.header, p.buf)
	if err != nil {
		return 0, err
	}
	p.b.keep(pos, next-pos)
	p.phase = afterImageData
	return next, nil
}

// imageEnd keeps IEND, which must follow the image data, and drops what comes after it.
func (p *pngPlanner) imageEnd(pos, length int64) (*planBuilder, error) {
	if p.phase == beforeImageData || length != 0 {
		return nil, rejectf(ReasonMalformed, "png: IEND without image data")
	}
	end := pos + 12 + length
	p.b.keep(pos, end-pos)
	if trailer := p.size - end; trailer > 0 {
		p.b.drop(RemovedPNGTrailer, trailer)
		p.b.meta.HadTrailer = true
	}
	return p.b, nil
}

// dropped removes a chunk and notes, for the audit trail, the XMP an iTXt holds; an eXIf is
// read for the capture metadata.
func (p *pngPlanner) dropped(typ string, pos, length int64) error {
	p.b.drop(pngRemovalKind(typ), 12+length)
	switch typ {
	case "iTXt":
		p.b.meta.HadXMP = p.b.meta.HadXMP || isPNGXMP(p.r, pos, length)
	case "eXIf":
		return p.exif(pos, length)
	}
	return nil
}

// exif reads the capture metadata from the first eXIf, if it comes before the image data (as
// the specification puts it), and puts the orientation back alone in its place.
func (p *pngPlanner) exif(pos, length int64) error {
	m := &p.b.meta
	if p.exifParsed || p.phase != beforeImageData {
		m.HadEXIF = true
		return nil
	}
	p.exifParsed = true
	if length > maxEXIFBytes {
		m.HadEXIF, m.EXIFUnreadable = true, true
		return nil
	}
	block := make([]byte, length)
	if err := readFull(p.r, block, pos+8); err != nil {
		return err
	}
	// Some writers keep the JPEG APP1 identifier in front of the TIFF header.
	block = bytes.TrimPrefix(block, []byte("Exif\x00\x00"))
	if gps := readEXIF(block, m); gps > 0 {
		p.b.drop(RemovedGPS, gps)
	}
	// Browsers turn a PNG by its eXIf orientation, as they do a JPEG: keep that alone, in its
	// place before the image data, so that the original shows the way its thumbnails (made
	// from the recorded orientation) do.
	if o := m.Orientation; o != 1 {
		p.b.add(pngChunkBytes("eXIf", orientationTIFF(o)))
	}
	return nil
}

// pngChunkBytes builds a chunk: length, type, data and CRC.
func pngChunkBytes(typ string, data []byte) []byte {
	c := binary.BigEndian.AppendUint32(nil, uint32(len(data)))
	c = append(c, typ...)
	c = append(c, data...)
	return binary.BigEndian.AppendUint32(c, crc32.ChecksumIEEE(c[4:]))
}

// validPNGDepth checks the bit depth against the color type (PNG table 11.1).
func validPNGDepth(depth, colorType byte) bool {
	switch colorType {
	case 0:
		return depth == 1 || depth == 2 || depth == 4 || depth == 8 || depth == 16
	case 3:
		return depth == 1 || depth == 2 || depth == 4 || depth == 8
	case 2, 4, 6:
		return depth == 8 || depth == 16
	}
	return false
}

func isPNGXMP(r io.ReaderAt, pos, length int64) bool {
	const key = "XML:com.adobe.xmp\x00"
	if length < int64(len(key)) {
		return false
	}
	var k [len(key)]byte
	return readFull(r, k[:], pos+8) == nil && string(k[:]) == key
}

// checkPNGCRC compares the CRC of the chunk at pos (type and data) with the stored one.
func checkPNGCRC(r io.ReaderAt, pos, length int64, buf []byte) error {
	crc := uint32(0)
	for off, end := pos+4, pos+8+length; off < end; {
		n := min(int64(len(buf)), end-off)
		if err := readFull(r, buf[:n], off); err != nil {
			return err
		}
		crc = crc32.Update(crc, crc32.IEEETable, buf[:n])
		off += n
	}
	var stored [4]byte
	if err := readFull(r, stored[:], pos+8+length); err != nil {
		return err
	}
	if binary.BigEndian.Uint32(stored[:]) != crc {
		return rejectf(ReasonMalformed, "png: bad CRC in chunk at offset %d", pos)
	}
	return nil
}
