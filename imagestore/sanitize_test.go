package imagestore

import (
	"bytes"
	"compress/zlib"
	"encoding/binary"
	"errors"
	"image"
	"image/jpeg"
	"image/png"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/disintegration/imaging"
	"golang.org/x/image/webp"
)

func TestSanitizeAccepted(t *testing.T) {
	t.Parallel()
	for _, f := range acceptedFixtures(t) {
		t.Run(f.name, func(t *testing.T) {
			t.Parallel()
			out, c := mustSanitize(t, f.data)

			for _, s := range f.secrets {
				if bytes.Contains(out, []byte(s)) {
					t.Errorf("output still contains %q", s)
				}
			}
			if f.keepsAll && !bytes.Equal(out, f.data) {
				t.Errorf("clean input changed: %d -> %d bytes, removed %v", len(f.data), len(out), c.Removed)
			}
			for kind, n := range f.removed {
				if got := removedBytes(c.Removed, kind); got != n {
					t.Errorf("removed %d bytes of %s, want %d (%v)", got, kind, n, c.Removed)
				}
			}
			m := c.Meta
			if m.Orientation != f.orientation {
				t.Errorf("orientation %d, want %d", m.Orientation, f.orientation)
			}
			var taken string
			if !m.TakenAt.IsZero() {
				taken = m.TakenAt.Format(time.RFC3339)
			}
			if taken != f.takenAt {
				t.Errorf("taken at %q, want %q", taken, f.takenAt)
			}
			if m.HadGPS != f.hadGPS || m.EXIFUnreadable != f.unreadable {
				t.Errorf("HadGPS %v EXIFUnreadable %v, want %v %v", m.HadGPS, m.EXIFUnreadable, f.hadGPS, f.unreadable)
			}
			if m.Width <= 0 || m.Height <= 0 {
				t.Errorf("dimensions %dx%d", m.Width, m.Height)
			}

			assertSamePixels(t, c.Format, f.data, out)
			switch c.Format {
			case FormatJPEG:
				if !bytes.Equal(jpegImageData(t, f.data), jpegImageData(t, out)) {
					t.Error("JPEG image data (tables, frame, scans) changed")
				}
				assertOrientationEXIF(t, out, m.Orientation)
				if f.icc != nil && !bytes.Equal(jpegICC(t, out), f.icc) {
					t.Error("ICC profile not carried intact")
				}
			case FormatWebP:
				for _, fourCC := range []string{"VP8 ", "VP8L", "ALPH"} {
					if a, b := webpChunkData(f.data, fourCC), webpChunkData(out, fourCC); !bytes.Equal(a, b) {
						t.Errorf("%s chunk changed", fourCC)
					}
				}
				if f.icc != nil && !bytes.Equal(webpChunkData(out, "ICCP"), f.icc) {
					t.Error("ICC profile not carried intact")
				}
				assertWebPOrientation(t, out, m.Orientation)
			case FormatPNG:
				for _, typ := range []string{"IDAT", "PLTE", "tRNS", "iCCP"} {
					if a, b := pngChunkData(t, f.data, typ), pngChunkData(t, out, typ); !bytes.Equal(a, b) {
						t.Errorf("%s changed", typ)
					}
				}
				assertPNGOrientation(t, out, m.Orientation)
			}

			again, c2 := mustSanitize(t, out)
			if !bytes.Equal(again, out) {
				t.Errorf("not idempotent: second pass removed %v", c2.Removed)
			}
			// Every format keeps the orientation in the file (the minimal EXIF).
			if c2.Meta.Orientation != m.Orientation {
				t.Errorf("orientation after a second pass %d, want %d", c2.Meta.Orientation, m.Orientation)
			}
		})
	}
}

