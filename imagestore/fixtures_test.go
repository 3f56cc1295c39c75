package imagestore

import (
	"bytes"
	"compress/zlib"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"os"
	"slices"
	"testing"

	"golang.org/x/image/webp"
)

// Distinctive values put into identifying fields; none may survive sanitizing.
const (
	secretGPS       = "GPS-SECRET-123"
	secretSerial    = "SERIAL-XYZ"
	secretLens      = "LENS-SERIAL-777"
	secretArtist    = "Jane Fakename"
	secretOwner     = "OWNER-SECRET"
	secretMaker     = "MAKERNOTE-SECRET"
	secretModel     = "MODEL-SECRET"
	secretThumb     = "THUMB-SECRET"
	secretXMP       = "XMP-SECRET-NAME"
	secretXMPExt    = "XMPEXT-SECRET"
	secretIPTC      = "IPTC-SECRET-BYLINE"
	secretComment   = "COMMENT-SECRET"
	secretSecond    = "SECOND-IMAGE-SECRET"
	secretMotion    = "MOTION-SECRET"
	secretFlashPix  = "FPXR-SECRET"
	secretVendor    = "VENDOR-SECRET"
	secretJFIFThumb = "JFTHMB"
	secretPNGText   = "PNG-AUTHOR-SECRET"
	secretPNGZText  = "PNG-ZTXT-SECRET"
	secretPNGLate   = "PNG-LATE-SECRET"
	secretTrailer   = "TRAILER-SECRET"
	secretWebPXMP   = "WEBP-XMP-SECRET"
	secretWebPOther = "WEBP-UNKNOWN-SECRET"
	secretStray     = "STRAY-SECRET"
)

// fixture is a test input with what the tests expect of it.
type fixture struct {
	name    string
	data    []byte
	secrets []string // must not appear in the output
	// for accepted fixtures
	orientation int
	takenAt     string // RFC 3339, "" when unknown
	hadGPS      bool
	unreadable  bool
	icc         []byte // the profile the output must carry intact
	keepsAll    bool   // output must equal input (already clean)
	// removed are byte counts the report must hold exactly, for the kinds listed
	removed map[RemovalKind]int64
	// for refused fixtures; detail, if set, must be part of the error (the check meant refused it)
	reason Reason
	detail string
}

// testImage is a small image with gradients and edges, so that encoders produce real data.
func testImage(w, h int) *image.NRGBA {
	img := image.NewNRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			c := color.NRGBA{uint8(x * 255 / w), uint8(y * 255 / h), uint8((x ^ y) * 8), 255}
			if x < w/4 && y < h/4 {
				c = color.NRGBA{250, 20, 20, 255} // a corner marker, to see orientation
			}
			img.SetNRGBA(x, y, c)
		}
	}
	return img
}

func encodeJPEG(tb testing.TB, img image.Image, quality int) []byte {
	tb.Helper()
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, img, &jpeg.Options{Quality: quality}); err != nil {
		tb.Fatal(err)
	}
	return buf.Bytes()
}

