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
	b := newPlanBuilder()
	b.keep(0, int64(len(pngSignature)))
	block := getScanBlock()
	defer putScanBlock(block)
	buf := *block
	seen := make(map[string]bool)
	var (
		hdr        [8]byte
		segments   int
		phase      = beforeImageData
		colorType  byte
		header     pngHeader
		exifParsed bool
	)
	for pos := int64(len(pngSignature)); ; {
		if err := readFull(r, hdr[:], pos); err != nil {
			return nil, err
		}
		length := int64(binary.BigEndian.Uint32(hdr[:4]))
		typ := string(hdr[4:8])
		if length > maxPNGChunk || !isPNGChunkType(hdr[4:8]) {
			return nil, rejectf(ReasonMalformed, "png: bad chunk header at offset %d", pos)
		}
		end := pos + 12 + length
		if end > size {
			return nil, rejectf(ReasonMalformed, "png: chunk at offset %d runs past the end", pos)
		}
		if segments == 0 && typ != "IHDR" {
			return nil, rejectf(ReasonMalformed, "png: first chunk is not IHDR")
		}
		if typ == "IDAT" {
			if phase != beforeImageData {
				return nil, rejectf(ReasonMalformed, "png: image data interrupted at offset %d", pos)
			}
			if colorType == 3 && !seen["PLTE"] {
				return nil, rejectf(ReasonMalformed, "png: palette image without PLTE")
			}
			// The whole run of IDATs at once: CRCs, and the zlib stream inflated and measured.
			next, err := checkPNGImageData(r, pos, size, header, buf)
			if err != nil {
				return nil, err
			}
			b.keep(pos, next-pos)
			phase, seen[typ], pos = afterImageData, true, next
			continue
		}
		segments++
		if err := lim.checkSegments(segments); err != nil {
			return nil, err
		}
		if err := checkPNGCRC(r, pos, length, buf); err != nil {
			return nil, err
		}
		n := end - pos
		switch {
		case typ == "IHDR":
			if seen[typ] || length != pngIHDRLen {
				return nil, rejectf(ReasonMalformed, "png: bad IHDR")
			}
			var h [pngIHDRLen]byte
			if err := readFull(r, h[:], pos+8); err != nil {
				return nil, err
			}
			w, ht := binary.BigEndian.Uint32(h[0:4]), binary.BigEndian.Uint32(h[4:8])
			if w > maxPNGChunk || ht > maxPNGChunk || !validPNGDepth(h[8], h[9]) || h[10] != 0 || h[11] != 0 || h[12] > 1 {
				return nil, rejectf(ReasonMalformed, "png: bad IHDR")
			}
			if err := lim.checkDims(int(w), int(ht)); err != nil {
				return nil, err
			}
			if err := lim.checkDensity(int(w), int(ht), size); err != nil {
				return nil, err
			}
			colorType = h[9]
			header = pngHeader{width: int64(w), height: int64(ht), depth: h[8], colorType: h[9], interlaced: h[12] == 1}
			b.meta.Width, b.meta.Height = int(w), int(ht)
			b.keep(pos, n)
		case typ == "PLTE":
			if seen[typ] || phase != beforeImageData || length == 0 || length%3 != 0 || length > 3*256 ||
				colorType == 0 || colorType == 4 {
				return nil, rejectf(ReasonMalformed, "png: bad PLTE")
			}
			b.keep(pos, n)
		case typ == "IEND":
			if phase == beforeImageData || length != 0 {
				return nil, rejectf(ReasonMalformed, "png: IEND without image data")
			}
			b.keep(pos, n)
			if trailer := size - end; trailer > 0 {
				b.drop(RemovedPNGTrailer, trailer)
				b.meta.HadTrailer = true
			}
			return b, nil
		case hdr[4]&0x20 == 0:
			// An unknown critical chunk: decoders must fail on it, and so do we.
			return nil, rejectf(ReasonMalformed, "png: unknown critical chunk at offset %d", pos)
		case pngAncillaryKept(typ) && phase == beforeImageData && !seen[typ]:
			b.keep(pos, n)
		default:
			b.drop(pngRemovalKind(typ), n)
			switch typ {
			case "iTXt":
				b.meta.HadXMP = b.meta.HadXMP || isPNGXMP(r, pos, length)
			case "eXIf":
				if exifParsed || phase != beforeImageData {
					b.meta.HadEXIF = true
					break
				}
				exifParsed = true
				if length > maxEXIFBytes {
					b.meta.HadEXIF, b.meta.EXIFUnreadable = true, true
					break
				}
				block := make([]byte, length)
				if err := readFull(r, block, pos+8); err != nil {
					return nil, err
				}
				// Some writers keep the JPEG APP1 identifier in front of the TIFF header.
				block = bytes.TrimPrefix(block, []byte("Exif\x00\x00"))
				if gps := readEXIF(block, &b.meta); gps > 0 {
					b.drop(RemovedGPS, gps)
				}
				// Browsers turn a PNG by its eXIf orientation, as they do a JPEG: keep that
				// alone, in its place before the image data, so that the original shows
				// the way its thumbnails (made from the recorded orientation) do.
				if o := b.meta.Orientation; o != 1 {
					b.add(pngChunkBytes("eXIf", orientationTIFF(o)))
				}
			}
		}
		seen[typ] = true
		pos = end
	}
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