// TestStrayBytesDropped: a JPEG with bytes between its segments comes out exactly as the same
// JPEG without them, so nothing of them survives and nothing else changes.
func TestStrayBytesDropped(t *testing.T) {
	t.Parallel()
	want, _, err := SanitizeBytes(strayBase(t), DefaultLimits())
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range strayFixtures(t) {
		out, c, err := SanitizeBytes(f.data, DefaultLimits())
		if err != nil {
			t.Errorf("%s: %v", f.name, err)
			continue
		}
		if !bytes.Equal(out, want) {
			t.Errorf("%s: output differs from the same photo without stray bytes", f.name)
		}
		if n := int64(len(f.data) - len(strayBase(t))); removedBytes(c.Removed, RemovedStrayBytes) != n {
			t.Errorf("%s: removed %v, want %d stray bytes", f.name, c.Removed, n)
		}
	}
}

func removedBytes(rs []Removal, kind RemovalKind) int64 {
	for _, r := range rs {
		if r.Kind == kind {
			return r.Bytes
		}
	}
	return 0
}

// mustSanitize runs both entry points (bytes and streaming) and checks they agree.
func mustSanitize(t *testing.T, in []byte) ([]byte, *Clean) {
	t.Helper()
	out, c, err := SanitizeBytes(in, DefaultLimits())
	if err != nil {
		t.Fatalf("SanitizeBytes: %v", err)
	}
	if int64(len(out)) != c.Size() {
		t.Fatalf("Size %d, got %d bytes", c.Size(), len(out))
	}
	cs, err := Sanitize(bytes.NewReader(in), int64(len(in)), DefaultLimits())
	if err != nil {
		t.Fatalf("Sanitize: %v", err)
	}
	for range 2 { // NewReader may be called again
		streamed, err := io.ReadAll(cs.NewReader())
		if err != nil || !bytes.Equal(streamed, out) {
			t.Fatalf("streamed output differs (err %v)", err)
		}
	}
	if f, err := Verify(bytes.NewReader(out), int64(len(out))); err != nil || f != c.Format {
		t.Fatalf("Verify: %v %v", f, err)
	}
	return out, c
}

func TestSanitizeEverythingReport(t *testing.T) {
	t.Parallel()
	in := jpegEverything(t, 6)
	_, c, err := SanitizeBytes(in, DefaultLimits())
	if err != nil {
		t.Fatal(err)
	}
	got := map[RemovalKind]int64{}
	for _, r := range c.Removed {
		got[r.Kind] = r.Bytes
	}
	for _, k := range []RemovalKind{RemovedEXIF, RemovedGPS, RemovedXMP, RemovedXMPExtended, RemovedIPTC,
		RemovedComment, RemovedMPF, RemovedFlashPix, RemovedAppOther, RemovedTrailer, RemovedJFIFThumbnail} {
		if got[k] <= 0 {
			t.Errorf("no %s removal reported (%v)", k, c.Removed)
		}
	}
	m := c.Meta
	for name, v := range map[string]bool{"EXIF": m.HadEXIF, "GPS": m.HadGPS, "Serial": m.HadSerial,
		"Owner": m.HadOwner, "Thumbnail": m.HadThumbnail, "MakerNote": m.HadMakerNote, "XMP": m.HadXMP,
		"Trailer": m.HadTrailer} {
		if !v {
			t.Errorf("Had%s not set", name)
		}
	}
	if _, off := m.TakenAt.Zone(); !m.TakenAtHasOffset || off != 8*3600 {
		t.Errorf("offset not read: %v %v", m.TakenAt, m.TakenAtHasOffset)
	}
	if m.Width != 64 || m.Height != 48 {
		t.Errorf("dimensions %dx%d", m.Width, m.Height)
	}
}

func TestSanitizeRefused(t *testing.T) {
	t.Parallel()
	for _, f := range refusedFixtures(t) {
		t.Run(f.name, func(t *testing.T) {
			t.Parallel()
			_, _, err := SanitizeBytes(f.data, DefaultLimits())
			var rej *RejectError
			if !errors.As(err, &rej) {
				t.Fatalf("want a RejectError (%s), got %v", f.reason, err)
			}
			if rej.Reason != f.reason {
				t.Fatalf("reason %s (%v), want %s", rej.Reason, err, f.reason)
			}
			if !strings.Contains(err.Error(), f.detail) {
				t.Errorf("refused as %v, want %q", err, f.detail)
			}
			if rej.Message("en") == "" || rej.Message("zh-CN") == rej.Message("en") {
				t.Error("messages missing")
			}
			_, err = Sanitize(bytes.NewReader(f.data), int64(len(f.data)), DefaultLimits())
			if !errors.As(err, &rej) || rej.Reason != f.reason {
				t.Errorf("Sanitize: %v", err)
			}
		})
	}
}

