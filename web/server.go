// Package web is Dermfollow's HTTP server: middleware, routes, handlers, embedded templates and
// static files, and the JSON API. Echo types never leave this package, which keeps a move to
// Echo v5 cheap.
package web

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"

	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"

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
}

// Server is the HTTP handler for the whole service.
type Server struct {
	cfg     Config
	log     *slog.Logger
	echo    *echo.Echo
	metrics *httpMetrics
}

// New builds the server and its routes.
func New(cfg Config) (*Server, error) {
	if cfg.Logger == nil || cfg.DB == nil || cfg.Store == nil || cfg.Registry == nil {
		return nil, errors.New("web: Logger, DB, Store and Registry are required")
	}
	m, err := newHTTPMetrics(cfg.Registry)
	if err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg, log: cfg.Logger, metrics: m}
	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	e.HTTPErrorHandler = s.handleError
	e.IPExtractor = ipExtractor(cfg.TrustedProxies)
	e.Use(s.requestID, s.recoverPanic, s.logRequests, s.securityHeaders)
	s.echo = e
	s.routes()
	return s, nil
}

// routes lists every route in one place.
func (s *Server) routes() {
	e := s.echo
	e.GET("/healthz", s.healthz)
	e.GET("/readyz", s.readyz)
	e.GET("/metrics", echo.WrapHandler(s.metrics.handler))
}

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
