// Package export owns the research export: a researcher asks for the photos of one
// protocol's procedures in a date range; a background job (job.go) selects the consenting
// patients' photos (items.go), sanitizes them again (prepare.go) and streams a de-identified
// zip with its manifest (archive.go, manifest.go) into the store, where it can be downloaded
// until it expires and the sweep (sweep.go) deletes it. It keeps its own table (exports).
//
// Who may export: researchers and admins of the clinic. Admins may because they already see
// strictly more (the identified records) and in small clinics often run the studies; clinicians
// without the researcher role may not, since an export takes data out of clinical use.
//
// From the core (package followup) it reads clinics, the protocols and the photo store, and
// uses what every part shares (actors, errors, the audit log) and the life of an object
// stored outside the photo write path: NewObjectKey, NotePending, KeepPending, ForgetPending,
// DiscardObject, and WithTxKnown with CommitUnknown for the transaction that records it.
//
//	exp, err := export.New(export.Config{Core: core, Pool: pool, SecretKey: key})
//	e, err := exp.Start(ctx, researcher, export.Request{Protocol: "pws-hemoporfin-pdt"})
//	go exp.Run(ctx, 5*time.Second) // the job, on any number of servers
package export

import (
	"context"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/google/uuid"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/dermfollow/dermfollow/followup"
	"github.com/dermfollow/dermfollow/imagestore"
	"github.com/dermfollow/dermfollow/protocols"
)

// Config holds a Service's dependencies.
type Config struct {
	// Core is the follow-up core: clinics, protocols, the store and its pending notes.
	Core *followup.Service
	Pool *pgxpool.Pool
	// Logger and Now as the core's (tests pass their own clock).
	Logger *slog.Logger
	Now    func() time.Time
	// SecretKey is DERMFOLLOW_SECRET_KEY; the pseudonyms' key is derived from it (HKDF).
	// Without it exports are refused as unavailable.
	SecretKey []byte
}

// Service is the research exports of every clinic. Methods take ctx first and the Actor
// acting.
type Service struct {
	core      *followup.Service
	pool      *pgxpool.Pool
	store     imagestore.Store
	protocols *protocols.Registry
	log       *slog.Logger
	now       func() time.Time
	secretKey []byte
	// leftovers is when this process last looked for archives no export names (UnixNano;
	// see sweepExportLeftovers).
	leftovers atomic.Int64
}

// New returns a Service.
func New(cfg Config) (*Service, error) {
	if cfg.Core == nil || cfg.Pool == nil {
		return nil, errors.New("export: Core and Pool are required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Service{core: cfg.Core, pool: cfg.Pool, store: cfg.Core.Store(), protocols: cfg.Core.Protocols(), log: cfg.Logger,
		now: cfg.Now, secretKey: cfg.SecretKey}, nil
}

// inTx runs fn in a transaction of the exports' pool.
func (s *Service) inTx(ctx context.Context, fn func(pgx.Tx) error) error {
	return followup.WithTx(ctx, s.pool, fn)
}

func wrap(err error, format string, args ...any) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("export: "+format+": %w", append(args, err)...)
}

// Audit actions of exports.
const (
	AuditStarted    = "export_started"
	AuditDownloaded = "export_downloaded"
)

// Export statuses.
const (
	StatusQueued  = "queued"
	StatusRunning = "running"
	StatusDone    = "done"
	StatusFailed  = "failed"
	StatusExpired = "expired"
)

// Lifetime is how long a finished archive can be downloaded before the sweep deletes it.
const Lifetime = 7 * 24 * time.Hour

// exportKeyInfo is the HKDF info of the pseudonym key; a new method gets a new version here,
// and so new pseudonyms.
const exportKeyInfo = "dermfollow export pseudonyms v1"

