package imagestore

import (
	"bytes"
	"encoding/binary"
	"slices"
	"testing"
	"time"
)

func TestReadEXIF(t *testing.T) {
	t.Parallel()
	for _, order := range []byteOrder{binary.BigEndian, binary.LittleEndian} {
		block := exifTIFF(exifOptions{order: order, orientation: 5, dateTime: "2024:02:29 23:30:00",
			offset: "+05:30", full: true})
		var m CaptureMeta
		gps := readEXIF(block, &m)
		want := time.Date(2024, 2, 29, 18, 0, 0, 0, time.UTC)
		if !m.TakenAt.Equal(want) || !m.TakenAtHasOffset || m.Orientation != 5 {
			t.Errorf("%v: got %v offset=%v orientation=%d", order, m.TakenAt, m.TakenAtHasOffset, m.Orientation)
		}
		if !m.HadEXIF || !m.HadGPS || !m.HadSerial || !m.HadOwner || !m.HadThumbnail || !m.HadMakerNote || m.EXIFUnreadable {
			t.Errorf("%v: flags %+v", order, m)
		}
		if gps <= 0 {
			t.Errorf("%v: GPS size %d", order, gps)
		}
	}
}

func TestReadEXIFWithoutOffsetOrOriginal(t *testing.T) {
	t.Parallel()
	var m CaptureMeta
	readEXIF(exifTIFF(exifOptions{dateTime: "2019:01:02 03:04:05"}), &m)
	if m.TakenAt != time.Date(2019, 1, 2, 3, 4, 5, 0, time.UTC) || m.TakenAtHasOffset || m.Orientation != 0 {
		t.Errorf("got %+v", m)
	}
	// DateTime (the modification time) alone is not a capture time.
	e := tiffEnc{binary.BigEndian}
	m = CaptureMeta{Orientation: 1}
	readEXIF(buildTIFF(binary.BigEndian, &tiffDir{entries: []tiffEntry{e.ascii(0x0132, "2019:01:02 03:04:05")}}), &m)
	if !m.TakenAt.IsZero() || m.EXIFUnreadable {
		t.Errorf("DateTime used as capture time: %+v", m)
	}
}

func TestParseEXIFTime(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		dt, off, want string
		hasOff        bool
	}{
		{"2024:05:06 07:08:09", "", "2024-05-06T07:08:09Z", false},
		{"2024:05:06 07:08:09\x00", "+08:00\x00", "2024-05-06T07:08:09+08:00", true},
		{"2024:05:06 07:08:09", "-03:30", "2024-05-06T07:08:09-03:30", true},
		{"2024:05:06 07:08:09", "+99:00", "2024-05-06T07:08:09Z", false},
		{"2024:05:06 07:08:09", "garbage", "2024-05-06T07:08:09Z", false},
		{"0000:00:00 00:00:00", "", "", false},
		{"    :  :     :  :  ", "", "", false},
		{"2024:13:40 07:08:09", "", "", false},
	} {
		got, hasOff := parseEXIFTime(tc.dt, tc.off)
		s := ""
		if !got.IsZero() {
			s = got.Format(time.RFC3339)
		}
		if s != tc.want || hasOff != tc.hasOff {
			t.Errorf("parseEXIFTime(%q, %q) = %s %v, want %s %v", tc.dt, tc.off, s, hasOff, tc.want, tc.hasOff)
		}
	}
}