func readTestdata(tb testing.TB, name string) []byte {
	tb.Helper()
	b, err := os.ReadFile("testdata/" + name)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// jpegSeg is a marker segment with its length.
func jpegSeg(marker byte, payload []byte) []byte {
	n := len(payload) + 2
	return append([]byte{0xFF, marker, byte(n >> 8), byte(n)}, payload...)
}

// withSegments inserts segments right after SOI.
func withSegments(base []byte, segs ...[]byte) []byte {
	out := append([]byte{}, base[:2]...)
	for _, s := range segs {
		out = append(out, s...)
	}
	return append(out, base[2:]...)
}

func cat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

// --- TIFF / EXIF -------------------------------------------------------------------------

type tiffEntry struct {
	tag, typ uint16
	count    uint32
	value    []byte // encoded in the file's byte order
}

type tiffDir struct {
	entries            []tiffEntry
	exif, gps, interop *tiffDir
	next               *tiffDir // IFD1
	thumb              []byte   // JPEG thumbnail referenced from this IFD
}

// byteOrder is binary.LittleEndian or binary.BigEndian.
type byteOrder interface {
	binary.ByteOrder
	binary.AppendByteOrder
}

type tiffEnc struct{ o byteOrder }

func (e tiffEnc) ascii(tag uint16, s string) tiffEntry {
	v := append([]byte(s), 0)
	return tiffEntry{tag, 2, uint32(len(v)), v}
}

func (e tiffEnc) short(tag uint16, v uint16) tiffEntry {
	return tiffEntry{tag, 3, 1, e.o.AppendUint16(nil, v)}
}

func (e tiffEnc) long(tag uint16, v uint32) tiffEntry {
	return tiffEntry{tag, 4, 1, e.o.AppendUint32(nil, v)}
}

func (e tiffEnc) rationals(tag uint16, vs ...uint32) tiffEntry {
	var b []byte
	for _, v := range vs {
		b = e.o.AppendUint32(b, v)
	}
	return tiffEntry{tag, 5, uint32(len(vs) / 2), b}
}

func (e tiffEnc) undef(tag uint16, b []byte) tiffEntry {
	return tiffEntry{tag, 7, uint32(len(b)), b}
}

func (e tiffEnc) bytes(tag uint16, b ...byte) tiffEntry {
	return tiffEntry{tag, 1, uint32(len(b)), b}
}

type tiffWriter struct {
	o   byteOrder
	buf []byte
}

// buildTIFF lays out IFDs and their values; children are written before their parents so
// that every pointer is known when its IFD is written.
func buildTIFF(o byteOrder, ifd0 *tiffDir) []byte {
	w := &tiffWriter{o: o}
	if o.String() == binary.LittleEndian.String() {
		w.buf = []byte("II*\x00\x00\x00\x00\x00")
	} else {
		w.buf = []byte("MM\x00*\x00\x00\x00\x00")
	}
	off := w.writeDir(ifd0)
	o.PutUint32(w.buf[4:], off)
	return w.buf
}

func (w *tiffWriter) writeDir(d *tiffDir) uint32 {
	e := tiffEnc{w.o}
	entries := slices.Clone(d.entries)
	if d.exif != nil {
		entries = append(entries, e.long(tagExifIFD, w.writeDir(d.exif)))
	}
	if d.gps != nil {
		entries = append(entries, e.long(tagGPSIFD, w.writeDir(d.gps)))
	}
	if d.interop != nil {
		entries = append(entries, e.long(tagInteropIFD, w.writeDir(d.interop)))
	}
	var next uint32
	if d.next != nil {
		next = w.writeDir(d.next)
	}
	if d.thumb != nil {
		if len(w.buf)%2 == 1 {
			w.buf = append(w.buf, 0)
		}
		entries = append(entries, e.long(0x0201, uint32(len(w.buf))), e.long(0x0202, uint32(len(d.thumb))))
		w.buf = append(w.buf, d.thumb...)
	}
	slices.SortStableFunc(entries, func(a, b tiffEntry) int { return int(a.tag) - int(b.tag) })
	if len(w.buf)%2 == 1 {
		w.buf = append(w.buf, 0)
	}
	off := uint32(len(w.buf))
	dataOff := off + 2 + 12*uint32(len(entries)) + 4
	var ifd, data []byte
	ifd = w.o.AppendUint16(ifd, uint16(len(entries)))
	for _, en := range entries {
		ifd = w.o.AppendUint16(ifd, en.tag)
		ifd = w.o.AppendUint16(ifd, en.typ)
		ifd = w.o.AppendUint32(ifd, en.count)
		if len(en.value) <= 4 {
			v := make([]byte, 4)
			copy(v, en.value)
			ifd = append(ifd, v...)
			continue
		}
		ifd = w.o.AppendUint32(ifd, dataOff+uint32(len(data)))
		data = append(data, en.value...)
		if len(data)%2 == 1 {
			data = append(data, 0)
		}
	}
	ifd = w.o.AppendUint32(ifd, next)
	w.buf = append(w.buf, ifd...)
	w.buf = append(w.buf, data...)
	return off
}

// exifOptions selects what goes into a fixture's EXIF.
type exifOptions struct {
	order       byteOrder
	orientation uint16 // 0: no Orientation tag
	dateTime    string // DateTimeOriginal; "" for none
	offset      string // OffsetTimeOriginal; "" for none
	full        bool   // GPS, serials, owner, maker note, interop, IFD1 thumbnail
}

func exifTIFF(opt exifOptions) []byte {
	if opt.order == nil {
		opt.order = binary.BigEndian
	}
	return buildTIFF(opt.order, exifDirs(opt))
}

func exifDirs(opt exifOptions) *tiffDir {
	e := tiffEnc{opt.order}
	ifd0 := &tiffDir{}
	if opt.orientation != 0 {
		ifd0.entries = append(ifd0.entries, e.short(tagOrientation, opt.orientation))
	}
	exifIFD := &tiffDir{}
	if opt.dateTime != "" {
		exifIFD.entries = append(exifIFD.entries, e.ascii(tagDateTimeOriginal, opt.dateTime))
	}
	if opt.offset != "" {
		exifIFD.entries = append(exifIFD.entries, e.ascii(tagOffsetTimeOriginal, opt.offset))
	}
	if opt.full {
		ifd0.entries = append(ifd0.entries,
			e.ascii(0x010F, "FakeCam"), e.ascii(0x0110, secretModel),
			e.ascii(0x0132, "2031:01:01 00:00:00"), e.ascii(tagArtist, secretArtist))
		exifIFD.entries = append(exifIFD.entries,
			e.ascii(tagBodySerialNumber, secretSerial), e.ascii(tagLensSerialNumber, secretLens),
			e.ascii(tagCameraOwnerName, secretOwner),
			e.undef(tagMakerNote, []byte("Apple iOS\x00\x00\x01MM"+secretMaker+"-with-some-vendor-bytes")))
		exifIFD.interop = &tiffDir{entries: []tiffEntry{e.ascii(0x0001, "R98")}}
		ifd0.gps = &tiffDir{entries: []tiffEntry{
			e.bytes(0x0000, 2, 3, 0, 0),
			e.ascii(0x0001, "N"),
			e.rationals(0x0002, 31, 1, 14, 1, 1234, 100),
			e.ascii(0x0003, "E"),
			e.rationals(0x0004, 121, 1, 28, 1, 4321, 100),
			e.ascii(0x0012, secretGPS),
		}}
		var thumb bytes.Buffer
		if err := jpeg.Encode(&thumb, testImage(16, 12), &jpeg.Options{Quality: 50}); err != nil {
			panic(err) // in-memory encoding of a valid image does not fail
		}
		ifd0.next = &tiffDir{entries: []tiffEntry{e.short(0x0103, 6)},
			thumb: withSegments(thumb.Bytes(), jpegSeg(jpegCOM, []byte(secretThumb)))}
	}
	if len(exifIFD.entries) > 0 {
		ifd0.exif = exifIFD
	}
	return ifd0
}

func exifAPP1(tiff []byte) []byte { return jpegSeg(jpegAPP1, append([]byte("Exif\x00\x00"), tiff...)) }

// --- JPEG carriers -----------------------------------------------------------------------

// fakeICCProfile is a small well-formed profile (header and one 'cprt' text tag), long
// enough to need several chunks when split.
func fakeICCProfile() []byte {
	const size, tagAt = 600, 144
	p := make([]byte, tagAt, size)
	be := binary.BigEndian
	be.PutUint32(p[0:], size)
	copy(p[4:], "none")
	be.PutUint32(p[8:], 0x02100000)
	copy(p[12:], "mntrRGB XYZ ")
	copy(p[36:], "acsp")
	be.PutUint32(p[128:], 1) // one tag
	copy(p[132:], "cprt")
	be.PutUint32(p[136:], tagAt)
	be.PutUint32(p[140:], size-tagAt)
	p = append(p, "text\x00\x00\x00\x00"...)
	for len(p) < size-1 {
		p = append(p, "ICC-PAYLOAD-"...)
	}
	return append(p[:size-1], 0)
}

// iccSegments splits a profile into n APP2 chunks.
func iccSegments(profile []byte, n int) [][]byte {
	var segs [][]byte
	step := (len(profile) + n - 1) / n
	for i := range n {
		part := profile[i*step : min((i+1)*step, len(profile))]
		payload := append([]byte(iccID), byte(i+1), byte(n))
		segs = append(segs, jpegSeg(jpegAPP2, append(payload, part...)))
	}
	return segs
}

func jfifSegment(thumb []byte) []byte {
	p := []byte("JFIF\x00\x01\x02\x01\x00\x48\x00\x48")
	if thumb == nil {
		return jpegSeg(jpegAPP0, append(p, 0, 0))
	}
	return jpegSeg(jpegAPP0, append(append(p, byte(len(thumb)/3), 1), thumb...))
}

func xmpSegment(secret string) []byte {
	return jpegSeg(jpegAPP1, []byte(xmpID+`<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf=`+
		`"http://www.w3.org/1999/02/22-rdf-syntax-ns#"><rdf:Description xmlns:dc=`+
		`"http://purl.org/dc/elements/1.1/" dc:creator="`+secret+`"/></rdf:RDF></x:xmpmeta>`))
}

func extendedXMPSegment() []byte {
	body := []byte(`<x:xmpmeta xmlns:x="adobe:ns:meta/"><!-- ` + secretXMPExt + ` --></x:xmpmeta>`)
	p := append([]byte(xmpExtendedID), "0123456789ABCDEF0123456789ABCDEF"...)
	p = binary.BigEndian.AppendUint32(p, uint32(len(body)))
	p = binary.BigEndian.AppendUint32(p, 0)
	return jpegSeg(jpegAPP1, append(p, body...))
}

func iptcSegment() []byte {
	iptc := append([]byte{0x1C, 0x02, 0x50, 0x00, byte(len(secretIPTC))}, secretIPTC...)
	p := append([]byte(photoshopID+"8BIM"), 0x04, 0x04, 0, 0)
	p = binary.BigEndian.AppendUint32(p, uint32(len(iptc)))
	return jpegSeg(jpegAPP13, append(p, iptc...))
}

func mpfSegment() []byte {
	e := tiffEnc{binary.LittleEndian}
	entries := make([]byte, 32)
	dir := &tiffDir{entries: []tiffEntry{
		e.undef(0xB000, []byte("0100")), e.long(0xB001, 2), e.undef(0xB002, entries),
	}}
	return jpegSeg(jpegAPP2, append([]byte(mpfID), buildTIFF(binary.LittleEndian, dir)...))
}

func adobeSegment() []byte {
	return jpegSeg(jpegAPP14, []byte("Adobe\x00\x64\x00\x00\x00\x00\x01"))
}

// motionTrailer imitates a motion photo: an MP4 after the JPEG.
func motionTrailer() []byte {
	return []byte("\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom\x00\x00\x00\x10mdat" + secretMotion)
}

// --- PNG -----------------------------------------------------------------------------------

func pngChunk(typ string, data []byte) []byte {
	b := binary.BigEndian.AppendUint32(nil, uint32(len(data)))
	b = append(b, typ...)
	b = append(b, data...)
	return binary.BigEndian.AppendUint32(b, crc32.ChecksumIEEE(b[4:]))
}

type pngChunkRef struct {
	typ  string
	data []byte
}

func splitPNG(tb testing.TB, b []byte) []pngChunkRef {
	tb.Helper()
	var cs []pngChunkRef
	for pos := 8; pos < len(b); {
		n := int(binary.BigEndian.Uint32(b[pos:]))
		cs = append(cs, pngChunkRef{string(b[pos+4 : pos+8]), b[pos+8 : pos+8+n]})
		if cs[len(cs)-1].typ == "IEND" {
			break
		}
		pos += 12 + n
	}
	return cs
}

func zlibBytes(b []byte) []byte {
	var buf bytes.Buffer
	w := zlib.NewWriter(&buf)
	w.Write(b)
	w.Close()
	return buf.Bytes()
}

func encodePNG(tb testing.TB, img image.Image) []byte {
	tb.Helper()
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		tb.Fatal(err)
	}
	return buf.Bytes()
}

