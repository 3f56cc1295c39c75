package followup

import (
	"context"
	"errors"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/dermfollow/dermfollow/imagestore"
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
var errLostLease = errors.New("followup: export taken over by another worker")

// RunExporter runs queued exports until ctx ends, looking for work every interval, and deletes
// expired archives. Several servers may run it.
func (s *Service) RunExporter(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		for {
			did, err := s.ExportOnce(ctx)
			if err != nil && ctx.Err() == nil {
				s.log.Warn("export", "error", err.Error())
			}
			if !did || ctx.Err() != nil {
				break
			}
		}
		if _, err := s.SweepExports(ctx); err != nil && ctx.Err() == nil {
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
}

// ExportOnce claims one export and runs it to the end. It reports whether there was one.
func (s *Service) ExportOnce(ctx context.Context) (bool, error) {
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
	if code := ErrorCode(err); code == EUNAVAILABLE {
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
		err := tx.QueryRow(ctx, `select id, clinic_id, protocol_id, from_date, to_date, views, age_in_months, attempts
			from exports
			where (status = 'queued' or (status = 'running' and heartbeat_at < $1)) and expires_at > $2
			order by created_at limit 1 for update skip locked`, now.Add(-exportLease), now).
			Scan(&job.id, &job.clinic, &job.protocol, &from, &to, &job.views, &job.ageInMonths, &attempts)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil
		}
		if err != nil {
			return unavailable(err)
		}
		job.from, job.to = dateOf(from), dateOf(to)
		if attempts >= exportMaxAttempts {
			// It died every time: something about it kills the worker. Stop trying.
			_, err := tx.Exec(ctx, `update exports set status = 'failed', run_id = null, finished_at = $2, error = $3 where id = $1`,
				job.id, now, exportFailedGeneric)
			claimed = true
			job = exportJob{}
			return unavailable(err)
		}
		job.run = uuid.New()
		_, err = tx.Exec(ctx, `update exports set status = 'running', run_id = $2, attempts = attempts + 1, heartbeat_at = $3,
				started_at = coalesce(started_at, $3), progress_done = 0
			where id = $1`, job.id, job.run, now)
		if err != nil {
			return unavailable(err)
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
		return unavailable(err)
	}
	if tag.RowsAffected() == 0 {
		return errLostLease
	}
	return nil
}

func (s *Service) failExport(ctx context.Context, job exportJob, msg string) error {
	_, err := s.pool.Exec(ctx, `update exports set status = 'failed', run_id = null, finished_at = $3, error = $4
		where id = $1 and run_id = $2`, job.id, job.run, s.now(), msg)
	return wrap(unavailable(err), "mark export %s failed", job.id)
}

// runExport runs the job with a heartbeat that keeps its lease while it works, however long
// a photo or the upload of the archive takes, and stops the run if the lease is lost.
//
// The archive's key is noted in pending_objects before its upload begins, and the heartbeat
// keeps the note fresh: a run that dies mid-upload leaves a note that goes stale, and the
// sweeper then removes the archive's parts (SweepPending); the note goes in the transaction
// that marks the export done.
func (s *Service) runExport(ctx context.Context, job exportJob) error {
	objectKey := newObjectKey("exports")
	if err := s.notePending(ctx, objectKey); err != nil {
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
			s.pool.Exec(ctx, `update pending_objects set created_at = now() where object_key = $1`, objectKey)
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
	clinic, err := s.Clinic(ctx, job.clinic)
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
		s.discardObject(context.WithoutCancel(ctx), objectKey) // Put stored nothing; the note goes
		return err
	}
	err = s.inTxKnown(ctx, func(tx pgx.Tx) error {
		finished := s.now()
		tag, err := tx.Exec(ctx, `update exports set status = 'done', run_id = null, object_key = $3, size_bytes = $4, sha256 = $5,
				subjects = $6, photos = $7, excluded = $8, progress_done = progress_total, finished_at = $9, error = '',
				expires_at = $10
			where id = $1 and run_id = $2 and status = 'running'`,
			job.id, job.run, objectKey, res.size, res.sum, res.subjects, res.photos, res.excluded, finished,
			finished.Add(ExportLifetime)) // the archive can be downloaded for its whole lifetime, however long it took
		if err != nil {
			return unavailable(err)
		}
		if tag.RowsAffected() == 0 {
			return errLostLease
		}
		_, err = tx.Exec(ctx, `delete from pending_objects where object_key = $1`, objectKey)
		return unavailable(err)
	})
	var unknown *commitUnknownError
	switch {
	case errors.As(err, &unknown):
		return err // the note decides: gone with a commit that landed, else swept with the archive
	case err != nil:
		s.discardObject(context.WithoutCancel(ctx), objectKey)
		return err
	}
	s.log.Info("export done", "export", job.id.String(), "photos", res.photos, "excluded", res.excluded, "bytes", res.size,
		"seconds", time.Since(began).Seconds())
	return nil
}

// errArchiveNotStored tells the archive's writer that the store gave up on the upload.
var errArchiveNotStored = errors.New("followup: the store stopped taking the archive")

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
		return res, &Error{Code: EUNAVAILABLE, Message: "the archive could not be stored", Err: perr}
	case werr != nil:
		return res, werr
	}
	return res, nil
}

