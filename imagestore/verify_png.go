package imagestore

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
)

// png checks a PNG chunk by chunk: IHDR first, allowlisted chunks once each before the image
// data, one run of IDATs, every CRC, and IEND last.
func (v *verifier) png() error {
	var sig [8]byte
	if err := v.read(sig[:]); err != nil {
		return err
	}
	seen := make(map[string]bool)
	var hdr, crcBuf [8]byte
	buf := make([]byte, 32<<10)
	idat := 0 // 0 before, 1 during, 2 after the IDAT run
	for first := true; ; first = false {
		if err := v.read(hdr[:]); err != nil {
			return err
		}
		length := int64(binary.BigEndian.Uint32(hdr[:4]))
		typ := string(hdr[4:8])
		if length > 1<<31-1 {
			return errors.New("png: bad chunk length")
		}
		if first != (typ == "IHDR") {
			return errors.New("png: IHDR is not the first chunk")
		}
		if idat == 1 && typ != "IDAT" {
			idat = 2
		}
		switch typ {
		case "IHDR":
			if length != 13 {
				return errors.New("png: bad IHDR")
			}
		case "PLTE":
			if seen[typ] || idat != 0 {
				return errors.New("png: misplaced PLTE")
			}
		case "IDAT":
			if idat == 2 {
				return errors.New("png: IDAT chunks not consecutive")
			}
			idat = 1
		case "IEND":
			if length != 0 || idat == 0 {
				return errors.New("png: bad IEND")
			}
		case "iCCP", "sRGB", "gAMA", "cHRM", "cICP", "tRNS", "pHYs", "sBIT", "eXIf":
			if seen[typ] || idat != 0 {
				return fmt.Errorf("png: misplaced or repeated %s", typ)
			}
			if typ == "eXIf" && length != int64(len(verifyOrientationEXIF)-6) {
				return errors.New("png: eXIf other than one Orientation")
			}
		default:
			return fmt.Errorf("png: chunk %q not allowed", typ)
		}
		seen[typ] = true
		crc := crc32.ChecksumIEEE(hdr[4:8])
		for left := length; left > 0; {
			p := buf[:min(left, int64(len(buf)))]
			if err := v.read(p); err != nil {
				return err
			}
			if typ == "eXIf" && !isOrientationTIFF(p) {
				return errors.New("png: eXIf other than one Orientation")
			}
			crc = crc32.Update(crc, crc32.IEEETable, p)
			left -= int64(len(p))
		}
		if err := v.read(crcBuf[:4]); err != nil {
			return err
		}
		if binary.BigEndian.Uint32(crcBuf[:4]) != crc {
			return errors.New("png: bad CRC")
		}
		if typ == "IEND" {
			return nil
		}
	}
}
