package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// The timeline page: fill gives every cell of the demo procedure a photo, timeline
// loads the clinician's page against a static file of the same server; and their section of
// the report.

// procedureJSON is the part of GET /api/v1/procedures/{id} that fill reads.
type procedureJSON struct {
	Timepoints []struct {
		Key   string   `json:"key"`
		Views []string `json:"views"`
	} `json:"timepoints"`
	Photos []struct {
		Timepoint string `json:"timepoint"`
		View      string `json:"view"`
		Status    string `json:"status"`
	} `json:"photos"`
}

// apiClient calls the clinic API with a bearer token.
type apiClient struct {
	base, token string
	client      *http.Client
}

func (a apiClient) call(req *http.Request) (int, []byte, error) {
	req.Header.Set("Authorization", "Bearer "+a.token)
	resp, err := a.client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	return resp.StatusCode, body, err
}

// cmdFill uploads one photo through the clinic API into every view of every timepoint of the
// procedure that has no active photo yet, so that the timeline has a thumbnail in each cell.
func cmdFill(args []string) error {
	fs := flag.NewFlagSet("fill", flag.ExitOnError)
	baseFlag := fs.String("base", "", "server URL, http://127.0.0.1:PORT")
	proc := fs.String("procedure", "", "procedure id")
	file := fs.String("file", "", "photo to upload into every empty cell")
	fs.Parse(args)
	token := os.Getenv("LOADTEST_TOKEN")
	if *proc == "" || *file == "" || token == "" {
		return errors.New("-procedure, -file and LOADTEST_TOKEN (an API token of a clinician) are required")
	}
	base, err := benchBase(*baseFlag)
	if err != nil {
		return err
	}
	photo, err := os.ReadFile(*file)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	api := apiClient{base: base, token: token, client: &http.Client{Timeout: time.Minute}}
	procURL := base + "/api/v1/procedures/" + url.PathEscape(*proc)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, procURL, nil)
	if err != nil {
		return err
	}
	status, body, err := api.call(req)
	if err != nil || status != http.StatusOK {
		return fmt.Errorf("GET the procedure: %d %v %s", status, err, bytes.TrimSpace(body))
	}
	var p procedureJSON
	if err := json.Unmarshal(body, &p); err != nil {
		return err
	}
	have := map[string]bool{}
	for _, ph := range p.Photos {
		if ph.Status == "active" {
			have[ph.Timepoint+"/"+ph.View] = true
		}
	}
	cells, uploaded := 0, 0
	for _, tp := range p.Timepoints {
		for _, v := range tp.Views {
			cells++
			if have[tp.Key+"/"+v] {
				continue
			}
			if err := api.upload(ctx, procURL+"/photos", tp.Key, v, photo); err != nil {
				return err
			}
			uploaded++
		}
	}
	fmt.Fprintf(os.Stderr, "fill: %d timepoints, %d cells, %d photos uploaded\n", len(p.Timepoints), cells, uploaded)
	return nil
}

// upload posts the photo into one cell of the procedure.
func (a apiClient) upload(ctx context.Context, target, timepoint, view string, photo []byte) error {
	mp, ctype, length := multipartBody(timepoint, view, "bench-fill-"+timepoint+"-"+view, photo)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, mp)
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", ctype)
	req.ContentLength = length
	status, body, err := a.call(req)
	if err != nil || (status != http.StatusCreated && status != http.StatusOK) {
		return fmt.Errorf("upload %s/%s: %d %v %s", timepoint, view, status, err, bytes.TrimSpace(body))
	}
	return nil
}

// timelineResult is what the timeline mode writes: both loads and what the page held.
type timelineResult struct {
	PageBytes  int        `json:"page_bytes"`
	Thumbnails int        `json:"thumbnails"` // thumbnail <img> elements on the page
	Timeline   loadResult `json:"timeline"`
	Static     loadResult `json:"static"`
	StaticPath string     `json:"static_path"`
}

var (
	thumbnailImg = regexp.MustCompile(`<img src="/api/v1/photos/[0-9a-f-]{36}/thumbnail"`)
	csrfField    = regexp.MustCompile(`name="csrf_token" value="([^"]+)"`)
)

// browser is a clinician's browser: one cookie jar, redirects not followed.
type browser struct {
	base   string
	client *http.Client
}

