package export

import (
	"context"
	"errors"
	"io"
	"time"

	"github.com/google/uuid"

	"github.com/jackc/pgx/v5"

	"github.com/dermfollow/dermfollow/followup"
	"github.com/dermfollow/dermfollow/protocols"
)

// The export job. A worker claims a queued export (FOR UPDATE SKIP LOCKED, so several servers
// can run workers), marks it running under a fresh run id and keeps its heartbeat fresh while it
// works. A run whose heartbeat stops for exportLease (its process died) is claimed again by any
// worker; the old run, should it wake up, notices its run id is gone and stops without writing.

const (
	exportLease       = 2 * time.Minute
	exportMaxAttempts = 3
	// exportProgressEvery is how often (in photos, or time) progress and heartbeat are written.
	exportProgressEvery     = 10
	exportProgressInterval  = 5 * time.Second
	exportOrphanGrace       = 24 * time.Hour
	exportFailedGeneric     = "The export failed; please start it again. If it fails again, tell the clinic's administrator."
	exportFailedUnavailable = "The photo store or the database was unavailable; please start the export again."
)

// errLostLease means another worker took the export over: this run stops and writes nothing.
var errLostLease = errors.New("export: taken over by another worker")

// Run runs queued exports until ctx ends, looking for work every interval, and deletes
// expired archives. Several servers may run it.
func (s *Service) Run(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		for {
			did, err := s.RunOnce(ctx)
			if err != nil && ctx.Err() == nil {
				s.log.Warn("export", "error", err.Error())
			}
			if !did || ctx.Err() != nil {
				break
			}
		}
		if _, err := s.Sweep(ctx); err != nil && ctx.Err() == nil {
			s.log.Warn("export sweep", "error", err.Error())
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// exportJob is a claimed export.
type exportJob struct {
	id, clinic, run uuid.UUID
	protocol        string
	from, to        protocols.Date
	views           []string
	ageInMonths     bool
	// unscheduled: the concern photos too (Request.IncludeUnscheduled).
	unscheduled bool
}

// RunOnce claims one export and runs it to the end. It reports whether there was one.
func (s *Service) RunOnce(ctx context.Context) (bool, error) {
	job, ok, err := s.claimExport(ctx)
	if err != nil || !ok || job.run == uuid.Nil {
		return ok, err
	}
	err = s.runExport(ctx, job)
	switch {
	case err == nil, errors.Is(err, errLostLease):
		return true, nil
	case ctx.Err() != nil:
		// Shutting down: the lease runs out and another worker (or this one, restarted) resumes.
		return true, ctx.Err()
	}
	msg := exportFailedGeneric
	if code := followup.ErrorCode(err); code == followup.EUNAVAILABLE {
		msg = exportFailedUnavailable
	}
	if ferr := s.failExport(context.WithoutCancel(ctx), job, msg); ferr != nil {
		return true, errors.Join(err, ferr)
	}
	return true, wrap(err, "export %s", job.id)
}

func (s *Service) claimExport(ctx context.Context) (exportJob, bool, error) {
	var job exportJob
	claimed := false
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		now := s.now()
		var attempts int
		var from, to *time.Time
		err := tx.QueryRow(ctx, `select id, clinic_id, protocol_id, from_date, to_date, views, age_in_months, include_unscheduled, attempts
			from exports
			where (status = 'queued' or (status = 'running' and heartbeat_at < $1)) and expires_at > $2
			order by created_at limit 1 for update skip locked`, now.Add(-exportLease), now).
			Scan(&job.id, &job.clinic, &job.protocol, &from, &to, &job.views, &job.ageInMonths, &job.unscheduled, &attempts)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil
		}
		if err != nil {
			return followup.Unavailable(err)
		}
		job.from, job.to = dateOf(from), dateOf(to)
		if attempts >= exportMaxAttempts {
			// It died every time: something about it kills the worker. Stop trying.
			_, err := tx.Exec(ctx, `update exports set status = 'failed', run_id = null, finished_at = $2, error = $3 where id = $1`,
				job.id, now, exportFailedGeneric)
			claimed = true
			job = exportJob{}
			return followup.Unavailable(err)
		}
		job.run = uuid.New()
		_, err = tx.Exec(ctx, `update exports set status = 'running', run_id = $2, attempts = attempts + 1, heartbeat_at = $3,
				started_at = coalesce(started_at, $3), progress_done = 0
			where id = $1`, job.id, job.run, now)
		if err != nil {
			return followup.Unavailable(err)
		}
		claimed = true
		return nil
	})
	if err != nil {
		return exportJob{}, false, wrap(err, "claim export")
	}
	// claimed with no run: an export given up on, nothing to run.
	return job, claimed, nil
}

// progress writes the job's progress and heartbeat; it fails with errLostLease when another
// worker has taken the export over.
func (s *Service) exportProgress(ctx context.Context, job exportJob, done, total int) error {
	tag, err := s.pool.Exec(ctx, `update exports set progress_done = $3, progress_total = $4, heartbeat_at = $5
		where id = $1 and run_id = $2 and status = 'running'`, job.id, job.run, done, total, s.now())
	if err != nil {
		return followup.Unavailable(err)
	}
	if tag.RowsAffected() == 0 {
		return errLostLease
	}
	return nil
}

func (s *Service) failExport(ctx context.Context, job exportJob, msg string) error {
	_, err := s.pool.Exec(ctx, `update exports set status = 'failed', run_id = null, finished_at = $3, error = $4
		where id = $1 and run_id = $2`, job.id, job.run, s.now(), msg)
	return wrap(followup.Unavailable(err), "mark export %s failed", job.id)
}

