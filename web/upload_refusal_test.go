package web

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"testing"

	"github.com/dermfollow/dermfollow/imagestore/imagetest"
)

// TestUploadRefusesWhatCannotBeShown: the files an attack run found that once passed the
// sanitizer and then stopped every clinic's thumbnails reach the family as the contract says:
// a JPEG in a coding the product cannot show (arithmetic-coded, 12-bit) is 415 with the
// message on sending an ordinary JPEG, a PNG whose compressed image does not inflate to what
// its header declares is 422; none of them is stored.
func TestUploadRefusesWhatCannotBeShown(t *testing.T) {
	t.Parallel()
	f := newAPIFixture(t)
	e := f.enrol(t)
	base := imagetest.JPEG(64, 48, 3)
	sof := bytes.Index(base, []byte{0xff, 0xc0})
	if sof < 0 {
		t.Fatal("no SOF0 in the test JPEG")
	}
	arithmetic := bytes.Clone(base)
	arithmetic[sof+1] = 0xc9 // SOF9: arithmetic-coded, sequential
	twelveBit := bytes.Clone(base)
	twelveBit[sof+4] = 12 // sample precision
	for i, tc := range []struct {
		name   string
		file   []byte
		status int
		code   string
	}{
		{"arithmetic-coded JPEG", arithmetic, 415, "unsupported_format"},
		{"12-bit JPEG", twelveBit, 415, "unsupported_format"},
		{"PNG whose zlib stream is damaged", damagedIDAT(t, imagetest.PNG(64, 48, 3)), 422, "bad_image"},
	} {
		code, body := f.upload(t, linkPath(e.LinkURL)+"/photos", "",
			map[string]string{"timepoint": "day-1", "view": "front", "upload_id": fmt.Sprintf("cannot-show-%02d", i)}, tc.file)
		errObj, _ := body["error"].(map[string]any)
		if code != tc.status || errObj == nil || errObj["code"] != tc.code || errObj["message"] == "" {
			t.Errorf("%s: %d %v, want %d %s with a message", tc.name, code, body, tc.status, tc.code)
		}
		if tc.status == 415 && errObj != nil && !bytes.Contains([]byte(fmt.Sprint(errObj["message"])), []byte("ordinary JPEG")) {
			t.Errorf("%s: message %q does not say how to send an ordinary JPEG", tc.name, errObj["message"])
		}
	}
	if n := f.count(t, `select count(*) from photos`); n != 0 {
		t.Errorf("%d photos stored from files the product cannot show", n)
	}
	if n := f.objects(t); n != 0 {
		t.Errorf("%d objects stored from files the product cannot show", n)
	}
}

// damagedIDAT flips 8 bytes in the middle of a PNG's first IDAT and gives the chunk a good CRC
// again: the chunks check, the compressed image does not.
func damagedIDAT(t *testing.T, b []byte) []byte {
	t.Helper()
	b = bytes.Clone(b)
	i := bytes.Index(b, []byte("IDAT"))
	if i < 4 {
		t.Fatal("no IDAT in the test PNG")
	}
	n := int(binary.BigEndian.Uint32(b[i-4:]))
	if n < 32 {
		t.Fatalf("IDAT of %d bytes is too short to damage", n)
	}
	data := b[i+4 : i+4+n]
	for j := n / 2; j < n/2+8; j++ {
		data[j] ^= 0xa5
	}
	binary.BigEndian.PutUint32(b[i+4+n:], crc32.ChecksumIEEE(b[i:i+4+n]))
	return b
}