// exportItem is one photo to export with what the manifest says about it: nothing that
// identifies the patient.
type exportItem struct {
	photoID   uuid.UUID
	objectKey string
	sha256    []byte
	size      int64
	row       manifestRow
	// order within a subject's series
	performedAt time.Time
	position    int
	received    time.Time
}

// exportItemsSQL reads the photos of an export of clinic $1, protocol $2 and views $3, with the
// latest grade of each one's timepoint; exportItems adds the date range's bounds. The grades
// are read once per procedure (a lateral subquery with DISTINCT ON, which the planner cannot
// fold into a join of every clinic's assessments), and the timepoints' order comes from the
// protocol (exportItems), so that the statement reads the clinic's procedures of the protocol
// and their photos by index, not a table of every clinic.
const exportItemsSQL = `select ph.id, ph.object_key, ph.sha256, ph.size_bytes, ph.timepoint_key, ph.view,
		ph.width, ph.height, ph.orientation, ph.captured_at, ph.received_at,
		pr.id, pr.patient_id, pr.kind, pr.body_site, pr.performed_at, pr.protocol_version, pa.birth_date,
		coalesce(g.scale_id, ''), coalesce(g.level, '')
	from procedures pr
	join patients pa on pa.id = pr.patient_id and pa.clinic_id = pr.clinic_id
	join photos ph on ph.procedure_id = pr.id
	left join lateral (select distinct on (a.timepoint_key) a.timepoint_key, a.scale_id, a.level from assessments a
		where a.procedure_id = pr.id order by a.timepoint_key, a.created_at desc, a.id desc) g on g.timepoint_key = ph.timepoint_key
	where pr.clinic_id = $1 and pr.protocol_id = $2 and ph.clinic_id = $1 and ph.view = any($3)
		and ph.status = 'active' and pr.status <> 'withdrawn' and pa.research_consent_at is not null`

// exportItems selects the photos of consenting patients' procedures of the protocol performed
// in the date range (clinic time), in the chosen views. Withdrawn photos and withdrawn
// procedures are left out.
func (s *Service) exportItems(ctx context.Context, job exportJob, loc *time.Location, key []byte) ([]exportItem, error) {
	var lower, upper *time.Time // nil: unbounded
	if !job.from.IsZero() {
		t := job.from.Start(loc)
		lower = &t
	}
	if !job.to.IsZero() {
		t := job.to.AddDays(1).Start(loc)
		upper = &t
	}
	// The bounds are conditions only when they are set: a statement of optional filters
	// ("$3 is null or ...") gets a generic plan that cannot use them.
	sql, args := exportItemsSQL, []any{job.clinic, job.protocol, job.views}
	if lower != nil {
		args = append(args, *lower)
		sql += ` and pr.performed_at >= $` + strconv.Itoa(len(args))
	}
	if upper != nil {
		args = append(args, *upper)
		sql += ` and pr.performed_at < $` + strconv.Itoa(len(args))
	}
	rows, err := s.pool.Query(ctx, sql, args...)
	if err != nil {
		return nil, unavailable(err)
	}
	defer rows.Close()
	var items []exportItem
	positions := map[int]map[string]int{} // protocol version -> timepoint key -> position in the schedule
	unplaced := map[uuid.UUID][]int{}     // items of versions no longer installed, by procedure
	for rows.Next() {
		var it exportItem
		var procID, patientID uuid.UUID
		var captured *time.Time
		var birth time.Time
		r := &it.row
		if err := rows.Scan(&it.photoID, &it.objectKey, &it.sha256, &it.size, &r.Timepoint, &r.View, &r.Width, &r.Height,
			&r.Orientation, &captured, &it.received, &procID, &patientID, &r.ProcedureKind, &r.BodySite, &it.performedAt,
			&r.ProtocolVersion, &birth, &r.GradeScale, &r.GradeLevel); err != nil {
			return nil, unavailable(err)
		}
		r.Subject = pseudonym(key, "S", job.clinic, patientID)
		r.Series = pseudonym(key, "P", job.clinic, procID)
		r.Protocol = job.protocol
		r.Recognizable = RecognizableSite(r.BodySite)
		performed := protocols.DateOf(it.performedAt, loc)
		r.Day = protocols.DateOf(photoTime(captured, it.received, it.performedAt), loc).DaysSince(performed)
		if job.ageInMonths {
			months := monthsBetween(protocols.DateOf(birth, time.UTC), performed)
			r.AgeMonths = &months
		}
		if r.GradeScale != "" {
			if sc, err := s.protocols.Scale(r.GradeScale); err == nil {
				if l, ok := sc.Level(r.GradeLevel); ok {
					v := l.Value
					r.GradeValue = &v
				}
			}
		}
		// A procedure's timepoints are its protocol version's, in its order (Enrol writes them
		// so, and they never change).
		order, known := positions[r.ProtocolVersion]
		if !known {
			if p, err := s.protocols.Get(job.protocol, r.ProtocolVersion); err == nil {
				order = map[string]int{}
				for i, tp := range p.Timepoints {
					order[tp.Key] = i
				}
			}
			positions[r.ProtocolVersion] = order
		}
		if pos, ok := order[r.Timepoint]; ok {
			it.position = pos
		} else {
			unplaced[procID] = append(unplaced[procID], len(items))
		}
		items = append(items, it)
	}
	if err := rows.Err(); err != nil {
		return nil, unavailable(err)
	}
	if err := s.placeExportItems(ctx, items, unplaced); err != nil {
		return nil, err
	}
	return items, nil
}

