package web

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"image"
	"image/jpeg"
	"io"
	"math/rand/v2"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/dermfollow/dermfollow/followup/staging"
	"github.com/dermfollow/dermfollow/imagestore"
	"github.com/dermfollow/dermfollow/imagestore/imagetest"
)

// phonePhoto is a JPEG as a phone sends it (EXIF with GPS and a serial number, XMP, a
// motion-photo trailer) whose picture is noise, so that it is about size bytes and
// compresses badly. seed varies it.
func phonePhoto(t testing.TB, size int, seed uint64) []byte {
	t.Helper()
	side := 64
	for side*side*6/5 < size { // noise at quality 95 takes about 1.2 bytes a pixel
		side += 16
	}
	img := image.NewRGBA(image.Rect(0, 0, side*4/3, side*3/4))
	r := rand.New(rand.NewPCG(seed, 7))
	for i := range img.Pix {
		if i%4 == 3 {
			img.Pix[i] = 255
		} else {
			img.Pix[i] = byte(r.IntN(256))
		}
	}
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, img, &jpeg.Options{Quality: 95}); err != nil {
		t.Fatal(err)
	}
	seg := func(marker byte, payload []byte) []byte {
		n := len(payload) + 2
		return append([]byte{0xFF, marker, byte(n >> 8), byte(n)}, payload...)
	}
	exif := seg(0xE1, append([]byte("Exif\x00\x00"), imagetest.EXIF(1, imagetest.JPEG(16, 12, byte(seed)))...))
	xmp := seg(0xE1, append([]byte("http://ns.adobe.com/xap/1.0/\x00"),
		[]byte(`<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:Description photoshop:City="`+imagetest.XMPMarker+`"/></x:xmpmeta>`)...))
	out := append([]byte{0xFF, 0xD8}, exif...)
	out = append(out, xmp...)
	out = append(out, buf.Bytes()[2:]...)
	return imagetest.WithTrailer(out)
}

// tusClient speaks the resumable protocol through a family's session, as the page does.
type tusClient struct {
	pc   *parentClient
	csrf string
	lang string
}

var csrfRe = regexp.MustCompile(`data-csrf="([^"]+)"`)

// tusFamily opens the family's link in a new browser-like client.
func (f *apiFixture) tusFamily(t *testing.T, link string) *tusClient {
	t.Helper()
	pc := f.parentClient(t)
	home := pc.open(link)
	m := csrfRe.FindStringSubmatch(home)
	if m == nil {
		t.Fatal("the home page carries no form token")
	}
	return &tusClient{pc: pc, csrf: m[1], lang: "en"}
}

func tusMetadata(kv ...string) string {
	var parts []string
	for i := 0; i+1 < len(kv); i += 2 {
		parts = append(parts, kv[i]+" "+base64.StdEncoding.EncodeToString([]byte(kv[i+1])))
	}
	return strings.Join(parts, ",")
}

// send makes a protocol request; headers are name, value pairs.
func (tc *tusClient) send(method, path string, body []byte, headers ...string) (*http.Response, string) {
	tc.pc.t.Helper()
	req, _ := http.NewRequest(method, tc.pc.f.url+path, bytes.NewReader(body))
	if body == nil {
		req.Body, req.ContentLength = nil, 0
	}
	req.Header.Set("Tus-Resumable", "1.0.0")
	req.Header.Set("X-CSRF-Token", tc.csrf)
	req.Header.Set("Accept-Language", tc.lang)
	for i := 0; i+1 < len(headers); i += 2 {
		if headers[i+1] == "" {
			req.Header.Del(headers[i])
		} else {
			req.Header.Set(headers[i], headers[i+1])
		}
	}
	return tc.pc.do(req)
}

