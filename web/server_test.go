package web

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/dermfollow/dermfollow/followup"
	"github.com/dermfollow/dermfollow/followup/pgtest"
	"github.com/dermfollow/dermfollow/imagestore"
	"github.com/dermfollow/dermfollow/protocols"
)

type testServer struct {
	*Server
	logs *bytes.Buffer
}

func newTestServer(t *testing.T, mutate ...func(*Config)) *testServer {
	t.Helper()
	store, err := imagestore.NewLocalStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	logs := &bytes.Buffer{}
	pool := pgtest.NewPool(t)
	reg, err := protocols.LoadRegistry("")
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewJSONHandler(logs, nil))
	svc, err := followup.New(followup.Config{Pool: pool, Store: store, Protocols: reg, Logger: log, BaseURL: "http://example.test"})
	if err != nil {
		t.Fatal(err)
	}
	cfg := Config{
		Logger:    log,
		DB:        pool,
		Store:     store,
		Registry:  prometheus.NewRegistry(),
		Service:   svc,
		Accounts:  newAccounts(t, pool, log),
		Reminders: newReminders(t, pool, log, "http://example.test", nil),
		Export:    newExport(t, svc, pool, log, nil),
	}
	for _, m := range mutate {
		m(&cfg)
	}
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return &testServer{s, logs}
}

func (s *testServer) do(t *testing.T, req *http.Request) *httptest.ResponseRecorder {
	t.Helper()
	rec := httptest.NewRecorder()
	s.ServeHTTP(rec, req)
	return rec
}

func TestSecurityHeadersAndRequestID(t *testing.T) {
	t.Parallel()
	s := newTestServer(t)
	rec := s.do(t, httptest.NewRequest("GET", "/static/base.css", nil))
	h := rec.Header()
	for k, want := range map[string]string{
		"X-Content-Type-Options": "nosniff",
		"X-Frame-Options":        "DENY",
		"Referrer-Policy":        "no-referrer",
	} {
		if h.Get(k) != want {
			t.Errorf("%s = %q, want %q", k, h.Get(k), want)
		}
	}
	if !strings.Contains(h.Get("Content-Security-Policy"), "default-src 'none'") {
		t.Errorf("CSP = %q", h.Get("Content-Security-Policy"))
	}
	id := h.Get("X-Request-Id")
	if len(id) != 24 {
		t.Errorf("X-Request-Id = %q, want a generated id", id)
	}
	if !strings.Contains(s.logs.String(), `"request_id":"`+id+`"`) {
		t.Errorf("log line lacks the request id %s:\n%s", id, s.logs)
	}

	// A well-formed incoming id is kept (joins logs across a proxy); a malformed one is replaced.
	req := httptest.NewRequest("GET", "/static/base.css", nil)
	req.Header.Set("X-Request-Id", "lb-1234")
	if got := s.do(t, req).Header().Get("X-Request-Id"); got != "lb-1234" {
		t.Errorf("incoming id replaced: %q", got)
	}
	req.Header.Set("X-Request-Id", "bad id\"}{injection")
	if got := s.do(t, req).Header().Get("X-Request-Id"); strings.Contains(got, "injection") {
		t.Errorf("malformed incoming id kept: %q", got)
	}
}

// Raw paths can carry parent link tokens: logs and metric labels name route templates only.
func TestNoRawPathsInLogsOrMetrics(t *testing.T) {
	t.Parallel()
	s := newTestServer(t)
	const token = "SECRET-TOKEN-abcdef0123456789"
	rec := s.do(t, httptest.NewRequest("GET", "/nowhere/"+token+"?x="+token, nil))
	if rec.Code != 404 {
		t.Errorf("unknown route = %d, want 404", rec.Code)
	}
	if rec := s.do(t, httptest.NewRequest("GET", "/metrics", nil)); rec.Code != 404 {
		t.Errorf("/metrics on the public address = %d, want 404 (it has a listener of its own)", rec.Code)
	}
	mrec := httptest.NewRecorder()
	s.MetricsHandler().ServeHTTP(mrec, httptest.NewRequest("GET", "/metrics", nil))
	if strings.Contains(s.logs.String(), token) {
		t.Errorf("token in logs:\n%s", s.logs)
	}
	if strings.Contains(mrec.Body.String(), token) {
		t.Error("token in metrics")
	}
	if !strings.Contains(mrec.Body.String(), `route="unmatched"`) {
		t.Error(`metrics lack route="unmatched" for the unknown path`)
	}
}

