// Package imagetest builds photos for tests elsewhere in the project: plain JPEG and PNG
// images, and the metadata phones attach to them (EXIF with GPS, serial numbers and an
// embedded thumbnail, XMP, motion-photo trailers, PNG text chunks). The identifying values
// are fixed marker strings, so a test can search the stored bytes for them.
package imagetest

import (
	"bytes"
	"encoding/binary"
	"hash/crc32"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// Markers planted in the metadata: none may survive sanitizing.
const (
	SerialMarker = "SERIAL-XYZ-4711"
	OwnerMarker  = "Owner Jane Roe"
	XMPMarker    = "XMP-SECRET-LOCATION"
	TextMarker   = "PNG-TEXT-SECRET"
	// GPSLatitude is the latitude planted, as degrees, minutes, seconds.
	GPSLatDeg, GPSLatMin, GPSLatSec = 31, 13, 47
)

// Picture returns a w×h image with gradients; seed varies it.
func Picture(w, h int, seed byte) *image.RGBA {
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			img.Set(x, y, color.RGBA{byte(x*255/max(1, w-1)) ^ seed, byte(y * 255 / max(1, h-1)), seed, 255})
		}
	}
	return img
}

// JPEG encodes a w×h picture.
func JPEG(w, h int, seed byte) []byte {
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, Picture(w, h, seed), &jpeg.Options{Quality: 90}); err != nil {
		panic(err)
	}
	return buf.Bytes()
}

// PNG encodes a w×h picture.
func PNG(w, h int, seed byte) []byte {
	var buf bytes.Buffer
	if err := png.Encode(&buf, Picture(w, h, seed)); err != nil {
		panic(err)
	}
	return buf.Bytes()
}

// PhoneJPEG is a JPEG as a phone sends it: EXIF with orientation, capture time, GPS, a body
// serial number, an owner name and an embedded thumbnail, XMP, and a motion-photo trailer
// after the image.
func PhoneJPEG(w, h int, seed byte, orientation uint16) []byte {
	return PhoneJPEGTaken(w, h, seed, orientation, Taken, TakenOffset)
}

// Taken and TakenOffset are the capture time (EXIF DateTimeOriginal) and its UTC offset
// (OffsetTimeOriginal) that PhoneJPEG and EXIF write.
const (
	Taken       = "2026:05:04 10:30:00"
	TakenOffset = "+08:00"
)

// PhoneJPEGTaken is PhoneJPEG with the capture time taken ("2006:01:02 15:04:05") and its
// offset ("+08:00", or "" for a camera that records none).
func PhoneJPEGTaken(w, h int, seed byte, orientation uint16, taken, offset string) []byte {
	base := JPEG(w, h, seed)
	thumb := JPEG(16, 12, seed+1)
	app1 := segment(0xE1, append([]byte("Exif\x00\x00"), exifTaken(orientation, thumb, taken, offset)...))
	xmp := segment(0xE1, append([]byte("http://ns.adobe.com/xap/1.0/\x00"),
		[]byte(`<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:Description photoshop:City="`+XMPMarker+`"/></x:xmpmeta>`)...))
	out := append([]byte{}, base[:2]...) // SOI
	out = append(out, app1...)
	out = append(out, xmp...)
	out = append(out, base[2:]...)
	return WithTrailer(out)
}

// WithTrailer appends a fake motion-photo video after the JPEG's end.
func WithTrailer(jpegBytes []byte) []byte {
	trailer := append([]byte("\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom"), []byte("MOTION-PHOTO-AUDIO-"+SerialMarker)...)
	return append(append([]byte{}, jpegBytes...), trailer...)
}

// PNGWithText is a PNG carrying tEXt and tIME chunks, and bytes after IEND.
func PNGWithText(w, h int, seed byte) []byte {
	b := PNG(w, h, seed)
	iend := bytes.LastIndex(b, []byte("IEND")) - 4
	text := chunk("tEXt", append([]byte("Comment\x00"), TextMarker...))
	tm := chunk("tIME", []byte{0x07, 0xEA, 5, 4, 10, 30, 0})
	out := append([]byte{}, b[:iend]...)
	out = append(out, text...)
	out = append(out, tm...)
	out = append(out, b[iend:]...)
	return append(out, []byte("AFTER-IEND-"+TextMarker)...)
}

// HEIC is the start of an iPhone HEIC file: enough to be recognised, not an image.
func HEIC() []byte {
	return append([]byte("\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic"), make([]byte, 256)...)
}

func segment(marker byte, payload []byte) []byte {
	out := []byte{0xFF, marker, 0, 0}
	binary.BigEndian.PutUint16(out[2:], uint16(len(payload)+2))
	return append(out, payload...)
}

func chunk(typ string, data []byte) []byte {
	out := make([]byte, 8, 12+len(data))
	binary.BigEndian.PutUint32(out, uint32(len(data)))
	copy(out[4:], typ)
	out = append(out, data...)
	return binary.BigEndian.AppendUint32(out, crc32.ChecksumIEEE(out[4:]))
}

// EXIF builds a little-endian TIFF block: IFD0 (orientation, owner, pointers), the EXIF IFD
// (capture time with offset, body serial), the GPS IFD (latitude) and IFD1 with a thumbnail.
func EXIF(orientation uint16, thumb []byte) []byte {
	return exifTaken(orientation, thumb, Taken, TakenOffset)
}