// create starts an upload and returns its path.
func (tc *tusClient) create(t *testing.T, size int, meta string) string {
	t.Helper()
	resp, body := tc.send("POST", "/p/uploads", nil, "Upload-Length", strconv.Itoa(size), "Upload-Metadata", meta)
	if resp.StatusCode != 201 {
		t.Fatalf("create = %d %s", resp.StatusCode, body)
	}
	loc := resp.Header.Get("Location")
	if !strings.HasPrefix(loc, "/p/uploads/") {
		t.Fatalf("Location = %q, want a path under /p/uploads/", loc)
	}
	return loc
}

func (tc *tusClient) patch(path string, offset int, chunk []byte, headers ...string) (*http.Response, string) {
	tc.pc.t.Helper()
	return tc.send("PATCH", path, chunk, append([]string{"Upload-Offset", strconv.Itoa(offset),
		"Content-Type", "application/offset+octet-stream"}, headers...)...)
}

func (tc *tusClient) offset(t *testing.T, path string) int {
	t.Helper()
	resp, _ := tc.send("HEAD", path, nil)
	if resp.StatusCode != 200 {
		t.Fatalf("HEAD = %d", resp.StatusCode)
	}
	n, err := strconv.Atoi(resp.Header.Get("Upload-Offset"))
	if err != nil {
		t.Fatalf("HEAD Upload-Offset = %q", resp.Header.Get("Upload-Offset"))
	}
	return n
}

// stagedObjects counts what the bucket holds under the staging prefix.
func (f *apiFixture) stagedObjects(t *testing.T) int {
	t.Helper()
	n := 0
	if err := f.store.List(context.Background(), staging.Prefix, func(imagestore.ObjectInfo) error { n++; return nil }); err != nil {
		t.Fatal(err)
	}
	return n
}

// storedOriginal reads the one stored photo of the procedure and checks it is sanitized.
func (f *apiFixture) storedOriginal(t *testing.T, procedure string) []byte {
	t.Helper()
	var key string
	if n := f.count(t, `select count(*) from photos where procedure_id = $1`, procedure); n != 1 {
		t.Fatalf("%d photos stored, want exactly 1", n)
	}
	if err := f.pool.QueryRow(context.Background(), `select object_key from photos where procedure_id = $1`, procedure).Scan(&key); err != nil {
		t.Fatal(err)
	}
	rc, _, err := f.store.Open(context.Background(), key)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	imagetest.ExiftoolFindsNoMetadata(t, b)
	if bytes.Contains(b, []byte(imagetest.SerialMarker)) {
		t.Error("the stored photo still holds the serial number")
	}
	return b
}