// Request is what a researcher asks Start for.
type Request struct {
	Protocol    string   `json:"protocol"`
	From        string   `json:"from"` // procedures performed on or after this date (clinic time); "": no bound
	To          string   `json:"to"`   // and on or before this one; "": no bound
	Views       []string `json:"views"`
	AgeInMonths bool     `json:"age_in_months"`
	// IncludeUnscheduled adds the photos the family sent outside the schedule (a concern:
	// blisters, crusts, swelling), marked unscheduled in the manifest; never their messages.
	IncludeUnscheduled bool `json:"include_unscheduled"`
}

// Progress counts the photos the job has handled of all it will.
type Progress struct {
	Done  int `json:"done"`
	Total int `json:"total"`
}

// Export is a research export: its parameters, its job's state and its archive.
type Export struct {
	ID          uuid.UUID       `json:"id"`
	Status      string          `json:"status"`
	Protocol    string          `json:"protocol"`
	From        *protocols.Date `json:"from,omitempty"`
	To          *protocols.Date `json:"to,omitempty"`
	Views       []string        `json:"views"`
	AgeInMonths bool            `json:"age_in_months"`
	// IncludeUnscheduled as asked for (Request).
	IncludeUnscheduled bool       `json:"include_unscheduled"`
	Progress           Progress   `json:"progress"`
	Subjects           int        `json:"subjects"`
	Photos             int        `json:"photos"`
	Excluded           int        `json:"excluded"`
	Size               int64      `json:"size,omitempty"`
	SHA256             string     `json:"sha256,omitempty"`
	Error              string     `json:"error,omitempty"`
	CreatedAt          time.Time  `json:"created_at"`
	StartedAt          *time.Time `json:"started_at,omitempty"`
	FinishedAt         *time.Time `json:"finished_at,omitempty"`
	ExpiresAt          time.Time  `json:"expires_at"`
	// DownloadURL is set by the web layer once the archive is ready.
	DownloadURL string `json:"download_url,omitempty"`

	objectKey string
}

// requireExporter admits researchers and admins (see the package comment above).
func requireExporter(a followup.Actor) error {
	if a.Kind != followup.ActorUser {
		return followup.Errorf(followup.EUNAUTHORIZED, "sign in first")
	}
	if !a.IsUser(followup.RoleResearcher, followup.RoleAdmin) {
		return followup.Errorf(followup.EFORBIDDEN, "only researchers and admins can export")
	}
	return nil
}

// exportKey derives the pseudonym key from the server secret. It never leaves the process.
func (s *Service) exportKey() ([]byte, error) {
	if len(s.secretKey) == 0 {
		return nil, followup.Errorf(followup.EUNAVAILABLE, "Exports need DERMFOLLOW_SECRET_KEY to be set on the server.")
	}
	return hkdf.Key(sha256.New, s.secretKey, nil, exportKeyInfo, 32)
}

// pseudonym is a keyed, stable, one-way id: the same clinic and id give the same pseudonym in
// every export made with the same server secret; without the key it reveals nothing.
func pseudonym(key []byte, prefix string, clinic, id uuid.UUID) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(prefix))
	m.Write(clinic[:])
	m.Write(id[:])
	return prefix + hex.EncodeToString(m.Sum(nil))[:16]
}

// protocolViews returns the views any version of the protocol asks for, in display order.
func (s *Service) protocolViews(id string) []string {
	used := map[string]bool{}
	for _, p := range s.protocols.Protocols() {
		if p.ID != id {
			continue
		}
		for _, tp := range p.Timepoints {
			for _, v := range tp.Views {
				used[v] = true
			}
		}
	}
	var out []string
	for _, v := range protocols.Views() {
		if used[v.Name] {
			out = append(out, v.Name)
		}
	}
	return out
}

