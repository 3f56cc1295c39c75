package imagestore

import (
	"bytes"
	"encoding/binary"
)

// Format is an image container format accepted for upload, identified by content.
type Format int

// The accepted formats. FormatUnknown is the zero value, never returned with a nil error.
const (
	FormatUnknown Format = iota
	FormatJPEG
	FormatPNG
	FormatWebP
)

// String returns a short lower-case name ("jpeg", "png", "webp").
func (f Format) String() string {
	switch f {
	case FormatJPEG:
		return "jpeg"
	case FormatPNG:
		return "png"
	case FormatWebP:
		return "webp"
	}
	return "unknown"
}

// ContentType returns the MIME type to store and serve the format with.
func (f Format) ContentType() string {
	switch f {
	case FormatJPEG:
		return "image/jpeg"
	case FormatPNG:
		return "image/png"
	case FormatWebP:
		return "image/webp"
	}
	return "application/octet-stream"
}

// Ext returns the file name extension with its dot (".jpg", ".png", ".webp"), for downloads and
// exports; object keys never carry it.
func (f Format) Ext() string {
	switch f {
	case FormatJPEG:
		return ".jpg"
	case FormatPNG:
		return ".png"
	case FormatWebP:
		return ".webp"
	}
	return ""
}

// SniffLen is how many leading bytes Sniff needs to see to recognise everything it knows.
const SniffLen = 64

const pngSignature = "\x89PNG\r\n\x1a\n"

// isHEIFBrand reports ISO-BMFF brands of the HEIF family (HEIC, HEIF, AVIF). Phones produce
// them, so they get their own reason and a message telling how to send JPEG instead.
func isHEIFBrand(b []byte) bool {
	switch string(b) {
	case "heic", "heix", "hevc", "hevx", "heim", "heis", "hevm", "hevs",
		"mif1", "mif2", "msf1", "avif", "avis", "avio":
		return true
	}
	return false
}

// Sniff identifies the format from the first bytes of a file (at least SniffLen of them when
// the file is that long); names and declared content types are never trusted. It returns a
// *RejectError with ReasonHEIC for the HEIF family and ReasonUnsupported for anything else
// that is not JPEG, PNG or WebP.
func Sniff(head []byte) (Format, error) {
	switch {
	case len(head) >= 3 && head[0] == 0xFF && head[1] == 0xD8 && head[2] == 0xFF:
		return FormatJPEG, nil
	case bytes.HasPrefix(head, []byte(pngSignature)):
		return FormatPNG, nil
	case len(head) >= 12 && string(head[:4]) == "RIFF" && string(head[8:12]) == "WEBP":
		return FormatWebP, nil
	case len(head) >= 12 && string(head[4:8]) == "ftyp":
		if isHEIF(head) {
			return FormatUnknown, reject(ReasonHEIC, "HEIF-family ftyp brand")
		}
		return FormatUnknown, reject(ReasonUnsupported, "ISO media file (video?)")
	}
	return FormatUnknown, reject(ReasonUnsupported, "not JPEG, PNG or WebP")
}

// isHEIF looks at the major brand and the compatible brands visible in head.
func isHEIF(head []byte) bool {
	boxLen := int(binary.BigEndian.Uint32(head[:4]))
	if boxLen > len(head) || boxLen < 12 {
		boxLen = len(head)
	}
	if isHEIFBrand(head[8:12]) {
		return true
	}
	for off := 16; off+4 <= boxLen; off += 4 {
		if isHEIFBrand(head[off : off+4]) {
			return true
		}
	}
	return false
}