func TestHEICMessage(t *testing.T) {
	t.Parallel()
	_, err := Sniff([]byte("\x00\x00\x00\x1cftypmif1\x00\x00\x00\x00mif1heicmiaf"))
	var rej *RejectError
	if !errors.As(err, &rej) || rej.Reason != ReasonHEIC {
		t.Fatalf("got %v", err)
	}
	if en := rej.Message("en"); !strings.Contains(en, "Settings > Camera > Formats") || !strings.Contains(en, "Most Compatible") {
		t.Errorf("English message: %s", en)
	}
	if zh := rej.Message("zh-CN"); !strings.Contains(zh, "兼容性最佳") {
		t.Errorf("Chinese message: %s", zh)
	}
}

func TestUnsupportedJPEGMessage(t *testing.T) {
	t.Parallel()
	en, zh := ReasonUnsupportedJPEG.Message("en"), ReasonUnsupportedJPEG.Message("zh-CN")
	for _, want := range []string{"JPEG", "arithmetic", "lossless", "12-bit", "ordinary JPEG"} {
		if !strings.Contains(en, want) {
			t.Errorf("English message lacks %q: %s", want, en)
		}
	}
	if !strings.Contains(zh, "普通 JPEG") || !strings.Contains(zh, "12 位") {
		t.Errorf("Chinese message: %s", zh)
	}
}

func TestSniff(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		head []byte
		want Format
	}{
		{[]byte{0xFF, 0xD8, 0xFF, 0xE0}, FormatJPEG},
		{[]byte(pngSignature + "\x00\x00\x00\x0dIHDR"), FormatPNG},
		{[]byte("RIFF\x00\x00\x00\x00WEBPVP8 "), FormatWebP},
	} {
		if got, err := Sniff(tc.head); err != nil || got != tc.want {
			t.Errorf("Sniff(%q) = %v, %v", tc.head, got, err)
		}
	}
	if FormatWebP.ContentType() != "image/webp" || FormatJPEG.Ext() != ".jpg" || FormatPNG.String() != "png" {
		t.Error("format names")
	}
}

func TestLimits(t *testing.T) {
	t.Parallel()
	in := jpegEverything(t, 1)
	for _, tc := range []struct {
		lim  Limits
		want Reason
	}{
		{Limits{MaxBytes: 100}, ReasonTooLarge},
		{Limits{MaxPixels: 64*48 - 1}, ReasonTooManyPixels},
		{Limits{MaxSide: 63}, ReasonTooManyPixels},
		{Limits{MaxSegments: 5}, ReasonTooComplex},
	} {
		_, _, err := SanitizeBytes(in, tc.lim)
		var rej *RejectError
		if !errors.As(err, &rej) || rej.Reason != tc.want {
			t.Errorf("%+v: got %v, want %s", tc.lim, err, tc.want)
		}
	}
	if _, _, err := SanitizeBytes(in, Limits{}); err != nil {
		t.Errorf("zero Limits must mean the defaults: %v", err)
	}
}

// TestHugeDeclaredDimensions checks that a small file declaring more pixels than the limits
// allow (60000x60000), or than its size can hold (10000x10000 in 20 KB, 100 MP in 4 KB), is
// refused without allocating anything near its pixel count, and that a JPEG claiming more
// than its scans hold is refused the same way. The thumbnailer checks the pixel limits
// itself; it is only ever given sanitized files, so the size-based checks are the
// sanitizer's alone. Not parallel: it measures allocation.
func TestHugeDeclaredDimensions(t *testing.T) {
	for _, f := range refusedFixtures(t) {
		density := strings.Contains(f.detail, "pixels per byte")
		scanBound := strings.Contains(f.detail, "bytes of image data") || strings.Contains(f.detail, "scan 1 has")
		if f.reason != ReasonTooManyPixels && !scanBound {
			continue
		}
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		_, err := Sanitize(bytes.NewReader(f.data), int64(len(f.data)), DefaultLimits())
		var terr error = &RejectError{}
		if !density && !scanBound {
			_, terr = Thumbnail(bytes.NewReader(f.data), 1, 320)
		}
		runtime.ReadMemStats(&after)
		var rej, trej *RejectError
		if !errors.As(err, &rej) || rej.Reason != f.reason || !errors.As(terr, &trej) {
			t.Errorf("%s: %v / %v", f.name, err, terr)
		}
		if n := after.TotalAlloc - before.TotalAlloc; n > 1<<20 {
			t.Errorf("%s: %d bytes allocated", f.name, n)
		}
	}
}

