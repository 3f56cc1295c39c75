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
	b := newPlanBuilder()
	var hdr [12]byte
	if err := readFull(r, hdr[:], 0); err != nil {
		return nil, err
	}
	le := binary.LittleEndian
	end := 8 + int64(le.Uint32(hdr[4:8]))
	if end < 12 || end > size {
		return nil, rejectf(ReasonMalformed, "webp: RIFF size %d for a file of %d bytes", end-8, size)
	}
	var (
		extended          bool
		flags             byte
		canvasW, canvasH  int
		iccp, alph, image *webpChunk
		segments          int
		exifParsed        bool
		losslessAlpha     bool
		ch                [8]byte
		imageHead         [10]byte
	)
	for pos := int64(12); pos < end; {
		if pos+8 > end {
			return nil, rejectf(ReasonMalformed, "webp: chunk header at offset %d runs past the end", pos)
		}
		if err := readFull(r, ch[:], pos); err != nil {
			return nil, err
		}
		c := webpChunk{off: pos, dataLen: int64(le.Uint32(ch[4:8])), fourCC: string(ch[:4])}
		dataEnd := pos + 8 + c.dataLen
		if dataEnd > end {
			return nil, rejectf(ReasonMalformed, "webp: chunk at offset %d runs past the end", pos)
		}
		// A missing padding byte after the last chunk is a common writer bug; the output gets
		// a fresh zero padding byte anyway.
		next := min(dataEnd+c.dataLen&1, end)
		segments++
		if err := lim.checkSegments(segments); err != nil {
			return nil, err
		}
		first := pos == 12
		switch {
		case first && c.fourCC == "VP8X":
			if c.dataLen != webpVP8XLen {
				return nil, rejectf(ReasonMalformed, "webp: VP8X of %d bytes", c.dataLen)
			}
			var x [webpVP8XLen]byte
			if err := readFull(r, x[:], pos+8); err != nil {
				return nil, err
			}
			extended, flags = true, x[0]
			canvasW = int(uint32(x[4])|uint32(x[5])<<8|uint32(x[6])<<16) + 1
			canvasH = int(uint32(x[7])|uint32(x[8])<<8|uint32(x[9])<<16) + 1
			if err := lim.checkDims(canvasW, canvasH); err != nil {
				return nil, err
			}
			if err := lim.checkDensity(canvasW, canvasH, size); err != nil {
				return nil, err
			}
			if flags&webpFlagAnimation != 0 {
				return nil, reject(ReasonUnsupported, "webp: animated")
			}
		case (first || extended && image == nil) && (c.fourCC == "VP8 " || c.fourCC == "VP8L"):
			head := imageHead[:min(c.dataLen, int64(len(imageHead)))]
			if err := readFull(r, head, pos+8); err != nil {
				return nil, err
			}
			w, h, err := webpImageSize(c.fourCC, head)
			if err != nil {
				return nil, err
			}
			if err := lim.checkDims(w, h); err != nil {
				return nil, err
			}
			if err := lim.checkDensity(w, h, size); err != nil {
				return nil, err
			}
			if extended && (w != canvasW || h != canvasH) {
				return nil, rejectf(ReasonMalformed, "webp: image %dx%d on a %dx%d canvas", w, h, canvasW, canvasH)
			}
			b.meta.Width, b.meta.Height = w, h
			// VP8L's alpha_is_used hint (bit 28 of the header word), for a VP8X made below.
			losslessAlpha = c.fourCC == "VP8L" && head[4]&0x10 != 0
			image = &c
		case first:
			return nil, rejectf(ReasonMalformed, "webp: first chunk is %q", c.fourCC)
		case extended && (c.fourCC == "ANIM" || c.fourCC == "ANMF"):
			return nil, reject(ReasonUnsupported, "webp: animated")
		case extended && c.fourCC == "ICCP" && iccp == nil && image == nil:
			iccp = &c
		case extended && c.fourCC == "ALPH" && alph == nil && image == nil:
			alph = &c
		case c.fourCC == "VP8 " || c.fourCC == "VP8L":
			return nil, rejectf(ReasonMalformed, "webp: second image chunk at offset %d", pos)
		case c.fourCC == "EXIF":
			b.drop(RemovedWebPEXIF, next-pos)
			b.meta.HadEXIF = true
			if exifParsed {
				break
			}
			exifParsed = true
			if c.dataLen > maxEXIFBytes {
				b.meta.EXIFUnreadable = true
				break
			}
			block := make([]byte, c.dataLen)
			if err := readFull(r, block, pos+8); err != nil {
				return nil, err
			}
			// Some writers keep the JPEG APP1 identifier in front of the TIFF header.
			block = bytes.TrimPrefix(block, []byte("Exif\x00\x00"))
			if gps := readEXIF(block, &b.meta); gps > 0 {
				b.drop(RemovedGPS, gps)
			}
		case c.fourCC == "XMP ":
			b.drop(RemovedWebPXMP, next-pos)
			b.meta.HadXMP = true
		default:
			b.drop(RemovedWebPOther, next-pos)
		}
		pos = next
	}
	if image == nil {
		return nil, reject(ReasonMalformed, "webp: no image chunk")
	}
	if alph != nil && image.fourCC != "VP8 " {
		// Lossless images carry their own alpha; decoders ignore ALPH next to VP8L.
		b.drop(RemovedWebPOther, alph.encodedLen())
		alph = nil
	}
	if trailer := size - end; trailer > 0 {
		b.drop(RemovedWebPTrailer, trailer)
		b.meta.HadTrailer = true
	}

	var exif []byte
	if o := b.meta.Orientation; o != 1 {
		exif = webpChunkBytes("EXIF", orientationTIFF(o))
		if !extended {
			// EXIF in a simple-format file is outside the specification, and announcing it
			// needs a VP8X: make the one libwebp's muxer would (canvas = image, alpha as
			// the lossless header hints; a simple lossy image has none).
			extended, canvasW, canvasH, flags = true, b.meta.Width, b.meta.Height, 0
			if losslessAlpha {
				flags = webpFlagAlpha
			}
		}
	}

	kept := []*webpChunk{iccp, alph, image}
	riffLen := int64(4 + len(exif))
	if extended {
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
	le.PutUint32(riff[4:], uint32(riffLen))
	b.add(append(riff, "WEBP"...))
	if extended {
		var out byte
		if iccp != nil {
			out |= webpFlagICC
		}
		if exif != nil {
			out |= webpFlagEXIF
		}
		// The alpha flag is a hint about the pixels, not metadata; it passes unchanged.
		out |= flags & webpFlagAlpha
		x := append([]byte("VP8X"), webpVP8XLen, 0, 0, 0, out, 0, 0, 0)
		w, h := canvasW-1, canvasH-1
		x = append(x, byte(w), byte(w>>8), byte(w>>16), byte(h), byte(h>>8), byte(h>>16))
		b.add(x)
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
