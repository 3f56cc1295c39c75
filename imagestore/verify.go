package imagestore

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
)

// Verify reads a whole file (size bytes) and returns its format if it holds nothing outside
// the sanitizer's allowlist and ends exactly where the format ends; otherwise an error.
// It shares no parsing code with the sanitizer on purpose, so that a bug in one is caught by
// the other; it reads r once, front to back, with a fixed-size buffer.
func Verify(r io.Reader, size int64) (Format, error) {
	v := &verifier{br: getVerifyReader(r)}
	defer putVerifyReader(v.br)
	head, _ := v.br.Peek(12)
	var (
		f   Format
		err error
	)
	switch {
	case len(head) >= 3 && head[0] == 0xFF && head[1] == 0xD8 && head[2] == 0xFF:
		f, err = FormatJPEG, v.jpeg()
	case len(head) >= 8 && string(head[:8]) == "\x89PNG\r\n\x1a\n":
		f, err = FormatPNG, v.png()
	case len(head) >= 12 && string(head[:4]) == "RIFF" && string(head[8:12]) == "WEBP":
		f, err = FormatWebP, v.webp(size)
	default:
		err = errors.New("not JPEG, PNG or WebP")
	}
	if err == nil {
		if _, perr := v.br.Peek(1); perr != io.EOF {
			err = fmt.Errorf("bytes after the end of the %s", f)
		} else if v.n != size {
			err = fmt.Errorf("%d bytes read, %d expected", v.n, size)
		}
	}
	if err != nil {
		return FormatUnknown, fmt.Errorf("imagestore: verify: at byte %d: %w", v.n, err)
	}
	return f, nil
}

type verifier struct {
	br *bufio.Reader
	n  int64 // bytes consumed
}

func (v *verifier) read(p []byte) error {
	k, err := io.ReadFull(v.br, p)
	v.n += int64(k)
	if err != nil {
		return errors.New("truncated")
	}
	return nil
}

func (v *verifier) skip(n int64) error {
	for n > 0 {
		k, err := v.br.Discard(int(min(n, 1<<30)))
		v.n += int64(k)
		n -= int64(k)
		if err != nil {
			return errors.New("truncated")
		}
	}
	return nil
}

// The only APP1 the output may hold: EXIF with a big-endian TIFF header and a single IFD with
// a single entry, Orientation (SHORT), and no next IFD. Byte 25 is the orientation.
const (
	verifyOrientationEXIF = "Exif\x00\x00" + "MM\x00\x2a\x00\x00\x00\x08" + "\x00\x01" +
		"\x01\x12\x00\x03\x00\x00\x00\x01\x00\x00\x00\x00" + "\x00\x00\x00\x00"
	verifyOrientationAt = 25
)

// isOrientationTIFF tells whether p is exactly the TIFF part of verifyOrientationEXIF with an
// orientation from 2 to 8.
func isOrientationTIFF(p []byte) bool {
	tiff := verifyOrientationEXIF[6:]
	at := verifyOrientationAt - 6
	if len(p) != len(tiff) || p[at] < 2 || p[at] > 8 {
		return false
	}
	return string(p[:at]) == tiff[:at] && string(p[at+1:]) == tiff[at+1:]
}

func (v *verifier) jpeg() error {
	var b [4]byte
	if err := v.read(b[:2]); err != nil {
		return err
	}
	var seen jpegSeen
	for ; ; seen.index++ {
		wasICC := seen.prevWasICC
		seen.prevWasICC = false
		if err := v.read(b[:2]); err != nil {
			return err
		}
		if b[0] != 0xFF {
			return errors.New("jpeg: expected a marker")
		}
		m := b[1]
		if m == 0xD9 {
			if !seen.sawScan {
				return errors.New("jpeg: no image data")
			}
			return nil
		}
		if err := v.read(b[2:4]); err != nil {
			return err
		}
		length := int64(binary.BigEndian.Uint16(b[2:4])) - 2
		if length < 0 {
			return errors.New("jpeg: bad segment length")
		}
		left, err := v.jpegSegment(&seen, m, length, wasICC)
		if err != nil {
			return err
		}
		if err := v.skip(left); err != nil {
			return err
		}
		if m == 0xDA {
			if err := v.entropy(); err != nil {
				return err
			}
		}
	}
}

