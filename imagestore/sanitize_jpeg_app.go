package imagestore

import (
	"bytes"
	"encoding/binary"
)

// APPn identifiers.
const (
	jfifID        = "JFIF\x00"
	jfxxID        = "JFXX\x00"
	exifID        = "Exif\x00"
	xmpID         = "http://ns.adobe.com/xap/1.0/\x00"
	xmpExtendedID = "http://ns.adobe.com/xmp/extension/\x00"
	iccID         = "ICC_PROFILE\x00"
	mpfID         = "MPF\x00"
	flashPixID    = "FPXR\x00"
	photoshopID   = "Photoshop 3.0\x00"
	adobeID       = "Adobe"
)

const (
	// jfifLen is the APP0 JFIF payload without a thumbnail.
	jfifLen = 14
	// adobeLen is the APP14 Adobe payload libjpeg reads.
	adobeLen = 12
	// iccHeaderLen is the ICC_PROFILE identifier plus sequence number and chunk count.
	iccHeaderLen = 14
)

// iccChunk is one APP2 segment of an ICC profile split across segments.
type iccChunk struct {
	seq, count byte
	off, n     int64
}

// app sorts an APPn segment into kept (JFIF, ICC, Adobe) or removed, by its identifier.
func (p *jpegPlanner) app(m byte, pos, n int64) error {
	payloadLen := n - 4
	var idBuf [40]byte
	id := idBuf[:min(payloadLen, int64(len(idBuf)))]
	if err := readFull(p.r, id, pos+4); err != nil {
		return err
	}
	has := func(prefix string) bool { return bytes.HasPrefix(id, []byte(prefix)) }
	beforeScan := !p.sawSOS
	switch {
	case m == jpegAPP0 && has(jfifID) && payloadLen >= jfifLen && p.jfif == nil && beforeScan:
		if payloadLen == jfifLen && id[12] == 0 && id[13] == 0 {
			p.jfif = &piece{off: pos, n: n}
			return nil
		}
		// Rewrite without the thumbnail, which may show an uncropped original.
		lit := append([]byte{0xFF, jpegAPP0, 0, 2 + jfifLen}, id[:12]...)
		p.jfif = &piece{lit: append(lit, 0, 0)}
		p.b.drop(RemovedJFIFThumbnail, payloadLen-jfifLen)
	case m == jpegAPP0 && has(jfxxID):
		p.b.drop(RemovedJFIFThumbnail, n)
	case m == jpegAPP1 && has(exifID):
		p.b.drop(RemovedEXIF, n)
		p.b.meta.HadEXIF = true
		if p.sawEXIF || !beforeScan {
			return nil
		}
		p.sawEXIF = true
		if payloadLen < 6 {
			p.b.meta.EXIFUnreadable = true
			return nil
		}
		p.exifBlock = make([]byte, payloadLen-6)
		return readFull(p.r, p.exifBlock, pos+4+6)
	case m == jpegAPP1 && has(xmpID):
		p.b.drop(RemovedXMP, n)
		p.b.meta.HadXMP = true
	case m == jpegAPP1 && has(xmpExtendedID):
		p.b.drop(RemovedXMPExtended, n)
		p.b.meta.HadXMP = true
	case m == jpegAPP2 && has(iccID) && payloadLen >= iccHeaderLen && beforeScan:
		if len(p.icc) == 0 {
			p.rest = append(p.rest, piece{off: -1})
		}
		p.icc = append(p.icc, iccChunk{seq: id[12], count: id[13], off: pos, n: n})
	case m == jpegAPP2 && has(iccID):
		// libjpeg reads the profile only from the header; a chunk between scans is ignored.
		p.b.drop(RemovedICCInvalid, n)
	case m == jpegAPP2 && has(mpfID):
		p.b.drop(RemovedMPF, n)
	case m == jpegAPP2 && has(flashPixID):
		p.b.drop(RemovedFlashPix, n)
	case m == jpegAPP13 && has(photoshopID):
		p.b.drop(RemovedIPTC, n)
	case m == jpegAPP14 && has(adobeID) && payloadLen >= adobeLen && beforeScan:
		// libjpeg and image/jpeg both use the last Adobe segment of the header: keep that one.
		if k := p.adobeAt; k >= 0 {
			old := p.rest[k]
			p.b.drop(RemovedAppOther, old.n+int64(len(old.lit)))
			p.rest[k] = piece{} // keeps nothing
		}
		p.adobeAt = len(p.rest)
		if payloadLen == adobeLen {
			p.rest = append(p.rest, piece{off: pos, n: n})
			return nil
		}
		lit := append([]byte{0xFF, jpegAPP14, 0, 2 + adobeLen}, id[:adobeLen]...)
		p.rest = append(p.rest, piece{lit: lit})
		p.b.drop(RemovedAppOther, payloadLen-adobeLen)
	default:
		p.b.drop(RemovedAppOther, n)
	}
	return nil
}

// validICC checks that the chunks form one complete profile: the same count everywhere and
// every sequence number from 1 to count exactly once. Viewers ignore an incomplete profile.
func validICC(chunks []iccChunk) bool {
	if len(chunks) == 0 || len(chunks) != int(chunks[0].count) {
		return false
	}
	var seen [256]bool
	for _, c := range chunks {
		if c.count != chunks[0].count || c.seq == 0 || c.seq > c.count || seen[c.seq] {
			return false
		}
		seen[c.seq] = true
	}
	return true
}

// orientationEXIFSegment builds the only EXIF a JPEG output may carry: an APP1 holding
// orientationTIFF.
func orientationEXIFSegment(orientation int) []byte {
	seg := []byte{0xFF, jpegAPP1, 0, 0}
	seg = append(seg, "Exif\x00\x00"...)
	seg = append(seg, orientationTIFF(orientation)...)
	binary.BigEndian.PutUint16(seg[2:4], uint16(len(seg)-2))
	return seg
}