// pngWith rebuilds a PNG with extra chunks before the first IDAT, after the last IDAT and
// after IEND.
func pngWith(tb testing.TB, base []byte, beforeIDAT, afterIDAT [][]byte, trailer []byte) []byte {
	out := []byte(pngSignature)
	idatDone := false
	for _, c := range splitPNG(tb, base) {
		if c.typ == "IDAT" && !idatDone {
			for _, x := range beforeIDAT {
				out = append(out, x...)
			}
		}
		if c.typ == "IEND" {
			for _, x := range afterIDAT {
				out = append(out, x...)
			}
		}
		if c.typ == "IDAT" {
			idatDone = true
		}
		out = append(out, pngChunk(c.typ, c.data)...)
	}
	return append(out, trailer...)
}

// --- WebP ----------------------------------------------------------------------------------

func riffChunk(fourCC string, data []byte) []byte {
	b := append([]byte(fourCC), 0, 0, 0, 0)
	binary.LittleEndian.PutUint32(b[4:], uint32(len(data)))
	b = append(b, data...)
	if len(data)%2 == 1 {
		b = append(b, 0)
	}
	return b
}

type riffRef struct {
	fourCC string
	data   []byte
}

func splitWebP(b []byte) []riffRef {
	var cs []riffRef
	end := 8 + int(binary.LittleEndian.Uint32(b[4:8]))
	for pos := 12; pos+8 <= end; {
		n := int(binary.LittleEndian.Uint32(b[pos+4:]))
		cs = append(cs, riffRef{string(b[pos : pos+4]), b[pos+8 : pos+8+n]})
		pos += 8 + n + n%2
	}
	return cs
}

func buildWebP(chunks ...[]byte) []byte {
	body := cat(chunks...)
	b := append([]byte("RIFF"), 0, 0, 0, 0)
	binary.LittleEndian.PutUint32(b[4:], uint32(4+len(body)))
	b = append(b, "WEBP"...)
	return append(b, body...)
}

func vp8xChunk(flags byte, w, h int) []byte {
	w, h = w-1, h-1
	return riffChunk("VP8X", []byte{flags, 0, 0, 0,
		byte(w), byte(w >> 8), byte(w >> 16), byte(h), byte(h >> 8), byte(h >> 16)})
}

// --- the catalogue ---------------------------------------------------------------------------

// jpegEverything is a JPEG carrying every kind of metadata the sanitizer must remove.
func jpegEverything(tb testing.TB, orientation uint16) []byte {
	base := encodeJPEG(tb, testImage(64, 48), 90)
	tiff := exifTIFF(exifOptions{orientation: orientation, dateTime: "2024:05:06 07:08:09",
		offset: "+08:00", full: true})
	segs := [][]byte{
		jfifSegment([]byte(secretJFIFThumb)),
		exifAPP1(tiff),
		xmpSegment(secretXMP),
		extendedXMPSegment(),
	}
	segs = append(segs, iccSegments(fakeICCProfile(), 3)...)
	segs = append(segs,
		mpfSegment(),
		jpegSeg(jpegAPP2, []byte(flashPixID+secretFlashPix)),
		iptcSegment(),
		adobeSegment(),
		jpegSeg(jpegCOM, []byte(secretComment)),
		jpegSeg(0xE5, []byte("HTC\x00"+secretVendor)),
		jpegSeg(jpegAPP1, []byte("http://ns.example.com/vendor/\x00"+secretVendor)),
	)
	second := withSegments(encodeJPEG(tb, testImage(32, 24), 60), jpegSeg(jpegCOM, []byte(secretSecond)))
	return cat(withSegments(base, segs...), second, motionTrailer())
}

func everythingSecrets() []string {
	return []string{secretGPS, secretSerial, secretLens, secretArtist, secretOwner, secretMaker,
		secretModel, secretThumb, secretXMP, secretXMPExt, secretIPTC, secretComment, secretSecond,
		secretMotion, secretFlashPix, secretVendor, secretJFIFThumb, "FakeCam", "2024:05:06",
		"ftypmp42"}
}