// A photo sent in pieces, with a cut and a resume in the middle, is stored once and
// sanitized; the last piece's answer carries it; nothing is left in staging.
func TestResumableUploadInPieces(t *testing.T) {
	t.Parallel()
	f := newAPIFixture(t)
	procedure, link := f.enrolFamily(t, "en", dueNow())
	tc := f.tusFamily(t, link)
	photo := phonePhoto(t, 900<<10, 1)
	path := tc.create(t, len(photo), tusMetadata("timepoint", "day-4", "view", "front", "upload_id", "pieces-0001", "filename", "IMG_0001.JPG"))

	resp, body := tc.patch(path, 0, photo[:300<<10])
	if resp.StatusCode != 204 || resp.Header.Get("Upload-Offset") != strconv.Itoa(300<<10) {
		t.Fatalf("first piece = %d offset %q %s", resp.StatusCode, resp.Header.Get("Upload-Offset"), body)
	}
	if exp := resp.Header.Get("Upload-Expires"); exp == "" {
		t.Error("no Upload-Expires")
	}
	if got := tc.offset(t, path); got != 300<<10 {
		t.Errorf("HEAD offset = %d, want %d", got, 300<<10)
	}
	if n := f.stagedObjects(t); n == 0 {
		t.Error("nothing staged after the first piece")
	}
	// A piece at the wrong offset changes nothing.
	if resp, _ := tc.patch(path, 100, photo[100:200]); resp.StatusCode != 409 {
		t.Errorf("PATCH at a wrong offset = %d, want 409", resp.StatusCode)
	}
	resp, body = tc.patch(path, 300<<10, photo[300<<10:])
	if resp.StatusCode != 200 {
		t.Fatalf("last piece = %d %s", resp.StatusCode, body)
	}
	var p struct{ ID string }
	if err := json.Unmarshal([]byte(body), &p); err != nil || p.ID == "" || resp.Header.Get(photoIDHeader) != p.ID {
		t.Fatalf("last piece's answer %s (header %q) does not carry the photo", body, resp.Header.Get(photoIDHeader))
	}
	if resp.Header.Get("Upload-Offset") != strconv.Itoa(len(photo)) {
		t.Errorf("last piece's offset = %q", resp.Header.Get("Upload-Offset"))
	}
	f.storedOriginal(t, procedure)
	if n := f.stagedObjects(t); n != 0 {
		t.Errorf("%d staged objects left after the photo was stored", n)
	}
	// HEAD and a late PATCH of the ended upload answer with the photo; a new upload of the same
	// upload_id is complete at once.
	resp, _ = tc.send("HEAD", path, nil)
	if resp.StatusCode != 200 || resp.Header.Get("Upload-Offset") != strconv.Itoa(len(photo)) || resp.Header.Get(photoIDHeader) != p.ID {
		t.Errorf("HEAD after = %d offset %q photo %q", resp.StatusCode, resp.Header.Get("Upload-Offset"), resp.Header.Get(photoIDHeader))
	}
	if resp, body := tc.patch(path, 300<<10, photo[300<<10:]); resp.StatusCode != 200 || !strings.Contains(body, p.ID) {
		t.Errorf("a repeated last piece = %d %s", resp.StatusCode, body)
	}
	resp, _ = tc.send("POST", "/p/uploads", nil, "Upload-Length", strconv.Itoa(len(photo)),
		"Upload-Metadata", tusMetadata("timepoint", "day-4", "view", "front", "upload_id", "pieces-0001"))
	if resp.StatusCode != 201 || resp.Header.Get(photoIDHeader) != p.ID {
		t.Errorf("a new upload of the stored upload_id = %d photo %q", resp.StatusCode, resp.Header.Get(photoIDHeader))
	}
	if n := f.count(t, `select count(*) from photos where procedure_id = $1`, procedure); n != 1 {
		t.Errorf("%d photos, want 1", n)
	}
	// Termination: a fresh upload given up leaves nothing, and is gone.
	path2 := tc.create(t, len(photo), tusMetadata("timepoint", "day-4", "view", "left-oblique", "upload_id", "pieces-0002"))
	tc.patch(path2, 0, photo[:400<<10])
	if resp, _ := tc.send("DELETE", path2, nil); resp.StatusCode != 204 {
		t.Errorf("DELETE = %d", resp.StatusCode)
	}
	if n := f.stagedObjects(t); n != 0 {
		t.Errorf("%d staged objects left after DELETE", n)
	}
	if resp, _ := tc.send("HEAD", path2, nil); resp.StatusCode != 404 {
		t.Errorf("HEAD of a deleted upload = %d", resp.StatusCode)
	}
	// Discovery.
	resp, _ = tc.send("OPTIONS", "/p/uploads", nil)
	if resp.StatusCode != 204 || !strings.Contains(resp.Header.Get("Tus-Extension"), "expiration") || resp.Header.Get("Tus-Max-Size") != strconv.Itoa(4<<20) {
		t.Errorf("OPTIONS = %d %v", resp.StatusCode, resp.Header)
	}
}

