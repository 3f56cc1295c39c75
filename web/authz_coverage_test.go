package web

import (
	"flag"
	"fmt"
	"os"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/labstack/echo/v4"
)

// Every route needs an authorization case: some test that sent it a caller without the right
// to it (another clinic's user, a researcher, nobody, another family) and saw it refused. The
// authorization tests record the routes they refuse callers on (watchAuthz); after all tests
// have run, TestMain fails the run for a registered route that none refused, so that a new
// route cannot ship unguarded. Routes open to anyone are listed in publicRoutes, with why.

// publicRoutes take no credentials by design.
var publicRoutes = map[string]string{
	"GET /healthz":                "process health, for orchestrators",
	"GET /readyz":                 "readiness, for load balancers",
	"GET /static/*":               "the pages' CSS and scripts",
	"GET /login":                  "the sign-in form",
	"POST /login":                 "signing in (throttled: TestClinicLoginRateLimit)",
	"POST /login/passkey/options": "begins a passkey sign-in, which names no account (limited per address: TestPasskeyRoutesBadInput)",
	"GET /p/:token":               "a family's link; wrong ones are refused (TestValidLinkResolvesAfterWrongOnes)",
	"GET /p/":                     "the family's page, or the friendly 'open your link' page without a session",
	"POST /p/:token/photos":       "the family's upload through its link; wrong links are refused like GET /p/:token",
}

var authzRefused sync.Map // "METHOD route" -> true, for routes an authorization test saw refuse a caller

// watchAuthz records, for the rest of the test, the routes on which srv refuses a caller: 401,
// 403 or 404, or a page that sends a signed-out browser to the sign-in.
func watchAuthz(srv *Server) {
	srv.observe = func(method, route string, status int, location string) {
		if status == 401 || status == 403 || status == 404 || status == 303 && strings.HasPrefix(location, "/login?next=") {
			authzRefused.Store(method+" "+route, true)
		}
	}
}

func TestMain(m *testing.M) {
	code := m.Run()
	if code == 0 && flag.Lookup("test.run").Value.String() == "" && !testing.Short() {
		if missing := unguardedRoutes(); len(missing) > 0 {
			fmt.Fprintf(os.Stderr, "FAIL: routes without an authorization case (a test that saw a caller refused; see authz_coverage_test.go):\n  %s\n",
				strings.Join(missing, "\n  "))
			code = 1
		}
	}
	os.Exit(code)
}

// unguardedRoutes lists the registered routes that no authorization test refused a caller on.
func unguardedRoutes() []string {
	srv := &Server{uploads: map[string]bool{}}
	srv.echo = echo.New()
	srv.routes()
	var missing []string
	for _, r := range srv.echo.Routes() {
		key := r.Method + " " + r.Path
		if strings.HasPrefix(r.Method, "echo_") || publicRoutes[key] != "" {
			continue
		}
		if _, ok := authzRefused.Load(key); !ok && !slices.Contains(missing, key) {
			missing = append(missing, key)
		}
	}
	sort.Strings(missing)
	return missing
}

func TestPublicRoutesAreRegistered(t *testing.T) {
	srv := &Server{uploads: map[string]bool{}}
	srv.echo = echo.New()
	srv.routes()
	registered := map[string]bool{}
	for _, r := range srv.echo.Routes() {
		registered[r.Method+" "+r.Path] = true
	}
	for key := range publicRoutes {
		if !registered[key] {
			t.Errorf("publicRoutes names %s, which is not a route", key)
		}
	}
}