// acceptedFixtures are inputs the sanitizer must accept, with expectations.
func acceptedFixtures(tb testing.TB) []fixture {
	tb.Helper()
	var fs []fixture
	fs = append(fs, fixture{
		name: "jpeg/everything", data: jpegEverything(tb, 6), secrets: everythingSecrets(),
		orientation: 6, takenAt: "2024-05-06T07:08:09+08:00", hadGPS: true, icc: fakeICCProfile(),
	})
	for o := uint16(1); o <= 8; o++ {
		order := byteOrder(binary.BigEndian)
		if o%2 == 1 {
			order = binary.LittleEndian
		}
		tiff := exifTIFF(exifOptions{order: order, orientation: o, dateTime: "2023:12:31 23:59:58"})
		fs = append(fs, fixture{
			name:        "jpeg/orientation-" + string(rune('0'+o)),
			data:        withSegments(encodeJPEG(tb, testImage(40, 30), 80), exifAPP1(tiff)),
			secrets:     []string{"2023:12:31"},
			orientation: int(o), takenAt: "2023-12-31T23:59:58Z",
		})
	}
	// ICC chunks out of order in the file: the output carries them in sequence order.
	icc := iccSegments(fakeICCProfile(), 3)
	fs = append(fs, fixture{
		name: "jpeg/icc-reordered", data: withSegments(encodeJPEG(tb, testImage(24, 24), 80), icc[2], icc[0], icc[1]),
		orientation: 1, icc: fakeICCProfile(),
	})
	// Broken EXIF never refuses the photo.
	cycTIFF := exifTIFF(exifOptions{orientation: 6, dateTime: "2022:01:02 03:04:05", full: true})
	patchNextOfIFD1(tb, cycTIFF, binary.BigEndian.Uint32(cycTIFF[4:])) // IFD1 -> IFD0
	fs = append(fs, fixture{
		name: "jpeg/exif-ifd-cycle", data: withSegments(encodeJPEG(tb, testImage(24, 16), 80), exifAPP1(cycTIFF)),
		secrets: []string{secretGPS, secretSerial}, orientation: 1, unreadable: true,
	})
	self := exifDirs(exifOptions{order: binary.LittleEndian, orientation: 3, dateTime: "2022:01:02 03:04:05"})
	selfTIFF := buildTIFF(binary.LittleEndian, self)
	patchExifPointer(tb, selfTIFF, binary.LittleEndian.Uint32(selfTIFF[4:]))
	fs = append(fs, fixture{
		name: "jpeg/exif-pointer-to-ifd0", data: withSegments(encodeJPEG(tb, testImage(24, 16), 80), exifAPP1(selfTIFF)),
		orientation: 1, unreadable: true,
	})
	fs = append(fs, fixture{
		name: "jpeg/exif-count-overflow", data: withSegments(encodeJPEG(tb, testImage(24, 16), 80), exifAPP1(countOverflowTIFF())),
		orientation: 1, unreadable: true,
	})
	fs = append(fs, fixture{
		name: "jpeg/exif-garbage", data: withSegments(encodeJPEG(tb, testImage(24, 16), 80),
			jpegSeg(jpegAPP1, []byte("Exif\x00\x00MM\x00*\xff\xff\xff\xf0garbage"))),
		orientation: 1, unreadable: true,
	})
	// Two Adobe segments that disagree about the colour transform: decoders use the last.
	fs = append(fs, fixture{
		name: "jpeg/two-adobe", data: withSegments(encodeJPEG(tb, testImage(32, 24), 90),
			jpegSeg(jpegAPP14, []byte("Adobe\x00\x64\x00\x00\x00\x00\x00")), adobeSegment()),
		orientation: 1, removed: map[RemovalKind]int64{RemovedAppOther: 16},
	})
	// An incomplete ICC profile is dropped, as viewers would ignore it.
	fs = append(fs, fixture{
		name: "jpeg/icc-incomplete", data: withSegments(encodeJPEG(tb, testImage(24, 16), 80), icc[0], icc[2]),
		orientation: 1,
	})
	for _, name := range []string{"video-001.progressive.jpeg", "video-001.restart2.jpeg",
		"video-001.cmyk.jpeg", "video-005.gray.q50.progressive.jpeg"} {
		base := readTestdata(tb, name)
		fs = append(fs, fixture{name: "jpeg/" + name, data: base, orientation: 1, keepsAll: true})
		withMeta := cat(withSegments(base, jpegSeg(jpegCOM, []byte(secretComment)), xmpSegment(secretXMP)),
			[]byte(secretTrailer))
		fs = append(fs, fixture{name: "jpeg/" + name + "+meta", data: withMeta, orientation: 1,
			secrets: []string{secretComment, secretXMP, secretTrailer}})
	}
	// A scan with markers between progressive scans: COM between scans goes too.
	prog := readTestdata(tb, "video-001.progressive.jpeg")
	if i := bytes.LastIndex(prog, []byte{0xFF, jpegSOS}); i > 0 {
		between := cat(prog[:i], jpegSeg(jpegCOM, []byte(secretComment)), prog[i:])
		fs = append(fs, fixture{name: "jpeg/com-between-scans", data: between, orientation: 1,
			secrets: []string{secretComment}})
	}

	fs = append(fs, strayFixtures(tb)...)
	fs = append(fs, pngFixtures(tb)...)
	fs = append(fs, webpFixtures(tb)...)
	return fs
}

// strayBytes is n bytes that hold no marker, in the shape cameras leave them: text, then
// counting bytes (never 0xFF).
func strayBytes(n int) []byte {
	b := []byte(secretStray)
	for i := len(b); i < n; i++ {
		b = append(b, byte(i%0xFF))
	}
	return b[:n]
}

// insertAfterSegment returns b with extra right after its first marker segment of type
// marker (before the first scan).
func insertAfterSegment(tb testing.TB, b []byte, marker byte, extra []byte) []byte {
	tb.Helper()
	for pos := 2; pos+4 <= len(b) && b[pos+1] != jpegSOS; {
		end := pos + 2 + int(binary.BigEndian.Uint16(b[pos+2:]))
		if b[pos+1] == marker {
			return cat(b[:end], extra, b[end:])
		}
		pos = end
	}
	tb.Fatalf("no segment %#x", marker)
	return nil
}

// strayBase is the phone-like JPEG the stray fixtures put bytes into: JFIF, EXIF (orientation
// 6, GPS, serials, a thumbnail), an ICC profile in two chunks, then Go's DQT, SOF0, DHT, SOS.
func strayBase(tb testing.TB) []byte {
	tiff := exifTIFF(exifOptions{orientation: 6, dateTime: "2019:03:04 05:06:07", full: true})
	segs := append([][]byte{jfifSegment(nil), exifAPP1(tiff)}, iccSegments(fakeICCProfile(), 2)...)
	return withSegments(encodeJPEG(tb, testImage(48, 32), 85), segs...)
}

// strayFixtures are JPEGs with bytes between segments that belong to none: every
// decoder skips them, so the sanitizer drops them, reports them, and accepts the photo.
func strayFixtures(tb testing.TB) []fixture {
	tb.Helper()
	base := strayBase(tb)
	secrets := []string{secretGPS, secretSerial, secretArtist, secretThumb, "2019:03:04"}
	withStray := func(name string, data []byte, n int64, extra ...string) fixture {
		return fixture{name: name, data: data, secrets: append(slices.Clone(secrets), extra...),
			orientation: 6, takenAt: "2019-03-04T05:06:07Z", hadGPS: true, icc: fakeICCProfile(),
			removed: map[RemovalKind]int64{RemovedStrayBytes: n}}
	}
	var fs []fixture
	for _, at := range []struct {
		name   string
		marker byte
	}{{"app0", jpegAPP0}, {"app1", jpegAPP1}, {"app2", jpegAPP2}, {"dqt", jpegDQT}} {
		for _, n := range []int{1, 2, 14, 200} {
			var extra []string
			if n >= len(secretStray) {
				extra = []string{secretStray}
			}
			fs = append(fs, withStray(fmt.Sprintf("jpeg/stray-%d-after-%s", n, at.name),
				insertAfterSegment(tb, base, at.marker, strayBytes(n)), int64(n), extra...))
		}
	}
	// Zero padding after EXIF, as some phones write; a stuffed zero and a restart marker out
	// of place (image/jpeg and libjpeg skip both); a long run of fill bytes before a marker.
	fs = append(fs,
		withStray("jpeg/stray-zeros-after-app1", insertAfterSegment(tb, base, jpegAPP1, make([]byte, 200)), 200),
		withStray("jpeg/stray-stuffed-zero-and-restart", insertAfterSegment(tb, base, jpegDQT, []byte{0xFF, 0, 0xFF, 0xD3, 7}), 5),
		withStray("jpeg/fill-run", insertAfterSegment(tb, base, jpegDQT, bytes.Repeat([]byte{0xFF}, 100)), 100),
		withStray("jpeg/stray-everywhere", insertAfterSegment(tb, insertAfterSegment(tb, base, jpegDHT, strayBytes(40)),
			jpegAPP0, strayBytes(3)), 43, secretStray),
	)
	return fs
}