func (s *Service) checkExport(in Request) (from, to protocols.Date, views []string, err error) {
	if _, err := s.protocols.Latest(in.Protocol); err != nil {
		return from, to, nil, followup.InvalidField("protocol", "unknown protocol %q", in.Protocol)
	}
	if in.From != "" {
		if from, err = protocols.ParseDate(in.From); err != nil {
			return from, to, nil, followup.InvalidField("from", "must be a date as YYYY-MM-DD (or left out)")
		}
	}
	if in.To != "" {
		if to, err = protocols.ParseDate(in.To); err != nil {
			return from, to, nil, followup.InvalidField("to", "must be a date as YYYY-MM-DD (or left out)")
		}
	}
	if !from.IsZero() && !to.IsZero() && from.After(to) {
		return from, to, nil, followup.InvalidField("from", "must be on or before to (%s is after %s)", from, to)
	}
	all := s.protocolViews(in.Protocol)
	if len(in.Views) == 0 {
		return from, to, all, nil
	}
	for _, v := range in.Views {
		if !slices.Contains(all, v) {
			return from, to, nil, followup.InvalidField("views", "protocol %s has the views %s, not %q", in.Protocol, strings.Join(all, ", "), v)
		}
	}
	// Keep the protocol's order, without duplicates.
	for _, v := range all {
		if slices.Contains(in.Views, v) {
			views = append(views, v)
		}
	}
	return from, to, views, nil
}

// Start queues an export of the actor's clinic. Consent is checked when the job runs,
// not now: a patient who withdraws consent before then is left out.
func (s *Service) Start(ctx context.Context, a followup.Actor, in Request) (Export, error) {
	if err := requireExporter(a); err != nil {
		return Export{}, err
	}
	from, to, views, err := s.checkExport(in)
	if err != nil {
		return Export{}, err
	}
	if _, err := s.exportKey(); err != nil {
		return Export{}, err
	}
	now := s.now()
	e := Export{Status: StatusQueued, Protocol: in.Protocol, From: datePtr(from), To: datePtr(to), Views: views,
		AgeInMonths: in.AgeInMonths, IncludeUnscheduled: in.IncludeUnscheduled, CreatedAt: now, ExpiresAt: now.Add(Lifetime)}
	err = s.inTx(ctx, func(tx pgx.Tx) error {
		err := tx.QueryRow(ctx, `insert into exports (clinic_id, requested_by, protocol_id, from_date, to_date, views, age_in_months,
				include_unscheduled, created_at, expires_at)
			values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) returning id`,
			a.ClinicID, a.ID, e.Protocol, dateArg(from), dateArg(to), views, e.AgeInMonths, e.IncludeUnscheduled, now,
			e.ExpiresAt).Scan(&e.ID)
		if err != nil {
			return followup.Unavailable(err)
		}
		return followup.Audit(ctx, tx, a, followup.AuditEvent{Action: AuditStarted, TargetKind: "export", TargetID: e.ID,
			Detail: map[string]any{"protocol": e.Protocol, "from": dateArg(from), "to": dateArg(to), "views": views,
				"age_in_months": e.AgeInMonths, "include_unscheduled": e.IncludeUnscheduled}})
	})
	if err != nil {
		return Export{}, wrap(err, "start export")
	}
	return e, nil
}

const exportColumns = `select id, status, protocol_id, from_date, to_date, views, age_in_months, include_unscheduled,
	progress_done, progress_total,
	subjects, photos, excluded, coalesce(size_bytes, 0), sha256, error, created_at, started_at, finished_at, expires_at,
	coalesce(object_key, '') from exports`

func (s *Service) scanExport(row pgx.Row) (Export, error) {
	var e Export
	var from, to *time.Time
	var sum []byte
	err := row.Scan(&e.ID, &e.Status, &e.Protocol, &from, &to, &e.Views, &e.AgeInMonths, &e.IncludeUnscheduled, &e.Progress.Done, &e.Progress.Total,
		&e.Subjects, &e.Photos, &e.Excluded, &e.Size, &sum, &e.Error, &e.CreatedAt, &e.StartedAt, &e.FinishedAt, &e.ExpiresAt,
		&e.objectKey)
	if err != nil {
		return Export{}, err
	}
	e.From, e.To = datePtr(dateOf(from)), datePtr(dateOf(to))
	if sum != nil {
		e.SHA256 = hex.EncodeToString(sum)
	}
	// Expired as soon as the time has come, even before the sweep has deleted the archive.
	if e.Status != StatusExpired && !s.now().Before(e.ExpiresAt) {
		e.Status = StatusExpired
	}
	return e, nil
}

