package imagestore

import (
	"bytes"
	"encoding/binary"
	"io"
)

// VP8X flag bits (WebP container specification).
const (
	webpFlagAnimation = 1 << 1
	webpFlagXMP       = 1 << 2
	webpFlagEXIF      = 1 << 3
	webpFlagAlpha     = 1 << 4
	webpFlagICC       = 1 << 5

	webpVP8XLen = 10
)

type webpChunk struct {
	off, dataLen int64
	fourCC       string
}

// encodedLen is the chunk's length in the output: header, data and a padding byte if odd.
func (c webpChunk) encodedLen() int64 { return 8 + c.dataLen + c.dataLen&1 }

// planWebP keeps VP8X, ICCP, ALPH and the one VP8/VP8L image chunk, drops EXIF, XMP and
// everything else, and writes a new RIFF header and VP8X with corrected sizes and flags.
// An orientation other than 1 stays, alone, in a new minimal EXIF chunk after the image
// (where the container specification puts EXIF), as JPEG and PNG keep theirs: libvips,
// ImageMagick and Pillow turn a WebP by it. Animated WebP is refused: a follow-up photo is a
// still image, and frames would each need checking.
func planWebP(r io.ReaderAt, size int64, lim Limits) (*planBuilder, error) {
	var hdr [12]byte
	if err := readFull(r, hdr[:], 0); err != nil {
		return nil, err
	}
	end := 8 + int64(binary.LittleEndian.Uint32(hdr[4:8]))
	if end < 12 || end > size {
		return nil, rejectf(ReasonMalformed, "webp: RIFF size %d for a file of %d bytes", end-8, size)
	}
	p := &webpPlanner{r: r, size: size, lim: lim, end: end, b: newPlanBuilder()}
	if err := p.readChunks(); err != nil {
		return nil, err
	}
	if p.image == nil {
		return nil, reject(ReasonMalformed, "webp: no image chunk")
	}
	if p.alph != nil && p.image.fourCC != "VP8 " {
		// Lossless images carry their own alpha; decoders ignore ALPH next to VP8L.
		p.b.drop(RemovedWebPOther, p.alph.encodedLen())
		p.alph = nil
	}
	if trailer := size - end; trailer > 0 {
		p.b.drop(RemovedWebPTrailer, trailer)
		p.b.meta.HadTrailer = true
	}
	return p.layout()
}

// webpPlanner is planWebP's state: what VP8X says and the chunks kept.
type webpPlanner struct {
	r    io.ReaderAt
	size int64
	lim  Limits
	end  int64 // where the RIFF ends
	b    *planBuilder

	extended          bool // the file has a VP8X, or the output gets one
	flags             byte // VP8X's
	canvasW, canvasH  int
	iccp, alph, image *webpChunk
	exifParsed        bool // the EXIF read for the capture metadata has been met
	losslessAlpha     bool // VP8L's alpha_is_used hint, for a VP8X made by orientationEXIF
}

// readChunks reads one chunk header after another up to the end of the RIFF and hands each
// chunk to chunk.
func (p *webpPlanner) readChunks() error {
	var ch [8]byte
	segments := 0
	for pos := int64(12); pos < p.end; {
		if pos+8 > p.end {
			return rejectf(ReasonMalformed, "webp: chunk header at offset %d runs past the end", pos)
		}
		if err := readFull(p.r, ch[:], pos); err != nil {
			return err
		}
		c := webpChunk{off: pos, dataLen: int64(binary.LittleEndian.Uint32(ch[4:8])), fourCC: string(ch[:4])}
		dataEnd := pos + 8 + c.dataLen
		if dataEnd > p.end {
			return rejectf(ReasonMalformed, "webp: chunk at offset %d runs past the end", pos)
		}
		// A missing padding byte after the last chunk is a common writer bug; the output gets
		// a fresh zero padding byte anyway.
		next := min(dataEnd+c.dataLen&1, p.end)
		segments++
		if err := p.lim.checkSegments(segments); err != nil {
			return err
		}
		if err := p.chunk(&c, next-pos); err != nil {
			return err
		}
		pos = next
	}
	return nil
}