func pngFixtures(tb testing.TB) []fixture {
	base := encodePNG(tb, withAlpha(testImage(32, 24)))
	profile := fakeICCProfile()
	exifBlock := exifTIFF(exifOptions{orientation: 8, dateTime: "2021:07:08 09:10:11", full: true})
	before := [][]byte{
		pngChunk("iCCP", append([]byte("Fake ICC\x00\x00"), zlibBytes(profile)...)),
		pngChunk("gAMA", []byte{0, 0, 0xB1, 0x8F}),
		pngChunk("pHYs", []byte{0, 0, 0x0B, 0x13, 0, 0, 0x0B, 0x13, 1}),
		pngChunk("tEXt", []byte("Author\x00"+secretPNGText)),
		pngChunk("zTXt", append([]byte("Comment\x00\x00"), zlibBytes([]byte(secretPNGZText))...)),
		pngChunk("iTXt", []byte("XML:com.adobe.xmp\x00\x00\x00\x00\x00<x:xmpmeta>"+secretXMP+"</x:xmpmeta>")),
		pngChunk("eXIf", exifBlock),
		pngChunk("tIME", []byte{0x07, 0xE8, 5, 6, 7, 8, 9}),
		pngChunk("prVt", []byte(secretVendor)),
	}
	after := [][]byte{pngChunk("tEXt", []byte("Comment\x00"+secretPNGLate)), pngChunk("pHYs", make([]byte, 9))}
	fs := []fixture{{
		name: "png/everything", data: pngWith(tb, base, before, after, []byte(secretTrailer)),
		secrets: []string{secretPNGText, secretPNGLate, secretXMP, secretGPS, secretSerial, secretVendor,
			secretTrailer, secretArtist, secretThumb, "2021:07:08"},
		orientation: 8, takenAt: "2021-07-08T09:10:11Z", hadGPS: true,
	}, {
		name: "png/clean", data: base, orientation: 1, keepsAll: true,
	}}
	// APNG: the default image stays, the animation goes.
	actl := pngChunk("acTL", []byte{0, 0, 0, 2, 0, 0, 0, 0})
	fctl := pngChunk("fcTL", make([]byte, 26))
	fdat := pngChunk("fdAT", append([]byte{0, 0, 0, 2}, "FDAT-FRAME-SECRET"...))
	fs = append(fs, fixture{
		name: "png/apng", data: pngWith(tb, base, [][]byte{actl, fctl}, [][]byte{fdat}, nil),
		secrets: []string{"FDAT-FRAME-SECRET"}, orientation: 1,
	})
	pal := image.NewPaletted(image.Rect(0, 0, 16, 8), color.Palette{color.Black, color.White,
		color.NRGBA{200, 0, 0, 128}})
	for i := range pal.Pix {
		pal.Pix[i] = uint8(i % 3)
	}
	fs = append(fs, fixture{name: "png/paletted", data: pngWith(tb, encodePNG(tb, pal),
		[][]byte{pngChunk("tEXt", []byte("Title\x00"+secretPNGText))}, nil, nil),
		secrets: []string{secretPNGText}, orientation: 1})
	// Image data of exactly the declared size in less usual shapes: interlaced (with empty
	// passes for the small ones), sub-byte samples, 16-bit samples, the zlib stream cut into
	// one-byte IDATs, and empty IDATs after it.
	for _, tc := range []struct {
		name             string
		w, h             int
		depth, colorType byte
		interlaced       bool
		idatLen          int
	}{
		{"interlaced-rgb-9x7", 9, 7, 8, 2, true, 8192},
		{"interlaced-1x1", 1, 1, 8, 6, true, 8192},
		{"interlaced-gray1-13x3", 13, 3, 1, 0, true, 8192},
		{"gray2-31x5", 31, 5, 2, 0, false, 8192},
		{"rgba16-17x9", 17, 9, 16, 6, false, 8192},
		{"one-byte-idats", 12, 10, 8, 2, false, 1},
	} {
		var interlace byte
		if tc.interlaced {
			interlace = 1
		}
		raw := rawScanlines(tc.w, tc.h, tc.depth, tc.colorType, tc.interlaced)
		fs = append(fs, fixture{name: "png/" + tc.name, orientation: 1, keepsAll: true,
			data: rawPNG(tc.w, tc.h, tc.depth, tc.colorType, interlace, raw, tc.idatLen)})
	}
	trailingEmpty := rawPNG(8, 8, 8, 0, 0, rawScanlines(8, 8, 8, 0, false), 8192)
	iend := len(trailingEmpty) - 12
	trailingEmpty = cat(trailingEmpty[:iend], pngChunk("IDAT", nil), pngChunk("IDAT", nil), trailingEmpty[iend:])
	fs = append(fs, fixture{name: "png/empty-idats-after-the-stream", data: trailingEmpty, orientation: 1, keepsAll: true})
	return fs
}

// rawPNG builds a PNG from its IHDR fields and raw (filtered, uncompressed) image data,
// compressed into one zlib stream and cut into IDATs of at most idatLen bytes.
func rawPNG(w, h int, depth, colorType, interlace byte, raw []byte, idatLen int) []byte {
	ihdr := binary.BigEndian.AppendUint32(nil, uint32(w))
	ihdr = binary.BigEndian.AppendUint32(ihdr, uint32(h))
	ihdr = append(ihdr, depth, colorType, 0, 0, interlace)
	return idatPNG(ihdr, zlibBytes(raw), idatLen)
}

// idatPNG builds a PNG from an IHDR and the bytes the IDATs carry.
func idatPNG(ihdr, data []byte, idatLen int) []byte {
	out := cat([]byte(pngSignature), pngChunk("IHDR", ihdr))
	for len(data) > 0 {
		n := min(idatLen, len(data))
		out, data = append(out, pngChunk("IDAT", data[:n])...), data[n:]
	}
	return append(out, pngChunk("IEND", nil)...)
}

// rawScanlines is image data of the right shape: every row a filter type byte (0, 1 and 2
// in turn) and pseudo-random samples, pass by pass for an interlaced image.
func rawScanlines(w, h int, depth, colorType byte, interlaced bool) []byte {
	hd := pngHeader{width: int64(w), height: int64(h), depth: depth, colorType: colorType, interlaced: interlaced}
	var raw []byte
	seed := uint32(7)
	for _, p := range hd.passes() {
		for r := range p.rows {
			raw = append(raw, byte(r%3))
			for range p.rowLen - 1 {
				seed = seed*1103515245 + 12345
				raw = append(raw, byte(seed>>16))
			}
		}
	}
	return raw
}