// TestCheckTIFFRefusesHostileStructures: every block here would make a naive parser loop,
// read out of bounds or allocate gigabytes. checkTIFF must refuse each, quickly.
func TestCheckTIFFRefusesHostileStructures(t *testing.T) {
	t.Parallel()
	be := binary.BigEndian
	ifd := func(entries ...[]byte) []byte { // one IFD at offset 8, next 0
		b := []byte("MM\x00*\x00\x00\x00\x08")
		b = be.AppendUint16(b, uint16(len(entries)))
		for _, e := range entries {
			b = append(b, e...)
		}
		return append(b, 0, 0, 0, 0)
	}
	entry := func(tag, typ uint16, count, value uint32) []byte {
		e := be.AppendUint16(nil, tag)
		e = be.AppendUint16(e, typ)
		e = be.AppendUint32(e, count)
		return be.AppendUint32(e, value)
	}
	selfNext := ifd(entry(tagOrientation, tiffShort, 1, 6<<16))
	be.PutUint32(selfNext[len(selfNext)-4:], 8)
	twoCycle := exifTIFF(exifOptions{orientation: 6, full: true})
	patchNextOfIFD1(t, twoCycle, be.Uint32(twoCycle[4:]))
	longChain := []byte("MM\x00*\x00\x00\x00\x08")
	for i := range 20 {
		longChain = be.AppendUint16(longChain, 0)
		longChain = be.AppendUint32(longChain, uint32(8+6*(i+1)))
	}
	longChain = append(longChain, 0, 0, 0, 0, 0, 0)
	// 1024 tags all pointing at the same 32000 bytes: 32 MB for a parser to copy per IFD.
	shared := make([][]byte, 1024)
	for i := range shared {
		shared[i] = entry(uint16(0x1000+i), tiffShort, 16000, 8)
	}
	sharedValues := append(ifd(shared...), make([]byte, 32000)...)
	cases := map[string][]byte{
		"tags sharing one value":     sharedValues,
		"ifd0 loops to itself":       selfNext,
		"ifd1 loops to ifd0":         twoCycle,
		"exif pointer to ifd0":       ifd(entry(tagExifIFD, tiffLong, 1, 8)),
		"gps pointer outside":        ifd(entry(tagGPSIFD, tiffLong, 1, 0xFFFFFF00)),
		"pointer as short":           ifd(entry(tagExifIFD, tiffShort, 1, 8<<16)),
		"pointer with count 2":       ifd(entry(tagExifIFD, tiffLong, 2, 8)),
		"value past the end":         ifd(entry(0x010F, 2, 100, 20)),
		"count overflows 32 bits":    ifd(entry(0x011A, 5, 0x20000001, 20)),
		"count near 2^32":            ifd(entry(0x010F, 2, 0xFFFFFFFF, 0)),
		"ifd offset past the end":    []byte("MM\x00*\x00\x00\xff\xf0"),
		"ifd offset inside header":   []byte("MM\x00*\x00\x00\x00\x02\x00\x00\x00\x00"),
		"too many entries":           append(be.AppendUint16([]byte("MM\x00*\x00\x00\x00\x08"), 0xFFFF), make([]byte, 64)...),
		"chain of twenty ifds":       longChain,
		"not tiff":                   []byte("XX\x00*\x00\x00\x00\x08\x00\x00"),
		"short":                      []byte("MM\x00*"),
		"larger than the budget":     append(ifd(), make([]byte, maxEXIFBytes)...),
		"interop pointer to gps ifd": nil, // filled below
	}
	gpsTwice := exifDirs(exifOptions{order: binary.BigEndian, orientation: 1, dateTime: "2020:01:01 00:00:00", full: true})
	b := buildTIFF(binary.BigEndian, gpsTwice)
	// Point the Interop pointer (in the Exif IFD) at the GPS IFD: one IFD reached twice.
	ifd0 := be.Uint32(b[4:])
	var exifOff, gpsOff uint32
	n := uint32(be.Uint16(b[ifd0:]))
	for i := range n {
		e := ifd0 + 2 + 12*i
		switch be.Uint16(b[e:]) {
		case tagExifIFD:
			exifOff = be.Uint32(b[e+8:])
		case tagGPSIFD:
			gpsOff = be.Uint32(b[e+8:])
		}
	}
	m := uint32(be.Uint16(b[exifOff:]))
	for i := range m {
		if e := exifOff + 2 + 12*i; be.Uint16(b[e:]) == tagInteropIFD {
			be.PutUint32(b[e+8:], gpsOff)
		}
	}
	cases["interop pointer to gps ifd"] = b

	for name, block := range cases {
		if _, err := checkTIFF(block); err == nil {
			t.Errorf("%s: accepted", name)
		}
		var meta CaptureMeta
		start := time.Now()
		readEXIF(block, &meta)
		if !meta.EXIFUnreadable || meta.Orientation != 0 || !meta.TakenAt.IsZero() {
			t.Errorf("%s: meta %+v", name, meta)
		}
		if d := time.Since(start); d > time.Second { // a cycle followed would never end; a shared machine can take a while
			t.Errorf("%s: took %v", name, d)
		}
	}
}