// Export returns an export of the actor's clinic; another clinic's id is not found.
func (s *Service) Get(ctx context.Context, a followup.Actor, id uuid.UUID) (Export, error) {
	if err := requireExporter(a); err != nil {
		return Export{}, err
	}
	e, err := s.scanExport(s.pool.QueryRow(ctx, exportColumns+` where id = $1 and clinic_id = $2`, id, a.ClinicID))
	if err != nil {
		return Export{}, wrap(followup.NotFound(err, "export"), "export %s", id)
	}
	return e, nil
}

// Exports lists the clinic's exports, newest first.
func (s *Service) List(ctx context.Context, a followup.Actor, limit int) ([]Export, error) {
	if err := requireExporter(a); err != nil {
		return nil, err
	}
	if limit <= 0 || limit > 100 {
		limit = 100
	}
	rows, err := s.pool.Query(ctx, exportColumns+` where clinic_id = $1 order by created_at desc limit $2`, a.ClinicID, limit)
	if err != nil {
		return nil, followup.Unavailable(err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Export, error) { return s.scanExport(r) })
	return out, wrap(followup.Unavailable(err), "list exports")
}

// Download is how to hand out a finished archive: a short-lived URL straight to the
// store where it has them, or else the archive's bytes to stream.
type Download struct {
	URL  string
	Body io.ReadCloser
	Size int64
	Name string
}

// Download records the download in the audit log and returns a signed URL valid for
// expiry (S3) or the archive itself (the local store).
func (s *Service) Download(ctx context.Context, a followup.Actor, id uuid.UUID, expiry time.Duration) (Download, error) {
	e, err := s.Get(ctx, a, id)
	if err != nil {
		return Download{}, err
	}
	switch e.Status {
	case StatusDone:
	case StatusExpired:
		return Download{}, followup.Errorf(followup.ECONFLICT, "This export has expired; start a new one.")
	case StatusFailed:
		return Download{}, followup.Errorf(followup.ECONFLICT, "This export failed; start a new one.")
	default:
		return Download{}, followup.Errorf(followup.ECONFLICT, "This export is not ready yet.")
	}
	err = s.inTx(ctx, func(tx pgx.Tx) error {
		return followup.Audit(ctx, tx, a, followup.AuditEvent{Action: AuditDownloaded, TargetKind: "export", TargetID: e.ID,
			Detail: map[string]any{"bytes": e.Size}})
	})
	if err != nil {
		return Download{}, wrap(err, "download export %s", id)
	}
	d := Download{Size: e.Size, Name: "dermfollow-export-" + e.Protocol + ".zip"}
	d.URL, err = s.store.SignedURL(ctx, e.objectKey, expiry, d.Name)
	if err == nil {
		return d, nil
	}
	if !errors.Is(err, imagestore.ErrNotSupported) {
		return Download{}, &followup.Error{Code: followup.EUNAVAILABLE, Message: "The archive store is unavailable; please try again.", Err: err}
	}
	d.Body, _, err = s.store.Open(ctx, e.objectKey)
	if err != nil {
		return Download{}, &followup.Error{Code: followup.EUNAVAILABLE, Message: "The archive store is unavailable; please try again.", Err: err}
	}
	return d, nil
}

// An unbounded end of the date range is the zero Date in Go and NULL in the database.
func dateArg(d protocols.Date) any {
	if d.IsZero() {
		return nil
	}
	return d.String()
}

func dateOf(t *time.Time) protocols.Date {
	if t == nil {
		return protocols.Date{}
	}
	return protocols.DateOf(*t, time.UTC)
}

func datePtr(d protocols.Date) *protocols.Date {
	if d.IsZero() {
		return nil
	}
	return &d
}
