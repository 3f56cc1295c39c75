package web

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/dermfollow/dermfollow/followup/conversation"
	"github.com/dermfollow/dermfollow/imagestore/imagetest"
)

// Every API route, called by every kind of caller, answers the status the security model
// promises: clinicians and admins of the clinic succeed, researchers are forbidden identified
// data, another clinic's users find nothing, and callers without valid credentials are refused.
func TestAuthorizationMatrix(t *testing.T) {
	t.Parallel()
	f := newAPIFixture(t)
	watchAuthz(f.srv)
	// Hundreds of wrong tokens from one address: the throttle (TestWrongTokensThrottledAndAudited)
	// would answer them 429.
	f.srv.tokenFailures = newFailureLimiter(100000, time.Minute)
	e := f.enrol(t)
	code, photo := f.upload(t, linkPath(e.LinkURL)+"/photos", "", map[string]string{"timepoint": "day-1", "view": "front", "upload_id": "authz-photo-01"}, imagetest.JPEG(64, 48, 1))
	if code != 201 {
		t.Fatalf("upload = %d", code)
	}
	photoID := photo["id"].(string)
	if got := f.send(t, "POST", "/api/v1/procedures/"+e.ProcedureID+"/photos?retry", f.clinician, nil, true); got != 201 {
		t.Fatalf("clinic upload = %d", got)
	}
	if _, err := f.thumbs.Make(context.Background(), 5); err != nil {
		t.Fatal(err)
	}
	// A parent link token, a revoked API token and a malformed one are not API credentials.
	parentToken := e.LinkURL[strings.LastIndex(e.LinkURL, "/")+1:]
	revoked := f.newToken(t)
	if err := f.acc.RevokeToken(context.Background(), f.clinicianActor, revoked); err != nil {
		t.Fatal(err)
	}

	parent, err := f.svc.ResolveLink(context.Background(), parentToken)
	if err != nil {
		t.Fatal(err)
	}
	posted, _, err := f.srv.conv.Post(context.Background(), parent, conversation.Post{Body: "Is this normal?"})
	if err != nil {
		t.Fatal(err)
	}
	familyMessage := posted.ID

	callers := []struct{ name, token string }{
		{"clinician", f.clinician}, {"admin", f.admin}, {"researcher", f.researcher}, {"other clinic", f.outsider},
		{"no credentials", ""}, {"parent link as bearer", parentToken}, {"revoked token", revoked}, {"garbage token", "dft_" + strings.Repeat("x", 43)},
	}
	uniq := func() string { return strings.ReplaceAll(uuid.NewString(), "-", "")[:16] }
	type request struct {
		method, path string
		json         any
		photo        bool // multipart clinic upload
	}
	routes := []struct {
		name    string
		req     func() request
		success int
		// other clinic's users: 404, except where the route creates something of their own
		outsider int
	}{
		{"create patient", func() request {
			return request{"POST", "/api/v1/patients", map[string]any{"display_name": "P " + uniq(), "birth_date": "2024-01-01", "guardian_phone": "+1 555 0100"}, false}
		}, 201, 201},
		{"read patient", func() request { return request{"GET", "/api/v1/patients/" + e.PatientID, nil, false} }, 200, 404},
		// Lists answer every clinic with its own rows (TestAPIListsPage checks which).
		{"list patients", func() request { return request{"GET", "/api/v1/patients?search=wang&limit=5", nil, false} }, 200, 200},
		{"list procedures", func() request {
			return request{"GET", "/api/v1/procedures?state=active&updated_since=2026-01-01T00:00:00Z", nil, false}
		}, 200, 200},
		{"enrol", func() request {
			return request{"POST", "/api/v1/procedures", map[string]any{"patient_id": e.PatientID, "protocol": "surgical-wound", "body_site": "back", "performed_at": "2026-11-01T10:00:00Z"}, false}
		}, 201, 404},
		{"read procedure", func() request { return request{"GET", "/api/v1/procedures/" + e.ProcedureID, nil, false} }, 200, 404},
		{"set status", func() request {
			return request{"POST", "/api/v1/procedures/" + e.ProcedureID + "/status", map[string]string{"status": "active"}, false}
		}, 200, 404},
		{"create link", func() request {
			return request{"POST", "/api/v1/procedures/" + e.ProcedureID + "/parent-links", nil, false}
		}, 201, 404},
		{"list links", func() request {
			return request{"GET", "/api/v1/procedures/" + e.ProcedureID + "/parent-links", nil, false}
		}, 200, 404},
		{"revoke link", func() request {
			l, err := f.svc.CreateLink(context.Background(), f.clinicianActor, uuid.MustParse(e.ProcedureID), false)
			if err != nil {
				t.Fatal(err)
			}
			return request{"DELETE", "/api/v1/parent-links/" + l.ID.String(), nil, false}
		}, 204, 404},
		{"assess", func() request {
			return request{"POST", "/api/v1/procedures/" + e.ProcedureID + "/assessments", map[string]string{"timepoint": "day-1", "level": "improved"}, false}
		}, 201, 404},
		{"read thread", func() request { return request{"GET", "/api/v1/procedures/" + e.ProcedureID + "/messages", nil, false} }, 200, 404},
		{"mark handled", func() request {
			return request{"POST", "/api/v1/procedures/" + e.ProcedureID + "/messages/" + familyMessage.String() + "/handled", nil, false}
		}, 200, 404},
		{"message", func() request {
			return request{"POST", "/api/v1/procedures/" + e.ProcedureID + "/messages", map[string]string{"kind": "note", "body": "Looks good"}, false}
		}, 201, 404},
		{"clinic upload", func() request { return request{"POST", "/api/v1/procedures/" + e.ProcedureID + "/photos", nil, true} }, 201, 404},
		// A retry of an existing upload must not bypass the role check.
		{"clinic upload retry", func() request {
			return request{"POST", "/api/v1/procedures/" + e.ProcedureID + "/photos?retry", nil, true}
		}, 200, 404},
		{"original", func() request { return request{"GET", "/api/v1/photos/" + photoID + "/original", nil, false} }, 200, 404},
		{"withdraw photo", func() request {
			return request{"POST", "/api/v1/photos/" + photoID + "/withdraw", map[string]string{"reason": "sent by mistake"}, false}
		}, 200, 404},
		{"thumbnail", func() request {
			return request{"GET", "/api/v1/photos/" + photoID + "/thumbnail?size=large", nil, false}
		}, 200, 404},
		{"unknown id", func() request { return request{"GET", "/api/v1/procedures/" + uuid.NewString(), nil, false} }, 404, 404},
		{"malformed id", func() request { return request{"GET", "/api/v1/photos/../../etc/original", nil, false} }, 404, 404},
	}
	for _, rt := range routes {
		for _, c := range callers {
			want := map[string]int{"clinician": rt.success, "admin": rt.success, "researcher": 403, "other clinic": rt.outsider}[c.name]
			if want == 0 {
				want = 401
			}
			if rt.name == "malformed id" && want != 401 {
				want = 404
			}
			if rt.name == "unknown id" && c.name == "researcher" {
				want = 403
			}
			r := rt.req()
			got := f.send(t, r.method, r.path, c.token, r.json, r.photo)
			if got != want {
				t.Errorf("%s by %s: %d, want %d", rt.name, c.name, got, want)
			}
		}
	}
}