func TestErrorShape(t *testing.T) {
	t.Parallel()
	s := newTestServer(t)
	s.echo.GET("/test/app-error", func(c echo.Context) error {
		return followup.Errorf(followup.EINVALID, "birth_date must be YYYY-MM-DD")
	})
	s.echo.GET("/test/internal", func(c echo.Context) error {
		return io.ErrUnexpectedEOF
	})
	s.echo.GET("/test/panic", func(c echo.Context) error {
		panic("boom at db password=hunter2")
	})
	for _, tc := range []struct {
		path, code, message string
		status              int
	}{
		{"/test/app-error", "invalid", "birth_date must be YYYY-MM-DD", 422},
		{"/test/internal", "internal", "An internal error occurred.", 500},
		{"/test/panic", "internal", "An internal error occurred.", 500},
		{"/nowhere", "not_found", "Not Found", 404},
	} {
		rec := s.do(t, httptest.NewRequest("GET", tc.path, nil))
		var body struct {
			Error struct{ Code, Message string }
		}
		if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
			t.Errorf("%s: body %q is not the JSON error shape", tc.path, rec.Body)
			continue
		}
		if rec.Code != tc.status || body.Error.Code != tc.code || body.Error.Message != tc.message {
			t.Errorf("%s = %d %+v, want %d %s %q", tc.path, rec.Code, body.Error, tc.status, tc.code, tc.message)
		}
		if strings.Contains(rec.Body.String(), "hunter2") || strings.Contains(rec.Body.String(), "unexpected EOF") {
			t.Errorf("%s shows an internal error to the client: %s", tc.path, rec.Body)
		}
	}
	if !strings.Contains(s.logs.String(), "panic in handler") {
		t.Error("a panic was not logged")
	}
	// The server is still up after the panic.
	if rec := s.do(t, httptest.NewRequest("GET", "/healthz", nil)); rec.Code != 200 {
		t.Errorf("/healthz after a panic = %d", rec.Code)
	}
}

// Without trusted proxies the socket address is the client: a forged X-Forwarded-For is ignored.
func TestClientAddress(t *testing.T) {
	t.Parallel()
	direct := newTestServer(t)
	req := httptest.NewRequest("GET", "/static/base.css", nil)
	req.RemoteAddr = "203.0.113.9:5555"
	req.Header.Set("X-Forwarded-For", "198.51.100.66")
	direct.do(t, req)
	if !strings.Contains(direct.logs.String(), `"client":"203.0.113.9"`) || strings.Contains(direct.logs.String(), "198.51.100.66") {
		t.Errorf("direct: client address from a forged header:\n%s", direct.logs)
	}

	_, lb, _ := net.ParseCIDR("10.0.0.0/8")
	proxied := newTestServer(t, func(c *Config) { c.TrustedProxies = append(c.TrustedProxies, lb) })
	req = httptest.NewRequest("GET", "/static/base.css", nil)
	req.RemoteAddr = "10.1.2.3:5555"
	req.Header.Set("X-Forwarded-For", "198.51.100.66")
	proxied.do(t, req)
	if !strings.Contains(proxied.logs.String(), `"client":"198.51.100.66"`) {
		t.Errorf("behind a trusted proxy: client address not taken from X-Forwarded-For:\n%s", proxied.logs)
	}
}

// TestStaticServesFilesOnly: /static/ serves its files and lists no folder.
func TestStaticServesFilesOnly(t *testing.T) {
	t.Parallel()
	s := newTestServer(t)
	if rec := s.do(t, httptest.NewRequest("GET", "/static/parent.js", nil)); rec.Code != 200 {
		t.Errorf("a static file = %d, want 200", rec.Code)
	}
	for _, p := range []string{"/static/", "/static", "/static/./", "/static/../", "/static/nope.js", "/static/%2e%2e/server.go"} {
		if rec := s.do(t, httptest.NewRequest("GET", p, nil)); rec.Code != 404 && rec.Code != 301 || strings.Contains(rec.Body.String(), "parent.js") {
			t.Errorf("GET %s = %d %.80q, want not found and no listing", p, rec.Code, rec.Body.String())
		}
	}
}

// TestHSTSBehindHTTPS: a server whose public URL is https tells browsers to stay on https.
func TestHSTSBehindHTTPS(t *testing.T) {
	t.Parallel()
	plain := newTestServer(t)
	if h := plain.do(t, httptest.NewRequest("GET", "/healthz", nil)).Header().Get("Strict-Transport-Security"); h != "" {
		t.Errorf("HSTS over plain http = %q, want none", h)
	}
	secure := newTestServer(t, func(c *Config) { c.Secure = true })
	if h := secure.do(t, httptest.NewRequest("GET", "/healthz", nil)).Header().Get("Strict-Transport-Security"); !strings.Contains(h, "max-age=31536000") {
		t.Errorf("HSTS behind https = %q, want a year", h)
	}
}

// TestRequestLangWeighs: the browser's Accept-Language is read by its weights, and anything
// the pages do not speak falls back to English.
func TestRequestLangWeighs(t *testing.T) {
	t.Parallel()
	e := echo.New()
	for header, want := range map[string]string{
		"en;q=0.1, zh-CN;q=0.9": "zh-CN", "zh-CN,zh;q=0.9,en;q=0.8": "zh-CN", "en-GB,en;q=0.9": "en",
		"zh-Hans": "zh-CN", "zh-TW": "zh-CN", "de-DE,fr;q=0.5": "en", "": "en", "garbage;;q=x": "en",
		"fr;q=0.9, zh;q=0.8, en;q=0.1": "zh-CN",
	} {
		req := httptest.NewRequest("GET", "/", nil)
		req.Header.Set("Accept-Language", header)
		if got := requestLang(e.NewContext(req, httptest.NewRecorder())); got != want {
			t.Errorf("Accept-Language %q = %s, want %s", header, got, want)
		}
	}
}
