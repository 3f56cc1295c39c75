package web

import (
	"bytes"
	"context"
	"encoding/json"
	"mime/multipart"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/dermfollow/dermfollow/imagestore/imagetest"
)

// postMessage sends a family message to /p/messages as multipart: fields in the order given
// (name, value, ...), then the file when not nil.
func (pc *parentClient) postMessage(csrf string, file []byte, fields ...string) (int, map[string]any) {
	pc.t.Helper()
	body := &bytes.Buffer{}
	mw := multipart.NewWriter(body)
	for i := 0; i+1 < len(fields); i += 2 {
		mw.WriteField(fields[i], fields[i+1])
	}
	if file != nil {
		fw, _ := mw.CreateFormFile("file", "IMG_0002.JPG")
		fw.Write(file)
	}
	mw.Close()
	req, _ := http.NewRequest("POST", pc.f.url+"/p/messages?csrf_token="+url.QueryEscape(csrf), body)
	req.Header.Set("Content-Type", mw.FormDataContentType())
	resp, b := pc.do(req)
	var out map[string]any
	json.Unmarshal([]byte(b), &out)
	return resp.StatusCode, out
}

// thread is the family's GET /p/messages.
func (pc *parentClient) thread() (int, []map[string]any) {
	pc.t.Helper()
	resp, b := pc.get("/p/messages")
	var out struct{ Messages []map[string]any }
	json.Unmarshal([]byte(b), &out)
	return resp.StatusCode, out.Messages
}

func messageOf(out map[string]any) map[string]any {
	m, _ := out["message"].(map[string]any)
	if m == nil {
		return map[string]any{}
	}
	return m
}

// The family writes with a concern photo, retries, has a photo refused with the message kept,
// is refused bad input; the clinic reads, answers and marks handled; the family reads the
// answer. Every new route refuses whoever has no right to it.
func TestFamilyConversation(t *testing.T) {
	t.Parallel()
	f := newAPIFixture(t)
	watchAuthz(f.srv)
	procedure, link := f.enrolFamily(t, "en", dueNow())
	pc := f.parentClient(t)
	csrf := csrfOf(t, pc.open(link))
	if code, ms := pc.thread(); code != 200 || len(ms) != 0 {
		t.Fatalf("empty thread = %d %v", code, ms)
	}

	code, out := pc.postMessage(csrf, imagetest.JPEG(64, 48, 5), "body", "Her cheek is swollen since this morning", "message_id", "msg-000001",
		"upload_id", "concern-00001")
	first := messageOf(out)
	if code != 201 || len(first["photo_ids"].([]any)) != 1 || out["photo_refused"] != nil {
		t.Fatalf("post with photo = %d %v", code, out)
	}
	code, out = pc.postMessage(csrf, imagetest.JPEG(64, 48, 5), "body", "Her cheek is swollen since this morning", "message_id", "msg-000001",
		"upload_id", "concern-00001")
	if code != 200 || messageOf(out)["id"] != first["id"] {
		t.Errorf("retry = %d %v, want 200 with the same message", code, out)
	}
	code, out = pc.postMessage(csrf, imagetest.HEIC(), "body", "And this one from my iPhone", "upload_id", "concern-heic1")
	refused, _ := out["photo_refused"].(map[string]any)
	if code != 201 || refused["code"] != "heic" || len(messageOf(out)["photo_ids"].([]any)) != 0 {
		t.Errorf("post with a HEIC photo = %d %v, want the message kept and the photo refused", code, out)
	}
	photos := func() int {
		var n int
		f.pool.QueryRow(context.Background(), `select count(*) from photos where procedure_id = $1`, procedure).Scan(&n)
		return n
	}
	before := photos()
	for name, body := range map[string]string{"empty": " ", "too long": strings.Repeat("a", 2001)} {
		if code, out := pc.postMessage(csrf, imagetest.JPEG(64, 48, 6), "body", body, "upload_id", "concern-bad-"+strings.ReplaceAll(name, " ", "")); code != 422 {
			t.Errorf("%s message = %d %v", name, code, out)
		}
	}
	if code, _ := pc.postMessage(csrf, nil, "body", "bad\x01text"); code != 422 {
		t.Errorf("control character = %d", code)
	}
	if photos() != before {
		t.Error("a refused message stored its photo")
	}
	if code, _ := pc.postMessage("", nil, "body", "no form token"); code != 403 {
		t.Errorf("without the form token = %d", code)
	}

	// The clinic reads (the family's messages unread), answers, marks handled.
	var th struct{ Messages []map[string]any }
	api := "/api/v1/procedures/" + procedure + "/messages"
	if code := f.call(t, "GET", api, f.clinician, nil, &th); code != 200 || len(th.Messages) != 2 || th.Messages[0]["unread"] != true ||
		th.Messages[0]["author"] != "family" {
		t.Fatalf("clinic thread = %d %v", code, th.Messages)
	}
	var reply map[string]any
	if code := f.call(t, "POST", api, f.clinician, map[string]string{"body": "Please send a photo tomorrow morning."}, &reply); code != 201 {
		t.Fatalf("reply = %d %v", code, reply)
	}
	var handled map[string]any
	if code := f.call(t, "POST", api+"/"+first["id"].(string)+"/handled", f.admin, nil, &handled); code != 200 || handled["handled"] != true {
		t.Errorf("handled = %d %v", code, handled)
	}
	code, ms := pc.thread()
	if code != 200 || len(ms) != 3 || ms[2]["author"] != "clinic" || ms[2]["author_name"] != nil {
		t.Errorf("family thread after the reply = %d %v", code, ms)
	}

	// Authorization: no session, another family, another clinic, a researcher.
	anon := f.parentClient(t)
	if code, _ := anon.thread(); code != 401 {
		t.Errorf("thread without a session = %d", code)
	}
	if code, _ := anon.postMessage("x", nil, "body", "hello"); code != 401 {
		t.Errorf("post without a session = %d", code)
	}
	_, otherLink := f.enrolFamily(t, "en", dueNow())
	other := f.parentClient(t)
	other.open(otherLink)
	if code, ms := other.thread(); code != 200 || len(ms) != 0 {
		t.Errorf("another family's thread = %d %v", code, ms)
	}
	for _, c := range []struct {
		who, token string
		want       int
	}{{"other clinic", f.outsider, 404}, {"researcher", f.researcher, 403}, {"nobody", "", 401}} {
		if got := f.send(t, "GET", api, c.token, nil, false); got != c.want {
			t.Errorf("thread read by %s = %d, want %d", c.who, got, c.want)
		}
		if got := f.send(t, "POST", api, c.token, map[string]string{"body": "hi"}, false); got != c.want {
			t.Errorf("reply by %s = %d, want %d", c.who, got, c.want)
		}
		if got := f.send(t, "POST", api+"/"+first["id"].(string)+"/handled", c.token, nil, false); got != c.want {
			t.Errorf("handled by %s = %d, want %d", c.who, got, c.want)
		}
	}
}