// A refusal that the first bytes decide comes after the first bytes; one that needs the whole
// photo comes with the last piece; either is in the family's language, and staging is empty.
func TestResumableUploadRefusals(t *testing.T) {
	t.Parallel()
	f := newAPIFixture(t)
	_, link := f.enrolFamily(t, "en", dueNow())
	tc := f.tusFamily(t, link)
	tc.lang = "zh-CN"

	heic := append(imagetest.HEIC(), make([]byte, 600<<10)...)
	path := tc.create(t, len(heic), tusMetadata("timepoint", "day-4", "view", "front", "upload_id", "refused-heic"))
	resp, body := tc.patch(path, 0, heic)
	if resp.StatusCode != 415 || !strings.Contains(body, `"heic"`) || !strings.Contains(body, "JPEG") {
		t.Errorf("HEIC = %d %s, want 415 with the guidance", resp.StatusCode, body)
	}
	if !strings.ContainsFunc(body, func(r rune) bool { return r >= 0x4e00 && r <= 0x9fff }) {
		t.Errorf("the refusal is not in Chinese: %s", body)
	}
	if resp, _ := tc.send("HEAD", path, nil); resp.StatusCode != 415 || resp.Header.Get(refusalHeader) != "heic" {
		t.Errorf("HEAD of the refused upload = %d %q", resp.StatusCode, resp.Header.Get(refusalHeader))
	}

	// Pixels beyond the limit are in the header.
	big := f.bomb(t)
	path = tc.create(t, len(big), tusMetadata("timepoint", "day-4", "view", "front", "upload_id", "refused-bomb"))
	if resp, body := tc.patch(path, 0, big); resp.StatusCode != 413 {
		t.Errorf("a decompression bomb = %d %s, want 413", resp.StatusCode, body)
	}
	// The same, cut before its header was all in: the next piece is checked with the first.
	path = tc.create(t, len(big), tusMetadata("timepoint", "day-4", "view", "front", "upload_id", "refused-bomb-2"))
	if resp, body := tc.patch(path, 0, big[:20]); resp.StatusCode != 204 {
		t.Fatalf("the bomb's first 20 bytes = %d %s, want 204 (nothing decided yet)", resp.StatusCode, body)
	}
	if resp, body := tc.patch(path, 20, big[20:]); resp.StatusCode != 413 {
		t.Errorf("the rest of a decompression bomb = %d %s, want 413", resp.StatusCode, body)
	}

	// A JPEG broken after its header is refused once whole.
	photo := phonePhoto(t, 500<<10, 3)
	broken := photo[:len(photo)*8/10] // the image data ends without its end
	path = tc.create(t, len(broken), tusMetadata("timepoint", "day-4", "view", "front", "upload_id", "refused-broken"))
	tc.patch(path, 0, broken[:300<<10])
	if resp, body := tc.patch(path, 300<<10, broken[300<<10:]); resp.StatusCode != 422 {
		t.Errorf("a broken JPEG = %d %s, want 422", resp.StatusCode, body)
	}
	if n := f.stagedObjects(t); n != 0 {
		t.Errorf("%d staged objects left after refusals", n)
	}
}

// bomb is a JPEG header that claims 30000x30000 pixels.
func (f *apiFixture) bomb(t *testing.T) []byte {
	t.Helper()
	small := imagetest.JPEG(16, 16, 1)
	i := bytes.Index(small, []byte{0xFF, 0xC0})
	out := append([]byte{}, small...)
	out[i+5], out[i+6], out[i+7], out[i+8] = 0x75, 0x30, 0x75, 0x30 // 30000 x 30000
	return append(out, make([]byte, 400<<10)...)
}