// TestPNGInflateBounded: checking a PNG's image data inflates all of it (32 MB here, from a
// 31 KB file) through fixed buffers, never holding the image; a stream corrupted near its
// end is found the same way. Not parallel: it measures allocation.
func TestPNGInflateBounded(t *testing.T) {
	const w, h = 4000, 1000 // RGBA, 16 bits per sample: 8 bytes per pixel
	var z bytes.Buffer
	zw, _ := zlib.NewWriterLevel(&z, zlib.BestCompression)
	row := make([]byte, 1+w*8)
	for range h {
		zw.Write(row)
	}
	zw.Close()
	ihdr := binary.BigEndian.AppendUint32(binary.BigEndian.AppendUint32(nil, w), h)
	good := idatPNG(append(ihdr, 16, 6, 0, 0, 0), z.Bytes(), 8192)
	stream := bytes.Clone(z.Bytes())
	stream[len(stream)-6] ^= 0x10 // last deflate bytes, before the checksum
	bad := idatPNG(append(ihdr, 16, 6, 0, 0, 0), stream, 8192)
	for _, tc := range []struct {
		name string
		data []byte
		ok   bool
	}{{"good", good, true}, {"corrupt end", bad, false}} {
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		_, err := Sanitize(bytes.NewReader(tc.data), int64(len(tc.data)), DefaultLimits())
		runtime.ReadMemStats(&after)
		var rej *RejectError
		if tc.ok && err != nil || !tc.ok && (!errors.As(err, &rej) || rej.Reason != ReasonMalformed) {
			t.Errorf("%s (%d bytes): %v", tc.name, len(tc.data), err)
		}
		if n := after.TotalAlloc - before.TotalAlloc; n > 1<<20 {
			t.Errorf("%s: %d bytes allocated for %d bytes of image data", tc.name, n, h*(1+w*8))
		}
	}
}

