package imagestore

import (
	"bufio"
	"errors"
	"fmt"
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