// chunk sorts one chunk, of stored bytes in the file (padding included), into kept (VP8X,
// ICCP, ALPH and the image, each once and in their places) or dropped, refusing animation and
// a second image.
func (p *webpPlanner) chunk(c *webpChunk, stored int64) error {
	first := c.off == 12
	isImage := c.fourCC == "VP8 " || c.fourCC == "VP8L"
	switch {
	case first && c.fourCC == "VP8X":
		return p.extendedHeader(c)
	case (first || p.extended && p.image == nil) && isImage:
		return p.imageChunk(c)
	case first:
		return rejectf(ReasonMalformed, "webp: first chunk is %q", c.fourCC)
	case p.extended && (c.fourCC == "ANIM" || c.fourCC == "ANMF"):
		return reject(ReasonUnsupported, "webp: animated")
	case p.extended && c.fourCC == "ICCP" && p.iccp == nil && p.image == nil:
		p.iccp = c
	case p.extended && c.fourCC == "ALPH" && p.alph == nil && p.image == nil:
		p.alph = c
	case isImage:
		return rejectf(ReasonMalformed, "webp: second image chunk at offset %d", c.off)
	case c.fourCC == "EXIF":
		return p.exif(c, stored)
	case c.fourCC == "XMP ":
		p.b.drop(RemovedWebPXMP, stored)
		p.b.meta.HadXMP = true
	default:
		p.b.drop(RemovedWebPOther, stored)
	}
	return nil
}

// extendedHeader reads VP8X: the flags, refused when they announce animation, and the
// canvas, checked against the limits.
func (p *webpPlanner) extendedHeader(c *webpChunk) error {
	if c.dataLen != webpVP8XLen {
		return rejectf(ReasonMalformed, "webp: VP8X of %d bytes", c.dataLen)
	}
	var x [webpVP8XLen]byte
	if err := readFull(p.r, x[:], c.off+8); err != nil {
		return err
	}
	p.extended, p.flags = true, x[0]
	p.canvasW = int(uint32(x[4])|uint32(x[5])<<8|uint32(x[6])<<16) + 1
	p.canvasH = int(uint32(x[7])|uint32(x[8])<<8|uint32(x[9])<<16) + 1
	if err := p.lim.checkDims(p.canvasW, p.canvasH); err != nil {
		return err
	}
	if err := p.lim.checkDensity(p.canvasW, p.canvasH, p.size); err != nil {
		return err
	}
	if p.flags&webpFlagAnimation != 0 {
		return reject(ReasonUnsupported, "webp: animated")
	}
	return nil
}

// imageChunk keeps the VP8 or VP8L chunk, once its bitstream header gives a size within the
// limits that fills the canvas.
func (p *webpPlanner) imageChunk(c *webpChunk) error {
	var imageHead [10]byte
	head := imageHead[:min(c.dataLen, int64(len(imageHead)))]
	if err := readFull(p.r, head, c.off+8); err != nil {
		return err
	}
	w, h, err := webpImageSize(c.fourCC, head)
	if err != nil {
		return err
	}
	if err := p.lim.checkDims(w, h); err != nil {
		return err
	}
	if err := p.lim.checkDensity(w, h, p.size); err != nil {
		return err
	}
	if p.extended && (w != p.canvasW || h != p.canvasH) {
		return rejectf(ReasonMalformed, "webp: image %dx%d on a %dx%d canvas", w, h, p.canvasW, p.canvasH)
	}
	p.b.meta.Width, p.b.meta.Height = w, h
	// VP8L's alpha_is_used hint (bit 28 of the header word), for a VP8X made by orientationEXIF.
	p.losslessAlpha = c.fourCC == "VP8L" && head[4]&0x10 != 0
	p.image = c
	return nil
}

// exif drops an EXIF chunk of stored bytes, reading the first for the capture metadata.
func (p *webpPlanner) exif(c *webpChunk, stored int64) error {
	m := &p.b.meta
	p.b.drop(RemovedWebPEXIF, stored)
	m.HadEXIF = true
	if p.exifParsed {
		return nil
	}
	p.exifParsed = true
	if c.dataLen > maxEXIFBytes {
		m.EXIFUnreadable = true
		return nil
	}
	block := make([]byte, c.dataLen)
	if err := readFull(p.r, block, c.off+8); err != nil {
		return err
	}
	// Some writers keep the JPEG APP1 identifier in front of the TIFF header.
	block = bytes.TrimPrefix(block, []byte("Exif\x00\x00"))
	if gps := readEXIF(block, m); gps > 0 {
		p.b.drop(RemovedGPS, gps)
	}
	return nil
}

