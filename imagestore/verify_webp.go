package imagestore

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// webp checks a WebP against the only layouts the sanitizer writes, with a RIFF size that
// matches the file's.
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
