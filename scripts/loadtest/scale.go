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
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// The seeded-scale benchmark (make bench-scale, which runs
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
	Load  loadResult `json:"load"` // over the rounds (mergeRounds)
	// Rounds are the page's loads at this size, one per round, in their order.
	Rounds []loadResult `json:"rounds,omitempty"`
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

// scaleTarget is one size's server, signed in, with the paths of its pages.
type scaleTarget struct {
	size  string
	pid   int
	b     browser
	api   apiClient
	res   scaleResult
	pages []scaleTargetPage
}

type scaleTargetPage struct {
	name, path string
	bearer     bool
}

// cmdScale loads the pages of each size's server, page by page, in rounds: each round loads the
// page at every size in turn (which size goes first alternates from one round to the next), so
// that the loads of a page at the two sizes are interleaved seconds apart on a machine whose
// other work changes: the small size is the large one's baseline. A page's figures are the
// median over its rounds of each round's (see mergeRounds), so that a burst of other work on
// the machine during one round moves the figure of neither size.
//
//	-target small=http://127.0.0.1:P1,PID1,summary-small.json -target large=...
func cmdScale(args []string) error {
	fs := flag.NewFlagSet("scale", flag.ExitOnError)
	var targets multiFlag
	fs.Var(&targets, "target", "SIZE=BASE_URL,SERVER_PID,SUMMARY_JSON (repeat for each size; the token in LOADTEST_TOKEN_SIZE)")
	email := fs.String("email", "", "a clinician of each size's measured clinic (password in LOADTEST_PASSWORD)")
	c := fs.Int("c", 8, "concurrent clients")
	n := fs.Int("n", 100000, "timed requests at most, per page and round")
	warmup := fs.Int("warmup", 16, "untimed requests first, per page and round")
	duration := fs.Duration("duration", 20*time.Second, "the timed load of a page at one size, over all its rounds")
	rounds := fs.Int("rounds", 4, "rounds per page: the duration is shared between them")
	outDir := fs.String("out", "", "directory for pages-SIZE.json")
	fs.Parse(args)
	password := os.Getenv("LOADTEST_PASSWORD")
	if *email == "" || *outDir == "" || password == "" || len(targets) == 0 || *c < 1 || *n < 1 || *rounds < 1 {
		return errors.New("-target, -email, -out, -c >= 1, -n >= 1, -rounds >= 1 and LOADTEST_PASSWORD are required")
	}
	var all []*scaleTarget
	for _, spec := range targets {
		t, err := newScaleTarget(spec, *email, password, *c)
		if err != nil {
			return err
		}
		all = append(all, t)
	}
	round := *duration / time.Duration(*rounds)
	for i := range all[0].pages {
		bodies := make([][]byte, len(all))
		for k, t := range all {
			var err error
			if bodies[k], err = t.fetchPage(i); err != nil {
				return err
			}
		}
		loads := make([][]loadResult, len(all))
		for r := range *rounds {
			for k := range all {
				if (i+r)%2 == 1 {
					k = len(all) - 1 - k
				}
				res, err := all[k].load(i, loadFlags{c: c, n: n, warmup: warmup, duration: &round, out: outDir})
				if err != nil {
					return err
				}
				loads[k] = append(loads[k], res)
			}
		}
		for k, t := range all {
			r := mergeRounds(loads[k])
			if t.res.IdleRSSKB == 0 || r.IdleRSSKB < t.res.IdleRSSKB {
				t.res.IdleRSSKB = r.IdleRSSKB
			}
			t.res.PeakRSSKB = max(t.res.PeakRSSKB, r.PeakRSSKB, r.HWMKB)
			p := t.pages[i]
			t.res.Pages = append(t.res.Pages, scalePage{Name: p.name, Path: p.path, Bytes: len(bodies[k]), Load: r, Rounds: loads[k]})
			fmt.Fprintf(os.Stderr, "scale: %s, %s: p50 %.1f ms, p99 %.1f ms, %.0f requests/s (median of %d rounds)\n", t.size, p.name,
				r.P50MS, r.P99MS, float64(r.OK)/r.Seconds, len(loads[k]))
		}
	}
	for _, t := range all {
		if err := writeJSON(filepath.Join(*outDir, "pages-"+t.size+".json"), t.res); err != nil {
			return err
		}
	}
	return nil
}