// jpegSeen is what the JPEG verifier has met so far, which decides what may come next.
type jpegSeen struct {
	index                                int // of the segment after SOI
	sawFrame, sawScan, sawJFIF, sawAdobe bool
	iccCount, iccSeq                     int
	prevWasICC                           bool
}

// jpegSegment checks a segment of marker m whose payload, length bytes, comes next: it reads
// the payloads it must look at and returns how many bytes of the payload are left to skip.
// wasICC tells whether the segment before was an ICC profile chunk.
func (v *verifier) jpegSegment(seen *jpegSeen, m byte, length int64, wasICC bool) (left int64, err error) {
	switch {
	case m == 0xE0:
		return 0, v.jpegJFIF(seen, length)
	case m == 0xE1:
		return 0, v.jpegOrientationEXIF(seen, length)
	case m == 0xE2:
		return v.jpegICCChunk(seen, length, wasICC)
	case m == 0xEE:
		return 0, v.jpegAdobe(seen, length)
	case m == 0xDB || m == 0xC4 || m == 0xDD: // DQT, DHT, DRI
	case m >= 0xC0 && m <= 0xC2: // SOF0-2: Huffman-coded baseline, extended, progressive
		if seen.sawFrame {
			return 0, errors.New("jpeg: second frame header")
		}
		seen.sawFrame = true
	case m == 0xDA: // SOS
		if !seen.sawFrame {
			return 0, errors.New("jpeg: scan without frame header")
		}
		if seen.iccCount != 0 && seen.iccSeq != seen.iccCount {
			return 0, errors.New("jpeg: incomplete ICC profile")
		}
		seen.sawScan = true
	default:
		return 0, fmt.Errorf("jpeg: marker %#x not allowed", m)
	}
	return length, nil
}

// jpegJFIF reads an APP0 payload, which must be a thumbnail-free JFIF, first after SOI.
func (v *verifier) jpegJFIF(seen *jpegSeen, length int64) error {
	p := make([]byte, 14)
	if seen.index != 0 || length != 14 {
		return errors.New("jpeg: APP0 other than a leading thumbnail-free JFIF")
	}
	if err := v.read(p); err != nil {
		return err
	}
	if string(p[:5]) != "JFIF\x00" || p[12] != 0 || p[13] != 0 {
		return errors.New("jpeg: APP0 is not a thumbnail-free JFIF")
	}
	seen.sawJFIF = true
	return nil
}

// jpegOrientationEXIF reads an APP1 payload, which must be the minimal orientation EXIF.
func (v *verifier) jpegOrientationEXIF(seen *jpegSeen, length int64) error {
	// Right after SOI, or after a leading JFIF: where the sanitizer puts it.
	if !(seen.index == 0 || seen.index == 1 && seen.sawJFIF) || length != int64(len(verifyOrientationEXIF)) {
		return errors.New("jpeg: APP1 other than the minimal orientation EXIF")
	}
	p := make([]byte, length)
	if err := v.read(p); err != nil {
		return err
	}
	o := p[verifyOrientationAt]
	p[verifyOrientationAt] = 0
	if string(p) != verifyOrientationEXIF || o < 2 || o > 8 {
		return errors.New("jpeg: APP1 is not the minimal orientation EXIF")
	}
	return nil
}

// jpegICCChunk reads the header of an APP2 payload, which must be the next ICC profile chunk
// before the image data, and returns the bytes of profile data left to skip.
func (v *verifier) jpegICCChunk(seen *jpegSeen, length int64, wasICC bool) (left int64, err error) {
	p := make([]byte, 14)
	if seen.sawScan || length < 14 {
		return 0, errors.New("jpeg: APP2 other than an ICC profile chunk")
	}
	if err := v.read(p); err != nil {
		return 0, err
	}
	if string(p[:12]) != "ICC_PROFILE\x00" {
		return 0, errors.New("jpeg: APP2 other than an ICC profile chunk")
	}
	seq, count := int(p[12]), int(p[13])
	switch {
	case seen.iccCount == 0 && seq == 1 && count >= 1:
		seen.iccCount = count
	case seen.iccCount != 0 && wasICC && seq == seen.iccSeq+1 && count == seen.iccCount:
	default:
		return 0, errors.New("jpeg: ICC profile chunks out of sequence")
	}
	if seq > seen.iccCount {
		return 0, errors.New("jpeg: ICC profile chunk beyond its count")
	}
	seen.iccSeq, seen.prevWasICC = seq, true
	return length - 14, nil
}