// Concern photos sent first through POST /p/photos with kind=concern, then named by a JSON
// post; a burst of posts is limited, and every acknowledged one is in the thread; a revoked
// link ends the conversation at once.
func TestFamilyPostsJSONBurstAndRevocation(t *testing.T) {
	t.Parallel()
	f := newAPIFixture(t)
	watchAuthz(f.srv)
	procedure, link := f.enrolFamily(t, "en", dueNow())
	pc := f.parentClient(t)
	csrf := csrfOf(t, pc.open(link))
	resp, body := pc.post(csrf, map[string]string{"kind": "concern", "upload_id": "concern-json1"}, imagetest.JPEG(64, 48, 7))
	var photo struct{ ID, Kind, Timepoint string }
	json.Unmarshal([]byte(body), &photo)
	if resp.StatusCode != 201 || photo.Kind != "concern" || photo.Timepoint != "" {
		t.Fatalf("concern upload = %d %s", resp.StatusCode, body)
	}
	send := func(v any) (int, map[string]any) {
		b, _ := json.Marshal(v)
		req, _ := http.NewRequest("POST", f.url+"/p/messages", bytes.NewReader(b))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-CSRF-Token", csrf)
		resp, body := pc.do(req)
		var out map[string]any
		json.Unmarshal([]byte(body), &out)
		return resp.StatusCode, out
	}
	code, out := send(map[string]any{"body": "blisters", "photo_ids": []string{photo.ID}})
	if code != 201 || messageOf(out)["photo_ids"].([]any)[0] != photo.ID {
		t.Fatalf("JSON post = %d %v", code, out)
	}
	if code, _ := send(map[string]any{"body": "again", "photo_ids": []string{uuid.NewString()}}); code != 422 {
		t.Errorf("unknown photo = %d", code)
	}
	acked := 1
	statuses := map[int]int{}
	for range 100 {
		code, _ := send(map[string]any{"body": "are you there?"})
		statuses[code]++
		if code == 201 {
			acked++
		}
	}
	if statuses[429] == 0 || acked > 10 {
		t.Errorf("burst of 100: %v", statuses)
	}
	if _, ms := pc.thread(); len(ms) != acked {
		t.Errorf("thread holds %d messages, %d acknowledged", len(ms), acked)
	}
	var links struct{ Links []struct{ ID string } }
	if code := f.call(t, "GET", "/api/v1/procedures/"+procedure+"/parent-links", f.clinician, nil, &links); code != 200 || len(links.Links) == 0 {
		t.Fatal(code)
	}
	for _, l := range links.Links {
		f.call(t, "DELETE", "/api/v1/parent-links/"+l.ID, f.clinician, nil, nil)
	}
	if code, _ := pc.postMessage(csrf, nil, "body", "hello?"); code != 401 {
		t.Errorf("post on a revoked link = %d", code)
	}
	var n int
	f.pool.QueryRow(context.Background(), `select count(*) from messages where procedure_id = $1 and kind = 'family'`, procedure).Scan(&n)
	if n != acked {
		t.Errorf("%d family messages stored, %d acknowledged", n, acked)
	}
}
