package imagestore

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// RemovalKind names a kind of metadata the sanitizer removed.
type RemovalKind string

// The removal kinds. RemovedGPS is reported in addition to RemovedEXIF: its bytes (the GPS
// IFD and its values) are part of the EXIF bytes. RemovedStrayBytes counts the bytes of a JPEG
// that belong to no marker segment (padding or garbage between segments, 0xFF fill before a
// marker); decoders skip them.
const (
	RemovedEXIF          RemovalKind = "exif"
	RemovedGPS           RemovalKind = "gps"
	RemovedXMP           RemovalKind = "xmp"
	RemovedXMPExtended   RemovalKind = "xmp-extended"
	RemovedIPTC          RemovalKind = "iptc"
	RemovedComment       RemovalKind = "comment"
	RemovedMPF           RemovalKind = "mpf"
	RemovedFlashPix      RemovalKind = "flashpix"
	RemovedJFIFThumbnail RemovalKind = "jfif-thumbnail"
	RemovedICCInvalid    RemovalKind = "icc-invalid"
	RemovedAppOther      RemovalKind = "app-other"
	RemovedTrailer       RemovalKind = "trailer"
	RemovedStrayBytes    RemovalKind = "stray-bytes"
	RemovedPNGText       RemovalKind = "png-text"
	RemovedPNGTime       RemovalKind = "png-time"
	RemovedPNGEXIF       RemovalKind = "png-exif"
	RemovedPNGAnimation  RemovalKind = "png-animation"
	RemovedPNGOther      RemovalKind = "png-other"
	RemovedPNGTrailer    RemovalKind = "png-trailer"
	RemovedWebPEXIF      RemovalKind = "webp-exif"
	RemovedWebPXMP       RemovalKind = "webp-xmp"
	RemovedWebPOther     RemovalKind = "webp-other"
	RemovedWebPTrailer   RemovalKind = "webp-trailer"
)

// Removal is what was removed: a kind and a byte count, never a value.
type Removal struct {
	Kind  RemovalKind
	Bytes int64
}

// Clean is a sanitized photo: a plan of byte ranges of the original plus small synthesized
// pieces (a minimal EXIF, rewritten headers). Its bytes are produced on demand from the
// original, which must stay readable (the spooled temp file stays open) while they are read.
type Clean struct {
	Format  Format
	Meta    CaptureMeta
	Removed []Removal

	src    io.ReaderAt
	pieces []piece
	size   int64
}

// piece is either a byte range of the source or, when lit is not nil, literal bytes.
type piece struct {
	off, n int64
	lit    []byte
}

// Size is the length of the clean file in bytes.
func (c *Clean) Size() int64 { return c.size }

// NewReader returns a reader of the clean file. It may be called any number of times; the
// readers are independent.
func (c *Clean) NewReader() io.Reader {
	rs := make([]io.Reader, 0, len(c.pieces))
	for _, p := range c.pieces {
		if p.lit != nil {
			rs = append(rs, bytes.NewReader(p.lit))
		} else {
			rs = append(rs, io.NewSectionReader(c.src, p.off, p.n))
		}
	}
	return io.MultiReader(rs...)
}

// readInto fills dst (len Size()) with the clean file.
func (c *Clean) readInto(dst []byte) error {
	var at int64
	for _, p := range c.pieces {
		if p.lit != nil {
			copy(dst[at:], p.lit)
			at += int64(len(p.lit))
			continue
		}
		if _, err := c.src.ReadAt(dst[at:at+p.n], p.off); err != nil {
			return fmt.Errorf("imagestore: read source at %d: %w", p.off, err)
		}
		at += p.n
	}
	return nil
}

// Sanitize plans the clean version of the photo in r (size bytes): it sniffs the format,
// checks lim, reads capture metadata, decides what to keep, and verifies the result with the
// independent verifier. Only headers and metadata blocks are held in memory (about 200 KiB in
// all); the image data is scanned in fixed-size blocks. Refusals are *RejectError. The
// returned Clean reads from r, which must stay open while its bytes are read.
func Sanitize(r io.ReaderAt, size int64, lim Limits) (*Clean, error) {
	c, err := plan(r, size, lim)
	if err != nil {
		return nil, err
	}
	got, verr := Verify(c.NewReader(), c.size)
	if err := verified(c, got, verr); err != nil {
		return nil, err
	}
	return c, nil
}