func (b browser) fetch(ctx context.Context, method, path string, form url.Values) (int, http.Header, []byte, error) {
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequestWithContext(ctx, method, b.base+path, body)
	if err != nil {
		return 0, nil, nil, err
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	resp, err := b.client.Do(req)
	if err != nil {
		return 0, nil, nil, err
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, out, err
}

// signIn signs in through the login form as a browser does (the session cookie and the form's
// CSRF token) and returns the page at pagePath.
func (b browser) signIn(ctx context.Context, email, password, pagePath string) ([]byte, error) {
	status, _, body, err := b.fetch(ctx, http.MethodGet, "/login", nil)
	if err != nil || status != http.StatusOK {
		return nil, fmt.Errorf("GET /login: %d %v", status, err)
	}
	m := csrfField.FindSubmatch(body)
	if m == nil {
		return nil, errors.New("GET /login: no CSRF token in the form")
	}
	status, hdr, _, err := b.fetch(ctx, http.MethodPost, "/login", url.Values{"email": {email}, "password": {password},
		"csrf_token": {string(m[1])}, "next": {pagePath}})
	if err != nil || status != http.StatusSeeOther || hdr.Get("Location") != pagePath {
		return nil, fmt.Errorf("sign-in: %d %v (redirect to %q)", status, err, hdr.Get("Location"))
	}
	status, _, body, err = b.fetch(ctx, http.MethodGet, pagePath, nil)
	if err != nil || status != http.StatusOK {
		return nil, fmt.Errorf("GET the timeline: %d %v", status, err)
	}
	return body, nil
}

// get is a request of the load: GET path, the body read to the end, 200 expected.
func (b browser) get(path string) send {
	return func(ctx context.Context, _ int, _ []byte) (string, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, b.base+path, nil)
		if err != nil {
			return "error", err
		}
		resp, err := b.client.Do(req)
		if err != nil {
			return "error", err
		}
		defer resp.Body.Close()
		if _, err := io.Copy(io.Discard, resp.Body); err != nil {
			return "error", err
		}
		if resp.StatusCode != http.StatusOK {
			return strconv.Itoa(resp.StatusCode), fmt.Errorf("GET %s answered %s", path, resp.Status)
		}
		return "200", nil
	}
}

// cmdTimeline signs in, then loads the static file and the procedure's timeline page with the
// same clients, each bounded in count and time.
func cmdTimeline(args []string) error {
	fs := flag.NewFlagSet("timeline", flag.ExitOnError)
	baseFlag := fs.String("base", "", "server URL, http://127.0.0.1:PORT")
	proc := fs.String("procedure", "", "procedure id")
	email := fs.String("email", "", "the clinician's email (the password is read from LOADTEST_PASSWORD)")
	staticPath := fs.String("static", "/static/base.css", "static file of the same server: the baseline")
	c := fs.Int("c", 32, "concurrent clients")
	n := fs.Int("n", 20000, "timed requests at most, per load")
	warmup := fs.Int("warmup", 64, "untimed requests first, per load")
	duration := fs.Duration("duration", 30*time.Second, "stop starting requests after this long, per load")
	cpu := fs.String("cpu", "", "processes whose CPU time to account, name=pid,...")
	out := fs.String("out", "", "result JSON")
	fs.Parse(args)
	password := os.Getenv("LOADTEST_PASSWORD")
	if *proc == "" || *email == "" || password == "" || *out == "" || *c < 1 || *n < 1 {
		return errors.New("-procedure, -email, -out, -c >= 1, -n >= 1 and LOADTEST_PASSWORD are required")
	}
	base, err := benchBase(*baseFlag)
	if err != nil {
		return err
	}
	jar, err := cookiejar.New(nil)
	if err != nil {
		return err
	}
	b := browser{base: base, client: &http.Client{Jar: jar, Timeout: 30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		Transport:     &http.Transport{MaxIdleConnsPerHost: *c, Proxy: nil}}}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	pagePath := "/procedures/" + url.PathEscape(*proc)
	body, err := b.signIn(ctx, *email, password, pagePath)
	if err != nil {
		return err
	}
	res := timelineResult{PageBytes: len(body), Thumbnails: len(thumbnailImg.FindAll(body, -1)), StaticPath: *staticPath}
	fmt.Fprintf(os.Stderr, "timeline: signed in; the page is %d bytes with %d thumbnails\n", res.PageBytes, res.Thumbnails)

	none := ""
	lf := loadFlags{files: &none, c: c, n: n, warmup: warmup, duration: duration, cpu: cpu, out: out}
	empty := [][]byte{{}}
	if res.Static, err = drive("static", lf, empty, b.get(*staticPath), "200", 0); err != nil {
		return err
	}
	if res.Timeline, err = drive("timeline", lf, empty, b.get(pagePath), "200", 0); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "timeline: p99 %.1f ms against static p99 %.1f ms\n", res.Timeline.P99MS, res.Static.P99MS)
	return writeJSON(*out, res)
}