func exifTaken(orientation uint16, thumb []byte, taken, offset string) []byte {
	le := binary.LittleEndian
	short := func(tag, v uint16) entry { d := make([]byte, 2); le.PutUint16(d, v); return entry{tag, 3, 1, d} }
	long := func(tag uint16, v uint32) entry { d := make([]byte, 4); le.PutUint32(d, v); return entry{tag, 4, 1, d} }
	ascii := func(tag uint16, s string) entry { return entry{tag, 2, uint32(len(s) + 1), append([]byte(s), 0)} }
	rationals := func(tag uint16, vs ...uint32) entry {
		d := make([]byte, 0, 8*len(vs))
		for _, v := range vs {
			d = le.AppendUint32(d, v)
			d = le.AppendUint32(d, 1)
		}
		return entry{tag, 5, uint32(len(vs)), d}
	}
	exifIFD := []entry{ascii(0x9003, taken), ascii(0x9011, offset), ascii(0xA431, SerialMarker)}
	if offset == "" {
		exifIFD = []entry{exifIFD[0], exifIFD[2]}
	}
	// Layout: header, IFD0, EXIF IFD, GPS IFD, IFD1, then out-of-line data and the thumbnail.
	ifdSize := func(n int) uint32 { return uint32(2 + 12*n + 4) }
	const hdr = 8
	ifd0Off := uint32(hdr)
	exifOff := ifd0Off + ifdSize(4)
	gpsOff := exifOff + ifdSize(len(exifIFD))
	ifd1Off := gpsOff + ifdSize(2)
	dataOff := ifd1Off + ifdSize(2)

	ifds := [][]entry{
		{short(0x0112, orientation), ascii(0x013B, OwnerMarker), long(0x8769, exifOff), long(0x8825, gpsOff)},
		exifIFD,
		{ascii(0x0001, "N"), rationals(0x0002, GPSLatDeg, GPSLatMin, GPSLatSec)},
		nil, // IFD1, filled once the thumbnail's offset is known
	}
	var data []byte
	place := func(e entry) []byte { // the value field: inline or an offset into data
		if len(e.data) <= 4 {
			v := make([]byte, 4)
			copy(v, e.data)
			return v
		}
		off := dataOff + uint32(len(data))
		data = append(data, e.data...)
		if len(data)%2 == 1 {
			data = append(data, 0)
		}
		v := make([]byte, 4)
		le.PutUint32(v, off)
		return v
	}
	var body [][]byte
	nexts := []uint32{ifd1Off, 0, 0, 0}
	for i, ifd := range ifds[:3] {
		body = append(body, writeIFD(ifd, nexts[i], place))
	}
	thumbOff := dataOff + uint32(len(data))
	data = append(data, thumb...)
	ifd1 := []entry{long(0x0201, thumbOff), long(0x0202, uint32(len(thumb)))}
	body = append(body, writeIFD(ifd1, 0, place))

	out := []byte("II*\x00")
	out = le.AppendUint32(out, ifd0Off)
	for _, b := range body {
		out = append(out, b...)
	}
	return append(out, data...)
}

// entry is one TIFF directory entry; data is stored inline when it fits in four bytes.
type entry struct {
	tag, typ uint16
	count    uint32
	data     []byte
}

func writeIFD(entries []entry, next uint32, place func(entry) []byte) []byte {
	le := binary.LittleEndian
	out := le.AppendUint16(nil, uint16(len(entries)))
	for _, e := range entries {
		out = le.AppendUint16(out, e.tag)
		out = le.AppendUint16(out, e.typ)
		out = le.AppendUint32(out, e.count)
		out = append(out, place(e)...)
	}
	return le.AppendUint32(out, next)
}

// ExiftoolFindsNoMetadata runs exiftool, the independent check, on b and fails the test for
// every tag beyond the file structure, JFIF and a bare orientation. Under `make test` (CI or
// DERMFOLLOW_REQUIRE_SERVICES set) a missing exiftool fails the test; elsewhere it skips.
func ExiftoolFindsNoMetadata(t testing.TB, b []byte) {
	t.Helper()
	path, err := exec.LookPath("exiftool")
	if err != nil {
		if os.Getenv("CI") != "" || os.Getenv("DERMFOLLOW_REQUIRE_SERVICES") != "" {
			t.Fatal("exiftool is not installed; `make test` installs it")
		}
		t.Skip("exiftool is not installed")
	}
	file := filepath.Join(t.TempDir(), "photo")
	if err := os.WriteFile(file, b, 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(path, "-a", "-G1", "-s", file).CombinedOutput()
	if err != nil {
		t.Fatalf("exiftool: %v\n%s", err, out)
	}
	for _, line := range strings.Split(string(out), "\n") {
		group := strings.Trim(strings.SplitN(line, " ", 2)[0], "[]")
		switch group {
		case "", "ExifTool", "System", "File", "JFIF", "Composite":
			continue
		case "IFD0":
			if strings.Contains(line, "Orientation") || strings.Contains(line, "Resolution") {
				continue
			}
		}
		if strings.Contains(line, "Warning") && !strings.Contains(line, "Trailer") {
			continue
		}
		t.Errorf("exiftool still finds: %s", line)
	}
}