// withIDATData replaces a PNG's image data by data, in one IDAT.
func withIDATData(tb testing.TB, b, data []byte) []byte {
	tb.Helper()
	out := []byte(pngSignature)
	done := false
	for _, c := range splitPNG(tb, b) {
		switch {
		case c.typ != "IDAT":
			out = append(out, pngChunk(c.typ, c.data)...)
		case !done:
			out, done = append(out, pngChunk("IDAT", data)...), true
		}
	}
	return out
}

func withAlpha(img *image.NRGBA) *image.NRGBA {
	for i := 3; i < len(img.Pix); i += 4 {
		img.Pix[i] = uint8(128 + i%128)
	}
	return img
}

func webpFixtures(tb testing.TB) []fixture {
	var fs []fixture
	exifBlock := exifTIFF(exifOptions{order: binary.LittleEndian, orientation: 3,
		dateTime: "2020:02:29 12:00:00", offset: "-05:00", full: true})
	xmp := []byte(`<x:xmpmeta>` + secretWebPXMP + `</x:xmpmeta>!`) // odd length: padding

	lossless := readTestdata(tb, "gopher-doc.with-alpha.lossless.webp")
	cs := splitWebP(lossless)
	var icc []byte
	var chunks [][]byte
	for _, c := range cs {
		if c.fourCC == "ICCP" {
			icc = c.data
		}
		if c.fourCC == "VP8X" {
			c.data = append([]byte{c.data[0] | webpFlagEXIF | webpFlagXMP}, c.data[1:]...)
		}
		chunks = append(chunks, riffChunk(c.fourCC, c.data))
	}
	chunks = append(chunks, riffChunk("EXIF", exifBlock), riffChunk("XMP ", xmp),
		riffChunk("ZZZZ", []byte(secretWebPOther)))
	fs = append(fs, fixture{
		name: "webp/lossless-icc-exif-xmp", data: buildWebP(chunks...),
		secrets:     []string{secretGPS, secretSerial, secretWebPXMP, secretWebPOther, secretArtist, "2020:02:29"},
		orientation: 3, takenAt: "2020-02-29T12:00:00-05:00", hadGPS: true, icc: icc,
	})

	lossy := readTestdata(tb, "blue-purple-pink.lossy.webp")
	vp8 := splitWebP(lossy)[0]
	// Some writers keep the "Exif\0\0" prefix in the WebP EXIF chunk.
	fs = append(fs, fixture{
		name: "webp/lossy-exif", data: buildWebP(vp8xChunk(webpFlagEXIF, 150, 100), riffChunk("VP8 ", vp8.data),
			riffChunk("EXIF", append([]byte("Exif\x00\x00"), exifBlock...))),
		secrets:     []string{secretGPS, secretSerial},
		orientation: 3, takenAt: "2020-02-29T12:00:00-05:00", hadGPS: true,
	})
	fs = append(fs, fixture{name: "webp/lossy-simple", data: lossy, orientation: 1, keepsAll: true})

	rose := readTestdata(tb, "yellow_rose.lossy-with-alpha.webp")
	rc := splitWebP(rose)
	roseChunks := [][]byte{riffChunk("VP8X", append([]byte{rc[0].data[0] | webpFlagXMP}, rc[0].data[1:]...))}
	for _, c := range rc[1:] {
		roseChunks = append(roseChunks, riffChunk(c.fourCC, c.data))
	}
	roseChunks = append(roseChunks, riffChunk("XMP ", xmp))
	fs = append(fs, fixture{
		name: "webp/alpha-xmp-trailer", data: append(buildWebP(roseChunks...), secretTrailer...),
		secrets: []string{secretWebPXMP, secretTrailer}, orientation: 1,
	})
	fs = append(fs, fixture{name: "webp/lossless-simple", data: readTestdata(tb, "gopher-doc.1bpp.lossless.webp"),
		orientation: 1, keepsAll: true})
	return append(fs, webpOrientationFixtures(tb)...)
}

// webpOrientationFixtures are WebP photos as a phone or cwebp -metadata all writes them (VP8X,
// the image, then EXIF and XMP), lossy, lossless and lossy with alpha, in each orientation:
// the output keeps the orientation alone. Odd orientations put the EXIF before
// the image, which some writers do; two more carry EXIF in a simple-format file, outside
// the specification, which the sanitizer turns into an extended one.
func webpOrientationFixtures(tb testing.TB) []fixture {
	tb.Helper()
	type base struct {
		name  string
		image []riffRef // ALPH (if any) and the image chunk
		w, h  int
		alpha bool
	}
	var bases []base
	for _, b := range []struct{ name, file string }{
		{"lossy", "blue-purple-pink.lossy.webp"},
		{"lossless", "gopher-doc.1bpp.lossless.webp"},
		{"alpha", "yellow_rose.lossy-with-alpha.webp"},
	} {
		data := readTestdata(tb, b.file)
		cfg, err := webp.DecodeConfig(bytes.NewReader(data))
		if err != nil {
			tb.Fatal(err)
		}
		x := base{name: b.name, w: cfg.Width, h: cfg.Height}
		for _, c := range splitWebP(data) {
			switch c.fourCC {
			case "ALPH", "VP8 ":
				x.image = append(x.image, c)
				x.alpha = x.alpha || c.fourCC == "ALPH"
			case "VP8L":
				x.image = append(x.image, c)
				x.alpha = c.data[4]&0x10 != 0
			}
		}
		bases = append(bases, x)
	}
	xmp := []byte(`<x:xmpmeta>` + secretWebPXMP + `</x:xmpmeta>`)
	var fs []fixture
	for _, b := range bases {
		for o := uint16(1); o <= 8; o++ {
			order := byteOrder(binary.BigEndian)
			if o%2 == 1 {
				order = binary.LittleEndian
			}
			exif := riffChunk("EXIF", exifTIFF(exifOptions{order: order, orientation: o,
				dateTime: "2018:01:02 03:04:05", full: true}))
			flags := byte(webpFlagEXIF | webpFlagXMP)
			if b.alpha {
				flags |= webpFlagAlpha
			}
			chunks := [][]byte{vp8xChunk(flags, b.w, b.h)}
			if o%2 == 1 {
				chunks = append(chunks, exif)
			}
			for _, c := range b.image {
				chunks = append(chunks, riffChunk(c.fourCC, c.data))
			}
			if o%2 == 0 {
				chunks = append(chunks, exif)
			}
			chunks = append(chunks, riffChunk("XMP ", xmp))
			fs = append(fs, fixture{
				name: fmt.Sprintf("webp/%s-orientation-%d", b.name, o), data: buildWebP(chunks...),
				secrets:     []string{secretGPS, secretSerial, secretArtist, secretWebPXMP, "2018:01:02"},
				orientation: int(o), takenAt: "2018-01-02T03:04:05Z", hadGPS: true,
			})
		}
		if b.name == "alpha" {
			continue // a simple-format file has no ALPH
		}
		exif := riffChunk("EXIF", exifTIFF(exifOptions{orientation: 6, full: true}))
		fs = append(fs, fixture{
			name: "webp/" + b.name + "-simple-with-exif", data: buildWebP(riffChunk(b.image[0].fourCC, b.image[0].data), exif),
			secrets: []string{secretGPS, secretSerial}, orientation: 6, hadGPS: true,
		})
	}
	return fs
}