// An offset tag whose value lies out of line, in the last entry of the block: reading it as
// if it were inline ran past the end of the block (a panic, found in review).
func TestReadEXIFOffsetTagAtTheEnd(t *testing.T) {
	t.Parallel()
	le := binary.LittleEndian
	b := []byte("II*\x00\x08\x00\x00\x00")
	b = le.AppendUint16(b, 1) // IFD0: the Exif IFD pointer, at 26
	b = le.AppendUint16(b, tagExifIFD)
	b = le.AppendUint16(b, tiffLong)
	b = le.AppendUint32(b, 1)
	b = le.AppendUint32(b, 26)
	b = le.AppendUint32(b, 0)
	b = le.AppendUint16(b, 1) // Exif IFD: OffsetTimeOriginal, 16 ASCII bytes at offset 8
	b = le.AppendUint16(b, tagOffsetTimeOriginal)
	b = le.AppendUint16(b, tiffASCII)
	b = le.AppendUint32(b, 16)
	b = le.AppendUint32(b, 8)
	b = le.AppendUint32(b, 0)
	if len(b) != 44 {
		t.Fatalf("block is %d bytes", len(b))
	}
	b = slices.Clip(b) // as a block cut from the end of a buffer: nothing readable past it
	var m CaptureMeta
	readEXIF(b, &m) // must not panic
	if !m.HadEXIF || !m.TakenAt.IsZero() {
		t.Errorf("got %+v", m)
	}
}

// FuzzReadEXIF: any EXIF block, however built, is read without a panic or a hang.
func FuzzReadEXIF(f *testing.F) {
	for _, order := range []byteOrder{binary.BigEndian, binary.LittleEndian} {
		f.Add(exifTIFF(exifOptions{order: order, orientation: 6, dateTime: "2024:02:29 23:30:00", offset: "+05:30", full: true}))
	}
	f.Add(exifTIFF(exifOptions{dateTime: "2019:01:02 03:04:05"}))
	f.Fuzz(func(t *testing.T, block []byte) {
		var m CaptureMeta
		readEXIF(block, &m)
		if m.Orientation < 0 || m.Orientation > 8 {
			t.Fatalf("orientation %d", m.Orientation)
		}
	})
}

// TestDecodeEXIFOddTypes: structurally sound blocks with values of unexpected types must not
// panic or set values.
func TestDecodeEXIFOddTypes(t *testing.T) {
	t.Parallel()
	e := tiffEnc{binary.LittleEndian}
	blocks := [][]byte{
		buildTIFF(binary.LittleEndian, &tiffDir{entries: []tiffEntry{e.ascii(tagOrientation, "six")}}),
		buildTIFF(binary.LittleEndian, &tiffDir{entries: []tiffEntry{{tag: tagOrientation, typ: 3, count: 0}}}),
		buildTIFF(binary.LittleEndian, &tiffDir{entries: []tiffEntry{{tag: tagOrientation, typ: 99, count: 1}}}),
		buildTIFF(binary.LittleEndian, &tiffDir{entries: []tiffEntry{e.short(tagOrientation, 42)},
			exif: &tiffDir{entries: []tiffEntry{e.short(tagDateTimeOriginal, 7)}}}),
	}
	for i, b := range blocks {
		m := CaptureMeta{Orientation: 1}
		readEXIF(b, &m)
		if m.Orientation != 1 || !m.TakenAt.IsZero() {
			t.Errorf("block %d: %+v", i, m)
		}
	}
}

// TestMinimalEXIFMatchesIndependentBuilder: the sanitizer's one-entry EXIF is byte for byte
// what the tests' general TIFF builder makes of an IFD0 holding only Orientation.
func TestMinimalEXIFMatchesIndependentBuilder(t *testing.T) {
	t.Parallel()
	for o := 2; o <= 8; o++ {
		want := exifAPP1(exifTIFF(exifOptions{order: binary.BigEndian, orientation: uint16(o)}))
		if got := orientationEXIFSegment(o); !bytes.Equal(got, want) {
			t.Errorf("orientation %d:\n got %x\nwant %x", o, got, want)
		}
	}
}
