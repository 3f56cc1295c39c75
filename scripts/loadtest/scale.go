package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"regexp"
	"strconv"
	"time"
)

// The seeded-scale benchmark (issue "100 times the data", make bench-scale, which runs
// scripts/bench_scale.sh): scale loads the measured clinic's pages and the API's lists with
// concurrent clients through the real server, on a database scripts/scalegen filled, at one
// size; scale_report.go compares the two sizes and writes their section of the document.

// scaleSummary is the part of scalegen's summary that the load and the report read.
type scaleSummary struct {
	Size            string           `json:"size"`
	Seconds         float64          `json:"seconds"`
	ClinicName      string           `json:"clinic_name"`
	TimelineProc    string           `json:"timeline_procedure"`
	TimelinePhotos  int              `json:"timeline_photos"`
	Patient         string           `json:"patient"`
	SearchTerm      string           `json:"search_term"`
	SearchMatches   int              `json:"search_matches"`
	ClinicPatients  int              `json:"clinic_patients"`
	ClinicProcs     int              `json:"clinic_procedures"`
	ClinicActive    int              `json:"clinic_active"`
	Counts          map[string]int64 `json:"counts"`
	ReminderStatus  map[string]int64 `json:"reminder_status"`
	DatabaseBytes   int64            `json:"database_bytes"`
	AuditBytes      int64            `json:"audit_bytes"`
	AuditPhotoViews int64            `json:"audit_photo_views"`
}

// scaleResult is what the scale mode writes: one load per page.
type scaleResult struct {
	Pages     []scalePage `json:"pages"`
	IdleRSSKB int64       `json:"idle_rss_kb"`
	PeakRSSKB int64       `json:"peak_rss_kb"`
	// What the first worklist page showed: its rows and its "All" count.
	WorklistRows  int `json:"worklist_rows"`
	WorklistTotal int `json:"worklist_total"`
}

type scalePage struct {
	Name  string     `json:"name"`
	Path  string     `json:"path"`
	Bytes int        `json:"bytes"`
	Load  loadResult `json:"load"`
}

// The pages of the benchmark, in the order of the document.
const (
	pageWorklist       = "worklist"
	pageWorklistNext   = "worklist, next page"
	pageWorklistSearch = "worklist search"
	pageWorklistState  = "worklist, overdue only"
	pageTimeline       = "timeline of one procedure"
	pagePatient        = "patient page"
	pageAPIProcedures  = "API procedures, first page"
	pageAPINext        = "API procedures, next page"
	pageAPIChanged     = "API procedures, active, changed this week"
	pageAPIPatients    = "API patients search"
)

var (
	worklistNext  = regexp.MustCompile(`<a href="([^"]+)" rel="next"`)
	worklistAll   = regexp.MustCompile(`data-state="">All <span class="cl-count">(\d+)</span>`)
	worklistRow   = regexp.MustCompile(`class="wl-row"`)
	nextCursorKey = regexp.MustCompile(`"next":"([^"]*)"`)
)

