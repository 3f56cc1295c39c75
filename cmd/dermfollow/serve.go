package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/dermfollow/dermfollow/followup"
	"github.com/dermfollow/dermfollow/followup/accounts"
	"github.com/dermfollow/dermfollow/followup/export"
	"github.com/dermfollow/dermfollow/followup/notify"
	"github.com/dermfollow/dermfollow/followup/reminders"
	"github.com/dermfollow/dermfollow/followup/sweep"
	"github.com/dermfollow/dermfollow/followup/thumbnails"
	"github.com/dermfollow/dermfollow/imagestore"
	"github.com/dermfollow/dermfollow/migrations"
	"github.com/dermfollow/dermfollow/protocols"
	"github.com/dermfollow/dermfollow/web"
)

func runServe(ctx context.Context, args []string, getenv env, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	noMigrate := fs.Bool("no-migrate", false, "do not apply pending migrations at start")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "Usage: dermfollow serve [-no-migrate]\n\nRuns the HTTP server. Flags:")
		fs.PrintDefaults()
		fmt.Fprintln(fs.Output(), "\nEnvironment:")
		printEnvHelp(fs.Output())
	}
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	cfg, err := loadConfig(getenv)
	if err != nil {
		return err
	}
	log := newLogger(cfg, stderr)
	log.Info("starting", redacted(getenv)...)

	if !*noMigrate {
		if _, err := migrations.Up(ctx, cfg.DatabaseURL, log); err != nil {
			return err
		}
	}
	svcs, err := openService(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer svcs.pool.Close()
	pool, store, svc := svcs.pool, svcs.store, svcs.core
	srv, err := web.New(web.Config{
		Logger:         log,
		DB:             pool,
		Store:          store,
		TrustedProxies: cfg.TrustedProxies,
		Registry:       prometheus.NewRegistry(),
		Service:        svc,
		Accounts:       svcs.accounts,
		Reminders:      svcs.reminders,
		Export:         svcs.export,
		Pool:           pool,
		SecretKey:      cfg.SecretKey,
		Secure:         cfg.BaseURL.Scheme == "https",
	})
	if err != nil {
		return err
	}
	// A store that refuses the writes uploads make (encrypted ones, without a KMS) is named
	// here, once; the server starts anyway and /readyz says why it is not ready.
	checkCtx, cancelCheck := context.WithTimeout(ctx, 10*time.Second)
	srv.CheckStore(checkCtx)
	cancelCheck()
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	if cfg.MetricsAddr != "" {
		stopMetrics, err := serveMetrics(cfg.MetricsAddr, srv.MetricsHandler(), log)
		if err != nil {
			ln.Close()
			return err
		}
		defer stopMetrics()
	}

	stop, err := startBackground(ctx, cfg, svcs, log)
	if err != nil {
		return err
	}
	defer stop()
	return serveUntilDone(ctx, log, ln, srv, cfg)
}

// startBackground runs the server's background work (thumbnails, sweeps, exports,
// reminders) until stop, which lets reminder sends in flight finish first. Each piece is safe
// to run on several servers at once.
func startBackground(ctx context.Context, cfg *config, svcs *services, log *slog.Logger) (stop func(), err error) {
	svc, acc := svcs.core, svcs.accounts
	bg, stopBG := context.WithCancel(context.WithoutCancel(ctx))
	var wg sync.WaitGroup
	wg.Go(func() { svcs.thumbnails.Run(bg, 30*time.Second) })
	// Orphans of failed uploads go within minutes, starting with those a crash left; the full
	// reconciliation, which lists the bucket, runs once a day.
	wg.Go(func() {
		sweepPending(bg, svcs.sweeper, svc.PendingGrace(), log)
		every(bg, svc.PendingGrace(), func(ctx context.Context) { sweepPending(ctx, svcs.sweeper, svc.PendingGrace(), log) })
	})
	wg.Go(func() {
		every(bg, 24*time.Hour, func(ctx context.Context) { sweepOrphans(ctx, svcs.sweeper, log, 24*time.Hour) })
	})
	wg.Go(func() {
		every(bg, 10*time.Minute, func(ctx context.Context) {
			expireSessions(ctx, acc, log)
			expireSignInState(ctx, acc, log)
		})
	})
	wg.Go(func() { svcs.export.Run(bg, 5*time.Second) })
	rem, err := startReminders(bg, cfg, svcs.reminders, log)
	if err != nil {
		stopBG()
		wg.Wait()
		return nil, err
	}
	return func() {
		stopReminders(rem, cfg.ShutdownTimeout, log) // first: sends in flight finish
		stopBG()
		wg.Wait()
	}, nil
}

// services are what a command works with: the database pool and the object store, the
// follow-up core and its capabilities (package followup's sub-packages), wired here.
type services struct {
	pool      *pgxpool.Pool
	store     imagestore.Store
	core      *followup.Service
	accounts  *accounts.Service
	reminders *reminders.Service
	export    *export.Service
	// thumbnails makes the photos' thumbnails in the background (serve) or at once (demo).
	thumbnails *thumbnails.Thumbnailer
	// sweeper removes the objects of failed uploads and the store's orphans (serve).
	sweeper *sweep.Sweeper
}

