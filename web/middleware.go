package web

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net/http"
	"runtime/debug"
	"time"

	"github.com/labstack/echo/v4"
)

const requestIDHeader = "X-Request-Id"

// requestID takes a well-formed X-Request-Id from a trusted hop or makes one, and puts a logger
// carrying it into the context so every log line of the request can be joined.
func (s *Server) requestID(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		id := c.Request().Header.Get(requestIDHeader)
		if !wellFormedRequestID(id) {
			b := make([]byte, 12)
			rand.Read(b)
			id = hex.EncodeToString(b)
		}
		c.Response().Header().Set(requestIDHeader, id)
		c.Set("request_id", id)
		c.Set("logger", s.log.With("request_id", id))
		return next(c)
	}
}

func wellFormedRequestID(id string) bool {
	if len(id) == 0 || len(id) > 64 {
		return false
	}
	for _, r := range id {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
			return false
		}
	}
	return true
}

// logger returns the request's logger (with its request id).
func logger(c echo.Context) *slog.Logger {
	if l, ok := c.Get("logger").(*slog.Logger); ok {
		return l
	}
	return slog.Default()
}

// routeLabel names the matched route template, never the raw path: raw paths carry parent
// link tokens and ids, which must not reach logs or metric labels.
func routeLabel(c echo.Context) string {
	if p := c.Path(); p != "" {
		return p
	}
	return "unmatched"
}

// logRequests writes one line per request and records its metrics.
func (s *Server) logRequests(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		start := time.Now()
		err := next(c)
		if err != nil {
			c.Error(err) // write the response now, so the status below is the real one
		}
		res := c.Response()
		route := routeLabel(c)
		elapsed := time.Since(start)
		status := res.Status
		s.metrics.observe(c.Request().Method, route, status, elapsed)
		if s.observe != nil {
			s.observe(c.Request().Method, route, status, res.Header().Get("Location"))
		}
		level := slog.LevelInfo
		switch {
		case status >= 500:
			level = slog.LevelError
		case status == http.StatusOK && (route == "/healthz" || route == "/readyz"):
			level = slog.LevelDebug // a load balancer asks every few seconds
		}
		attrs := []slog.Attr{
			slog.String("method", c.Request().Method),
			slog.String("route", route),
			slog.Int("status", status),
			slog.Int64("bytes", res.Size),
			slog.Duration("duration", elapsed),
			slog.String("client", c.RealIP()),
		}
		if err != nil && status >= 500 {
			attrs = append(attrs, slog.String("error", err.Error()))
		}
		logger(c).LogAttrs(c.Request().Context(), level, "request", attrs...)
		return nil
	}
}

// recoverPanic turns a panic in a handler into a 500 and a logged stack, keeping the server up.
func (s *Server) recoverPanic(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) (err error) {
		defer func() {
			if r := recover(); r != nil {
				if r == http.ErrAbortHandler {
					panic(r)
				}
				logger(c).Error("panic in handler", "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
				err = fmt.Errorf("panic: %v", r)
			}
		}()
		return next(c)
	}
}

// securityHeaders sets the headers every response carries. Pages set their own stricter or
// more specific Content-Security-Policy; this default allows nothing to load.
func (s *Server) securityHeaders(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		h := c.Response().Header()
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'")
		h.Set("Cross-Origin-Opener-Policy", "same-origin")
		h.Set("Cross-Origin-Resource-Policy", "same-origin")
		if s.cfg.Secure {
			// Served over https (DERMFOLLOW_BASE_URL): browsers are to come back only so.
			h.Set("Strict-Transport-Security", "max-age=31536000; includeSubDomains")
		}
		return next(c)
	}
}
