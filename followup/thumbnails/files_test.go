package thumbnails

import (
	"bytes"
	"encoding/binary"
	"hash/crc32"
	"image"
	"image/color"
	"image/png"
	"testing"

	"github.com/dermfollow/dermfollow/followup/followuptest"
)

// troubleFile is a stored photo the thumbnailer cannot make thumbnails of, and what it is.
type troubleFile struct {
	name string
	data []byte
}

// refusedKinds are the files the sanitizer learnt to refuse after photos were stored (a
// JPEG with arithmetic coding or 12-bit samples, a PNG whose zlib stream is corrupt, a 16-bit
// PNG with its last image bytes damaged, a 4 KB lossless WebP that claims 100 MP): a row
// stored before may hold one, so the thumbnailer must pass them by as it does the rest.
func refusedKinds(t *testing.T) []troubleFile {
	t.Helper()
	base := followuptest.JPEG(t, 5)
	sof := bytes.Index(base, []byte{0xff, 0xc0})
	if sof < 0 {
		t.Fatal("no SOF0 in the test JPEG")
	}
	arithmetic := bytes.Clone(base)
	arithmetic[sof+1] = 0xc9 // SOF9: arithmetic-coded, sequential
	twelveBit := bytes.Clone(base)
	twelveBit[sof+4] = 12 // sample precision
	small := image.NewNRGBA(image.Rect(0, 0, 16, 12))
	for i := range small.Pix {
		small.Pix[i] = byte(i * 7)
	}
	deep := image.NewNRGBA64(image.Rect(0, 0, 300, 200))
	for y := range 200 {
		for x := range 300 {
			deep.SetNRGBA64(x, y, color.NRGBA64{uint16(x * 200), uint16(y * 300), uint16(x * y), 0xffff})
		}
	}
	return []troubleFile{
		{"jpeg-arithmetic", arithmetic},
		{"jpeg-12-bit", twelveBit},
		{"png-zlib-corrupt", damagePNG(t, encodeTestPNG(t, small), 20)},
		{"png-16-bit-end-corrupt", damagePNG(t, encodeTestPNG(t, deep), 12)},
		{"webp-4KB-claims-100MP", webpClaiming(10000, 10000, 4096)},
	}
}

func encodeTestPNG(t *testing.T, img image.Image) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// damagePNG flips 8 bytes of the first IDAT's data, from back bytes before its end, and
// gives the chunk a good CRC again: the chunks check, the compressed image does not.
func damagePNG(t *testing.T, b []byte, back int) []byte {
	t.Helper()
	b = bytes.Clone(b)
	i := bytes.Index(b, []byte("IDAT"))
	if i < 4 {
		t.Fatal("no IDAT")
	}
	n := int(binary.BigEndian.Uint32(b[i-4:]))
	data := b[i+4 : i+4+n]
	for j := n - back; j < n-back+8; j++ {
		data[j] ^= 0xa5
	}
	binary.BigEndian.PutUint32(b[i+4+n:], crc32.ChecksumIEEE(b[i:i+4+n]))
	return b
}

// webpClaiming is a simple lossless WebP of size bytes whose header claims w x h pixels.
func webpClaiming(w, h uint32, size int) []byte {
	vp8l := make([]byte, size-20)
	vp8l[0] = 0x2f
	binary.LittleEndian.PutUint32(vp8l[1:], (w-1)|(h-1)<<14)
	out := []byte("RIFF\x00\x00\x00\x00WEBPVP8L")
	out = binary.LittleEndian.AppendUint32(out, uint32(len(vp8l)))
	out = append(out, vp8l...)
	binary.LittleEndian.PutUint32(out[4:], uint32(len(out)-8))
	return out
}