// runExport runs the job with a heartbeat that keeps its lease while it works, however long
// a photo or the upload of the archive takes, and stops the run if the lease is lost.
//
// The archive's key is noted in pending_objects before its upload begins, and the heartbeat
// keeps the note fresh: a run that dies mid-upload leaves a note that goes stale, and the
// sweeper then removes the archive's parts (package sweep); the note goes in the transaction
// that marks the export done.
func (s *Service) runExport(ctx context.Context, job exportJob) error {
	objectKey := followup.NewObjectKey("exports")
	if err := s.core.NotePending(ctx, objectKey); err != nil {
		return err
	}
	ctx, cancel := context.WithCancelCause(ctx)
	stopped := make(chan struct{})
	defer func() {
		cancel(nil)
		<-stopped
	}()
	go func() {
		defer close(stopped)
		t := time.NewTicker(exportLease / 4)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			tag, err := s.pool.Exec(ctx, `update exports set heartbeat_at = $3 where id = $1 and run_id = $2 and status = 'running'`,
				job.id, job.run, s.now())
			if err == nil && tag.RowsAffected() == 0 {
				cancel(errLostLease)
				return
			}
			s.core.KeepPending(ctx, objectKey)
		}
	}()
	err := s.buildExport(ctx, job, objectKey)
	if errors.Is(context.Cause(ctx), errLostLease) {
		return errLostLease
	}
	return err
}

// buildExport selects the photos (consent is checked here, when the job runs), streams the
// archive into the store as it is built and marks the export done.
func (s *Service) buildExport(ctx context.Context, job exportJob, objectKey string) error {
	key, err := s.exportKey()
	if err != nil {
		return err
	}
	clinic, err := s.core.Clinic(ctx, job.clinic)
	if err != nil {
		return err
	}
	items, err := s.exportItems(ctx, job, clinic.Location, key)
	if err != nil {
		return err
	}
	if err := s.exportProgress(ctx, job, 0, len(items)); err != nil {
		return err
	}
	last := s.now()
	began := time.Now() // durations for the log, on the real clock
	res, err := s.storeArchive(ctx, job, objectKey, items, func(done int) error {
		if done%exportProgressEvery != 0 && done != len(items) && s.now().Sub(last) < exportProgressInterval {
			return nil
		}
		last = s.now()
		return s.exportProgress(ctx, job, done, len(items))
	})
	if err != nil {
		s.core.DiscardObject(context.WithoutCancel(ctx), objectKey) // Put stored nothing; the note goes
		return err
	}
	err = followup.WithTxKnown(ctx, s.pool, func(tx pgx.Tx) error {
		finished := s.now()
		tag, err := tx.Exec(ctx, `update exports set status = 'done', run_id = null, object_key = $3, size_bytes = $4, sha256 = $5,
				subjects = $6, photos = $7, excluded = $8, progress_done = progress_total, finished_at = $9, error = '',
				expires_at = $10
			where id = $1 and run_id = $2 and status = 'running'`,
			job.id, job.run, objectKey, res.size, res.sum, res.subjects, res.photos, res.excluded, finished,
			finished.Add(Lifetime)) // the archive can be downloaded for its whole lifetime, however long it took
		if err != nil {
			return followup.Unavailable(err)
		}
		if tag.RowsAffected() == 0 {
			return errLostLease
		}
		return followup.ForgetPending(ctx, tx, objectKey)
	})
	switch {
	case followup.CommitUnknown(err):
		return err // the note decides: gone with a commit that landed, else swept with the archive
	case err != nil:
		s.core.DiscardObject(context.WithoutCancel(ctx), objectKey)
		return err
	}
	s.log.Info("export done", "export", job.id.String(), "photos", res.photos, "excluded", res.excluded, "bytes", res.size,
		"seconds", time.Since(began).Seconds())
	return nil
}

// errArchiveNotStored tells the archive's writer that the store gave up on the upload.
var errArchiveNotStored = errors.New("export: the store stopped taking the archive")

// storeArchive writes the archive into a pipe whose other end the store uploads (size
// unknown), so that storing overlaps building and the archive is never held whole. The store
// keeps all or nothing: when the writer fails, it closes the pipe with its error, the store's
// Put fails on it and stores nothing (on S3, the multipart upload is aborted); when the store
// fails, the pipe fails the writer's next write and the export stops.
func (s *Service) storeArchive(ctx context.Context, job exportJob, objectKey string, items []exportItem, progress func(done int) error) (archiveResult, error) {
	pr, pw := io.Pipe()
	stored := make(chan error, 1)
	go func() {
		err := s.store.Put(ctx, objectKey, pr, -1, "application/zip")
		// Whatever happened, the writer must not block on a pipe nobody reads any more.
		pr.CloseWithError(errArchiveNotStored)
		stored <- err
	}()
	res, werr := s.writeArchive(ctx, job, items, pw, progress)
	pw.CloseWithError(werr) // nil: io.EOF, the end of a complete archive
	perr := <-stored
	switch {
	case perr != nil && (werr == nil || !errors.Is(perr, werr)):
		// The store failed by itself, not because the writer did (then Put fails with the
		// writer's error).
		if werr != nil && ctx.Err() != nil {
			return res, werr // cancelled: both stopped
		}
		return res, &followup.Error{Code: followup.EUNAVAILABLE, Message: "the archive could not be stored", Err: perr}
	case werr != nil:
		return res, werr
	}
	return res, nil
}
