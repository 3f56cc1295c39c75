package web

import (
	"bytes"
	"context"
	"encoding/json"
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
	"github.com/dermfollow/dermfollow/imagestore/imagetest"
	"github.com/dermfollow/dermfollow/protocols"
)

// parentClient is a browser-like client: it keeps cookies and does not follow redirects, so
// tests see every 303.
type parentClient struct {
	t    *testing.T
	f    *apiFixture
	http *http.Client
}

func (f *apiFixture) parentClient(t *testing.T) *parentClient {
	t.Helper()
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &parentClient{t: t, f: f, http: &http.Client{Jar: jar, Timeout: 30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

// get fetches path with optional headers ("Name", "value", ...) and returns the response
// with its body read.
func (pc *parentClient) get(path string, headers ...string) (*http.Response, string) {
	pc.t.Helper()
	req, _ := http.NewRequest("GET", pc.f.url+path, nil)
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	return pc.do(req)
}

func (pc *parentClient) do(req *http.Request) (*http.Response, string) {
	pc.t.Helper()
	resp, err := pc.http.Do(req)
	if err != nil {
		pc.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

// open follows the parent link into a session and returns the home page.
func (pc *parentClient) open(linkURL string) string {
	pc.t.Helper()
	resp, _ := pc.get(linkPath(linkURL))
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/p/" {
		pc.t.Fatalf("open link = %d to %q, want 303 to /p/", resp.StatusCode, resp.Header.Get("Location"))
	}
	resp, body := pc.get("/p/")
	if resp.StatusCode != 200 {
		pc.t.Fatalf("home = %d", resp.StatusCode)
	}
	return body
}

// otherFirst changes the first character of s.
func otherFirst(s string) string {
	if s[0] == 'A' {
		return "B" + s[1:]
	}
	return "A" + s[1:]
}

var csrfPattern = regexp.MustCompile(`data-csrf="([^"]+)"`)

func csrfOf(t *testing.T, page string) string {
	t.Helper()
	m := csrfPattern.FindStringSubmatch(page)
	if m == nil {
		t.Fatal("no CSRF token on the page")
	}
	return m[1]
}

// post sends a multipart upload to /p/photos (csrf in the query when not ""), with headers.
func (pc *parentClient) post(csrf string, fields map[string]string, file []byte, headers ...string) (*http.Response, string) {
	pc.t.Helper()
	body, contentType := photoForm(fields, file)
	path := "/p/photos"
	if csrf != "" {
		path += "?csrf_token=" + url.QueryEscape(csrf)
	}
	req, _ := http.NewRequest("POST", pc.f.url+path, body)
	req.Header.Set("Content-Type", contentType)
	req.Header.Set("Accept", "application/json")
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	return pc.do(req)
}

// enrolFamily enrols a patient with the preferred language through the API and returns the
// procedure id and its parent link.
func (f *apiFixture) enrolFamily(t *testing.T, lang string, performed time.Time) (procedureID, linkURL string) {
	t.Helper()
	var p struct{ ID string }
	if code := f.call(t, "POST", "/api/v1/patients", f.clinician, map[string]any{
		"display_name": "Mia Chen-Smith", "birth_date": "2025-01-02", "mrn": "MRN-" + uuid.NewString()[:6],
		"guardian_email": "family@example.org", "preferred_language": lang}, &p); code != 201 {
		t.Fatalf("create patient = %d", code)
	}
	var e struct{ ID string }
	if code := f.call(t, "POST", "/api/v1/procedures", f.clinician, map[string]any{
		"patient_id": p.ID, "protocol": "pws-hemoporfin-pdt", "body_site": "face",
		"performed_at": performed.Format(time.RFC3339)}, &e); code != 201 {
		t.Fatalf("enrol = %d", code)
	}
	var l struct{ URL string }
	if code := f.call(t, "POST", "/api/v1/procedures/"+e.ID+"/parent-links", f.clinician, nil, &l); code != 201 {
		t.Fatalf("create link = %d", code)
	}
	return e.ID, l.URL
}

// dueNow is a procedure time whose day-4 step (a window of three days around day 4) is open
// whatever the hour in Shanghai.
func dueNow() time.Time { return time.Now().Add(-4 * 24 * time.Hour) }

func TestParentLinkOpensSession(t *testing.T) {
	t.Parallel()
	f := newAPIFixture(t)
	_, link := f.enrolFamily(t, "en", dueNow())
	token := link[strings.LastIndex(link, "/")+1:]
	pc := f.parentClient(t)

	resp, _ := pc.get(linkPath(link))
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/p/" {
		t.Fatalf("open = %d to %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	var session *http.Cookie
	for _, c := range resp.Cookies() {
		if c.Name == parentCookie {
			session = c
		}
	}
	if session == nil || !session.HttpOnly || session.SameSite != http.SameSiteLaxMode || session.Path != "/p/" ||
		session.MaxAge <= 0 || session.MaxAge > int(parentSessionTTL.Seconds()) || strings.Contains(session.Value, token) {
		t.Fatalf("session cookie = %+v", session)
	}
	if cc := resp.Header.Get("Cache-Control"); cc != "no-store" {
		t.Errorf("redirect Cache-Control = %q", cc)
	}

	resp, page := pc.get("/p/")
	if resp.StatusCode != 200 {
		t.Fatalf("home = %d", resp.StatusCode)
	}
	for _, want := range []string{"Photos for Mia", `lang="en"`, "What to do now", "Day 4", "Take photo", `capture="environment"`,
		`accept="image/jpeg,image/png,image/webp"`, "Care for now", "Contact the clinic", `name="upload_id"`, `/static/parent.js`} {
		if !strings.Contains(page, want) {
			t.Errorf("home page lacks %q", want)
		}
	}
	for _, never := range []string{"Chen-Smith", "MRN-", "2025-01-02", "family@example.org", token} {
		if strings.Contains(page, never) {
			t.Errorf("home page shows %q", never)
		}
	}
	if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'self'") || strings.Contains(csp, "unsafe-inline") {
		t.Errorf("CSP = %q", csp)
	}
	if resp.Header.Get("Cache-Control") != "no-store" || resp.Header.Get("Referrer-Policy") != "no-referrer" {
		t.Errorf("headers: %v", resp.Header)
	}
	if strings.Contains(f.logs.String(), token) {
		t.Error("the token reached the logs")
	}
}

func TestParentBadLinks(t *testing.T) {
	t.Parallel()
	f := newAPIFixture(t)
	procedure, link := f.enrolFamily(t, "en", dueNow())
	pc := f.parentClient(t)

	for _, path := range []string{"/p/" + strings.Repeat("A", 43), "/p/short", linkPath(link) + "x"} {
		resp, body := pc.get(path)
		if resp.StatusCode != 404 || !strings.Contains(body, "This link does not open") || !strings.Contains(body, "contact your clinic") {
			t.Errorf("%s = %d %q", path, resp.StatusCode, body)
		}
		if len(resp.Cookies()) != 0 {
			t.Errorf("%s set cookies %v", path, resp.Cookies())
		}
	}

	// A revoked link does not open, and a session opened before the revocation ends at once.
	pc.open(link)
	var links struct {
		Links []struct{ ID string } `json:"links"`
	}
	f.call(t, "GET", "/api/v1/procedures/"+procedure+"/parent-links", f.clinician, nil, &links)
	if code := f.call(t, "DELETE", "/api/v1/parent-links/"+links.Links[0].ID, f.clinician, nil, nil); code != 204 {
		t.Fatalf("revoke = %d", code)
	}
	if resp, body := pc.get("/p/"); resp.StatusCode != 404 || !strings.Contains(body, "This link does not open") {
		t.Errorf("home after revocation = %d", resp.StatusCode)
	}
	if resp, _ := f.parentClient(t).get(linkPath(link)); resp.StatusCode != 404 {
		t.Errorf("revoked link = %d", resp.StatusCode)
	}

	// Guessing: after a burst of wrong links the address gets a friendly "wait" page.
	var resp *http.Response
	var body string
	for range 25 {
		if resp, body = pc.get("/p/" + strings.Repeat("C", 43)); resp.StatusCode == 429 {
			break
		}
	}
	if resp.StatusCode != 429 || !strings.Contains(body, "Too many tries") || resp.Header.Get("Retry-After") == "" {
		t.Errorf("after many wrong links = %d", resp.StatusCode)
	}
}

func TestParentCookies(t *testing.T) {
	t.Parallel()
	f := newAPIFixture(t)
	watchAuthz(f.srv)
	_, link := f.enrolFamily(t, "en", dueNow())
	pc := f.parentClient(t)
	pc.open(link)
	u, _ := url.Parse(f.url + "/p/")
	var value string
	for _, c := range pc.http.Jar.Cookies(u) {
		if c.Name == parentCookie {
			value = c.Value
		}
	}
	body, sig, _ := strings.Cut(value, ".")
	for name, v := range map[string]string{
		"tampered signature": body + "." + otherFirst(sig),
		"tampered session":   otherFirst(body) + "." + sig,
		"no signature":       body,
		"garbage":            "not a cookie",
		"empty":              "",
	} {
		req, _ := http.NewRequest("GET", f.url+"/p/", nil)
		req.AddCookie(&http.Cookie{Name: parentCookie, Value: v})
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 404 {
			t.Errorf("%s: home = %d, want 404", name, resp.StatusCode)
		}
	}

	// A clinic user's credentials are no parent session.
	for _, tok := range []string{f.clinician, f.admin, f.researcher, f.outsider} {
		if resp, _ := f.parentClient(t).get("/p/", "Authorization", "Bearer "+tok); resp.StatusCode != 404 {
			t.Errorf("home with a bearer token = %d, want 404", resp.StatusCode)
		}
	}

	// Expiry and keys, on the codec itself.
	h := &parentPages{key: parentKey([]byte("a test secret key of 32 bytes...")),
		s: &Server{forms: newFormTokens([]byte("a test secret key of 32 bytes..."))}}
	ps := parentSession{LinkID: uuid.New(), Expires: time.Now().Add(time.Hour).Truncate(time.Second)}
	enc := h.encodeParentSession(ps)
	if got, err := h.decodeParentSession(enc, time.Now()); err != nil || got != ps {
		t.Errorf("round trip = %+v, %v", got, err)
	}
	if _, err := h.decodeParentSession(enc, ps.Expires); err == nil {
		t.Error("an expired session was accepted")
	}
	other := &parentPages{key: parentKey([]byte("another secret key of 32 bytes..")),
		s: &Server{forms: newFormTokens([]byte("another secret key of 32 bytes.."))}}
	if _, err := other.decodeParentSession(enc, time.Now()); err == nil {
		t.Error("a session signed with another key was accepted")
	}
	if h.csrfToken(ps) == other.csrfToken(ps) || h.csrfToken(ps) == h.csrfToken(parentSession{LinkID: uuid.New(), Expires: ps.Expires}) {
		t.Error("CSRF tokens do not depend on the key and the session")
	}
	if a, b := parentKey(nil), parentKey(nil); bytes.Equal(a, b) {
		t.Error("without a secret, keys are not random")
	}
}

func TestParentUploadRefusesCrossSite(t *testing.T) {
	t.Parallel()
	f := newAPIFixture(t)
	watchAuthz(f.srv)
	_, link := f.enrolFamily(t, "en", dueNow())
	pc := f.parentClient(t)
	csrf := csrfOf(t, pc.open(link))
	jpeg := imagetest.JPEG(64, 48, 3)
	fields := func(id string) map[string]string {
		return map[string]string{"timepoint": "day-4", "view": "front", "upload_id": id}
	}
	for _, tc := range []struct {
		name    string
		csrf    string
		headers []string
		status  int
	}{
		{"other origin", csrf, []string{"Origin", "https://evil.example"}, 403},
		{"cross-site fetch", csrf, []string{"Sec-Fetch-Site", "cross-site"}, 403},
		{"same-site fetch", csrf, []string{"Sec-Fetch-Site", "same-site"}, 403},
		{"no CSRF token", "", nil, 403},
		{"wrong CSRF token", otherFirst(csrf), nil, 403},
		{"CSRF of the header, wrong", "", []string{csrfHeader, "nope"}, 403},
	} {
		resp, body := pc.post(tc.csrf, fields("cross-site-"+strings.ReplaceAll(tc.name, " ", "-")), jpeg, tc.headers...)
		if resp.StatusCode != tc.status {
			t.Errorf("%s: %d %s, want %d", tc.name, resp.StatusCode, body, tc.status)
		}
	}
	if n := f.count(t, `select count(*) from photos`); n != 0 {
		t.Fatalf("refused uploads stored %d photos", n)
	}

	// Without a session: 401 for the script, a redirect to the page for a form.
	anon := f.parentClient(t)
	if resp, _ := anon.post(csrf, fields("no-session-1"), jpeg); resp.StatusCode != 401 {
		t.Errorf("no session = %d, want 401", resp.StatusCode)
	}
	if resp, _ := anon.post(csrf, fields("no-session-2"), jpeg, "Accept", "text/html"); resp.StatusCode != 303 {
		t.Errorf("no session, form = %d, want 303", resp.StatusCode)
	}
	// A clinician's bearer token is no parent session.
	if resp, _ := anon.post(csrf, fields("no-session-3"), jpeg, "Authorization", "Bearer "+f.clinician); resp.StatusCode != 401 {
		t.Errorf("bearer token = %d, want 401", resp.StatusCode)
	}

	// The page's script path: same origin, CSRF header; a retry returns the same photo.
	resp, body := pc.post("", fields("script-upload-1"), jpeg, csrfHeader, csrf, "Origin", f.url, "Sec-Fetch-Site", "same-origin")
	var photo struct{ ID string }
	json.Unmarshal([]byte(body), &photo)
	if resp.StatusCode != 201 || photo.ID == "" {
		t.Fatalf("script upload = %d %s", resp.StatusCode, body)
	}
	resp, body = pc.post("", fields("script-upload-1"), jpeg, csrfHeader, csrf)
	var again struct{ ID string }
	json.Unmarshal([]byte(body), &again)
	if resp.StatusCode != 200 || again.ID != photo.ID {
		t.Errorf("retry = %d %s, want 200 with %s", resp.StatusCode, body, photo.ID)
	}
	if n := f.count(t, `select count(*) from photos`); n != 1 {
		t.Errorf("%d photos, want 1", n)
	}
	// A HEIC photo gets the how-to in the language asked for.
	resp, body = pc.post("", fields("script-heic-1"), imagetest.HEIC(), csrfHeader, csrf, "Accept-Language", "zh-CN")
	if resp.StatusCode != 415 || !strings.Contains(body, "兼容性最佳") {
		t.Errorf("HEIC = %d %s", resp.StatusCode, body)
	}
}

func TestParentFormUpload(t *testing.T) {
	t.Parallel()
	f := newAPIFixture(t)
	_, link := f.enrolFamily(t, "en", dueNow())
	pc := f.parentClient(t)
	page := pc.open(link)
	csrf := csrfOf(t, page)
	if !strings.Contains(page, `action="/p/photos?csrf_token=`) || !strings.Contains(page, `method="post"`) {
		t.Fatal("the page has no plain upload form")
	}
	// The cards' forms, before the conversation's (which has its own upload_id).
	ids := regexp.MustCompile(`name="upload_id" value="([0-9a-f-]{36})"`).FindAllStringSubmatch(page[:strings.Index(page, `id="talk"`)], -1)
	if len(ids) != 3 {
		t.Fatalf("%d server-made upload ids, want one per view of day 4", len(ids))
	}
	form := func(file []byte, id string) *http.Response {
		resp, _ := pc.post(csrf, map[string]string{"timepoint": "day-4", "view": "front", "upload_id": id}, file,
			"Accept", "text/html,application/xhtml+xml", "Origin", f.url)
		return resp
	}
	resp := form(imagetest.PhoneJPEG(320, 240, 5, 1), ids[0][1])
	if resp.StatusCode != 303 || resp.Header.Get("Location") != "/p/?m=sent#now" {
		t.Fatalf("form upload = %d to %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	if n := f.count(t, `select count(*) from photos where upload_id = $1`, ids[0][1]); n != 1 {
		t.Fatalf("%d photos stored", n)
	}
	_, page = pc.get("/p/?m=sent")
	if !strings.Contains(page, "Photo received. Thank you!") || !strings.Contains(page, `role="status"`) {
		t.Error("no confirmation after the redirect")
	}
	if !strings.Contains(page, "Received") {
		t.Error("the front card is not marked received")
	}

	for _, tc := range []struct {
		name, want, text string
		file             []byte
	}{
		{"heic", "reject-heic", "Most Compatible", imagetest.HEIC()},
		{"text", "reject-unsupported", "", []byte("not a photo at all, only text")},
		{"truncated", "reject-malformed", "damaged", imagetest.JPEG(64, 48, 9)[:300]},
	} {
		resp := form(tc.file, uuid.NewString())
		if loc := resp.Header.Get("Location"); resp.StatusCode != 303 || loc != "/p/?m="+tc.want+"#now" {
			t.Errorf("%s: %d to %q", tc.name, resp.StatusCode, loc)
			continue
		}
		_, page := pc.get("/p/?m=" + tc.want)
		if !strings.Contains(page, `class="flash flash-error" role="alert"`) || !strings.Contains(page, tc.text) {
			t.Errorf("%s: the page does not show the refusal", tc.name)
		}
	}
	// A message code the server does not make shows nothing (nothing is echoed).
	_, page = pc.get("/p/?m=%3Cscript%3Ealert(1)%3C/script%3E")
	if strings.Contains(page, `class="flash`) || strings.Contains(page, "<script>alert") {
		t.Error("an unknown message code was shown")
	}
	if n := f.count(t, `select count(*) from photos`); n != 1 {
		t.Errorf("%d photos, want 1", n)
	}
}

func TestParentLanguage(t *testing.T) {
	t.Parallel()
	f := newAPIFixture(t)
	_, zhLink := f.enrolFamily(t, "zh-CN", dueNow())
	pc := f.parentClient(t)

	// The patient's preference wins over the browser's.
	resp, _ := pc.get(linkPath(zhLink))
	if resp.StatusCode != 303 {
		t.Fatalf("open = %d", resp.StatusCode)
	}
	_, page := pc.get("/p/", "Accept-Language", "en-GB,en;q=0.9")
	if !strings.Contains(page, `<html lang="zh-CN">`) || !strings.Contains(page, "Mia的随访照片") || !strings.Contains(page, "现在要做的事") {
		t.Error("the Chinese page is not in Chinese")
	}
	if !regexp.MustCompile(`\d{1,2}月\d{1,2}日 周[日一二三四五六]`).MatchString(page) {
		t.Error("no Chinese dates")
	}
	var zhTitle string
	if p, err := f.svc.Protocols().Latest("pws-hemoporfin-pdt"); err == nil {
		zhTitle = p.Title.In(protocols.ZH)
	}
	if zhTitle == "" || !strings.Contains(page, zhTitle) {
		t.Error("the protocol title is not the Chinese one")
	}

	// The switch: ?lang=en, remembered in a cookie.
	resp, page = pc.get("/p/?lang=en")
	if !strings.Contains(page, `<html lang="en">`) || !strings.Contains(page, "What to do now") {
		t.Error("the switch to English did not switch")
	}
	if !regexp.MustCompile(`(Mon|Tue|Wed|Thu|Fri|Sat|Sun) \d{1,2} (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)`).MatchString(page) {
		t.Error("no English dates")
	}
	if !strings.Contains(resp.Header.Get("Set-Cookie"), langCookie+"=en") {
		t.Errorf("the switch is not remembered: %q", resp.Header.Get("Set-Cookie"))
	}
	if _, page = pc.get("/p/"); !strings.Contains(page, `<html lang="en">`) {
		t.Error("the remembered language was not used")
	}
	if _, page = pc.get("/p/?lang=xx"); !strings.Contains(page, `<html lang="en">`) {
		t.Error("an unknown language changed the page")
	}

	// Without a patient (the friendly page), the browser's language decides.
	anon := f.parentClient(t)
	_, page = anon.get("/p/"+strings.Repeat("B", 43), "Accept-Language", "zh-CN,zh;q=0.9")
	if !strings.Contains(page, "此链接无法打开") {
		t.Error("the invalid link page is not in the browser's language")
	}
	_, page = anon.get("/p/", "Accept-Language", "fr")
	if !strings.Contains(page, "This link does not open") {
		t.Error("an unsupported language did not fall back to English")
	}
}

func TestParentThumbnails(t *testing.T) {
	t.Parallel()
	f := newAPIFixture(t)
	watchAuthz(f.srv)
	procedure, link := f.enrolFamily(t, "en", dueNow())
	_, otherLink := f.enrolFamily(t, "en", dueNow())
	pc := f.parentClient(t)
	csrf := csrfOf(t, pc.open(link))
	resp, body := pc.post(csrf, map[string]string{"timepoint": "day-4", "view": "front", "upload_id": "thumb-test-0001"}, imagetest.JPEG(320, 240, 2))
	var photo struct{ ID string }
	json.Unmarshal([]byte(body), &photo)
	if resp.StatusCode != 201 {
		t.Fatalf("upload = %d %s", resp.StatusCode, body)
	}
	// A photo of the same view from the day-1 step is the framing guide of today's card.
	resp, body = pc.post(csrf, map[string]string{"timepoint": "day-1", "view": "front", "upload_id": "thumb-test-0002"}, imagetest.JPEG(320, 240, 4))
	var earlier struct{ ID string }
	json.Unmarshal([]byte(body), &earlier)
	if resp.StatusCode != 201 {
		t.Fatalf("day-1 upload = %d %s", resp.StatusCode, body)
	}
	path := "/p/photos/" + photo.ID + "/thumbnail"
	if resp, _ := pc.get(path); resp.StatusCode != 503 || resp.Header.Get("Retry-After") == "" {
		t.Errorf("thumbnail before it is made = %d", resp.StatusCode)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := f.thumbs.Make(ctx, 10); err != nil {
		t.Fatal(err)
	}
	resp, img := pc.get(path)
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "image/jpeg" || !strings.HasPrefix(img, "\xff\xd8") {
		t.Errorf("thumbnail = %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	if resp, _ := pc.get(path + "?size=large"); resp.StatusCode != 200 {
		t.Errorf("large thumbnail = %d", resp.StatusCode)
	}
	if resp, _ := pc.get(path + "?size=original"); resp.StatusCode != 400 {
		t.Errorf("original through the parent route = %d, want 400", resp.StatusCode)
	}
	if resp, _ := pc.get("/p/photos/not-an-id/thumbnail"); resp.StatusCode != 404 {
		t.Errorf("bad id = %d", resp.StatusCode)
	}
	// Another family, no session, a clinician's token: not found.
	other := f.parentClient(t)
	other.open(otherLink)
	if resp, _ := other.get(path); resp.StatusCode != 404 {
		t.Errorf("another family = %d, want 404", resp.StatusCode)
	}
	for _, tok := range []string{"", f.clinician, f.admin, f.researcher, f.outsider} {
		var hdr []string
		if tok != "" {
			hdr = []string{"Authorization", "Bearer " + tok}
		}
		if resp, _ := f.parentClient(t).get(path, hdr...); resp.StatusCode != 404 {
			t.Errorf("without a parent session (token %v) = %d, want 404", tok != "", resp.StatusCode)
		}
	}
	_, page := pc.get("/p/")
	if !strings.Contains(page, path) {
		t.Error("the home page does not show the received photo")
	}
	front := page[strings.Index(page, `id="card-1"`):]
	front = front[:strings.Index(front, "</article>")]
	if !strings.Contains(front, `<figure class="prev"><img src="/p/photos/`+earlier.ID+`/thumbnail"`) || !strings.Contains(front, "Last time") {
		t.Error("today's front card does not show the day-1 front photo as the framing guide")
	}
	if !strings.Contains(page, "Not received") && !strings.Contains(page, "Done") {
		t.Error("the day-1 step has no state")
	}

	// A retake request and a note appear with their step; the retake gets its own card, with
	// the photo to redo as the framing guide.
	if code := f.call(t, "POST", "/api/v1/procedures/"+procedure+"/messages", f.clinician,
		map[string]any{"kind": "retake", "photo_id": photo.ID, "body": "A little blurry: please hold still and retake."}, nil); code != 201 {
		t.Fatalf("retake = %d", code)
	}
	if code := f.call(t, "POST", "/api/v1/procedures/"+procedure+"/messages", f.clinician,
		map[string]any{"kind": "note", "timepoint": "week-1", "body": "Healing well so far."}, nil); code != 201 {
		t.Fatalf("note = %d", code)
	}
	_, page = pc.get("/p/")
	for _, want := range []string{"Message the clinic", "Please take this photo again", "A little blurry: please hold still and retake.",
		"Step: Day 4", "Note from the clinic", "Healing well so far.", "Step: Week 1"} {
		if !strings.Contains(page, want) {
			t.Errorf("the page lacks %q", want)
		}
	}
	msgs := page[strings.Index(page, `id="thread"`):]
	if !strings.Contains(msgs, `<form class="upload"`) || !strings.Contains(msgs, `value="day-4"`) || !strings.Contains(msgs, path) {
		t.Error("the retake request has no upload card with the photo to redo")
	}
}

func TestCatalogueComplete(t *testing.T) {
	verbs := regexp.MustCompile(`%[a-z]`)
	for key, en := range catalogue[protocols.EN] {
		zh, ok := catalogue[protocols.ZH][key]
		if !ok || zh == "" {
			t.Errorf("%s has no Chinese text", key)
			continue
		}
		if a, b := verbs.FindAllString(en, -1), verbs.FindAllString(zh, -1); strings.Join(a, "") != strings.Join(b, "") {
			t.Errorf("%s: verbs %v in English, %v in Chinese", key, a, b)
		}
	}
	for key := range catalogue[protocols.ZH] {
		if _, ok := catalogue[protocols.EN][key]; !ok {
			t.Errorf("%s has no English text", key)
		}
	}
	day := time.Date(2026, 11, 24, 9, 0, 0, 0, time.UTC)
	if got := formatDay(day, protocols.EN); got != "Tue 24 Nov" {
		t.Errorf("English day = %q", got)
	}
	if got := formatDay(day, protocols.ZH); got != "11月24日 周二" {
		t.Errorf("Chinese day = %q", got)
	}
}

func TestBuildParentPage(t *testing.T) {
	loc, err := time.LoadLocation("Asia/Shanghai")
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 11, 24, 3, 0, 0, 0, time.UTC)
	day := func(d int) protocols.Date { return protocols.DateOf(now.AddDate(0, 0, d), loc) }
	tp := func(key, who string, state protocols.State, d int) followup.Timepoint {
		return followup.Timepoint{Key: key, Who: who, State: state, Views: []string{"front", "close-up"},
			DueAt: now.AddDate(0, 0, d), DueOn: day(d), WindowStart: day(d - 1), WindowEnd: day(d + 1)}
	}
	home := func(tps ...followup.Timepoint) followup.ParentHome {
		h := followup.ParentHome{FirstName: "Mia", Clinic: followup.ParentClinic{Name: "Clinic", Phone: "+86 (21) 5555-0100", Location: loc},
			Labels: map[string]protocols.Text{}, Aftercare: map[string]protocols.Text{}, Now: now}
		for _, t := range tps {
			h.Labels[t.Key] = protocols.Text{protocols.EN: "Label " + t.Key}
			h.Aftercare[t.Key] = protocols.Text{protocols.EN: "Care " + t.Key + "\n\nSecond paragraph"}
		}
		h.View.Timepoints = tps
		return h
	}

	p := buildParentPage(home(
		tp("baseline", protocols.Clinic, protocols.StateMissed, -5),
		tp("day-1", protocols.Family, protocols.StateOverdue, -3),
		tp("day-4", protocols.Family, protocols.StateOpen, 0),
		tp("week-1", protocols.Family, protocols.StateUpcoming, 3),
	), protocols.EN, "", "/p/photos?csrf_token=x")
	if p.Now == nil || p.Now.Label != "Label day-4" || len(p.Now.Cards) != 2 || p.Next != nil {
		t.Fatalf("now = %+v, next = %+v", p.Now, p.Next)
	}
	if p.Steps[0].State != "clinic" || p.Steps[0].StateText != "Taken at the clinic" {
		t.Errorf("the clinic's step = %+v", p.Steps[0])
	}
	if p.Steps[1].StateText != "Not received" || !p.Steps[2].Current || p.Steps[1].Current {
		t.Errorf("steps = %+v", p.Steps)
	}
	if strings.Join(p.Care, "|") != "Care day-4|Second paragraph" || p.CareFor != "Label day-4" {
		t.Errorf("care = %q for %q", p.Care, p.CareFor)
	}
	if c := p.Now.Cards[1]; c.View != "close-up" || c.Label != "Close-up" || c.Hint == "" || c.Action != "/p/photos?csrf_token=x" ||
		c.ID == p.Now.Cards[0].ID || c.UploadID == p.Now.Cards[0].UploadID {
		t.Errorf("card = %+v", c)
	}
	if p.PhoneURL != "tel:+862155550100" {
		t.Errorf("phone link = %q", p.PhoneURL)
	}

	// Only a late step: it is today's. Nothing due: the next one, with the last care.
	if p := buildParentPage(home(tp("day-1", protocols.Family, protocols.StateOverdue, -3),
		tp("week-1", protocols.Family, protocols.StateUpcoming, 3)), protocols.EN, "", ""); p.Now == nil || p.Now.Label != "Label day-1" ||
		!strings.HasPrefix(p.NowText, "These were due by") {
		t.Errorf("late step: now = %+v, %q", p.Now, p.NowText)
	}
	p = buildParentPage(home(tp("day-1", protocols.Family, protocols.StateComplete, -3),
		tp("week-1", protocols.Family, protocols.StateUpcoming, 3)), protocols.ZH, "sent", "")
	if p.Now != nil || p.Next == nil || p.NextText != "下一次拍照时间是"+formatDate(day(2), protocols.ZH)+"。" || p.CareFor != "Label day-1" {
		t.Errorf("next: %+v %q care for %q", p.Next, p.NextText, p.CareFor)
	}
	if p.Flash != "照片已收到，谢谢！" || p.FlashError {
		t.Errorf("flash = %q", p.Flash)
	}
	p = buildParentPage(home(tp("day-1", protocols.Family, protocols.StateComplete, -3)), protocols.EN, "reject-heic", "")
	if !p.AllDone || !p.FlashError || !strings.Contains(p.Flash, "Most Compatible") {
		t.Errorf("all done = %v, flash = %q", p.AllDone, p.Flash)
	}
}