// placeExportItems reads the positions of the timepoints of procedures whose protocol version
// the registry no longer has, from their schedules.
func (s *Service) placeExportItems(ctx context.Context, items []exportItem, unplaced map[uuid.UUID][]int) error {
	if len(unplaced) == 0 {
		return nil
	}
	ids := make([]uuid.UUID, 0, len(unplaced))
	for id := range unplaced {
		ids = append(ids, id)
	}
	rows, err := s.pool.Query(ctx, `select procedure_id, key, position from timepoints where procedure_id = any($1)`, ids)
	if err != nil {
		return unavailable(err)
	}
	type place struct {
		procedure uuid.UUID
		key       string
	}
	at := map[place]int{}
	for rows.Next() {
		var p place
		var pos int
		if err := rows.Scan(&p.procedure, &p.key, &pos); err != nil {
			return unavailable(err)
		}
		at[p] = pos
	}
	if err := rows.Err(); err != nil {
		return unavailable(err)
	}
	for proc, idx := range unplaced {
		for _, i := range idx {
			items[i].position = at[place{proc, items[i].row.Timepoint}]
		}
	}
	return nil
}

// photoTime is when the photo was taken: the capture time the phone recorded when it is
// plausible (not long before the procedure, not after the upload), else the upload time.
func photoTime(captured *time.Time, received, performed time.Time) time.Time {
	if captured != nil && !captured.Before(performed.Add(-48*time.Hour)) && !captured.After(received.Add(time.Hour)) {
		return *captured
	}
	return received
}

// monthsBetween is the age in whole months on the day to of someone born on from.
func monthsBetween(from, to protocols.Date) int {
	m := (to.Year-from.Year)*12 + int(to.Month) - int(from.Month)
	if to.Day < from.Day {
		m--
	}
	return max(0, m)
}

// SweepExports deletes the archives of expired exports and marks them expired, and deletes
// archives no export refers to (a worker died between storing one and recording it). It
// returns how many archives it deleted.
func (s *Service) SweepExports(ctx context.Context) (int, error) {
	swept := 0
	for {
		var id uuid.UUID
		var key *string
		done := false
		err := s.inTx(ctx, func(tx pgx.Tx) error {
			err := tx.QueryRow(ctx, `select id, object_key from exports where status <> 'expired' and expires_at <= $1
				order by expires_at limit 1 for update skip locked`, s.now()).Scan(&id, &key)
			if errors.Is(err, pgx.ErrNoRows) {
				done = true
				return nil
			}
			if err != nil {
				return unavailable(err)
			}
			if key != nil {
				if err := s.store.Delete(ctx, *key); err != nil {
					return &Error{Code: EUNAVAILABLE, Message: "the archive store is unavailable", Err: err}
				}
				swept++
			}
			_, err = tx.Exec(ctx, `update exports set status = 'expired', run_id = null, object_key = null where id = $1`, id)
			return unavailable(err)
		})
		if err != nil {
			return swept, wrap(err, "sweep exports")
		}
		if done {
			break
		}
	}
	n, err := s.sweepExportLeftovers(ctx)
	return swept + n, err
}

// exportLeftoverEvery is how often SweepExports looks through the store for archives no
// export names: it lists the bucket, so not at every tick of the exporter.
const exportLeftoverEvery = 10 * time.Minute

// sweepExportLeftovers removes finished archives that no export names (a process died between
// storing one and marking its export done, before the archives had pending notes), at a
// process's first sweep and then every exportLeftoverEvery. The parts of archives whose run
// died half-way are the pending notes' (SweepPending).
func (s *Service) sweepExportLeftovers(ctx context.Context) (int, error) {
	last := s.exportLeftovers.Load()
	if last != 0 && time.Since(time.Unix(0, last)) < exportLeftoverEvery {
		return 0, nil
	}
	if !s.exportLeftovers.CompareAndSwap(last, time.Now().UnixNano()) {
		return 0, nil
	}
	swept := 0
	cutoff := s.now().Add(-exportOrphanGrace)
	err := s.store.List(ctx, "exports/", func(o imagestore.ObjectInfo) error {
		if o.Modified.After(cutoff) || !strings.HasPrefix(o.Key, "exports/") {
			return nil
		}
		var exists bool
		if err := s.pool.QueryRow(ctx, `select exists (select 1 from exports where object_key = $1)`, o.Key).Scan(&exists); err != nil {
			return unavailable(err)
		}
		if exists {
			return nil
		}
		if err := s.store.Delete(ctx, o.Key); err != nil {
			return err
		}
		swept++
		return nil
	})
	return swept, wrap(err, "sweep export archives")
}