// SanitizeBytes is Sanitize for a photo already in memory; it returns the clean bytes (the
// one copy it allocates) with the plan that produced them.
func SanitizeBytes(b []byte, lim Limits) ([]byte, *Clean, error) {
	c, err := plan(bytes.NewReader(b), int64(len(b)), lim)
	if err != nil {
		return nil, nil, err
	}
	out := make([]byte, c.size)
	if err := c.readInto(out); err != nil {
		return nil, nil, err
	}
	got, verr := Verify(bytes.NewReader(out), c.size)
	if err := verified(c, got, verr); err != nil {
		return nil, nil, err
	}
	return out, c, nil
}

func verified(c *Clean, got Format, err error) error {
	if err == nil && got != c.Format {
		err = fmt.Errorf("verified as %s, planned as %s", got, c.Format)
	}
	if err != nil {
		return &RejectError{Reason: ReasonUnclean, Detail: "output failed verification", Err: err}
	}
	return nil
}

func plan(r io.ReaderAt, size int64, lim Limits) (*Clean, error) {
	lim = lim.WithDefaults()
	if size < 0 {
		return nil, fmt.Errorf("imagestore: negative size %d", size)
	}
	if err := lim.checkBytes(size); err != nil {
		return nil, err
	}
	head := make([]byte, min(size, SniffLen))
	if err := readFull(r, head, 0); err != nil {
		return nil, err
	}
	f, err := Sniff(head)
	if err != nil {
		return nil, err
	}
	var b *planBuilder
	switch f {
	case FormatJPEG:
		b, err = planJPEG(r, size, lim)
	case FormatPNG:
		b, err = planPNG(r, size, lim)
	case FormatWebP:
		b, err = planWebP(r, size, lim)
	}
	if err != nil {
		return nil, err
	}
	c := &Clean{Format: f, Meta: b.meta, Removed: b.removed, src: r, pieces: b.pieces}
	for _, p := range c.pieces {
		if p.lit != nil {
			c.size += int64(len(p.lit))
		} else {
			c.size += p.n
		}
	}
	return c, nil
}

// planBuilder collects the output pieces, the removals and the capture metadata of one file.
type planBuilder struct {
	pieces  []piece
	removed []Removal
	meta    CaptureMeta
}

func newPlanBuilder() *planBuilder {
	return &planBuilder{meta: CaptureMeta{Orientation: 1}}
}

// keep appends a source range, merging it with the previous one when contiguous so that a
// file with thousands of kept segments still has only a few pieces.
func (b *planBuilder) keep(off, n int64) {
	if n == 0 {
		return
	}
	if k := len(b.pieces) - 1; k >= 0 && b.pieces[k].lit == nil && b.pieces[k].off+b.pieces[k].n == off {
		b.pieces[k].n += n
		return
	}
	b.pieces = append(b.pieces, piece{off: off, n: n})
}

func (b *planBuilder) add(lit []byte) {
	b.pieces = append(b.pieces, piece{lit: lit})
}

// addPiece appends a piece as it is: literal bytes, or a source range merged as keep does.
func (b *planBuilder) addPiece(it piece) {
	if it.lit != nil {
		b.add(it.lit)
	} else {
		b.keep(it.off, it.n)
	}
}

func (b *planBuilder) drop(kind RemovalKind, n int64) {
	if n <= 0 {
		return
	}
	for i := range b.removed {
		if b.removed[i].Kind == kind {
			b.removed[i].Bytes += n
			return
		}
	}
	b.removed = append(b.removed, Removal{Kind: kind, Bytes: n})
}

// orientationTIFF is the only EXIF data an output may carry (in a JPEG APP1, a PNG eXIf or a
// WebP EXIF chunk): a big-endian TIFF header and one IFD holding one entry, Orientation, and no next
// IFD.
func orientationTIFF(orientation int) []byte {
	be := binary.BigEndian
	t := []byte("MM\x00\x2a")
	t = be.AppendUint32(t, 8) // IFD0 right after the header
	t = be.AppendUint16(t, 1) // one entry
	t = be.AppendUint16(t, tagOrientation)
	t = be.AppendUint16(t, tiffShort)
	t = be.AppendUint32(t, 1) // count
	t = be.AppendUint16(t, uint16(orientation))
	t = be.AppendUint16(t, 0) // value padding
	t = be.AppendUint32(t, 0) // no next IFD
	return t
}

// readFull reads exactly len(p) bytes at off; a short file is malformed, not an I/O error.
func readFull(r io.ReaderAt, p []byte, off int64) error {
	n, err := r.ReadAt(p, off)
	if n == len(p) {
		return nil
	}
	if err == nil || errors.Is(err, io.EOF) {
		return rejectf(ReasonMalformed, "truncated at offset %d", off+int64(n))
	}
	return fmt.Errorf("imagestore: read at %d: %w", off, err)
}
