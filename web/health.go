package web

import (
	"context"
	"net/http"
	"sync"
	"time"

	"github.com/labstack/echo/v4"
)

// healthz says the process is up; it checks nothing else, so an orchestrator does not restart
// a healthy process because a dependency is down.
func (s *Server) healthz(c echo.Context) error {
	c.Response().Header().Set("Cache-Control", "no-store")
	return c.JSON(http.StatusOK, map[string]string{"status": "ok"})
}

type readiness struct {
	Status string            `json:"status"`
	Checks map[string]string `json:"checks"`
}

// readyz says whether this instance can serve: the database and the object store answer. A
// load balancer takes it out of rotation on 503 and back when they return.
func (s *Server) readyz(c echo.Context) error {
	c.Response().Header().Set("Cache-Control", "no-store")
	ctx, cancel := context.WithTimeout(c.Request().Context(), 3*time.Second)
	defer cancel()
	checks := map[string]Pinger{"database": s.cfg.DB, "store": s.cfg.Store}
	res := readiness{Status: "ok", Checks: map[string]string{}}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for name, p := range checks {
		wg.Go(func() {
			err := p.Ping(ctx)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				// The reason names the dependency, not its address or credentials; the log has
				// the full error for operators.
				logger(c).Warn("readiness check failed", "check", name, "error", err.Error())
				res.Checks[name] = "unreachable"
				res.Status = "unavailable"
				return
			}
			res.Checks[name] = "ok"
		})
	}
	wg.Wait()
	if res.Status != "ok" {
		return c.JSON(http.StatusServiceUnavailable, res)
	}
	return c.JSON(http.StatusOK, res)
}