// TestSanitizeFromFile runs the upload path: a spooled temp file read through io.ReaderAt.
func TestSanitizeFromFile(t *testing.T) {
	t.Parallel()
	in := jpegEverything(t, 6)
	path := filepath.Join(t.TempDir(), "upload")
	if err := os.WriteFile(path, in, 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	c, err := Sanitize(f, int64(len(in)), DefaultLimits())
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if _, err := io.Copy(&buf, c.NewReader()); err != nil {
		t.Fatal(err)
	}
	want, _, _ := SanitizeBytes(in, DefaultLimits())
	if !bytes.Equal(buf.Bytes(), want) {
		t.Error("file and memory paths differ")
	}
}

// TestSanitizeLongEntropyData crosses the scan block boundary with 0xFF bytes at every
// position near it.
func TestSanitizeLongEntropyData(t *testing.T) {
	t.Parallel()
	base := encodeJPEG(t, testImage(8, 8), 80)
	sos := bytes.LastIndex(base, []byte{0xFF, jpegSOS})
	hdrEnd := sos + 2 + int(binary.BigEndian.Uint16(base[sos+2:]))
	for _, at := range []int{scanBlock - 2, scanBlock - 1, scanBlock, scanBlock + 1} {
		// Stuffed 0xFF00 pairs and restart markers are image data; the scan must pass them.
		filler := bytes.Repeat([]byte{0x12}, 2*scanBlock)
		filler[at-hdrEnd] = 0xFF
		filler[at-hdrEnd+1] = 0x00
		filler[at-hdrEnd+6] = 0xFF
		filler[at-hdrEnd+7] = 0xD3
		in := cat(base[:hdrEnd], filler, []byte{0xFF, jpegEOI}, []byte(secretTrailer))
		out, c, err := SanitizeBytes(in, DefaultLimits())
		if err != nil {
			t.Fatalf("at %d: %v", at, err)
		}
		if !bytes.Equal(out, in[:len(in)-len(secretTrailer)]) || c.Removed[0].Kind != RemovedTrailer {
			t.Errorf("at %d: wrong output, removed %v", at, c.Removed)
		}
	}
}

func assertSamePixels(t *testing.T, f Format, a, b []byte) {
	t.Helper()
	ia, ib := decodeFormat(t, f, a), decodeFormat(t, f, b)
	na, nb := imaging.Clone(ia), imaging.Clone(ib)
	if na.Rect != nb.Rect || !bytes.Equal(na.Pix, nb.Pix) {
		t.Error("decoded pixels differ")
	}
}

func decodeFormat(t testing.TB, f Format, b []byte) image.Image {
	t.Helper()
	var (
		img image.Image
		err error
	)
	switch f {
	case FormatJPEG:
		img, err = jpeg.Decode(bytes.NewReader(b))
	case FormatPNG:
		img, err = png.Decode(bytes.NewReader(b))
	case FormatWebP:
		img, err = webp.Decode(bytes.NewReader(b))
	}
	if err != nil {
		t.Fatalf("decode %s: %v", f, err)
	}
	return img
}

// jpegImageData concatenates what encodes the pixels: tables, frame, scans and their data.
func jpegImageData(t *testing.T, b []byte) []byte {
	t.Helper()
	var out []byte
	for pos := 2; pos+2 <= len(b); {
		if m := b[pos+1]; b[pos] != 0xFF || m == 0xFF || m == 0 || m >= jpegRST0 && m <= jpegRST7 {
			pos++ // fill or stray bytes between segments
			continue
		}
		m := b[pos+1]
		if m == jpegEOI {
			return out
		}
		end := pos + 2 + int(binary.BigEndian.Uint16(b[pos+2:]))
		if m == jpegDQT || m == jpegDHT || m == jpegDRI || m == jpegSOS || (m >= 0xC0 && m <= 0xCF && m != jpegDHT) {
			out = append(out, b[pos:end]...)
		}
		pos = end
		if m == jpegSOS {
			for ; end+1 < len(b); end++ {
				if c := b[end+1]; b[end] == 0xFF && c != 0 && c != 0xFF && (c < jpegRST0 || c > jpegRST7) {
					break
				}
			}
			out = append(out, b[pos:end]...)
			pos = end
		}
	}
	t.Fatal("no EOI")
	return nil
}

// jpegSegments lists the marker segments before the first scan.
func jpegSegments(b []byte) [][]byte {
	var segs [][]byte
	for pos := 2; pos+4 <= len(b) && b[pos+1] != jpegSOS; {
		end := pos + 2 + int(binary.BigEndian.Uint16(b[pos+2:]))
		segs = append(segs, b[pos:end])
		pos = end
	}
	return segs
}

func jpegICC(t *testing.T, b []byte) []byte {
	t.Helper()
	var icc []byte
	for _, s := range jpegSegments(b) {
		if s[1] == jpegAPP2 && bytes.HasPrefix(s[4:], []byte(iccID)) {
			icc = append(icc, s[4+iccHeaderLen:]...)
		}
	}
	return icc
}

func assertOrientationEXIF(t *testing.T, out []byte, orientation int) {
	t.Helper()
	var app1 [][]byte
	for _, s := range jpegSegments(out) {
		if s[1] == jpegAPP1 {
			app1 = append(app1, s)
		}
	}
	if orientation == 1 {
		if len(app1) != 0 {
			t.Errorf("APP1 in output for orientation 1")
		}
		return
	}
	if len(app1) != 1 || len(app1[0]) != 36 {
		t.Fatalf("want one 36-byte APP1 segment, got %d", len(app1))
	}
	var x CaptureMeta
	readEXIF(app1[0][10:], &x)
	if x.Orientation != orientation || x.EXIFUnreadable || x.HadGPS {
		t.Errorf("minimal EXIF reads back as %+v", x)
	}
}

// assertPNGOrientation checks that a sanitized PNG holds one eXIf chunk, with only the
// orientation, before its image data, when the orientation is not 1, and none otherwise.
func assertPNGOrientation(t *testing.T, out []byte, orientation int) {
	t.Helper()
	var exifs []int
	firstIDAT := -1
	for i, c := range splitPNG(t, out) {
		switch {
		case c.typ == "eXIf":
			exifs = append(exifs, i)
		case c.typ == "IDAT" && firstIDAT < 0:
			firstIDAT = i
		}
	}
	if orientation == 1 {
		if len(exifs) != 0 {
			t.Error("eXIf in output for orientation 1")
		}
		return
	}
	if len(exifs) != 1 || exifs[0] > firstIDAT {
		t.Fatalf("want one eXIf before the image data, got %d at %v (IDAT at %d)", len(exifs), exifs, firstIDAT)
	}
	data := pngChunkData(t, out, "eXIf")
	var x CaptureMeta
	readEXIF(data, &x)
	if len(data) != 26 || x.Orientation != orientation || x.EXIFUnreadable || x.HadGPS {
		t.Errorf("minimal eXIf (%d bytes) reads back as %+v", len(data), x)
	}
}

// assertWebPOrientation checks that a sanitized WebP ends with one EXIF chunk holding only
// the orientation, announced by its VP8X, when the orientation is not 1, and has no EXIF
// otherwise.
func assertWebPOrientation(t *testing.T, out []byte, orientation int) {
	t.Helper()
	cs := splitWebP(out)
	var exifs int
	for _, c := range cs {
		if c.fourCC == "EXIF" {
			exifs++
		}
	}
	flagged := cs[0].fourCC == "VP8X" && cs[0].data[0]&webpFlagEXIF != 0
	if orientation == 1 {
		if exifs != 0 || flagged {
			t.Errorf("EXIF in output for orientation 1 (%d chunks, flag %v)", exifs, flagged)
		}
		return
	}
	last := cs[len(cs)-1]
	if exifs != 1 || last.fourCC != "EXIF" || !flagged {
		t.Fatalf("want one flagged EXIF chunk after the image, got %d (last %q, flag %v)", exifs, last.fourCC, flagged)
	}
	var x CaptureMeta
	readEXIF(last.data, &x)
	if len(last.data) != 26 || x.Orientation != orientation || x.EXIFUnreadable || x.HadGPS {
		t.Errorf("minimal EXIF (%d bytes) reads back as %+v", len(last.data), x)
	}
	if int(binary.LittleEndian.Uint32(out[4:])) != len(out)-8 {
		t.Errorf("RIFF size %d for %d bytes", binary.LittleEndian.Uint32(out[4:]), len(out))
	}
}

func webpChunkData(b []byte, fourCC string) []byte {
	for _, c := range splitWebP(b) {
		if c.fourCC == fourCC {
			return c.data
		}
	}
	return nil
}

func pngChunkData(t testing.TB, b []byte, typ string) []byte {
	var out []byte
	for _, c := range splitPNG(t, b) {
		if c.typ == typ {
			out = append(out, c.data...)
		}
		if c.typ == "IDAT" && typ != "IDAT" {
			break // allowlisted chunks after the image data are dropped on purpose
		}
	}
	return out
}

// TestReasonsListsEveryReason: every Reason has a message in both languages and is listed by
// Reasons, which the web layer uses to name a refusal.
func TestReasonsListsEveryReason(t *testing.T) {
	seen := map[Reason]bool{}
	for _, r := range Reasons() {
		if seen[r] {
			t.Errorf("%s listed twice", r)
		}
		seen[r] = true
		if r.Message("en") == "" || r.Message("zh-CN") == "" || r.Message("en") == r.Message("zh-CN") {
			t.Errorf("%s lacks a message in one language", r)
		}
	}
	if len(seen) != 8 {
		t.Errorf("Reasons lists %d, want 8 (add a new Reason to it)", len(seen))
	}
}
