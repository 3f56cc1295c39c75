package imagestore

// Limits bound the work done on an upload; every one is checked before the expensive part
// (reading image data, decoding pixels). A zero field means its DefaultLimits value.
type Limits struct {
	// MaxBytes is the largest file accepted.
	MaxBytes int64
	// MaxPixels is the largest width*height accepted (decompression bombs).
	MaxPixels int64
	// MaxSide is the largest width or height accepted.
	MaxSide int
	// MaxPixelsPerByte is the most width*height accepted per byte of file. No photo comes
	// near it (a JPEG needs at least a bit per 8x8 block: 512 pixels per byte at best, for
	// greyscale; deflate packs 8-bit RGB at most about 340 per byte; only drawings with few
	// colours go beyond), so a header that claims more is a decompression bomb or lies, and
	// is refused before anything is allocated for it.
	MaxPixelsPerByte int64
	// MaxSegments bounds JPEG marker segments, PNG chunks other than IDAT (libpng writes 8 KiB
	// IDATs, so a large PNG legitimately has thousands; they are bounded by MaxBytes) and WebP
	// chunks.
	MaxSegments int
}

// DefaultLimits fit phone photos with room to spare: 30 MiB, 100 megapixels, 20000 px per
// side, 1024 pixels per byte, 1000 segments.
func DefaultLimits() Limits {
	return Limits{MaxBytes: 30 << 20, MaxPixels: 100_000_000, MaxSide: 20000, MaxPixelsPerByte: 1024,
		MaxSegments: 1000}
}

// WithDefaults returns l with every zero field set to its DefaultLimits value.
func (l Limits) WithDefaults() Limits {
	d := DefaultLimits()
	if l.MaxBytes <= 0 {
		l.MaxBytes = d.MaxBytes
	}
	if l.MaxPixels <= 0 {
		l.MaxPixels = d.MaxPixels
	}
	if l.MaxSide <= 0 {
		l.MaxSide = d.MaxSide
	}
	if l.MaxPixelsPerByte <= 0 {
		l.MaxPixelsPerByte = d.MaxPixelsPerByte
	}
	if l.MaxSegments <= 0 {
		l.MaxSegments = d.MaxSegments
	}
	return l
}

func (l Limits) checkBytes(size int64) error {
	if size > l.MaxBytes {
		return rejectf(ReasonTooLarge, "%d bytes, limit %d", size, l.MaxBytes)
	}
	return nil
}

func (l Limits) checkDims(w, h int) error {
	if w <= 0 || h <= 0 {
		return rejectf(ReasonMalformed, "image dimensions %dx%d", w, h)
	}
	if w > l.MaxSide || h > l.MaxSide || int64(w)*int64(h) > l.MaxPixels {
		return rejectf(ReasonTooManyPixels, "%dx%d, limit %d px per side and %d pixels",
			w, h, l.MaxSide, l.MaxPixels)
	}
	return nil
}

// checkDensity refuses w*h pixels claimed by a file of size bytes when that is more than
// MaxPixelsPerByte per byte.
func (l Limits) checkDensity(w, h int, size int64) error {
	if px := int64(w) * int64(h); ceilDiv(px, l.MaxPixelsPerByte) > size {
		return rejectf(ReasonTooManyPixels, "%dx%d in %d bytes: more than %d pixels per byte",
			w, h, size, l.MaxPixelsPerByte)
	}
	return nil
}

func (l Limits) checkSegments(n int) error {
	if n > l.MaxSegments {
		return rejectf(ReasonTooComplex, "more than %d segments", l.MaxSegments)
	}
	return nil
}
