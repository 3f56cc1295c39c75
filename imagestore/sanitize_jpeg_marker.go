package imagestore

import (
	"bytes"
	"io"
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
