package web

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/dermfollow/dermfollow/followup"
	"github.com/dermfollow/dermfollow/followup/export"
	"github.com/dermfollow/dermfollow/imagestore"
	"github.com/dermfollow/dermfollow/imagestore/imagetest"
	"github.com/dermfollow/dermfollow/imagestore/s3test"
)

// exportFixture is the server with a server secret (exports need one) over real PostgreSQL and
// the given store, with users of every role in clinic A, a researcher and a clinician of
// clinic B, and one consenting patient of clinic A with a photo.
type exportFixture struct {
	*apiFixture
	photoID uuid.UUID
}

func newExportFixture(t *testing.T, store imagestore.Store, opts ...func(*apiOptions)) *exportFixture {
	t.Helper()
	f := &exportFixture{apiFixture: newAPIFixture(t, append([]func(*apiOptions){func(o *apiOptions) {
		o.store, o.secret = store, []byte("export test secret, 32 bytes long")
	}}, opts...)...)}
	svc, ctx := f.svc, context.Background()
	p, err := svc.CreatePatient(ctx, f.clinicianActor, followup.NewPatient{DisplayName: "Xiaoming Wang", BirthDate: "2025-03-02",
		MRN: "MRN-EXPORT-1", GuardianEmail: "guardian@example.org", PreferredLanguage: "zh-CN", ResearchConsent: true})
	if err != nil {
		t.Fatal(err)
	}
	e, err := svc.Enrol(ctx, f.clinicianActor, followup.NewProcedure{PatientID: p.ID.String(), Protocol: "pws-hemoporfin-pdt",
		BodySite: "face", PerformedAt: "2026-11-01T10:00:00+08:00"})
	if err != nil {
		t.Fatal(err)
	}
	body := imagetest.PhoneJPEG(320, 240, 3, 1)
	ph, _, err := svc.AddPhoto(ctx, f.clinicianActor, e.ID, followup.PhotoUpload{Timepoint: "baseline", View: "front", UploadID: "export-photo-1"},
		bytes.NewReader(body), int64(len(body)), imagestore.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	f.photoID = ph.ID
	return f
}

var exportBody = map[string]any{"protocol": "pws-hemoporfin-pdt", "from": "2026-10-01", "to": "2026-11-30", "views": []string{"front"}}

type exportAnswer struct {
	ID       string `json:"id"`
	Status   string `json:"status"`
	Progress struct {
		Done  int `json:"done"`
		Total int `json:"total"`
	} `json:"progress"`
	Photos      int    `json:"photos"`
	DownloadURL string `json:"download_url"`
	Error       struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

// noRedirect is a client that shows redirects instead of following them.
var noRedirect = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

func (f *exportFixture) get(t *testing.T, path, token string) *http.Response {
	t.Helper()
	req, _ := http.NewRequest("GET", f.url+path, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := noRedirect.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

// start starts an export, runs the job and returns the finished export.
func (f *exportFixture) start(t *testing.T, token string) exportAnswer {
	t.Helper()
	var e exportAnswer
	if code := f.call(t, "POST", "/api/v1/exports", token, exportBody, &e); code != 202 || e.ID == "" || e.Status != "queued" {
		t.Fatalf("start export = %d %+v", code, e)
	}
	if _, err := f.exp.RunOnce(context.Background()); err != nil {
		t.Fatal(err)
	}
	if code := f.call(t, "GET", "/api/v1/exports/"+e.ID, token, nil, &e); code != 200 || e.Status != "done" {
		t.Fatalf("export after the job = %d %+v", code, e)
	}
	return e
}

// The researcher's path with S3: start, poll, download through the audited route, which
// redirects to a short-lived signed URL.
func TestExportAPIWithSignedURL(t *testing.T) {
	t.Parallel()
	store, _ := s3test.NewStore(t)
	f := newExportFixture(t, store)
	e := f.start(t, f.researcher)
	if e.Progress.Done != 1 || e.Progress.Total != 1 || e.Photos != 1 || e.DownloadURL != "/api/v1/exports/"+e.ID+"/download" {
		t.Fatalf("finished export = %+v", e)
	}
	resp := f.get(t, e.DownloadURL, f.researcher)
	resp.Body.Close()
	loc := resp.Header.Get("Location")
	if resp.StatusCode != http.StatusFound || !strings.Contains(loc, "X-Amz-Expires=300") || resp.Header.Get("Cache-Control") != "no-store" {
		t.Fatalf("download = %d, Location %q; want a redirect to a 5-minute signed URL", resp.StatusCode, loc)
	}
	signed, err := http.Get(loc)
	if err != nil {
		t.Fatal(err)
	}
	archive, _ := io.ReadAll(signed.Body)
	signed.Body.Close()
	if signed.StatusCode != 200 || !strings.Contains(signed.Header.Get("Content-Disposition"), "dermfollow-export-pws-hemoporfin-pdt.zip") {
		t.Fatalf("signed URL = %d %v", signed.StatusCode, signed.Header)
	}
	zr, err := zip.NewReader(bytes.NewReader(archive), int64(len(archive)))
	if err != nil {
		t.Fatal(err)
	}
	var photo []byte
	for _, zf := range zr.File {
		if strings.HasPrefix(zf.Name, "subjects/") {
			r, _ := zf.Open()
			photo, _ = io.ReadAll(r)
		}
	}
	if photo == nil {
		t.Fatal("no photo in the archive")
	}
	imagetest.ExiftoolFindsNoMetadata(t, photo)
	for _, secret := range []string{"Xiaoming", "MRN-EXPORT-1", "guardian@example.org", "2025-03-02", "2026-11-01", "2026:05:04", f.photoID.String()} {
		if bytes.Contains(archive, []byte(secret)) {
			t.Errorf("the archive contains %q", secret)
		}
	}
	if n := f.count(t, `select count(*) from audit_events where action = $1 and target_id = $2`, export.AuditDownloaded, uuid.MustParse(e.ID)); n != 1 {
		t.Errorf("download audit events = %d, want 1", n)
	}
	var list struct{ Exports []exportAnswer }
	if code := f.call(t, "GET", "/api/v1/exports", f.researcher, nil, &list); code != 200 || len(list.Exports) != 1 || list.Exports[0].ID != e.ID {
		t.Errorf("list = %d %+v", code, list)
	}
	if strings.Contains(f.logs.String(), "Xiaoming") || strings.Contains(f.logs.String(), f.researcher) {
		t.Error("patient data or a token in the logs")
	}
}

// Where the store has no signed URLs (the local directory), the route streams the archive.
func TestExportAPIStreamsFromLocalStore(t *testing.T) {
	t.Parallel()
	store, err := imagestore.NewLocalStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	f := newExportFixture(t, store)
	e := f.start(t, f.admin)
	var full struct{ SHA256 string }
	f.call(t, "GET", "/api/v1/exports/"+e.ID, f.admin, nil, &full)
	resp := f.get(t, e.DownloadURL, f.admin)
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	sum := sha256.Sum256(b)
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/zip" || hex.EncodeToString(sum[:]) != full.SHA256 ||
		!strings.HasPrefix(resp.Header.Get("Content-Disposition"), "attachment;") || resp.Header.Get("Cache-Control") != "no-store" {
		t.Fatalf("download = %d %v, %d bytes", resp.StatusCode, resp.Header, len(b))
	}
}

// Only researchers and admins of the clinic start, read or download its exports.
func TestExportAuthorization(t *testing.T) {
	t.Parallel()
	store, err := imagestore.NewLocalStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	f := newExportFixture(t, store)
	watchAuthz(f.srv)
	e := f.start(t, f.researcher)
	for _, tc := range []struct {
		name                       string
		token                      string
		start, read, getFile, list int
	}{
		{"researcher", f.researcher, 202, 200, 200, 200},
		{"admin", f.admin, 202, 200, 200, 200},
		{"clinician", f.clinician, 403, 403, 403, 403},
		{"other clinic's researcher", f.otherResearcher, 202, 404, 404, 200},
		{"other clinic's clinician", f.outsider, 403, 403, 403, 403},
		{"no credentials", "", 401, 401, 401, 401},
		{"garbage token", "dft_" + strings.Repeat("x", 43), 401, 401, 401, 401},
	} {
		var got exportAnswer
		if code := f.call(t, "POST", "/api/v1/exports", tc.token, exportBody, &got); code != tc.start {
			t.Errorf("%s starts an export: %d, want %d", tc.name, code, tc.start)
		}
		if code := f.call(t, "GET", "/api/v1/exports/"+e.ID, tc.token, nil, nil); code != tc.read {
			t.Errorf("%s reads the export: %d, want %d", tc.name, code, tc.read)
		}
		resp := f.get(t, e.DownloadURL, tc.token)
		resp.Body.Close()
		if resp.StatusCode != tc.getFile {
			t.Errorf("%s downloads the export: %d, want %d", tc.name, resp.StatusCode, tc.getFile)
		}
		if code := f.call(t, "GET", "/api/v1/exports", tc.token, nil, nil); code != tc.list {
			t.Errorf("%s lists exports: %d", tc.name, code)
		}
	}
	// The other clinic's researcher exported their own clinic: none of clinic A's photos.
	var list struct{ Exports []exportAnswer }
	f.call(t, "GET", "/api/v1/exports", f.otherResearcher, nil, &list)
	if len(list.Exports) != 1 {
		t.Fatalf("other clinic's exports = %+v", list)
	}
	for {
		did, err := f.exp.RunOnce(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if !did {
			break
		}
	}
	var theirs exportAnswer
	if code := f.call(t, "GET", "/api/v1/exports/"+list.Exports[0].ID, f.otherResearcher, nil, &theirs); code != 200 || theirs.Status != "done" || theirs.Photos != 0 {
		t.Errorf("other clinic's export = %d %+v, want done with no photos", code, theirs)
	}
	// Unknown and malformed ids.
	for _, path := range []string{"/api/v1/exports/" + uuid.NewString(), "/api/v1/exports/42", "/api/v1/exports/" + uuid.NewString() + "/download"} {
		if code := f.call(t, "GET", path, f.researcher, nil, nil); code != 404 {
			t.Errorf("GET %s = %d, want 404", path, code)
		}
	}
}

func TestExportBadInput(t *testing.T) {
	t.Parallel()
	store, err := imagestore.NewLocalStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	f := newExportFixture(t, store)
	with := func(k string, v any) map[string]any {
		m := map[string]any{}
		for a, b := range exportBody {
			m[a] = b
		}
		m[k] = v
		return m
	}
	for _, tc := range []struct {
		name   string
		body   any
		status int
		says   string
	}{
		{"unknown protocol", with("protocol", "nope"), 422, "protocol"},
		{"no protocol", with("protocol", ""), 422, "protocol"},
		{"bad from", with("from", "01/10/2026"), 422, "from"},
		{"impossible date", with("to", "2026-02-30"), 422, "to"},
		{"from after to", with("from", "2026-12-01"), 422, "on or before"},
		{"unknown view", with("views", []string{"front", "sideways"}), 422, "sideways"},
		{"view the protocol has not", with("views", []string{"back"}), 422, "views"},
		{"views not a list", with("views", "front"), 400, "views"},
		{"include_unscheduled not a boolean", with("include_unscheduled", "yes"), 400, "include_unscheduled"},
		{"unknown field", with("patient_names", true), 400, "unknown field"},
	} {
		var got exportAnswer
		code := f.call(t, "POST", "/api/v1/exports", f.researcher, tc.body, &got)
		if code != tc.status || !strings.Contains(got.Error.Message, tc.says) {
			t.Errorf("%s: %d %+v, want %d with a message about %s", tc.name, code, got.Error, tc.status, tc.says)
		}
	}
	req, _ := http.NewRequest("POST", f.url+"/api/v1/exports", strings.NewReader("protocol=pws"))
	req.Header.Set("Authorization", "Bearer "+f.researcher)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 415 {
		t.Errorf("form body = %d, want 415", resp.StatusCode)
	}
	if code := f.call(t, "GET", "/api/v1/exports?limit=0", f.researcher, nil, nil); code != 422 {
		t.Errorf("limit=0 = %d, want 422", code)
	}
	if n := f.count(t, `select count(*) from exports`); n != 0 {
		t.Errorf("bad requests made %d exports", n)
	}
	// The contract's minimal request: a protocol alone (any date, every view).
	var minimal exportAnswer
	if code := f.call(t, "POST", "/api/v1/exports", f.researcher, map[string]string{"protocol": "pws-hemoporfin-pdt"}, &minimal); code != 202 || minimal.ID == "" {
		t.Errorf("protocol alone = %d %+v, want 202 with an id", code, minimal)
	}
	// Not ready yet: a queued export cannot be downloaded.
	var e exportAnswer
	f.call(t, "POST", "/api/v1/exports", f.researcher, exportBody, &e)
	resp = f.get(t, "/api/v1/exports/"+e.ID+"/download", f.researcher)
	resp.Body.Close()
	if resp.StatusCode != 409 {
		t.Errorf("download of a queued export = %d, want 409", resp.StatusCode)
	}
}

// pageClient is a browser without scripts: a cookie jar, no redirects followed.
type pageClient struct {
	t   *testing.T
	url string
	c   *http.Client
}

func newPageClient(t *testing.T, base string) *pageClient {
	jar, _ := cookiejar.New(nil)
	return &pageClient{t: t, url: base, c: &http.Client{Jar: jar, Timeout: 30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

func (p *pageClient) do(method, path string, form url.Values) (int, http.Header, string) {
	p.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, _ := http.NewRequest(method, p.url+path, body)
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	resp, err := p.c.Do(req)
	if err != nil {
		p.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(b)
}

var csrfFieldRe = regexp.MustCompile(`name="csrf_token" value="([^"]+)"`)

func (p *pageClient) csrf(path string) string {
	p.t.Helper()
	_, _, body := p.do("GET", path, nil)
	m := csrfFieldRe.FindStringSubmatch(body)
	if m == nil {
		p.t.Fatalf("no CSRF token on %s", path)
	}
	return m[1]
}

func (p *pageClient) login(email string) {
	p.t.Helper()
	form := url.Values{"email": {email}, "password": {"a long test password"}, "next": {"/exports"}, "csrf_token": {p.csrf("/login")}}
	code, h, _ := p.do("POST", "/login", form)
	if code == http.StatusSeeOther && h.Get("Location") == "/login/second-factor" {
		code, h, _ = p.do("POST", "/login/second-factor", url.Values{"code": {fixtureCode(p.t, email)}, "csrf_token": {form.Get("csrf_token")}})
	}
	if code != http.StatusSeeOther {
		p.t.Fatalf("login %s = %d %v", email, code, h)
	}
}

// The export page: researchers start exports, follow them and download the archive; the
// caveat about recognisable photos is on it; clinicians and strangers are kept out.
func TestExportPage(t *testing.T) {
	t.Parallel()
	store, err := imagestore.NewLocalStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	f := newExportFixture(t, store)
	watchAuthz(f.srv)
	if code, h, _ := newPageClient(t, f.url).do("GET", "/exports", nil); code != http.StatusSeeOther || !strings.HasPrefix(h.Get("Location"), "/login") {
		t.Errorf("anonymous export page = %d %s, want a redirect to the sign-in", code, h.Get("Location"))
	}
	clinician := newPageClient(t, f.url)
	clinician.login(f.emails[f.clinician])
	if code, _, _ := clinician.do("GET", "/exports", nil); code != http.StatusForbidden {
		t.Errorf("clinician's export page = %d, want 403", code)
	}
	if code, _, _ := clinician.do("POST", "/exports", url.Values{"protocol": {"pws-hemoporfin-pdt"}, "csrf_token": {clinician.csrf("/")}}); code != http.StatusForbidden {
		t.Errorf("clinician starting an export from the page = %d, want 403", code)
	}

	p := newPageClient(t, f.url)
	p.login(f.emails[f.researcher])
	code, h, page := p.do("GET", "/exports", nil)
	if code != 200 || !strings.Contains(page, "recognizable_features") || !strings.Contains(page, "No exports yet") ||
		!strings.Contains(page, `name="include_unscheduled"`) || h.Get("Content-Security-Policy") == "" {
		t.Fatalf("export page = %d\n%s", code, page)
	}
	token := p.csrf("/exports")
	form := url.Values{"protocol": {"pws-hemoporfin-pdt"}, "from": {"2026-10-01"}, "to": {"2026-11-30"}, "views": {"front", "left-oblique"},
		"include_unscheduled": {"yes"}, "csrf_token": {token}}
	bad := url.Values{"protocol": {"pws-hemoporfin-pdt"}, "from": {"2026-12-01"}, "to": {"2026-11-30"}, "csrf_token": {token}}
	if code, _, page := p.do("POST", "/exports", bad); code != http.StatusUnprocessableEntity || !strings.Contains(page, "on or before") {
		t.Errorf("bad form = %d, want 422 with the problem", code)
	}
	noToken := url.Values{"protocol": {"pws-hemoporfin-pdt"}, "from": {"2026-10-01"}, "to": {"2026-11-30"}}
	if code, _, _ := p.do("POST", "/exports", noToken); code != http.StatusForbidden {
		t.Errorf("form without CSRF token = %d, want 403", code)
	}
	if code, h, _ := p.do("POST", "/exports", form); code != http.StatusSeeOther || h.Get("Location") != "/exports" {
		t.Fatalf("start from the page = %d %v", code, h)
	}
	if _, _, page := p.do("GET", "/exports", nil); !strings.Contains(page, "queued") || !strings.Contains(page, `http-equiv="refresh"`) {
		t.Errorf("the page does not show the queued export refreshing itself:\n%s", page)
	}
	if n := f.count(t, `select count(*) from exports where include_unscheduled and clinic_id = $1`, f.clinicianActor.ClinicID); n != 1 {
		t.Errorf("%d exports include the unscheduled photos, want the one the checkbox asked for", n)
	}
	if _, err := f.exp.RunOnce(context.Background()); err != nil {
		t.Fatal(err)
	}
	_, _, page = p.do("GET", "/exports", nil)
	m := regexp.MustCompile(`href="(/api/v1/exports/[0-9a-f-]+/download)"`).FindStringSubmatch(page)
	if m == nil || strings.Contains(page, `http-equiv="refresh"`) {
		t.Fatalf("finished export on the page:\n%s", page)
	}
	code, h, archive := p.do("GET", m[1], nil)
	if code != 200 || h.Get("Content-Type") != "application/zip" {
		t.Fatalf("download from the page = %d %v", code, h)
	}
	if _, err := zip.NewReader(strings.NewReader(archive), int64(len(archive))); err != nil {
		t.Errorf("downloaded archive: %v", err)
	}
}
