package imagestore

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/rwcarlsen/goexif/exif"
)

// CaptureMeta is what the service keeps from a photo's metadata, read before stripping and
// stored as database columns, never in the file. The Had* flags record for the audit trail
// that something was present; values are never kept.
type CaptureMeta struct {
	// TakenAt is when the photo was taken (EXIF DateTimeOriginal, else DateTimeDigitized;
	// the modification time DateTime is not used). Zero if unknown. Without a recorded offset
	// it is the camera's wall clock in UTC and TakenAtHasOffset is false.
	TakenAt          time.Time
	TakenAtHasOffset bool
	// Orientation is the EXIF orientation, 1 to 8; 1 when absent or unreadable.
	Orientation int
	// Width and Height are the encoded dimensions, before orientation is applied.
	Width, Height int

	HadEXIF bool
	// EXIFUnreadable: EXIF was present but failed the structural checks or the parser; the
	// photo is still accepted (with all EXIF removed), only capture time and orientation
	// are unknown.
	EXIFUnreadable bool
	HadGPS         bool
	// HadSerial: a camera body, lens or camera serial number tag.
	HadSerial bool
	// HadOwner: an Artist or CameraOwnerName tag.
	HadOwner bool
	// HadThumbnail: an embedded preview image (EXIF IFD1).
	HadThumbnail bool
	HadMakerNote bool
	HadXMP       bool
	// HadTrailer: bytes after the image (motion-photo video, MPF secondary images).
	HadTrailer bool
}

// TIFF/EXIF tags and types the package reads or checks.
const (
	tagOrientation        = 0x0112
	tagArtist             = 0x013B
	tagExifIFD            = 0x8769
	tagGPSIFD             = 0x8825
	tagInteropIFD         = 0xA005
	tagMakerNote          = 0x927C
	tagCameraOwnerName    = 0xA430
	tagBodySerialNumber   = 0xA431
	tagLensSerialNumber   = 0xA435
	tagCameraSerialNumber = 0xC62F
	tagDateTimeOriginal   = 0x9003
	tagDateTimeDigitized  = 0x9004
	tagOffsetTimeOriginal = 0x9011
	tagOffsetTimeDigitzed = 0x9012

	tiffShort = 3
	tiffASCII = 2
	tiffLong  = 4
)

const (
	// maxEXIFBytes is the parse budget; a JPEG APP1 cannot be larger anyway.
	maxEXIFBytes = 64 << 10
	// maxIFDs and maxIFDEntries bound the walk; real files have at most 5 IFDs of ~100 entries.
	maxIFDs       = 16
	maxIFDEntries = 1024
	// maxOffsetTimeLen fits "+08:00" and its NUL with room for padding; longer is not an offset.
	maxOffsetTimeLen = 16
)

// readEXIF fills m from a TIFF-structured EXIF block and returns the size of its GPS data.
// The structure is checked here first (bounds, cycles, counts) and goexif only parses a block
// that passed, under recover. Failure never refuses the photo; it marks EXIF unreadable.
func readEXIF(block []byte, m *CaptureMeta) (gpsBytes int64) {
	m.HadEXIF = true
	facts, err := checkTIFF(block)
	if err != nil {
		m.EXIFUnreadable = true
		return 0
	}
	m.HadGPS = m.HadGPS || facts.hasGPS
	m.HadSerial = m.HadSerial || facts.hasSerial
	m.HadOwner = m.HadOwner || facts.hasOwner
	m.HadThumbnail = m.HadThumbnail || facts.hasThumbnail
	m.HadMakerNote = m.HadMakerNote || facts.hasMakerNote
	v, err := decodeEXIFValues(block)
	if err != nil {
		m.EXIFUnreadable = true
	}
	if v.orientation >= 1 && v.orientation <= 8 {
		m.Orientation = v.orientation
	}
	offset := facts.offsetOriginal
	if !v.original {
		offset = facts.offsetDigitized
	}
	m.TakenAt, m.TakenAtHasOffset = parseEXIFTime(v.dateTime, offset)
	return facts.gpsBytes
}

type tiffFacts struct {
	hasGPS, hasSerial, hasOwner, hasThumbnail, hasMakerNote bool
	gpsBytes                                                int64
	// The EXIF 2.31 offset tags, which goexif predates, read here while walking the Exif IFD.
	offsetOriginal, offsetDigitized string
}

type ifdKind int

const (
	ifdChain ifdKind = iota // IFD0 and the IFDs chained after it (IFD1: the thumbnail)
	ifdExif
	ifdGPS
	ifdInterop
)

