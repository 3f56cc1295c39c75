package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/dermfollow/dermfollow/followup/pgtest"
)

// testSecret is a valid DERMFOLLOW_SECRET_KEY (32 bytes, base64).
const testSecret = "ZGVybWZvbGxvdyB0ZXN0IHNlY3JldCBrZXkgMzIgYnl0ZXM="

// syncBuffer collects a server's log output while the server writes to it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

type testServer struct {
	URL  string
	Logs *syncBuffer
	stop context.CancelFunc
	done chan struct{} // closed when run returns; err is set then
	err  error
}

// Stop sends the equivalent of SIGTERM and returns run's result.
func (s *testServer) Stop(t *testing.T) error {
	t.Helper()
	s.stop()
	select {
	case <-s.done:
		return s.err
	case <-time.After(time.Minute):
		t.Fatal("server did not stop within a minute")
		return nil
	}
}

// startServe runs the real program's `serve` in-process on a free port, as main would.
func startServe(t *testing.T, env map[string]string, args ...string) *testServer {
	t.Helper()
	full := map[string]string{
		"DERMFOLLOW_ADDR":         "127.0.0.1:0",
		"DERMFOLLOW_METRICS_ADDR": "127.0.0.1:0",
		"DERMFOLLOW_DRAIN_DELAY":  "0s",
		"DERMFOLLOW_SECRET_KEY":   testSecret,
		"DERMFOLLOW_STORE_DIR":    t.TempDir(),
		"DERMFOLLOW_LOG_FORMAT":   "json",
	}
	for k, v := range env {
		full[k] = v
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &testServer{Logs: &syncBuffer{}, stop: cancel, done: make(chan struct{})}
	go func() {
		defer close(s.done)
		s.err = run(ctx, append([]string{"serve"}, args...), mapEnv(full), strings.NewReader(""), io.Discard, s.Logs)
	}()
	t.Cleanup(func() {
		cancel()
		<-s.done
	})
	addrRe := regexp.MustCompile(`"msg":"listening","addr":"([^"]+)"`)
	deadline := time.Now().Add(2 * time.Minute)
	for time.Now().Before(deadline) {
		if m := addrRe.FindStringSubmatch(s.Logs.String()); m != nil {
			s.URL = "http://" + m[1]
			return s
		}
		select {
		case <-s.done:
			t.Fatalf("serve exited before listening: %v\n%s", s.err, s.Logs)
		case <-time.After(20 * time.Millisecond):
		}
	}
	t.Fatalf("serve did not start listening:\n%s", s.Logs)
	return nil
}

func mapEnv(m map[string]string) env {
	return func(k string) string { return m[k] }
}

func getJSON(t *testing.T, url string, into any) int {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if into != nil {
		if err := json.NewDecoder(resp.Body).Decode(into); err != nil {
			t.Fatalf("GET %s: decode: %v", url, err)
		}
	}
	return resp.StatusCode
}

func TestServeEndToEnd(t *testing.T) {
	t.Parallel()
	db := pgtest.NewEmptyDatabase(t)
	srv := startServe(t, map[string]string{"DATABASE_URL": db})

	if code := getJSON(t, srv.URL+"/healthz", nil); code != 200 {
		t.Errorf("/healthz = %d, want 200", code)
	}
	var ready readinessBody
	if code := getJSON(t, srv.URL+"/readyz", &ready); code != 200 || ready.Status != "ok" {
		t.Errorf("/readyz = %d %+v, want 200 ok", code, ready)
	}
	if code := getJSON(t, srv.URL+"/metrics", nil); code != 404 {
		t.Errorf("/metrics on the public address = %d, want 404", code)
	}
	m := regexp.MustCompile(`"msg":"metrics listening","addr":"([^"]+)"`).FindStringSubmatch(srv.Logs.String())
	if m == nil {
		t.Fatalf("no metrics listener in the log:\n%s", srv.Logs)
	}
	resp, err := http.Get("http://" + m[1] + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(metrics), `dermfollow_http_requests_total{code="200",method="GET",route="/healthz"}`) {
		t.Errorf("/metrics lacks the request counter by route:\n%.2000s", metrics)
	}

	if err := srv.Stop(t); err != nil {
		t.Errorf("serve after SIGTERM returned %v, want nil", err)
	}
	logs := srv.Logs.String()
	for _, want := range []string{`"msg":"migration applied"`, `"msg":"request"`, `"request_id":"`, `"msg":"stopped"`} {
		if !strings.Contains(logs, want) {
			t.Errorf("logs lack %s:\n%s", want, logs)
		}
	}
	if strings.Contains(logs, testSecret) {
		t.Error("the secret key appears in the logs")
	}
}

type readinessBody struct {
	Status string            `json:"status"`
	Checks map[string]string `json:"checks"`
}

func TestTwoServersMigrateOnce(t *testing.T) {
	t.Parallel()
	db := pgtest.NewEmptyDatabase(t)
	env := map[string]string{"DATABASE_URL": db}
	var wg sync.WaitGroup
	servers := make([]*testServer, 2)
	for i := range servers {
		wg.Go(func() { servers[i] = startServe(t, env) })
	}
	wg.Wait()
	for i, s := range servers {
		if s == nil {
			t.FailNow()
		}
		if code := getJSON(t, s.URL+"/readyz", nil); code != 200 {
			t.Errorf("server %d /readyz = %d", i, code)
		}
	}
	applied := strings.Count(servers[0].Logs.String(), `"msg":"migration applied"`) +
		strings.Count(servers[1].Logs.String(), `"msg":"migration applied"`)

	ctx := context.Background()
	conn, err := pgx.Connect(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var rows, distinct int
	if err := conn.QueryRow(ctx, "select count(*), count(distinct version_id) from goose_db_version where version_id > 0").Scan(&rows, &distinct); err != nil {
		t.Fatal(err)
	}
	if rows == 0 || rows != distinct || applied != rows {
		t.Errorf("goose_db_version has %d rows (%d distinct); servers logged %d applied migrations; want each migration exactly once", rows, distinct, applied)
	}
}

func TestReadyzFollowsDatabase(t *testing.T) {
	t.Parallel()
	cluster := pgtest.StartCluster(t)
	srv := startServe(t, map[string]string{"DATABASE_URL": cluster.URL("postgres")})
	var ready readinessBody
	if code := getJSON(t, srv.URL+"/readyz", &ready); code != 200 {
		t.Fatalf("/readyz = %d %+v before the database stopped", code, ready)
	}

	cluster.Stop(t)
	ready = readinessBody{}
	if code := getJSON(t, srv.URL+"/readyz", &ready); code != 503 || ready.Checks["database"] != "unreachable" || ready.Checks["store"] != "ok" {
		t.Errorf("/readyz with PostgreSQL down = %d %+v, want 503 with database unreachable", code, ready)
	}
	if code := getJSON(t, srv.URL+"/healthz", nil); code != 200 {
		t.Errorf("/healthz with PostgreSQL down = %d, want 200 (the process is up)", code)
	}

	cluster.Start(t)
	deadline := time.Now().Add(30 * time.Second)
	for {
		ready = readinessBody{}
		code := getJSON(t, srv.URL+"/readyz", &ready)
		if code == 200 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("/readyz still %d %+v 30s after PostgreSQL came back", code, ready)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// A stopping server finishes a request in flight (an upload, say) and refuses new connections.
func TestShutdownFinishesInFlight(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	started, release := make(chan struct{}), make(chan struct{})
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(started)
		<-release
		io.WriteString(w, "stored")
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- serveUntilDone(ctx, discardLogger(), ln, noDrain{h}, &config{ShutdownTimeout: 10 * time.Second})
	}()

	url := "http://" + ln.Addr().String() + "/"
	type result struct {
		body string
		err  error
	}
	got := make(chan result, 1)
	go func() {
		resp, err := http.Get(url)
		if err != nil {
			got <- result{err: err}
			return
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		got <- result{body: string(b)}
	}()
	<-started
	cancel() // SIGTERM
	time.Sleep(100 * time.Millisecond)
	if _, err := net.DialTimeout("tcp", ln.Addr().String(), time.Second); err == nil {
		t.Error("a stopping server still accepts new connections")
	}
	close(release)
	if r := <-got; r.err != nil || r.body != "stored" {
		t.Errorf("in-flight request = %q, %v; want it finished", r.body, r.err)
	}
	if err := <-done; err != nil {
		t.Errorf("serveUntilDone = %v, want nil", err)
	}
}

// noDrain is a handler with nothing to drain.
type noDrain struct{ http.Handler }

func (noDrain) Drain() {}

func TestShutdownDeadline(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	started := make(chan struct{})
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(started)
		time.Sleep(5 * time.Second)
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- serveUntilDone(ctx, discardLogger(), ln, noDrain{h}, &config{ShutdownTimeout: 200 * time.Millisecond})
	}()
	go http.Get("http://" + ln.Addr().String() + "/")
	<-started
	cancel()
	select {
	case err := <-done:
		if err == nil || !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("serveUntilDone past its deadline = %v, want a deadline error", err)
		}
	case <-time.After(3 * time.Second):
		t.Error("shutdown waited past its deadline")
	}
}