// fetchPage gets page i once, as a client would: its body (the size the report shows) and a
// check that it answers before its load.
func (t *scaleTarget) fetchPage(i int) ([]byte, error) {
	p := t.pages[i]
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	body, err := fetchOnce(ctx, t.b, t.api, p.path, p.bearer)
	if err != nil {
		return nil, fmt.Errorf("%s, %s: %w", t.size, p.name, err)
	}
	return body, nil
}

// load runs one round of page i's load against the target's server (its warm-up requests
// must answer 200, as every timed one is counted by its status).
func (t *scaleTarget) load(i int, lf loadFlags) (loadResult, error) {
	p := t.pages[i]
	none, cpu := "", fmt.Sprintf("server=%d", t.pid)
	lf.files, lf.cpu = &none, &cpu
	get := t.b.get(p.path)
	if p.bearer {
		get = t.api.get(p.path)
	}
	r, err := drive(t.size+": "+p.name, lf, [][]byte{{}}, get, "200", t.pid)
	if err != nil {
		return r, fmt.Errorf("%s, %s: %w", t.size, p.name, err)
	}
	return r, nil
}

// multiFlag is a flag that may be given more than once.
type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, " ") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }

// newScaleTarget signs in to one size's server and finds its pages' paths: the worklist's
// next page from the first page's link, the API's next page from its first page's cursor.
func newScaleTarget(spec, email, password string, clients int) (*scaleTarget, error) {
	size, rest, ok := strings.Cut(spec, "=")
	parts := strings.Split(rest, ",")
	if !ok || len(parts) != 3 {
		return nil, fmt.Errorf("-target %q: want SIZE=BASE_URL,SERVER_PID,SUMMARY_JSON", spec)
	}
	base, err := benchBase(parts[0])
	if err != nil {
		return nil, err
	}
	pid, err := strconv.Atoi(parts[1])
	if err != nil || pid <= 0 {
		return nil, fmt.Errorf("-target %q: the server's pid", spec)
	}
	var sum scaleSummary
	if err := readJSON(parts[2], &sum); err != nil {
		return nil, err
	}
	token := os.Getenv("LOADTEST_TOKEN_" + strings.ToUpper(size))
	if token == "" {
		return nil, fmt.Errorf("LOADTEST_TOKEN_%s is not set", strings.ToUpper(size))
	}
	jar, err := cookiejar.New(nil)
	if err != nil {
		return nil, err
	}
	transport := &http.Transport{MaxIdleConnsPerHost: clients, Proxy: nil}
	t := &scaleTarget{size: size, pid: pid,
		b: browser{base: base, client: &http.Client{Jar: jar, Timeout: 30 * time.Second, Transport: transport,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}},
		api: apiClient{base: base, token: token, client: &http.Client{Timeout: 30 * time.Second, Transport: transport}}}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	first, err := t.b.signIn(ctx, email, password, "/")
	if err != nil {
		return nil, fmt.Errorf("%s: %w", size, err)
	}
	t.res.WorklistRows = len(worklistRow.FindAll(first, -1))
	if m := worklistAll.FindSubmatch(first); m != nil {
		t.res.WorklistTotal, _ = strconv.Atoi(string(m[1]))
	}
	next := worklistNext.FindSubmatch(first)
	if next == nil {
		return nil, fmt.Errorf("%s: the worklist's first page has no next page: is the database the generator's?", size)
	}
	apiFirst, err := t.api.body(ctx, "/api/v1/procedures?limit=50")
	if err != nil {
		return nil, fmt.Errorf("%s: %w", size, err)
	}
	cursor := nextCursorKey.FindSubmatch(apiFirst)
	if cursor == nil || len(cursor[1]) == 0 {
		return nil, fmt.Errorf("%s: the API's first page of procedures has no next cursor", size)
	}
	week := url.QueryEscape(time.Now().AddDate(0, 0, -7).UTC().Format(time.RFC3339))
	t.pages = []scaleTargetPage{
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
	return t, nil
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