func (f *apiFixture) newToken(t *testing.T) string {
	t.Helper()
	tok, err := f.acc.CreateToken(context.Background(), f.clinicianActor, f.clinicianEmail(t))
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func (f *apiFixture) clinicianEmail(t *testing.T) string {
	t.Helper()
	var email string
	if err := f.pool.QueryRow(context.Background(), `select email from users where id = $1`, f.clinicianActor.ID).Scan(&email); err != nil {
		t.Fatal(err)
	}
	return email
}

// send makes one request and returns its status, checking that every error is the JSON shape.
func (f *apiFixture) send(t *testing.T, method, path, token string, body any, photo bool) int {
	t.Helper()
	var rd io.Reader
	contentType := ""
	switch {
	case photo:
		uploadID := "clinic-" + strings.ReplaceAll(uuid.NewString(), "-", "")[:12]
		if strings.HasSuffix(path, "?retry") {
			uploadID = "authz-retry-01" // stored once below, before the matrix runs
		}
		rd, contentType = photoForm(map[string]string{"timepoint": "baseline", "view": "front", "upload_id": uploadID}, imagetest.JPEG(32, 24, 9))
	case body != nil:
		b, _ := json.Marshal(body)
		rd, contentType = bytes.NewReader(b), "application/json"
	}
	req, _ := http.NewRequest(method, f.url+path, rd)
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode >= 400 {
		var eb errorBody
		if err := json.Unmarshal(raw, &eb); err != nil || eb.Error.Code == "" || eb.Error.Message == "" {
			t.Errorf("%s %s: %d body %q is not the JSON error shape", method, path, resp.StatusCode, raw)
		}
	}
	return resp.StatusCode
}
