package imagestore

import (
	"bytes"
	"encoding/binary"
	"strings"
	"testing"
)

// TestVerifyRejects feeds the verifier clean files with one thing added or broken; each must
// be rejected, independently of what the sanitizer would do with it.
func TestVerifyRejects(t *testing.T) {
	t.Parallel()
	cleanJPEG, _, err := SanitizeBytes(jpegEverything(t, 6), DefaultLimits())
	if err != nil {
		t.Fatal(err)
	}
	plainJPEG, _, err := SanitizeBytes(encodeJPEG(t, testImage(16, 16), 80), DefaultLimits())
	if err != nil {
		t.Fatal(err)
	}
	var pngEverything, webpEverything []byte
	for _, f := range acceptedFixtures(t) {
		switch f.name {
		case "png/everything":
			pngEverything = f.data
		case "webp/lossless-icc-exif-xmp":
			webpEverything = f.data
		}
	}
	cleanPNG, _, err := SanitizeBytes(pngEverything, DefaultLimits())
	if err != nil {
		t.Fatal(err)
	}
	cleanWebP, _, err := SanitizeBytes(webpEverything, DefaultLimits())
	if err != nil {
		t.Fatal(err)
	}
	// pngEverything has orientation 8: its clean copy keeps a minimal eXIf chunk.
	if len(pngChunkData(t, cleanPNG, "eXIf")) == 0 {
		t.Fatal("the clean PNG has no orientation chunk")
	}
	// The clean PNG without its eXIf, for the cases that add one: a second would be refused
	// as repeated before its content is looked at.
	var plainPNG []byte
	for i, c := range splitPNG(t, cleanPNG) {
		if i == 0 {
			plainPNG = []byte(pngSignature)
		}
		if c.typ != "eXIf" {
			plainPNG = append(plainPNG, pngChunk(c.typ, c.data)...)
		}
	}
	good := pngWith(t, plainPNG, [][]byte{pngChunk("eXIf", orientationTIFF(6))}, nil, nil)
	if _, err := Verify(bytes.NewReader(good), int64(len(good))); err != nil {
		t.Fatalf("PNG with a minimal eXIf rejected: %v", err)
	}
	// webpEverything has orientation 3: its clean copy ends with a minimal EXIF chunk.
	if len(webpChunkData(cleanWebP, "EXIF")) == 0 {
		t.Fatal("the clean WebP has no orientation chunk")
	}
	lossless := readTestdata(t, "gopher-doc.1bpp.lossless.webp")
	vp8l := riffChunk("VP8L", splitWebP(lossless)[0].data)
	webpExif := func(data []byte) []byte { return riffChunk("EXIF", data) }
	goodWebP := buildWebP(vp8xChunk(webpFlagEXIF, 75, 100), vp8l, webpExif(orientationTIFF(6)))
	for name, data := range map[string][]byte{"jpeg": cleanJPEG, "png": cleanPNG, "webp": cleanWebP, "webp/minimal exif": goodWebP} {
		if _, err := Verify(bytes.NewReader(data), int64(len(data))); err != nil {
			t.Fatalf("clean %s rejected: %v", name, err)
		}
	}

	exifWith := func(patch func([]byte)) []byte {
		seg := orientationEXIFSegment(6)
		patch(seg)
		return withSegments(plainJPEG, seg)
	}
	icc := iccSegments(fakeICCProfile(), 3)
	exifFlagged := func(chunks ...[]byte) []byte {
		return buildWebP(append([][]byte{vp8xChunk(webpFlagEXIF, 75, 100)}, chunks...)...)
	}
	cases := map[string][]byte{
		"jpeg/comment":             withSegments(plainJPEG, jpegSeg(jpegCOM, []byte("x"))),
		"jpeg/xmp":                 withSegments(plainJPEG, xmpSegment("x")),
		"jpeg/full exif":           withSegments(plainJPEG, exifAPP1(exifTIFF(exifOptions{orientation: 6, dateTime: "2020:01:01 00:00:00"}))),
		"jpeg/exif orientation 1":  exifWith(func(s []byte) { s[4+verifyOrientationAt] = 1 }),
		"jpeg/exif orientation 9":  exifWith(func(s []byte) { s[4+verifyOrientationAt] = 9 }),
		"jpeg/exif two entries":    exifWith(func(s []byte) { s[4+6+9] = 2 }),
		"jpeg/exif next ifd":       exifWith(func(s []byte) { s[len(s)-1] = 8 }),
		"jpeg/exif little endian":  exifWith(func(s []byte) { copy(s[10:], "II") }),
		"jpeg/exif after tables":   cat(plainJPEG[:2], jpegSegments(plainJPEG)[0], orientationEXIFSegment(6), plainJPEG[2+len(jpegSegments(plainJPEG)[0]):]),
		"jpeg/two exif":            withSegments(plainJPEG, orientationEXIFSegment(6), orientationEXIFSegment(6)),
		"jpeg/jfif thumbnail":      withSegments(plainJPEG, jfifSegment([]byte("abc"))),
		"jpeg/jfif not first":      withSegments(plainJPEG, orientationEXIFSegment(3), jfifSegment(nil)),
		"jpeg/jfx":                 withSegments(plainJPEG, jpegSeg(jpegAPP0, []byte("JFXX\x00\x10"))),
		"jpeg/icc out of order":    withSegments(plainJPEG, icc[1], icc[0], icc[2]),
		"jpeg/icc incomplete":      withSegments(plainJPEG, icc[0], icc[1]),
		"jpeg/icc interrupted":     withSegments(plainJPEG, icc[0], adobeSegment(), icc[1], icc[2]),
		"jpeg/icc repeated":        withSegments(plainJPEG, icc[0], icc[1], icc[2], icc[0]),
		"jpeg/adobe long":          withSegments(plainJPEG, jpegSeg(jpegAPP14, []byte("Adobe\x00\x64\x00\x00\x00\x00\x01X"))),
		"jpeg/mpf":                 withSegments(plainJPEG, mpfSegment()),
		"jpeg/iptc":                withSegments(plainJPEG, iptcSegment()),
		"jpeg/vendor app":          withSegments(plainJPEG, jpegSeg(0xE9, []byte("x"))),
		"jpeg/fill bytes":          withSegments(plainJPEG, []byte{0xFF}),
		"jpeg/sof3 lossless":       withFrameMarker(t, plainJPEG, 0xC3),
		"jpeg/sof9 arithmetic":     withFrameMarker(t, plainJPEG, 0xC9),
		"jpeg/sof10 arithmetic":    withFrameMarker(t, plainJPEG, 0xCA),
		"jpeg/sof5 hierarchical":   withFrameMarker(t, plainJPEG, 0xC5),
		"jpeg/dac":                 withSegments(plainJPEG, jpegSeg(jpegDAC, []byte{0x00, 0x10})),
		"jpeg/stray byte":          withSegments(plainJPEG, []byte{0}),
		"jpeg/stray text":          withSegments(plainJPEG, []byte(secretStray)),
		"jpeg/stuffed zero":        withSegments(plainJPEG, []byte{0xFF, 0}),
		"jpeg/restart marker":      withSegments(plainJPEG, []byte{0xFF, jpegRST0}),
		"jpeg/stray after tables":  cat(plainJPEG[:2], jpegSegments(plainJPEG)[0], []byte{1, 2}, plainJPEG[2+len(jpegSegments(plainJPEG)[0]):]),
		"jpeg/trailer":             cat(cleanJPEG, []byte("ftypmp42")),
		"jpeg/truncated":           cleanJPEG[:len(cleanJPEG)-2],
		"jpeg/no scan":             []byte{0xFF, 0xD8, 0xFF, 0xD9},
		"png/text":                 pngWith(t, cleanPNG, [][]byte{pngChunk("tEXt", []byte("a\x00b"))}, nil, nil),
		"png/time":                 pngWith(t, cleanPNG, [][]byte{pngChunk("tIME", make([]byte, 7))}, nil, nil),
		"png/exif":                 pngWith(t, plainPNG, [][]byte{pngChunk("eXIf", []byte("MM\x00*"))}, nil, nil),
		"png/exif empty":           pngWith(t, plainPNG, [][]byte{pngChunk("eXIf", nil)}, nil, nil),
		"png/exif orientation 1":   pngWith(t, plainPNG, [][]byte{pngChunk("eXIf", orientationTIFF(1))}, nil, nil),
		"png/exif orientation 9":   pngWith(t, plainPNG, [][]byte{pngChunk("eXIf", orientationTIFF(9))}, nil, nil),
		"png/exif longer":          pngWith(t, plainPNG, [][]byte{pngChunk("eXIf", append(orientationTIFF(6), 0))}, nil, nil),
		"png/exif two entries":     pngWith(t, plainPNG, [][]byte{pngChunk("eXIf", patched(orientationTIFF(6), 9, 2))}, nil, nil),
		"png/exif high byte":       pngWith(t, plainPNG, [][]byte{pngChunk("eXIf", patched(orientationTIFF(6), 18, 1))}, nil, nil),
		"png/exif after data":      pngWith(t, plainPNG, nil, [][]byte{pngChunk("eXIf", orientationTIFF(6))}, nil),
		"png/two exif":             pngWith(t, plainPNG, [][]byte{pngChunk("eXIf", orientationTIFF(6)), pngChunk("eXIf", orientationTIFF(6))}, nil, nil),
		"png/unknown":              pngWith(t, cleanPNG, [][]byte{pngChunk("prVt", nil)}, nil, nil),
		"png/ancillary after data": pngWith(t, cleanPNG, nil, [][]byte{pngChunk("sRGB", []byte{0})}, nil),
		"png/repeated gAMA":        pngWith(t, cleanPNG, [][]byte{pngChunk("gAMA", make([]byte, 4))}, nil, nil),
		"png/trailer":              cat(cleanPNG, []byte("x")),
		"png/bad crc":              flipByte(cleanPNG, len(cleanPNG)-14),
		"webp/exif chunk":          buildWebP(vp8xChunk(0, 75, 100), riffChunk("EXIF", []byte("MM\x00*")), vp8l),
		"webp/exif flag":           buildWebP(vp8xChunk(webpFlagEXIF, 75, 100), vp8l),
		"webp/exif orientation 1":  exifFlagged(vp8l, webpExif(orientationTIFF(1))),
		"webp/exif orientation 9":  exifFlagged(vp8l, webpExif(orientationTIFF(9))),
		"webp/exif longer":         exifFlagged(vp8l, webpExif(append(orientationTIFF(6), 0, 0))),
		"webp/exif two entries":    exifFlagged(vp8l, webpExif(patched(orientationTIFF(6), 9, 2))),
		"webp/exif little endian":  exifFlagged(vp8l, webpExif(append([]byte("II"), orientationTIFF(6)[2:]...))),
		"webp/exif with prefix":    exifFlagged(vp8l, webpExif(append([]byte("Exif\x00\x00"), orientationTIFF(6)...))),
		"webp/exif full":           exifFlagged(vp8l, webpExif(exifTIFF(exifOptions{orientation: 6, dateTime: "2020:01:01 00:00:00"}))),
		"webp/exif before image":   exifFlagged(webpExif(orientationTIFF(6)), vp8l),
		"webp/exif unflagged":      buildWebP(vp8xChunk(0, 75, 100), vp8l, webpExif(orientationTIFF(6))),
		"webp/exif simple format":  buildWebP(vp8l, webpExif(orientationTIFF(6))),
		"webp/two exif":            exifFlagged(vp8l, webpExif(orientationTIFF(6)), webpExif(orientationTIFF(6))),
		"webp/xmp after exif":      exifFlagged(vp8l, webpExif(orientationTIFF(6)), riffChunk("XMP ", []byte("x"))),
		"webp/exif and xmp flags":  buildWebP(vp8xChunk(webpFlagEXIF|webpFlagXMP, 75, 100), vp8l, webpExif(orientationTIFF(6))),
		"webp/xmp after image":     buildWebP(vp8xChunk(0, 75, 100), vp8l, riffChunk("XMP ", []byte("x"))),
		"webp/unknown chunk":       buildWebP(vp8xChunk(0, 75, 100), riffChunk("ZZZZ", nil), vp8l),
		"webp/icc flag no iccp":    buildWebP(vp8xChunk(webpFlagICC, 75, 100), vp8l),
		"webp/iccp no flag":        buildWebP(vp8xChunk(0, 75, 100), riffChunk("ICCP", fakeICCProfile()), vp8l),
		"webp/simple plus chunk":   buildWebP(vp8l, riffChunk("EXIF", []byte("MM\x00*"))),
		"webp/animation":           buildWebP(vp8xChunk(webpFlagAnimation, 75, 100), vp8l),
		"webp/trailer":             cat(cleanWebP, []byte("xx")),
		"webp/riff size":           riffSize(cleanWebP, -2),
		"webp/nonzero padding":     buildWebP(vp8xChunk(0, 75, 100), riffChunkPad("ICCP", []byte("abc"), 7), vp8l),
		"other/gif":                []byte("GIF89a"),
	}
	for name, data := range cases {
		f, err := Verify(bytes.NewReader(data), int64(len(data)))
		switch {
		case err == nil:
			t.Errorf("%s: accepted as %s", name, f)
		case strings.HasPrefix(name, "png/exif") && name != "png/exif after data" &&
			!strings.Contains(err.Error(), "eXIf other than one Orientation"):
			t.Errorf("%s: refused for another reason than its content: %v", name, err)
		case strings.HasPrefix(name, "webp/exif ") && strings.Contains(name, "orientation") || name == "webp/exif longer" ||
			name == "webp/exif two entries" || name == "webp/exif little endian" || name == "webp/exif with prefix":
			if !strings.Contains(err.Error(), "EXIF other than one Orientation") {
				t.Errorf("%s: refused for another reason than its content: %v", name, err)
			}
		}
	}
	// A declared size that does not match the stream is an error too.
	if _, err := Verify(bytes.NewReader(cleanJPEG), int64(len(cleanJPEG))+1); err == nil {
		t.Error("size mismatch accepted")
	}
}

// withFrameMarker returns a copy of a JPEG with its frame header's marker set to m.
func withFrameMarker(t *testing.T, b []byte, m byte) []byte {
	t.Helper()
	for _, seg := range jpegSegments(b) {
		if seg[1] >= jpegSOF0 && seg[1] <= jpegSOF2 {
			at := bytes.Index(b, seg)
			return patched(b, at+1, m)
		}
	}
	t.Fatal("no frame header")
	return nil
}

// patched returns a copy of b with b[i] set to v.
func patched(b []byte, i int, v byte) []byte {
	b = bytes.Clone(b)
	b[i] = v
	return b
}

func flipByte(b []byte, i int) []byte {
	c := bytes.Clone(b)
	c[i] ^= 0x40
	return c
}

func riffSize(b []byte, delta int) []byte {
	c := bytes.Clone(b)
	binary.LittleEndian.PutUint32(c[4:], uint32(int(binary.LittleEndian.Uint32(c[4:]))+delta))
	return c
}

func riffChunkPad(fourCC string, data []byte, pad byte) []byte {
	c := riffChunk(fourCC, data)
	c[len(c)-1] = pad
	return c
}