// patchNextOfIFD1 makes IFD1's next-IFD pointer point at off (a cycle when off is IFD0).
func patchNextOfIFD1(tb testing.TB, tiff []byte, off uint32) {
	tb.Helper()
	o := binary.BigEndian
	ifd0 := o.Uint32(tiff[4:])
	n := uint32(o.Uint16(tiff[ifd0:]))
	ifd1 := o.Uint32(tiff[ifd0+2+12*n:])
	m := uint32(o.Uint16(tiff[ifd1:]))
	o.PutUint32(tiff[ifd1+2+12*m:], off)
}

// patchExifPointer points IFD0's Exif IFD pointer at off.
func patchExifPointer(tb testing.TB, tiff []byte, off uint32) {
	tb.Helper()
	o := binary.LittleEndian
	ifd0 := o.Uint32(tiff[4:])
	n := uint32(o.Uint16(tiff[ifd0:]))
	for i := range n {
		e := ifd0 + 2 + 12*i
		if o.Uint16(tiff[e:]) == tagExifIFD {
			o.PutUint32(tiff[e+8:], off)
			return
		}
	}
	tb.Fatal("no Exif pointer")
}

// countOverflowTIFF has a RATIONAL tag whose count times 8 wraps around in 32 bits: goexif
// would read 8 bytes and then allocate 0x20000001 values.
func countOverflowTIFF() []byte {
	o := binary.BigEndian
	b := []byte("MM\x00*\x00\x00\x00\x08")
	b = o.AppendUint16(b, 2)
	b = append(b, 0x01, 0x12, 0, 3, 0, 0, 0, 1, 0, 6, 0, 0)
	b = append(b, 0x01, 0x1A, 0, 5, 0x20, 0, 0, 1, 0, 0, 0, 0x26)
	b = o.AppendUint32(b, 0)
	return append(b, make([]byte, 16)...)
}

// withFrameSize returns a copy of a JPEG whose frame header claims w x h.
func withFrameSize(tb testing.TB, b []byte, w, h uint16) []byte {
	tb.Helper()
	b = bytes.Clone(b)
	for pos := 2; pos+4 <= len(b); {
		if m := b[pos+1]; m >= jpegSOF0 && m <= jpegSOF2 {
			binary.BigEndian.PutUint16(b[pos+5:], h)
			binary.BigEndian.PutUint16(b[pos+7:], w)
			return b
		}
		pos += 2 + int(binary.BigEndian.Uint16(b[pos+2:]))
	}
	tb.Fatal("no frame header")
	return nil
}

