package web

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/dermfollow/dermfollow/followup"
	"github.com/dermfollow/dermfollow/followup/accounts"
	"github.com/dermfollow/dermfollow/followup/followuptest"
	"github.com/dermfollow/dermfollow/followup/pgtest"
)

// authTestServer is the middleware under test on a real followup.Service, behind the request
// id and request log middleware, with one route (/whoami) that echoes the actor.
type authTestServer struct {
	pool *pgxpool.Pool
	echo *echo.Echo
	svc  *followup.Service
	acc  *accounts.Service
	logs *bytes.Buffer
}

func newAuthTestServer(t *testing.T) *authTestServer {
	t.Helper()
	pool := pgtest.NewPool(t)
	svc := followuptest.NewCore(t, pool, nil)
	m, err := newHTTPMetrics(prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	logs := &bytes.Buffer{}
	acc := newAccounts(t, pool, nil)
	s := &Server{log: slog.New(slog.NewJSONHandler(logs, nil)), metrics: m, svc: svc, accounts: acc, tokenFailures: newFailureLimiter(20, 15*time.Minute)}
	e := echo.New()
	e.HTTPErrorHandler = s.handleError
	e.IPExtractor = ipExtractor(nil)
	e.Use(s.requestID, s.logRequests)
	e.GET("/whoami", func(c echo.Context) error {
		a := actorOf(c)
		return c.JSON(http.StatusOK, map[string]string{"kind": a.Kind, "id": a.ID.String(), "clinic": a.ClinicID.String(), "role": a.Role, "addr": a.Addr.String()})
	}, s.requireUser)
	return &authTestServer{pool: pool, echo: e, svc: svc, acc: acc, logs: logs}
}

func (s *authTestServer) get(t *testing.T, authorization string) (*httptest.ResponseRecorder, errorBody) {
	t.Helper()
	req := httptest.NewRequest(http.MethodGet, "/whoami", nil)
	req.RemoteAddr = "192.0.2.10:50000"
	if authorization != "" {
		req.Header.Set("Authorization", authorization)
	}
	rec := httptest.NewRecorder()
	s.echo.ServeHTTP(rec, req)
	var body errorBody
	if rec.Code != http.StatusOK {
		if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
			t.Errorf("%d response is not the JSON error shape: %v: %s", rec.Code, err, rec.Body)
		}
	}
	return rec, body
}

// userWithToken creates a clinic, a clinician and an API token for the clinician.
func userWithToken(t *testing.T, svc *followup.Service, acc *accounts.Service) (accounts.User, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	clinic, err := svc.CreateClinic(ctx, "Clinic "+uuid.NewString()[:8], "Asia/Shanghai")
	if err != nil {
		t.Fatal(err)
	}
	u, err := acc.CreateUser(ctx, followup.SystemActor(clinic.ID), accounts.NewUser{
		ClinicID: clinic.ID, Email: "doc-" + uuid.NewString()[:8] + "@example.org", Name: "Doc", Role: followup.RoleClinician, Password: "long enough password"})
	if err != nil {
		t.Fatal(err)
	}
	token, err := acc.CreateToken(ctx, followup.SystemActor(uuid.Nil), u.Email)
	if err != nil {
		t.Fatal(err)
	}
	return u, token
}