// tiffTypeSize is the byte size of one value of each TIFF type; 0 for unknown types.
func tiffTypeSize(t uint16) uint64 {
	switch t {
	case 1, 2, 6, 7: // BYTE, ASCII, SBYTE, UNDEFINED
		return 1
	case 3, 8: // SHORT, SSHORT
		return 2
	case 4, 9, 11: // LONG, SLONG, FLOAT
		return 4
	case 5, 10, 12: // RATIONAL, SRATIONAL, DOUBLE
		return 8
	}
	return 0
}

var errEXIFStructure = errors.New("imagestore: exif structure")

// checkTIFF walks every IFD goexif would read (the IFD0 chain and the Exif, GPS and Interop
// sub-IFDs) and fails unless every IFD and every out-of-line value lies inside the block, no
// IFD is reached twice and the counts are bounded. It also notes which identifying tags are
// present.
func checkTIFF(b []byte) (tiffFacts, error) {
	if len(b) < 8 || len(b) > maxEXIFBytes {
		return tiffFacts{}, fmt.Errorf("%w: block of %d bytes", errEXIFStructure, len(b))
	}
	var order binary.ByteOrder
	switch string(b[:4]) {
	case "II*\x00":
		order = binary.LittleEndian
	case "MM\x00*":
		order = binary.BigEndian
	default:
		return tiffFacts{}, fmt.Errorf("%w: no TIFF header", errEXIFStructure)
	}
	size := uint64(len(b))
	// A block whose values do not overlap references at most its own size.
	w := &tiffWalk{b: b, order: order, size: size, valueBudget: int64(2 * size)}
	// The walk's queue and the IFDs it has reached stay here, not in w, and only this function
	// appends to the queue: that keeps both on the stack.
	visited := make(map[uint32]bool)
	queue := []tiffIFD{{off: order.Uint32(b[4:8])}}
	for len(queue) > 0 {
		d := queue[0]
		queue = queue[1:]
		if visited[d.off] {
			return w.facts, fmt.Errorf("%w: IFD at %d reached twice", errEXIFStructure, d.off)
		}
		visited[d.off] = true
		if len(visited) > maxIFDs {
			return w.facts, fmt.Errorf("%w: too many IFDs", errEXIFStructure)
		}
		off := uint64(d.off)
		if off < 8 || off+2 > size {
			return w.facts, fmt.Errorf("%w: IFD offset %d outside the block", errEXIFStructure, off)
		}
		n := uint64(order.Uint16(b[off:]))
		end := off + 2 + 12*n + 4
		if n > maxIFDEntries || end > size {
			return w.facts, fmt.Errorf("%w: IFD at %d too long", errEXIFStructure, off)
		}
		if d.kind == ifdChain && d.depth == 1 {
			w.facts.hasThumbnail = true
		}
		ifdBytes := int64(end - off)
		for e := off + 2; e < end-4; e += 12 {
			outOfLine, err := w.entry(d.kind, e)
			if err != nil {
				return w.facts, err
			}
			ifdBytes += outOfLine
			if sub, ok := w.subIFD(e); ok {
				queue = append(queue, sub)
			}
		}
		if d.kind == ifdGPS {
			w.facts.hasGPS = true
			w.facts.gpsBytes += ifdBytes
		}
		if next := order.Uint32(b[end-4:]); d.kind == ifdChain && next != 0 {
			queue = append(queue, tiffIFD{off: next, kind: ifdChain, depth: d.depth + 1})
		}
	}
	return w.facts, nil
}

// tiffIFD is an IFD waiting to be walked.
type tiffIFD struct {
	off   uint32
	kind  ifdKind
	depth int // position in the IFD0 chain
}

// tiffWalk is the block checkTIFF walks and what the walk has found so far.
type tiffWalk struct {
	b           []byte
	order       binary.ByteOrder
	size        uint64
	valueBudget int64 // bytes of values goexif may still be made to read
	facts       tiffFacts
}