// openService opens the database pool and the object store, loads the protocols (the shipped
// ones and the clinic's, all validated) and builds the follow-up core and, beside it, the
// accounts, the reminders, the research export, the thumbnailer and the sweeper. The caller closes the pool.
func openService(ctx context.Context, cfg *config, log *slog.Logger) (*services, error) {
	reg, err := protocols.LoadRegistry(cfg.ProtocolDir)
	if err != nil {
		return nil, fmt.Errorf("protocols: %w", err)
	}
	pool, err := openPool(ctx, cfg.DatabaseURL)
	if err != nil {
		return nil, err
	}
	s, err := buildServices(ctx, cfg, log, pool, reg)
	if err != nil {
		pool.Close()
		return nil, err
	}
	return s, nil
}

// buildServices builds the store and the services over pool.
func buildServices(ctx context.Context, cfg *config, log *slog.Logger, pool *pgxpool.Pool, reg *protocols.Registry) (*services, error) {
	s := &services{pool: pool}
	var err error
	if s.store, err = openStore(ctx, cfg); err != nil {
		return nil, err
	}
	// The reminders first: the core tells the family of the clinic's notes and retake requests
	// through them.
	if s.reminders, err = reminders.New(reminders.Config{Pool: pool, Logger: log, BaseURL: cfg.BaseURL.String(),
		SecretKey: cfg.SecretKey}); err != nil {
		return nil, err
	}
	if s.core, err = followup.New(followup.Config{Pool: pool, Store: s.store, Protocols: reg, Logger: log, BaseURL: cfg.BaseURL.String(),
		SecretKey: cfg.SecretKey, StoreTimeout: cfg.StoreTimeout, Quota: cfg.PhotoQuota, MessageSent: s.reminders.ClinicAnswered}); err != nil {
		return nil, err
	}
	rpID, origins := passkeySite(cfg.BaseURL)
	if rpID == "" {
		log.Info("passkeys are off: DERMFOLLOW_BASE_URL names an IP address, not a host", "base_url", cfg.BaseURL.String())
	}
	if s.accounts, err = accounts.New(accounts.Config{Pool: pool, Logger: log, SecretKey: cfg.SecretKey, RPID: rpID,
		RPOrigins: origins}); err != nil {
		return nil, err
	}
	if s.export, err = export.New(export.Config{Core: s.core, Pool: pool, Logger: log, SecretKey: cfg.SecretKey}); err != nil {
		return nil, err
	}
	if s.thumbnails, err = thumbnails.New(thumbnails.Config{Core: s.core, Pool: pool, Logger: log}); err != nil {
		return nil, err
	}
	if s.sweeper, err = sweep.New(sweep.Config{Core: s.core, Pool: pool}); err != nil {
		return nil, err
	}
	return s, nil
}

// passkeySite is the WebAuthn relying party of the public URL: its host and its origin, or
// nothing where the host is an IP address, for which browsers make no passkeys.
func passkeySite(base *url.URL) (rpID string, origins []string) {
	host := strings.ToLower(base.Hostname()) // as browsers send it
	if _, err := netip.ParseAddr(host); err == nil || host == "" {
		return "", nil
	}
	return host, []string{base.Scheme + "://" + strings.ToLower(base.Host)}
}

// every runs f every period until ctx ends.
func every(ctx context.Context, period time.Duration, f func(context.Context)) {
	t := time.NewTicker(period)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		f(ctx)
	}
}

// sweepPending removes the objects of failed uploads once no upload can still be in flight.
func sweepPending(ctx context.Context, sw *sweep.Sweeper, grace time.Duration, log *slog.Logger) {
	n, err := sw.Pending(ctx, grace)
	if err != nil && ctx.Err() == nil {
		log.Warn("sweep pending objects", "error", err.Error())
	}
	if n > 0 {
		log.Info("swept objects of failed uploads", "count", n)
	}
}

// sweepOrphans removes stored objects that no row refers to (uploads that failed after the
// store took their bytes), leaving anything younger than grace alone.
func sweepOrphans(ctx context.Context, sw *sweep.Sweeper, log *slog.Logger, grace time.Duration) {
	n, err := sw.Orphans(ctx, grace)
	if err != nil && ctx.Err() == nil {
		log.Warn("sweep", "error", err.Error())
	}
	if n > 0 {
		log.Info("swept objects without rows", "count", n)
	}
}

// expireSessions removes clinician sessions past their expiry (they are refused when loaded
// anyway; this keeps the table small).
func expireSessions(ctx context.Context, acc *accounts.Service, log *slog.Logger) {
	n, err := acc.DeleteExpiredSessions(ctx)
	if err != nil && ctx.Err() == nil {
		log.Warn("expired sessions", "error", err.Error())
	}
	if n > 0 {
		log.Info("removed expired sessions", "count", n)
	}
}