// jpegAdobe reads an APP14 payload, which must be the one Adobe segment, before the image data.
func (v *verifier) jpegAdobe(seen *jpegSeen, length int64) error {
	p := make([]byte, 12)
	if seen.sawAdobe || seen.sawScan || length != 12 {
		return errors.New("jpeg: APP14 other than one Adobe segment")
	}
	if err := v.read(p); err != nil {
		return err
	}
	if string(p[:5]) != "Adobe" {
		return errors.New("jpeg: APP14 other than one Adobe segment")
	}
	seen.sawAdobe = true
	return nil
}

// entropy consumes entropy-coded data up to (not including) the next marker.
func (v *verifier) entropy() error {
	for {
		buf, err := v.br.Peek(v.br.Size())
		i := 0
		for {
			j := bytes.IndexByte(buf[i:], 0xFF)
			if j < 0 {
				if len(buf) == 0 {
					return errors.New("jpeg: image data without end")
				}
				if err := v.skip(int64(len(buf))); err != nil {
					return err
				}
				break
			}
			k := i + j
			if k+1 == len(buf) {
				if err != nil {
					return errors.New("jpeg: image data without end")
				}
				// Refill with this 0xFF first, to see the byte after it.
				if err := v.skip(int64(k)); err != nil {
					return err
				}
				break
			}
			c := buf[k+1]
			if c == 0x00 || (c >= 0xD0 && c <= 0xD7) {
				i = k + 2
				continue
			}
			if c == 0xFF {
				i = k + 1
				continue
			}
			return v.skip(int64(k))
		}
	}
}

func (v *verifier) png() error {
	var sig [8]byte
	if err := v.read(sig[:]); err != nil {
		return err
	}
	seen := make(map[string]bool)
	var hdr, crcBuf [8]byte
	buf := make([]byte, 32<<10)
	idat := 0 // 0 before, 1 during, 2 after the IDAT run
	for first := true; ; first = false {
		if err := v.read(hdr[:]); err != nil {
			return err
		}
		length := int64(binary.BigEndian.Uint32(hdr[:4]))
		typ := string(hdr[4:8])
		if length > 1<<31-1 {
			return errors.New("png: bad chunk length")
		}
		if first != (typ == "IHDR") {
			return errors.New("png: IHDR is not the first chunk")
		}
		if idat == 1 && typ != "IDAT" {
			idat = 2
		}
		switch typ {
		case "IHDR":
			if length != 13 {
				return errors.New("png: bad IHDR")
			}
		case "PLTE":
			if seen[typ] || idat != 0 {
				return errors.New("png: misplaced PLTE")
			}
		case "IDAT":
			if idat == 2 {
				return errors.New("png: IDAT chunks not consecutive")
			}
			idat = 1
		case "IEND":
			if length != 0 || idat == 0 {
				return errors.New("png: bad IEND")
			}
		case "iCCP", "sRGB", "gAMA", "cHRM", "cICP", "tRNS", "pHYs", "sBIT", "eXIf":
			if seen[typ] || idat != 0 {
				return fmt.Errorf("png: misplaced or repeated %s", typ)
			}
			if typ == "eXIf" && length != int64(len(verifyOrientationEXIF)-6) {
				return errors.New("png: eXIf other than one Orientation")
			}
		default:
			return fmt.Errorf("png: chunk %q not allowed", typ)
		}
		seen[typ] = true
		crc := crc32.ChecksumIEEE(hdr[4:8])
		for left := length; left > 0; {
			p := buf[:min(left, int64(len(buf)))]
			if err := v.read(p); err != nil {
				return err
			}
			if typ == "eXIf" && !isOrientationTIFF(p) {
				return errors.New("png: eXIf other than one Orientation")
			}
			crc = crc32.Update(crc, crc32.IEEETable, p)
			left -= int64(len(p))
		}
		if err := v.read(crcBuf[:4]); err != nil {
			return err
		}
		if binary.BigEndian.Uint32(crcBuf[:4]) != crc {
			return errors.New("png: bad CRC")
		}
		if typ == "IEND" {
			return nil
		}
	}
}