// Bad input to every handler of the protocol is refused with the JSON error shape.
func TestResumableUploadBadInput(t *testing.T) {
	t.Parallel()
	f := newAPIFixture(t)
	_, link := f.enrolFamily(t, "en", dueNow())
	tc := f.tusFamily(t, link)
	meta := tusMetadata("timepoint", "day-4", "view", "front", "upload_id", "bad-input-01")
	for _, c := range []struct {
		name    string
		headers []string
		want    int
	}{
		{"no Upload-Length", []string{"Upload-Metadata", meta}, 400},
		{"Upload-Length not a number", []string{"Upload-Length", "lots", "Upload-Metadata", meta}, 400},
		{"Upload-Length negative", []string{"Upload-Length", "-5", "Upload-Metadata", meta}, 400},
		{"Upload-Length zero", []string{"Upload-Length", "0", "Upload-Metadata", meta}, 400},
		{"deferred length", []string{"Upload-Defer-Length", "1", "Upload-Metadata", meta}, 400},
		{"over the limit", []string{"Upload-Length", strconv.Itoa(4<<20 + 1), "Upload-Metadata", meta}, 413},
		{"no metadata", []string{"Upload-Length", "1000"}, 400},
		{"no upload_id", []string{"Upload-Length", "1000", "Upload-Metadata", tusMetadata("timepoint", "day-4", "view", "front")}, 400},
		{"metadata not base64", []string{"Upload-Length", "1000", "Upload-Metadata", "timepoint %%%,view ZnJvbnQ=,upload_id YmFkLWlucHV0LTAx"}, 400},
		{"metadata twice", []string{"Upload-Length", "1000", "Upload-Metadata", meta + "," + tusMetadata("view", "front")}, 400},
		{"control characters", []string{"Upload-Length", "1000", "Upload-Metadata", tusMetadata("timepoint", "day-4\x01", "view", "front", "upload_id", "bad-input-01")}, 422},
		{"unknown step", []string{"Upload-Length", "1000", "Upload-Metadata", tusMetadata("timepoint", "day-99", "view", "front", "upload_id", "bad-input-01")}, 422},
		{"unknown view", []string{"Upload-Length", "1000", "Upload-Metadata", tusMetadata("timepoint", "day-4", "view", "back", "upload_id", "bad-input-01")}, 422},
		{"clinic's step", []string{"Upload-Length", "1000", "Upload-Metadata", tusMetadata("timepoint", "baseline", "view", "front", "upload_id", "bad-input-01")}, 422},
		{"bad upload_id", []string{"Upload-Length", "1000", "Upload-Metadata", tusMetadata("timepoint", "day-4", "view", "front", "upload_id", "x y")}, 422},
		{"no Tus-Resumable", []string{"Upload-Length", "1000", "Upload-Metadata", meta, "Tus-Resumable", ""}, 412},
		{"no form token", []string{"Upload-Length", "1000", "Upload-Metadata", meta, "X-CSRF-Token", ""}, 403},
	} {
		resp, body := tc.send("POST", "/p/uploads", nil, c.headers...)
		if resp.StatusCode != c.want {
			t.Errorf("create, %s: %d %s, want %d", c.name, resp.StatusCode, body, c.want)
		}
		var eb errorBody
		if resp.StatusCode >= 400 && (json.Unmarshal([]byte(body), &eb) != nil || eb.Error.Code == "") {
			t.Errorf("create, %s: body %q is not the JSON error shape", c.name, body)
		}
	}
	if n := f.count(t, `select count(*) from resumable_uploads`); n != 0 {
		t.Errorf("%d uploads created by bad requests", n)
	}

	path := tc.create(t, 1000, meta)
	chunk := make([]byte, 10)
	for _, c := range []struct {
		name    string
		offset  int
		body    []byte
		headers []string
		want    int
	}{
		{"offset ahead", 10, chunk, nil, 409},
		{"no offset", 0, chunk, []string{"Upload-Offset", ""}, 400},
		{"negative offset", 0, chunk, []string{"Upload-Offset", "-1"}, 400},
		{"offset not a number", 0, chunk, []string{"Upload-Offset", "x"}, 400},
		{"wrong content type", 0, chunk, []string{"Content-Type", "image/jpeg"}, 400},
		{"more than the length", 0, make([]byte, 1001), nil, 413},
		{"no form token", 0, chunk, []string{"X-CSRF-Token", ""}, 403},
	} {
		resp, body := tc.patch(path, c.offset, c.body, c.headers...)
		if resp.StatusCode != c.want {
			t.Errorf("patch, %s: %d %s, want %d", c.name, resp.StatusCode, body, c.want)
		}
	}
	for _, p := range []string{"/p/uploads/not-a-uuid", "/p/uploads/" + "0b5e8b4e-6b0e-4d0e-9b0e-0b5e8b4e6b0e"} {
		for _, m := range []string{"HEAD", "PATCH", "DELETE"} {
			resp, _ := tc.patch(p, 0, chunk)
			if m != "PATCH" {
				resp, _ = tc.send(m, p, nil)
			}
			if resp.StatusCode != 404 {
				t.Errorf("%s %s = %d, want 404", m, p, resp.StatusCode)
			}
		}
	}
	if got := tc.offset(t, path); got != 0 {
		t.Errorf("after bad pieces the offset is %d, want 0", got)
	}
}

