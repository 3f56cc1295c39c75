package web

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/dermfollow/dermfollow/imagestore"
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

// readyz says whether this instance can serve: the database answers, and the object store
// answers and takes the writes the configuration asks for (encrypted ones, where SSE is on). A
// load balancer takes it out of rotation on 503 and back when they return.
func (s *Server) readyz(c echo.Context) error {
	c.Response().Header().Set("Cache-Control", "no-store")
	if s.draining.Load() {
		return c.JSON(http.StatusServiceUnavailable, readiness{Status: "draining", Checks: map[string]string{}})
	}
	ctx, cancel := context.WithTimeout(c.Request().Context(), 3*time.Second)
	defer cancel()
	res := readiness{Status: "ok", Checks: map[string]string{}}
	var mu sync.Mutex
	var wg sync.WaitGroup
	report := func(name string, err error, problem string) {
		mu.Lock()
		defer mu.Unlock()
		if err != nil {
			// The reason names the dependency, not its address or credentials; the log has
			// the full error for operators.
			logger(c).Warn("readiness check failed", "check", name, "error", err.Error())
			res.Checks[name] = problem
			res.Status = "unavailable"
			return
		}
		res.Checks[name] = "ok"
	}
	wg.Go(func() { report("database", s.cfg.DB.Ping(ctx), "unreachable") })
	wg.Go(func() {
		if err := s.cfg.Store.Ping(ctx); err != nil {
			report("store", err, "unreachable")
			return
		}
		err := s.storeWrites.check(ctx)
		report("store", err, storeProblem(err))
	})
	wg.Wait()
	if res.Status != "ok" {
		return c.JSON(http.StatusServiceUnavailable, res)
	}
	return c.JSON(http.StatusOK, res)
}

// storeProblem names, for /readyz, what a failed write probe says about the store.
func storeProblem(err error) string {
	switch {
	case errors.Is(err, imagestore.ErrEncryptedWritesRefused):
		return "refuses encrypted writes"
	case errors.Is(err, imagestore.ErrWritesRefused):
		return "refuses writes"
	}
	return "unreachable"
}

// Drain makes /readyz answer 503 from now on, while every route still serves: a stopping
// server calls it, then waits for the load balancers to take it out of rotation.
func (s *Server) Drain() { s.draining.Store(true) }

// CheckStore writes a probe object to the store and tells whether the store takes the writes
// uploads will make; `serve` calls it at start so that a misconfigured store is named once,
// clearly, instead of in every failed upload.
func (s *Server) CheckStore(ctx context.Context) error { return s.storeWrites.check(ctx) }

// writeProber is a store that can tell whether it takes writes (both backends can).
type writeProber interface {
	ProbeWrite(ctx context.Context, key string) error
}

// storeWrites remembers the last write probe for an interval: /readyz is asked every few
// seconds by every load balancer, and each probe is two requests to the store. A store that
// refused turns ready again at the first probe after it was fixed.
type storeWrites struct {
	probe    writeProber // nil: the store cannot probe; taken to be fine
	key      string      // this process's probe object, under imagestore.ProbePrefix
	interval time.Duration
	log      *slog.Logger

	mu  sync.Mutex // held during a probe: concurrent checks wait for its answer
	at  time.Time
	err error
}

func newStoreWrites(store imagestore.Store, interval time.Duration, log *slog.Logger) *storeWrites {
	w := &storeWrites{key: imagestore.NewProbeKey(), interval: interval, log: log}
	if w.interval <= 0 {
		w.interval = 30 * time.Second
	}
	w.probe, _ = store.(writeProber)
	return w
}

func (w *storeWrites) check(ctx context.Context) error {
	if w.probe == nil {
		return nil
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.at.IsZero() && time.Since(w.at) < w.interval {
		return w.err
	}
	err := w.probe.ProbeWrite(ctx, w.key)
	if ctx.Err() != nil && err != nil {
		return err // the caller gave up: no verdict on the store
	}
	switch {
	case err != nil && w.err == nil:
		w.log.Error("the object store does not take uploads; they answer 503 until it does", "problem", storeProblem(err),
			"fix", storeFix(err), "error", err.Error())
	case err == nil && w.err != nil:
		w.log.Info("the object store takes uploads again")
	}
	w.at, w.err = time.Now(), err
	return err
}

// storeFix is the operator's next step for a store that refuses writes.
func storeFix(err error) string {
	if errors.Is(err, imagestore.ErrEncryptedWritesRefused) {
		return "DERMFOLLOW_S3_SSE=true asks the store to encrypt every photo, and it has no key to do so: " +
			"give MinIO a KMS (MINIO_KMS_SECRET_KEY for one server, KES for production; README, Production, Object storage)"
	}
	return "check the bucket's policy, quota and disks, and the access key's permissions"
}