func TestRequireUser(t *testing.T) {
	t.Parallel()
	s := newAuthTestServer(t)
	u, token := userWithToken(t, s.svc, s.acc)

	for _, h := range []string{"Bearer " + token, "bearer " + token, "Bearer   " + token} {
		rec, _ := s.get(t, h)
		if rec.Code != http.StatusOK {
			t.Fatalf("%q: %d %s", h[:10], rec.Code, rec.Body)
		}
		var got map[string]string
		if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
			t.Fatal(err)
		}
		want := map[string]string{"kind": followup.ActorUser, "id": u.ID.String(), "clinic": u.ClinicID.String(), "role": followup.RoleClinician, "addr": "192.0.2.10"}
		for k, v := range want {
			if got[k] != v {
				t.Errorf("actor %s = %q, want %q", k, got[k], v)
			}
		}
	}

	wrong := "dft_" + strings.Repeat("x", 43)
	for name, tc := range map[string]struct{ header, bearerError string }{
		"no header":         {"", ""},
		"basic":             {"Basic ZG9jOnB3", "invalid_request"},
		"scheme only":       {"Bearer", "invalid_request"},
		"empty token":       {"Bearer  ", "invalid_request"},
		"two tokens":        {"Bearer " + token + " " + token, "invalid_request"},
		"token without sch": {token, "invalid_request"},
		"wrong token":       {"Bearer " + wrong, "invalid_token"},
		"malformed token":   {"Bearer abc", "invalid_token"},
		"token with suffix": {"Bearer " + token + "x", "invalid_token"},
	} {
		rec, body := s.get(t, tc.header)
		if rec.Code != http.StatusUnauthorized || body.Error.Code != followup.EUNAUTHORIZED || body.Error.Message == "" {
			t.Errorf("%s: %d %s", name, rec.Code, rec.Body)
		}
		challenge := rec.Header().Get("WWW-Authenticate")
		if !strings.HasPrefix(challenge, "Bearer ") || (tc.bearerError != "") != strings.Contains(challenge, `error="`+tc.bearerError+`"`) {
			t.Errorf("%s: WWW-Authenticate = %q", name, challenge)
		}
		if strings.Contains(rec.Body.String(), token[4:]) || strings.Contains(rec.Body.String(), wrong) {
			t.Errorf("%s: the response repeats the token: %s", name, rec.Body)
		}
	}

	ctx := context.Background()
	if err := s.acc.RevokeToken(ctx, followup.SystemActor(uuid.Nil), token); err != nil {
		t.Fatal(err)
	}
	if rec, _ := s.get(t, "Bearer "+token); rec.Code != http.StatusUnauthorized {
		t.Errorf("revoked token: %d", rec.Code)
	}

	logs := s.logs.String()
	if !strings.Contains(logs, `"route":"/whoami"`) {
		t.Fatalf("no request lines logged:\n%s", logs)
	}
	for _, secret := range []string{token[4:], wrong[4:]} {
		if strings.Contains(logs, secret) {
			t.Errorf("a token appears in the logs:\n%s", logs)
		}
	}
}

func TestRequireUserDatabaseDown(t *testing.T) {
	t.Parallel()
	pool := pgtest.NewPool(t)
	svc := followuptest.NewCore(t, pool, nil)
	acc := newAccounts(t, pool, nil)
	_, token := userWithToken(t, svc, acc)
	s := &Server{log: slog.New(slog.DiscardHandler), svc: svc, accounts: acc}
	e := echo.New()
	e.HTTPErrorHandler = s.handleError
	e.GET("/whoami", func(c echo.Context) error { return c.NoContent(http.StatusNoContent) }, s.requireUser)
	pool.Close()

	req := httptest.NewRequest(http.MethodGet, "/whoami", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	rec := httptest.NewRecorder()
	e.ServeHTTP(rec, req)
	// An outage is not the client's fault: not 401 (which would make clients drop a good token).
	if rec.Code != http.StatusServiceUnavailable || rec.Header().Get("WWW-Authenticate") != "" {
		t.Errorf("database down: %d %q %s", rec.Code, rec.Header().Get("WWW-Authenticate"), rec.Body)
	}
}

func TestActorOfWithoutRequireUser(t *testing.T) {
	t.Parallel()
	c := echo.New().NewContext(httptest.NewRequest(http.MethodGet, "/", nil), httptest.NewRecorder())
	if a := actorOf(c); a.IsUser() || a.Kind != "" {
		t.Errorf("actorOf outside requireUser = %+v", a)
	}
}

// TestWrongTokensThrottledAndAudited: wrong API tokens from one address are audited as failed
// sign-ins are, 20 of them; beyond that they are refused with 429 unchecked and unaudited, while
// a valid token from the same address keeps working.
func TestWrongTokensThrottledAndAudited(t *testing.T) {
	t.Parallel()
	s := newAuthTestServer(t)
	_, token := userWithToken(t, s.svc, s.acc)
	codes := map[int]int{}
	for i := range 40 {
		rec, _ := s.get(t, fmt.Sprintf("Bearer dft_%043d", i))
		codes[rec.Code]++
	}
	if codes[401] != 20 || codes[429] != 20 {
		t.Errorf("40 wrong tokens from one address: %v, want 20 refused (401) and 20 throttled (429)", codes)
	}
	var audited int
	if err := s.pool.QueryRow(context.Background(), `select count(*) from audit_events where action = 'token_failed' and client_addr = '192.0.2.10'`).Scan(&audited); err != nil || audited != 20 {
		t.Errorf("audited token failures = %d (%v), want 20", audited, err)
	}
	if rec, _ := s.get(t, "Bearer "+token); rec.Code != 200 {
		t.Errorf("a valid token from the throttled address = %d, want 200", rec.Code)
	}
	if strings.Contains(s.logs.String(), "dft_0000") {
		t.Error("a token reached the log")
	}
}
