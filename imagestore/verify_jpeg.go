package imagestore

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
)

// jpeg checks a JPEG segment by segment: only allowlisted segments, in the places the
// sanitizer puts them, each scan's entropy-coded data, and the end of image after a scan.
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