// layout writes the output: a new RIFF header and VP8X with corrected sizes and flags, the kept
// chunks, and the orientation EXIF if there is one.
func (p *webpPlanner) layout() (*planBuilder, error) {
	b := p.b
	exif := p.orientationEXIF()
	kept := []*webpChunk{p.iccp, p.alph, p.image}
	riffLen := int64(4 + len(exif))
	if p.extended {
		riffLen += 8 + webpVP8XLen
	}
	for _, c := range kept {
		if c != nil {
			riffLen += c.encodedLen()
		}
	}
	if riffLen > 1<<32-1 {
		return nil, reject(ReasonTooLarge, "webp: RIFF size overflow")
	}
	riff := append([]byte("RIFF"), 0, 0, 0, 0)
	binary.LittleEndian.PutUint32(riff[4:], uint32(riffLen))
	b.add(append(riff, "WEBP"...))
	if p.extended {
		b.add(p.extendedHeaderBytes(exif != nil))
	}
	for _, c := range kept {
		if c == nil {
			continue
		}
		b.keep(c.off, 8+c.dataLen)
		if c.dataLen&1 == 1 {
			b.add([]byte{0})
		}
	}
	if exif != nil {
		b.add(exif)
	}
	return b, nil
}

// orientationEXIF is the EXIF chunk that keeps an orientation other than 1, or nil.
func (p *webpPlanner) orientationEXIF() []byte {
	o := p.b.meta.Orientation
	if o == 1 {
		return nil
	}
	if !p.extended {
		// EXIF in a simple-format file is outside the specification, and announcing it needs
		// a VP8X: make the one libwebp's muxer would (canvas = image, alpha as the lossless
		// header hints; a simple lossy image has none).
		p.extended, p.canvasW, p.canvasH, p.flags = true, p.b.meta.Width, p.b.meta.Height, 0
		if p.losslessAlpha {
			p.flags = webpFlagAlpha
		}
	}
	return webpChunkBytes("EXIF", orientationTIFF(o))
}

// extendedHeaderBytes is the output's VP8X: flags for the ICC profile and the EXIF it keeps,
// the alpha flag and the canvas as they were.
func (p *webpPlanner) extendedHeaderBytes(withEXIF bool) []byte {
	var out byte
	if p.iccp != nil {
		out |= webpFlagICC
	}
	if withEXIF {
		out |= webpFlagEXIF
	}
	// The alpha flag is a hint about the pixels, not metadata; it passes unchanged.
	out |= p.flags & webpFlagAlpha
	x := append([]byte("VP8X"), webpVP8XLen, 0, 0, 0, out, 0, 0, 0)
	w, h := p.canvasW-1, p.canvasH-1
	return append(x, byte(w), byte(w>>8), byte(w>>16), byte(h), byte(h>>8), byte(h>>16))
}

// webpChunkBytes builds a RIFF chunk: FourCC, little-endian length, data and a zero padding
// byte if the length is odd.
func webpChunkBytes(fourCC string, data []byte) []byte {
	c := binary.LittleEndian.AppendUint32([]byte(fourCC), uint32(len(data)))
	c = append(c, data...)
	if len(data)&1 == 1 {
		c = append(c, 0)
	}
	return c
}

// webpImageSize reads the dimensions from the start of a VP8 (lossy key frame) or VP8L
// (lossless) bitstream.
func webpImageSize(fourCC string, head []byte) (w, h int, err error) {
	le := binary.LittleEndian
	switch fourCC {
	case "VP8 ":
		// Frame tag (3 bytes, bit 0 clear for a key frame), start code, 14-bit sizes.
		if len(head) < 10 || head[0]&1 != 0 || head[3] != 0x9d || head[4] != 0x01 || head[5] != 0x2a {
			return 0, 0, reject(ReasonMalformed, "webp: bad VP8 frame header")
		}
		return int(le.Uint16(head[6:8]) & 0x3fff), int(le.Uint16(head[8:10]) & 0x3fff), nil
	case "VP8L":
		// Signature, then 14 bits width-1, 14 bits height-1, alpha hint, 3-bit version 0.
		if len(head) < 5 || head[0] != 0x2f || head[4]>>5 != 0 {
			return 0, 0, reject(ReasonMalformed, "webp: bad VP8L header")
		}
		v := le.Uint32(head[1:5])
		return int(v&0x3fff) + 1, int(v>>14&0x3fff) + 1, nil
	}
	return 0, 0, reject(ReasonMalformed, "webp: not an image chunk")
}