func (v *verifier) webp(size int64) error {
	var hdr [12]byte
	if err := v.read(hdr[:]); err != nil {
		return err
	}
	if int64(binary.LittleEndian.Uint32(hdr[4:8])) != size-8 {
		return errors.New("webp: RIFF size does not match the file")
	}
	// The chunks allowed, in order: an optional VP8X (then ICCP if flagged, ALPH before a
	// lossy image), exactly one image chunk, and after it, if and only if VP8X flags EXIF,
	// one EXIF chunk holding exactly the minimal orientation TIFF; nothing after that.
	var (
		flags    byte
		extended bool
		sawICC   bool
		sawALPH  bool
		sawImage bool
	)
	for first := true; ; first = false {
		var ch [8]byte
		if err := v.read(ch[:]); err != nil {
			return err
		}
		fourCC := string(ch[:4])
		length := int64(binary.LittleEndian.Uint32(ch[4:8]))
		switch {
		case first && fourCC == "VP8X":
			f, err := v.webpVP8X(length)
			if err != nil {
				return err
			}
			flags, extended = f, true
			continue
		case sawImage && fourCC == "EXIF" && flags&0x08 != 0:
			return v.webpOrientationEXIF(length)
		case sawImage:
			return fmt.Errorf("webp: chunk %q not allowed after the image", fourCC)
		case extended && fourCC == "ICCP" && !sawICC && !sawALPH:
			if flags&0x20 == 0 {
				return errors.New("webp: ICCP without its VP8X flag")
			}
			sawICC = true
		case extended && fourCC == "ALPH" && !sawALPH:
			sawALPH = true
		case fourCC == "VP8 " || (fourCC == "VP8L" && !sawALPH):
			if extended && flags&0x20 != 0 && !sawICC {
				return errors.New("webp: ICC flag without ICCP")
			}
		default:
			return fmt.Errorf("webp: chunk %q not allowed here", fourCC)
		}
		if err := v.skip(length); err != nil {
			return err
		}
		if err := v.webpPadding(length); err != nil {
			return err
		}
		if fourCC == "VP8 " || fourCC == "VP8L" {
			if flags&0x08 == 0 {
				return nil
			}
			sawImage = true
		}
	}
}

// webpVP8X reads a VP8X payload of length bytes and returns its flags, of which only ICC,
// alpha and EXIF (orientation) may be set.
func (v *verifier) webpVP8X(length int64) (flags byte, err error) {
	var x [10]byte
	if length != 10 {
		return 0, errors.New("webp: bad VP8X")
	}
	if err := v.read(x[:]); err != nil {
		return 0, err
	}
	// XMP and animation must be clear.
	if x[0]&^0x38 != 0 || x[1] != 0 || x[2] != 0 || x[3] != 0 {
		return 0, errors.New("webp: VP8X flags announce metadata or animation")
	}
	return x[0], nil
}

// webpOrientationEXIF reads the EXIF payload after the image, which must be the minimal
// orientation TIFF (of even length: no padding follows).
func (v *verifier) webpOrientationEXIF(length int64) error {
	if length != int64(len(verifyOrientationEXIF)-6) {
		return errors.New("webp: EXIF other than one Orientation")
	}
	p := make([]byte, length)
	if err := v.read(p); err != nil {
		return err
	}
	if !isOrientationTIFF(p) {
		return errors.New("webp: EXIF other than one Orientation")
	}
	return nil
}

// webpPadding reads the padding byte that follows a chunk of odd length, which must be zero.
func (v *verifier) webpPadding(length int64) error {
	if length&1 == 0 {
		return nil
	}
	var pad [1]byte
	if err := v.read(pad[:]); err != nil {
		return err
	}
	if pad[0] != 0 {
		return errors.New("webp: non-zero padding")
	}
	return nil
}