// expireSignInState removes passkey ceremonies past their expiry and failed sign-in attempts
// that no longer count (neither is used once that old; this keeps the tables small).
func expireSignInState(ctx context.Context, acc *accounts.Service, log *slog.Logger) {
	n, err := acc.DeleteExpiredSignInState(ctx)
	if err != nil && ctx.Err() == nil {
		log.Warn("expired sign-in state", "error", err.Error())
	}
	if n > 0 {
		log.Info("removed expired sign-in state", "count", n)
	}
}

// drainer is a handler that can tell load balancers it is going away (web.Server).
type drainer interface {
	http.Handler
	Drain()
}

// serveUntilDone serves until ctx ends (SIGINT or SIGTERM), then drains (/readyz answers 503
// for the drain delay while requests are still served, so that load balancers move new ones
// elsewhere), stops accepting and gives in-flight requests, uploads above all, until the
// shutdown timeout to finish.
func serveUntilDone(ctx context.Context, log *slog.Logger, ln net.Listener, h drainer, cfg *config) error {
	grace := cfg.ShutdownTimeout
	hs := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
		// Request contexts do not derive from ctx: a signal must not cancel uploads in flight.
		BaseContext: func(net.Listener) context.Context { return context.Background() },
	}
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	log.Info("listening", "addr", ln.Addr().String())
	select {
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	if cfg.DrainDelay > 0 {
		log.Info("draining", "delay", cfg.DrainDelay.String())
		h.Drain()
		time.Sleep(cfg.DrainDelay)
	}
	log.Info("shutting down", "grace", grace.String())
	sctx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	if err := hs.Shutdown(sctx); err != nil {
		hs.Close()
		return fmt.Errorf("shutdown: requests still running after %s: %w", grace, err)
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	log.Info("stopped")
	return nil
}

// serveMetrics serves /metrics on its own listener (operators only) until stop is called.
func serveMetrics(addr string, h http.Handler, log *slog.Logger) (stop func(), err error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("metrics listen (DERMFOLLOW_METRICS_ADDR): %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", h)
	hs := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, WriteTimeout: 30 * time.Second,
		ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)}
	go hs.Serve(ln)
	log.Info("metrics listening", "addr", ln.Addr().String())
	return func() { hs.Close() }, nil
}

func openPool(ctx context.Context, url string) (*pgxpool.Pool, error) {
	pc, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("DATABASE_URL: %w", err)
	}
	if pc.MaxConns < 8 {
		pc.MaxConns = 8
	}
	followup.ConfigurePool(pc)
	pool, err := pgxpool.NewWithConfig(ctx, pc)
	if err != nil {
		return nil, fmt.Errorf("database: %w", err)
	}
	return pool, nil
}

func openStore(ctx context.Context, cfg *config) (imagestore.Store, error) {
	if cfg.S3.Endpoint == "" {
		return imagestore.NewLocalStore(cfg.StoreDir)
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	return imagestore.NewS3Store(ctx, cfg.S3)
}

// newLogger logs JSON unless told otherwise or writing to a terminal.
func newLogger(cfg *config, w io.Writer) *slog.Logger {
	opts := &slog.HandlerOptions{Level: cfg.LogLevel}
	text := cfg.LogFormat == "text"
	if cfg.LogFormat == "auto" {
		if f, ok := w.(*os.File); ok {
			if st, err := f.Stat(); err == nil && st.Mode()&os.ModeCharDevice != 0 {
				text = true
			}
		}
	}
	if text {
		return slog.New(slog.NewTextHandler(w, opts))
	}
	return slog.New(slog.NewJSONHandler(w, opts))
}

// parseFlags turns -h into a clean exit and flag mistakes into usage errors.
func parseFlags(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return errHelpShown
		}
		return usageError{err.Error()}
	}
	return nil
}

// errHelpShown ends a command that printed its help; run treats it as success.
var errHelpShown = errors.New("help shown")

// startReminders runs the reminder workers (River jobs in PostgreSQL; one elected server scans
// for due reminders). Without DERMFOLLOW_SMTP_URL email is off and only clinics' webhooks work.
func startReminders(ctx context.Context, cfg *config, rem *reminders.Service, log *slog.Logger) (*reminders.Workers, error) {
	rc := reminders.WorkerConfig{Logger: log}
	if cfg.SMTPURL == nil {
		log.Info("reminder email disabled: DERMFOLLOW_SMTP_URL is not set; webhook reminders still work")
	} else {
		email, err := notify.NewEmail(cfg.SMTPURL, cfg.SMTPFrom)
		if err != nil {
			return nil, err
		}
		rc.Email = email
	}
	r, err := reminders.NewWorkers(rem, rc)
	if err != nil {
		return nil, err
	}
	if err := r.Start(ctx); err != nil {
		return nil, err
	}
	return r, nil
}

// stopReminders lets sends in flight finish, for at most the shutdown timeout.
func stopReminders(r *reminders.Workers, timeout time.Duration, log *slog.Logger) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if err := r.Stop(ctx); err != nil {
		log.Warn("reminders did not stop cleanly", "err", err)
	}
}
