// Package web is Dermfollow's HTTP server: middleware, routes, handlers, embedded templates and
// static files, and the JSON API. Echo types never leave this package, which keeps a move to
// Echo v5 cheap.
package web

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/dermfollow/dermfollow/followup"
	"github.com/dermfollow/dermfollow/followup/accounts"
	"github.com/dermfollow/dermfollow/followup/conversation"
	"github.com/dermfollow/dermfollow/followup/export"
	"github.com/dermfollow/dermfollow/followup/reminders"
	"github.com/dermfollow/dermfollow/followup/staging"
	"github.com/dermfollow/dermfollow/followup/worklist"
	"github.com/dermfollow/dermfollow/imagestore"
)

// Pinger is anything whose reachability /readyz reports (the database pool, the store).
type Pinger interface {
	Ping(ctx context.Context) error
}

// Config holds the server's dependencies. The caller owns and closes them.
type Config struct {
	Logger *slog.Logger
	DB     Pinger
	Store  imagestore.Store
	// TrustedProxies are the load balancers whose X-Forwarded-For is believed. Empty means
	// clients connect directly and the socket address is the client address.
	TrustedProxies []*net.IPNet
	// Registry receives the server's metrics; one per server, so tests and several servers in
	// one process do not collide.
	Registry *prometheus.Registry
	// Service is the follow-up core behind the API and the pages.
	Service *followup.Service
	// Accounts are the clinic's users, passwords, tokens and sessions.
	Accounts *accounts.Service
	// Reminders are the families' reminders: sent by hand, switched, and the clinics' settings.
	Reminders *reminders.Service
	// Export is the research export: its API, its page and the archives' downloads.
	Export *export.Service
	// Conversation is the families' messages and the clinic's answers; when nil, one with
	// the default rate limit is made over Pool (or DB, if it is a *pgxpool.Pool), whose
	// notices (each side told that the other wrote) go through Reminders.
	Conversation *conversation.Service
	// Staging is the families' resumable uploads in progress (resumable.go); when nil, one
	// with the default bounds is made over Service and Pool (or DB, as for Conversation).
	Staging *staging.Service
	// Limits bound uploads; zero fields take imagestore's defaults.
	Limits imagestore.Limits
	// SecretKey keys cookies and other server-side secrets (DERMFOLLOW_SECRET_KEY).
	SecretKey []byte
	// Secure marks cookies Secure (the public URL is https).
	Secure bool
	// Pool holds the clinicians' sessions; when nil, DB is used if it is a *pgxpool.Pool.
	Pool *pgxpool.Pool
	// StoreProbeInterval is how long /readyz trusts its last write probe of the store
	// (0: 30 s).
	StoreProbeInterval time.Duration
}

// Server is the HTTP handler for the whole service.
type Server struct {
	cfg           Config
	log           *slog.Logger
	echo          *echo.Echo
	metrics       *httpMetrics
	svc           *followup.Service
	accounts      *accounts.Service
	reminders     *reminders.Service
	export        *export.Service
	conv          *conversation.Service
	worklists     *worklist.Service
	staging       *staging.Service
	limits        imagestore.Limits
	uploadMemory  *imagestore.ChunkPool // upload_spool.go
	linkFailures  *failureLimiter       // wrong parent links, per address
	tokenFailures *failureLimiter       // wrong API tokens, per address
	clinic        *clinicState          // session.go: clinicians' sessions and sign-in limits
	storeWrites   *storeWrites          // health.go
	uploads       map[string]bool       // "METHOD /path" of the routes that take uploads (routes.go)
	clientLimits  clientLimits          // limits.go; tests shorten them
	uploadSlots   *uploadSlots          // limits.go
	forms         formTokens            // csrf.go
	draining      atomic.Bool           // health.go: a stopping server says so on /readyz
	// observe, set only by tests, sees every request's route template and status (the
	// authorization tests record which routes they refused callers on).
	observe func(method, route string, status int, location string)
}

// New builds the server and its routes.
func New(cfg Config) (*Server, error) {
	if cfg.Logger == nil || cfg.DB == nil || cfg.Store == nil || cfg.Registry == nil || cfg.Service == nil || cfg.Accounts == nil ||
		cfg.Reminders == nil || cfg.Export == nil {
		return nil, errors.New("web: Logger, DB, Store, Registry, Service, Accounts, Reminders and Export are required")
	}
	m, err := newHTTPMetrics(cfg.Registry)
	if err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg, log: cfg.Logger, metrics: m, svc: cfg.Service, accounts: cfg.Accounts, reminders: cfg.Reminders, export: cfg.Export, limits: cfg.Limits.WithDefaults(),
		uploadMemory: imagestore.NewChunkPool(uploadMemoryBudget), linkFailures: newFailureLimiter(20, 10*time.Minute),
		tokenFailures: newFailureLimiter(20, 15*time.Minute),
		storeWrites:   newStoreWrites(cfg.Store, cfg.StoreProbeInterval, cfg.Logger), uploads: map[string]bool{},
		clientLimits: defaultClientLimits(), forms: newFormTokens(cfg.SecretKey)}
	s.uploadSlots = newUploadSlots(&s.clientLimits)
	pool := cfg.Pool
	if pool == nil {
		pool, _ = cfg.DB.(*pgxpool.Pool)
	}
	if s.conv = cfg.Conversation; s.conv == nil {
		if s.conv, err = conversation.New(conversation.Config{Pool: pool, Logger: cfg.Logger, Notices: cfg.Reminders}); err != nil {
			return nil, fmt.Errorf("web: %w", err)
		}
	}
	s.worklists = worklist.New(cfg.Service, pool)
	if s.staging = cfg.Staging; s.staging == nil {
		if s.staging, err = staging.New(staging.Config{Core: cfg.Service, Pool: pool, Logger: cfg.Logger}); err != nil {
			return nil, fmt.Errorf("web: %w", err)
		}
	}
	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	e.HTTPErrorHandler = s.handleError
	e.IPExtractor = ipExtractor(cfg.TrustedProxies)
	e.Use(s.requestID, s.recoverPanic, s.logRequests, s.securityHeaders, s.crossOrigin, s.boundBodies)
	s.echo = e
	s.initSessions()
	s.routes()
	return s, nil
}

// MetricsHandler serves the Prometheus metrics. It is not on the public address: the
// operator serves it on a listener of its own (DERMFOLLOW_METRICS_ADDR).
func (s *Server) MetricsHandler() http.Handler { return s.metrics.handler }

func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.echo.ServeHTTP(w, r) }

func ipExtractor(trusted []*net.IPNet) echo.IPExtractor {
	if len(trusted) == 0 {
		return echo.ExtractIPDirect()
	}
	opts := []echo.TrustOption{echo.TrustLoopback(false), echo.TrustLinkLocal(false), echo.TrustPrivateNet(false)}
	for _, n := range trusted {
		opts = append(opts, echo.TrustIPRange(n))
	}
	return echo.ExtractIPFromXFFHeader(opts...)
}