func (rp *report) timeline() {
	const name = "Timeline p99, 32 clients"
	var t timelineResult
	if err := readJSON(filepath.Join(rp.dir, "timeline.json"), &t); err != nil {
		rp.fail(name, err.Error())
		return
	}
	logs := countLog(filepath.Join(rp.dir, "server-timeline.log"))
	tl, st := t.Timeline, t.Static
	res := verdict(tl.P99MS < targetTimelineP99MS)
	errNote := ""
	if tl.Failed > 0 || st.Failed > 0 || tl.OK == 0 || st.OK == 0 || t.Thumbnails < 24 {
		rp.errors++
		res = "ERROR"
		errNote = fmt.Sprintf("\n**Errors**: %d of %d page and %d of %d static requests failed (%s); %d thumbnails on the page (want 24 or more).\n",
			tl.Failed, tl.Requests, st.Failed, st.Requests, strings.Join(append(tl.Errors, st.Errors...), "; "), t.Thumbnails)
	}
	ratioCell := "-"
	if st.P99MS > 0 {
		ratioCell = fmt.Sprintf("%.1fx", ratio(tl.P99MS, st.P99MS))
	}
	rp.rows = append(rp.rows, row{name, fmt.Sprintf("p99 %.1f ms", tl.P99MS), fmt.Sprintf("static p99 %.1f ms", st.P99MS),
		ratioCell, fmt.Sprintf("p99 < %d ms", targetTimelineP99MS), res})
	rp.sections = append(rp.sections, fmt.Sprintf(timelineText, timepointsNote(t), tl.Concurrency, tl.MaxRequests, tl.MaxSeconds,
		t.StaticPath, t.PageBytes, t.Thumbnails, tl.Warmup, targetTimelineP99MS,
		timelineLine("static file (baseline)", st), timelineLine("timeline page", tl), cpuLine("timeline page", tl), res, logs, errNote))
}

func timelineLine(label string, r loadResult) string {
	return fmt.Sprintf("| %s | %d/%d in %.1f s (%s) | %.0f | %.1f | %.1f | %.1f | %.1f |", label, r.OK, r.Requests, r.Seconds,
		"stopped by "+r.StoppedBy, float64(r.OK)/r.Seconds, r.P50MS, r.P95MS, r.P99MS, r.MaxMS)
}

// timepointsNote says how many timepoints the page had: 8 x 3 views hold 24 thumbnails, the
// baseline's close-up one more.
func timepointsNote(t timelineResult) string {
	if t.Thumbnails >= 24 {
		return "8"
	}
	return "not all 8"
}

const timelineText = `## 5. Timeline page p99 (issue 7)

A fresh server with the demo procedure (PWS protocol, %s timepoints), every view of every timepoint given a photo
through the clinic API (` + "`loadtest fill`" + `) and all thumbnails made before the load starts. The load generator signs
in through the login form as a browser does (session cookie, the form's CSRF token), then %d clients GET, for at
most %d requests or %.0f s each, first the static file ` + "`%s`" + ` of the same server (the baseline), then the
timeline page ` + "`/procedures/{id}`" + ` (%d bytes, %d thumbnails). Each load starts with %d untimed requests.
Target: p99 under %d ms.

| load | ok/sent | requests/s | p50 ms | p95 ms | p99 ms | max ms |
|---|---|---|---|---|---|---|
%s
%s

Where the CPU went during the timed page load (CPU seconds from /proc/PID/stat):

| load | machine busy | server | MinIO | load generator | PostgreSQL and the rest | server CPU per request |
|---|---|---|---|---|---|---|
%s

Result: **%s**. Server log (level warn): %s.

The page decodes no image per request: the handler (` + "`timeline`" + ` in web/clinic_procedure.go) reads rows only
and renders the page; each cell is an ` + "`<img src=\"/api/v1/photos/{id}/thumbnail\">`" + `, a separate request for a
thumbnail that the background worker made once, after the upload, and that is streamed from the store as stored.
The page's own work is two database round trips: the session with its user's standing in one query
(web/session_store.go), and one pgx batch of the procedure's reads (` + "`followup.ProcedureRecord`" + `). That batch
reads the procedure with its patient, its clinic and its rows version, which database triggers replace with every
change to its photos, grades, messages, links and reminders; the rows of those, and the schedule, which never changes,
come from a per-process cache while the version says they are current (followup/record_cache.go), so that a page
costs PostgreSQL two statements instead of seven. The page is written in Go with
explicit escaping (web/clinic_timeline_body.go, web/clinic_timeline_grid.go); html/template draws only its frame.
The session is stored in a small binary format (web/session_codec.go) rather than gob, ids travel in binary
(pgx-google-uuid), and the page is rendered into a reused buffer and sent with its length.
` + "`go test -bench TimelinePage ./web/`" + ` measures the same page without the network.
%s`