// An upload belongs to the session that made it: another session of the same link, another
// family, a clinician and nobody find nothing there (404), and cannot change it.
func TestResumableUploadBelongsToItsSession(t *testing.T) {
	t.Parallel()
	f := newAPIFixture(t)
	watchAuthz(f.srv)
	_, link := f.enrolFamily(t, "en", dueNow())
	_, otherLink := f.enrolFamily(t, "en", dueNow())
	owner := f.tusFamily(t, link)
	photo := phonePhoto(t, 400<<10, 5)
	path := owner.create(t, len(photo), tusMetadata("timepoint", "day-4", "view", "front", "upload_id", "owned-0001"))
	owner.patch(path, 0, photo[:300<<10])

	sameLinkOtherSession := f.tusFamily(t, link)
	otherFamily := f.tusFamily(t, otherLink)
	clinician := &tusClient{pc: f.parentClient(t), lang: "en"}
	nobody := &tusClient{pc: f.parentClient(t), lang: "en"}
	for name, tc := range map[string]*tusClient{"another session": sameLinkOtherSession, "another family": otherFamily,
		"a clinician": clinician, "nobody": nobody} {
		auth := []string{}
		if tc == clinician {
			auth = []string{"Authorization", "Bearer " + f.clinician}
		}
		if resp, _ := tc.send("HEAD", path, nil, auth...); resp.StatusCode != 404 {
			t.Errorf("HEAD by %s = %d, want 404", name, resp.StatusCode)
		}
		if resp, _ := tc.patch(path, 300<<10, photo[300<<10:], auth...); resp.StatusCode != 404 {
			t.Errorf("PATCH by %s = %d, want 404", name, resp.StatusCode)
		}
		if resp, _ := tc.send("DELETE", path, nil, auth...); resp.StatusCode != 404 {
			t.Errorf("DELETE by %s = %d, want 404", name, resp.StatusCode)
		}
		if tc == clinician || tc == nobody {
			if resp, _ := tc.send("OPTIONS", "/p/uploads", nil, auth...); resp.StatusCode != 404 {
				t.Errorf("OPTIONS by %s = %d, want 404", name, resp.StatusCode)
			}
			if resp, _ := tc.send("POST", "/p/uploads", nil, append(auth, "Upload-Length", "1000", "Upload-Metadata",
				tusMetadata("timepoint", "day-4", "view", "front", "upload_id", "intruder-01"))...); resp.StatusCode != 401 {
				t.Errorf("POST by %s = %d, want 401", name, resp.StatusCode)
			}
		}
	}
	if got := owner.offset(t, path); got != 300<<10 {
		t.Errorf("the owner's offset = %d after the others' tries, want %d", got, 300<<10)
	}
	// Opening the link again in the same browser keeps the session, and the upload.
	again := owner.pc.open(link)
	owner.csrf = csrfRe.FindStringSubmatch(again)[1]
	if resp, body := owner.patch(path, 300<<10, photo[300<<10:]); resp.StatusCode != 200 {
		t.Errorf("the owner's last piece after opening the link again = %d %s", resp.StatusCode, body)
	}
}

var _ = fmt.Sprint