// entry checks the 12-byte IFD entry at e, in an IFD of the given kind, and notes what its
// tag tells. It returns the length of its value when that lies outside the IFD (over 4
// bytes), which counts towards the GPS bytes.
func (w *tiffWalk) entry(kind ifdKind, e uint64) (outOfLine int64, err error) {
	b, order := w.b, w.order
	tag, typ := order.Uint16(b[e:]), order.Uint16(b[e+2:])
	count := uint64(order.Uint32(b[e+4:]))
	valLen := tiffTypeSize(typ) * count
	// Tags may share one value and IFDs may overlap, so the block could make goexif copy and
	// convert the same bytes thousands of times; bound the total.
	if w.valueBudget -= int64(min(valLen, w.size+1)); w.valueBudget < 0 {
		return 0, fmt.Errorf("%w: values exceed the budget", errEXIFStructure)
	}
	if valLen > 4 {
		valOff := uint64(order.Uint32(b[e+8:]))
		if valLen > w.size || valOff+valLen > w.size {
			return 0, fmt.Errorf("%w: tag %#x value outside the block", errEXIFStructure, tag)
		}
		outOfLine = int64(valLen)
	}
	switch tag {
	case tagExifIFD, tagGPSIFD, tagInteropIFD:
		if typ != tiffLong || count != 1 {
			return 0, fmt.Errorf("%w: tag %#x is not an IFD pointer", errEXIFStructure, tag)
		}
	case tagBodySerialNumber, tagLensSerialNumber, tagCameraSerialNumber:
		w.facts.hasSerial = true
	case tagArtist, tagCameraOwnerName:
		w.facts.hasOwner = true
	case tagMakerNote:
		w.facts.hasMakerNote = true
	case tagOffsetTimeOriginal, tagOffsetTimeDigitzed:
		if kind != ifdExif || typ != tiffASCII || count > maxOffsetTimeLen {
			break
		}
		if tag == tagOffsetTimeOriginal {
			w.facts.offsetOriginal = string(w.value(e, valLen))
		} else {
			w.facts.offsetDigitized = string(w.value(e, valLen))
		}
	}
	return outOfLine, nil
}

// subIFD is the IFD the entry at e points to, if its tag is one of the pointers (Exif, GPS,
// Interop) and entry has accepted it.
func (w *tiffWalk) subIFD(e uint64) (tiffIFD, bool) {
	switch tag := w.order.Uint16(w.b[e:]); tag {
	case tagExifIFD, tagGPSIFD, tagInteropIFD:
		return tiffIFD{off: w.order.Uint32(w.b[e+8:]), kind: subIFDKind(tag)}, true
	}
	return tiffIFD{}, false
}

// subIFDKind is the kind of IFD a pointer tag (Exif, GPS or Interop) points to.
func subIFDKind(tag uint16) ifdKind {
	switch tag {
	case tagGPSIFD:
		return ifdGPS
	case tagInteropIFD:
		return ifdInterop
	}
	return ifdExif
}

// value is the valLen bytes of the entry at e: inline up to 4 bytes, else at the offset the
// entry holds, which entry has checked against the block.
func (w *tiffWalk) value(e, valLen uint64) []byte {
	if valLen <= 4 {
		return w.b[e+8 : e+8+valLen]
	}
	valOff := uint64(w.order.Uint32(w.b[e+8:]))
	return w.b[valOff : valOff+valLen]
}

type exifValues struct {
	orientation int
	dateTime    string
	original    bool // dateTime is DateTimeOriginal, not DateTimeDigitized
}

// decodeEXIFValues runs goexif on a block checkTIFF accepted. Only goexif's standard parser
// runs: the maker-note parsers (package mknote) are never registered, so vendor blobs are not
// parsed at all.
func decodeEXIFValues(block []byte) (v exifValues, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("imagestore: exif parser panicked")
		}
	}()
	x, err := exif.Decode(bytes.NewReader(block))
	if x == nil {
		return v, err
	}
	// A failed sub-IFD leaves the tags of the others usable.
	if t, e := x.Get(exif.Orientation); e == nil && t.Count >= 1 {
		if o, e := t.Int(0); e == nil {
			v.orientation = o
		}
	}
	v.dateTime = exifString(x, exif.DateTimeOriginal)
	v.original = v.dateTime != ""
	if !v.original {
		v.dateTime = exifString(x, exif.DateTimeDigitized)
	}
	return v, err
}

func exifString(x *exif.Exif, name exif.FieldName) string {
	t, err := x.Get(name)
	if err != nil {
		return ""
	}
	s, err := t.StringVal()
	if err != nil {
		return ""
	}
	return s
}

// parseEXIFTime parses "2006:01:02 15:04:05" and an optional "+08:00" offset.
func parseEXIFTime(dateTime, offset string) (time.Time, bool) {
	dateTime = strings.TrimRight(dateTime, "\x00 ")
	t, err := time.Parse("2006:01:02 15:04:05", dateTime)
	if err != nil {
		return time.Time{}, false
	}
	offset = strings.TrimRight(offset, "\x00 ")
	if len(offset) != 6 || (offset[0] != '+' && offset[0] != '-') || offset[3] != ':' {
		return t, false
	}
	z, err := time.Parse("-07:00", offset)
	if err != nil {
		return t, false
	}
	_, secs := z.Zone()
	if secs < -14*3600 || secs > 14*3600 {
		return t, false
	}
	return time.Date(t.Year(), t.Month(), t.Day(), t.Hour(), t.Minute(), t.Second(), 0,
		time.FixedZone("", secs)), true
}