func cmdScale(args []string) error {
	fs := flag.NewFlagSet("scale", flag.ExitOnError)
	baseFlag := fs.String("base", "", "server URL, http://127.0.0.1:PORT")
	email := fs.String("email", "", "a clinician of the measured clinic (password in LOADTEST_PASSWORD)")
	summaryPath := fs.String("summary", "", "scalegen's summary of the database")
	c := fs.Int("c", 8, "concurrent clients")
	n := fs.Int("n", 100000, "timed requests at most, per page")
	warmup := fs.Int("warmup", 16, "untimed requests first, per page")
	duration := fs.Duration("duration", 20*time.Second, "stop starting requests after this long, per page")
	pid := fs.Int("pid", 0, "the server's pid, for its memory")
	cpu := fs.String("cpu", "", "processes whose CPU time to account, name=pid,...")
	out := fs.String("out", "", "result JSON")
	fs.Parse(args)
	password, token := os.Getenv("LOADTEST_PASSWORD"), os.Getenv("LOADTEST_TOKEN")
	if *email == "" || *summaryPath == "" || *out == "" || password == "" || token == "" || *c < 1 || *n < 1 {
		return errors.New("-email, -summary, -out, -c >= 1, -n >= 1, LOADTEST_PASSWORD and LOADTEST_TOKEN are required")
	}
	base, err := benchBase(*baseFlag)
	if err != nil {
		return err
	}
	var sum scaleSummary
	if err := readJSON(*summaryPath, &sum); err != nil {
		return err
	}
	jar, err := cookiejar.New(nil)
	if err != nil {
		return err
	}
	transport := &http.Transport{MaxIdleConnsPerHost: *c, Proxy: nil}
	b := browser{base: base, client: &http.Client{Jar: jar, Timeout: 30 * time.Second, Transport: transport,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
	api := apiClient{base: base, token: token, client: &http.Client{Timeout: 30 * time.Second, Transport: transport}}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	first, err := b.signIn(ctx, *email, password, "/")
	if err != nil {
		return err
	}
	res := scaleResult{WorklistRows: len(worklistRow.FindAll(first, -1))}
	if m := worklistAll.FindSubmatch(first); m != nil {
		res.WorklistTotal, _ = strconv.Atoi(string(m[1]))
	}
	next := worklistNext.FindSubmatch(first)
	if next == nil {
		return errors.New("the worklist's first page has no next page: is the database the generator's?")
	}
	apiFirst, err := api.body(ctx, "/api/v1/procedures?limit=50")
	if err != nil {
		return err
	}
	cursor := nextCursorKey.FindSubmatch(apiFirst)
	if cursor == nil || len(cursor[1]) == 0 {
		return errors.New("the API's first page of procedures has no next cursor")
	}
	week := url.QueryEscape(time.Now().AddDate(0, 0, -7).UTC().Format(time.RFC3339))
	pages := []struct {
		name, path string
		bearer     bool
	}{
		{pageWorklist, "/", false},
		{pageWorklistNext, html.UnescapeString(string(next[1])), false},
		{pageWorklistSearch, "/?q=" + url.QueryEscape(sum.SearchTerm), false},
		{pageWorklistState, "/?state=overdue", false},
		{pageTimeline, "/procedures/" + sum.TimelineProc, false},
		{pagePatient, "/patients/" + sum.Patient, false},
		{pageAPIProcedures, "/api/v1/procedures?limit=50", true},
		{pageAPINext, "/api/v1/procedures?limit=50&cursor=" + url.QueryEscape(string(cursor[1])), true},
		{pageAPIChanged, "/api/v1/procedures?state=active&updated_since=" + week, true},
		{pageAPIPatients, "/api/v1/patients?search=" + url.QueryEscape(sum.SearchTerm), true},
	}
	none := ""
	lf := loadFlags{files: &none, c: c, n: n, warmup: warmup, duration: duration, cpu: cpu, out: out}
	for _, p := range pages {
		get := b.get(p.path)
		if p.bearer {
			get = api.get(p.path)
		}
		fctx, fcancel := context.WithTimeout(context.Background(), 30*time.Second)
		body, err := fetchOnce(fctx, b, api, p.path, p.bearer)
		fcancel()
		if err != nil {
			return fmt.Errorf("%s: %w", p.name, err)
		}
		r, err := drive(p.name, lf, [][]byte{{}}, get, "200", *pid)
		if err != nil {
			return fmt.Errorf("%s: %w", p.name, err)
		}
		if *pid > 0 && (res.IdleRSSKB == 0 || r.IdleRSSKB < res.IdleRSSKB) {
			res.IdleRSSKB = r.IdleRSSKB
		}
		res.PeakRSSKB = max(res.PeakRSSKB, r.PeakRSSKB, r.HWMKB)
		res.Pages = append(res.Pages, scalePage{Name: p.name, Path: p.path, Bytes: len(body), Load: r})
		fmt.Fprintf(os.Stderr, "scale: %s: p50 %.1f ms, p99 %.1f ms, %.0f requests/s\n", p.name, r.P50MS, r.P99MS, float64(r.OK)/r.Seconds)
	}
	return writeJSON(*out, res)
}

// fetchOnce reads a page once, before its load, for its size (and to fail early).
func fetchOnce(ctx context.Context, b browser, api apiClient, path string, bearer bool) ([]byte, error) {
	if bearer {
		return api.body(ctx, path)
	}
	status, _, body, err := b.fetch(ctx, http.MethodGet, path, nil)
	if err == nil && status != http.StatusOK {
		err = fmt.Errorf("GET %s answered %d", path, status)
	}
	return body, err
}

// body is a GET of the API with the token, 200 expected.
func (a apiClient) body(ctx context.Context, path string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, a.base+path, nil)
	if err != nil {
		return nil, err
	}
	status, body, err := a.call(req)
	if err == nil && status != http.StatusOK {
		err = fmt.Errorf("GET %s answered %d: %s", path, status, body)
	}
	return body, err
}

// get is a request of a load of the API: GET path with the token, the body read to the end.
func (a apiClient) get(path string) send {
	return func(ctx context.Context, _ int, _ []byte) (string, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, a.base+path, nil)
		if err != nil {
			return "error", err
		}
		req.Header.Set("Authorization", "Bearer "+a.token)
		resp, err := a.client.Do(req)
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