// refusedFixtures are inputs the sanitizer must refuse, with the reason.
func refusedFixtures(tb testing.TB) []fixture {
	tb.Helper()
	full := jpegEverything(tb, 6)
	base := encodeJPEG(tb, testImage(40, 30), 80)
	sof := bytes.Index(base, []byte{0xFF, jpegSOF0})
	huge := bytes.Clone(base)
	binary.BigEndian.PutUint16(huge[sof+5:], 60000)
	binary.BigEndian.PutUint16(huge[sof+7:], 60000)
	pngBase := encodePNG(tb, testImage(8, 8))
	pngHuge := bytes.Clone(pngBase)
	binary.BigEndian.PutUint32(pngHuge[16:], 60000)
	binary.BigEndian.PutUint32(pngHuge[20:], 60000)
	copy(pngHuge[29:], pngChunk("IHDR", pngHuge[16:29])[21:])
	badCRC := bytes.Clone(pngBase)
	badCRC[len(badCRC)-20] ^= 0x55 // inside the last IDAT
	// Broken image data with good chunk CRCs: the sanitizer must inflate
	// the zlib stream to tell.
	stream := pngChunkData(tb, pngBase, "IDAT")
	zlibCorrupt := withIDATData(tb, pngBase, patched(stream, len(stream)/2, stream[len(stream)/2]^0x5A))
	pngRaw := rawScanlines(8, 8, 8, 2, false)
	png16 := encodePNG(tb, image.NewNRGBA64(image.Rect(0, 0, 300, 200)))
	stream16 := pngChunkData(tb, png16, "IDAT")
	end16 := slices.Clone(stream16)
	for i := len(end16) - 12; i < len(end16)-4; i++ {
		end16[i] ^= 0xA5
	}
	png16Corrupt := withIDATData(tb, png16, end16)
	badLaterCRC := rawPNG(12, 10, 8, 2, 0, rawScanlines(12, 10, 8, 2, false), 40)
	badLaterCRC[len(badLaterCRC)-12-1] ^= 1 // the CRC of the last IDAT, before IEND
	lossless := readTestdata(tb, "gopher-doc.1bpp.lossless.webp")
	vp8l := splitWebP(lossless)[0]
	// Headers that claim far more pixels than the data can hold:
	// refused from the header alone by the pixels-per-byte limit, or, where the file is large
	// enough for that, from the length of the first scan's data.
	prog := readTestdata(tb, "video-001.progressive.jpeg") // 20 KB, 3 components at full resolution
	prog10k := withFrameSize(tb, prog, 10000, 10000)
	padding := jpegSeg(jpegCOM, bytes.Repeat([]byte{'.'}, 60000))
	progPadded := withSegments(prog10k, padding, padding) // 141 KB: 709 pixels per byte
	base12MP := withSegments(withFrameSize(tb, base, 4000, 3000), jpegSeg(jpegCOM, make([]byte, 16000)))
	gray := readTestdata(tb, "video-005.gray.q50.progressive.jpeg")
	grayACFirst := bytes.Clone(gray)
	if sos := bytes.Index(grayACFirst, []byte{0xFF, jpegSOS}); sos > 0 && grayACFirst[sos+4] == 1 {
		grayACFirst[sos+7], grayACFirst[sos+8] = 1, 5 // the first scan: AC 1-5 instead of DC
	} else {
		tb.Fatal("the greyscale progressive fixture does not start with a one-component scan")
	}
	vp8l100MP := slices.Clone(vp8l.data)
	binary.LittleEndian.PutUint32(vp8l100MP[1:], binary.LittleEndian.Uint32(vp8l100MP[1:])&^(1<<28-1)|9999|9999<<14)
	vp8l100MP = append(vp8l100MP, make([]byte, 4096-len(vp8l100MP))...)
	pngHugeSmall := rawPNG(10000, 10000, 1, 0, 0, make([]byte, 10000*(1+1250)), 1<<16) // 12 KB
	manyCOM := [][]byte{}
	for range 1100 {
		manyCOM = append(manyCOM, jpegSeg(jpegCOM, []byte("x")))
	}
	withFrame := func(marker, precision byte) []byte {
		b := bytes.Clone(base)
		b[sof+1], b[sof+4] = marker, precision
		return b
	}
	heic := []byte("\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic\x00\x00\x00\x00meta")
	fs := []fixture{
		{name: "jpeg/truncated-in-exif", data: full[:300], reason: ReasonMalformed},
		{name: "jpeg/truncated-in-scan", data: base[:len(base)-40], reason: ReasonMalformed},
		{name: "jpeg/no-eoi", data: base[:len(base)-2], reason: ReasonMalformed},
		{name: "jpeg/length-past-end", data: withSegments(base[:200], []byte{0xFF, jpegAPP1, 0xFF, 0xF0, 'E'}), reason: ReasonMalformed},
		{name: "jpeg/zero-length-marker", data: withSegments(base, []byte{0xFF, jpegAPP1, 0, 0}), reason: ReasonMalformed},
		{name: "jpeg/huge-dimensions", data: huge, reason: ReasonTooManyPixels},
		{name: "jpeg/progressive-20KB-claims-10000x10000", data: prog10k, reason: ReasonTooManyPixels, detail: "pixels per byte"},
		{name: "jpeg/progressive-141KB-claims-10000x10000", data: progPadded, reason: ReasonMalformed, detail: "bytes of image data"},
		{name: "jpeg/baseline-claims-12MP", data: base12MP, reason: ReasonMalformed, detail: "scan 1 has"},
		{name: "jpeg/progressive-ac-before-dc", data: grayACFirst, reason: ReasonMalformed, detail: "before its DC scan"},
		{name: "webp/lossless-4KB-claims-100MP", data: buildWebP(riffChunk("VP8L", vp8l100MP)), reason: ReasonTooManyPixels, detail: "pixels per byte"},
		{name: "webp/vp8x-4KB-claims-100MP", data: buildWebP(vp8xChunk(0, 10000, 10000), riffChunk("VP8L", vp8l100MP)), reason: ReasonTooManyPixels, detail: "pixels per byte"},
		{name: "png/12KB-claims-100MP", data: pngHugeSmall, reason: ReasonTooManyPixels, detail: "pixels per byte"},
		{name: "jpeg/too-many-segments", data: withSegments(base, manyCOM...), reason: ReasonTooComplex},
		{name: "jpeg/sof1-12-bit", data: withFrame(0xC1, 12), reason: ReasonUnsupportedJPEG},
		{name: "jpeg/sof2-12-bit", data: withFrame(0xC2, 12), reason: ReasonUnsupportedJPEG},
		{name: "jpeg/sof0-12-bit", data: withFrame(0xC0, 12), reason: ReasonUnsupportedJPEG},
		{name: "jpeg/16-bit", data: withFrame(0xC1, 16), reason: ReasonMalformed},
		{name: "jpeg/dac", data: withSegments(base, jpegSeg(jpegDAC, []byte{0x00, 0x10})), reason: ReasonUnsupportedJPEG},
		{name: "jpeg/dhp", data: withSegments(base, jpegSeg(jpegDHP, base[sof+4:sof+4+9])), reason: ReasonUnsupportedJPEG},
		{name: "jpeg/reserved-jpg", data: withFrame(0xC8, 8), reason: ReasonUnsupported},
		{name: "jpeg/no-image", data: []byte{0xFF, 0xD8, 0xFF, 0xD9}, reason: ReasonMalformed},
		{name: "png/bad-crc", data: badCRC, reason: ReasonMalformed, detail: "bad CRC"},
		{name: "png/huge-dimensions", data: pngHuge, reason: ReasonTooManyPixels},
		{name: "png/truncated", data: pngBase[:len(pngBase)-10], reason: ReasonMalformed},
		{name: "png/zlib-corrupt", data: zlibCorrupt, reason: ReasonMalformed, detail: "inflates to more than"},
		{name: "png/zlib-bad-header", data: withIDATData(tb, pngBase, append([]byte{0x78, 0x00}, stream[2:]...)), reason: ReasonMalformed, detail: "does not inflate"},
		{name: "png/zlib-bad-checksum", data: withIDATData(tb, pngBase, patched(stream, len(stream)-1, stream[len(stream)-1]^1)), reason: ReasonMalformed, detail: "does not inflate"},
		{name: "png/zlib-stream-cut", data: withIDATData(tb, pngBase, stream[:len(stream)-6]), reason: ReasonMalformed, detail: "does not inflate"},
		{name: "png/inflates-short", data: rawPNG(8, 8, 8, 2, 0, pngRaw[:len(pngRaw)-25], 8192), reason: ReasonMalformed, detail: "inflates to 175 bytes, its header declares 200"},
		{name: "png/inflates-one-byte-short", data: rawPNG(8, 8, 8, 2, 0, pngRaw[:len(pngRaw)-1], 8192), reason: ReasonMalformed, detail: "inflates to 199 bytes"},
		{name: "png/inflates-long", data: rawPNG(8, 8, 8, 2, 0, append(slices.Clone(pngRaw), 0), 8192), reason: ReasonMalformed, detail: "inflates to more than"},
		{name: "png/interlaced-with-plain-size", data: rawPNG(8, 8, 8, 2, 1, pngRaw, 8192), reason: ReasonMalformed, detail: "filter type"},
		{name: "png/bad-filter-type", data: rawPNG(8, 8, 8, 2, 0, patched(pngRaw, 25, 5), 8192), reason: ReasonMalformed, detail: "filter type 5"},
		{name: "png/data-after-stream", data: withIDATData(tb, pngBase, append(slices.Clone(stream), 0)), reason: ReasonMalformed, detail: "data after the end of the compressed image"},
		{name: "png/idat-after-stream", data: pngWith(tb, pngBase, nil, [][]byte{pngChunk("IDAT", []byte{0})}, nil), reason: ReasonMalformed, detail: "data after the end of the compressed image"},
		{name: "png/16-bit-end-corrupt", data: png16Corrupt, reason: ReasonMalformed, detail: "does not inflate"},
		{name: "png/bad-crc-in-later-idat", data: badLaterCRC, reason: ReasonMalformed, detail: "bad CRC"},
		{name: "png/unknown-critical", data: pngWith(tb, pngBase, [][]byte{pngChunk("XXXX", nil)}, nil, nil), reason: ReasonMalformed},
		{name: "webp/huge-canvas", data: buildWebP(vp8xChunk(0, 1<<24, 1<<24), riffChunk("VP8L", vp8l.data)), reason: ReasonTooManyPixels},
		{name: "webp/animated", data: buildWebP(vp8xChunk(webpFlagAnimation, 75, 100), riffChunk("ANIM", make([]byte, 6))), reason: ReasonUnsupported},
		{name: "webp/riff-size-past-end", data: lossless[:len(lossless)-10], reason: ReasonMalformed},
		{name: "webp/canvas-mismatch", data: buildWebP(vp8xChunk(0, 10, 10), riffChunk("VP8L", vp8l.data)), reason: ReasonMalformed},
		{name: "heic", data: heic, reason: ReasonHEIC},
	}
	// Frames the product cannot show: lossless, hierarchical,
	// arithmetic-coded, and JPEG-LS.
	for _, m := range []byte{0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF, jpegSOF55} {
		fs = append(fs, fixture{name: fmt.Sprintf("jpeg/sof-%#x", m), data: withFrame(m, 8), reason: ReasonUnsupportedJPEG})
	}
	return append(fs, []fixture{
		{name: "mp4", data: []byte("\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom"), reason: ReasonUnsupported},
		{name: "gif", data: []byte("GIF89a\x01\x00\x01\x00\x00\x00\x00;"), reason: ReasonUnsupported},
		{name: "empty", data: nil, reason: ReasonUnsupported},
	}...)
}
