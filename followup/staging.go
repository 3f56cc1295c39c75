package followup

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/dermfollow/dermfollow/imagestore"
)

// Staging keeps the photos that families send in pieces (resumable uploads, which the web
// layer speaks as the tus protocol) until the last byte is in: each upload is a row bound to
// the parent session that created it and to the photo it will become (procedure, step, view,
// upload_id); its bytes are objects in the store under StagingPrefix, one per piece received
// (a segment), encrypted at rest like every object the store keeps. When the upload is
// complete the web layer hands its bytes to AddPhoto, exactly as a one-request upload, and
// then marks the upload stored or refused, which deletes the staged bytes at once.
//
// The staged bytes are the phone's file, with its GPS position and serial numbers: no route
// reads them back, and every segment is noted in pending_objects dated so that SweepPending
// removes it, and aborts any multipart parts of it, as soon as the upload has expired
// (StagingConfig.Expiry, hours). The rows of expired uploads go later, once their segments
// have been swept.
//
// One request at a time writes an upload, on any server: it holds a lease (Lock, Renew,
// Unlock), and a segment is committed only while the lease is held and only at the offset the
// upload had, so that a writer that lost its lease (a paused or cut-off server) can never
// extend the upload or leave a gap.
type Staging struct {
	s   *Service
	cfg StagingConfig
}

// StagingPrefix is where staged bytes live in the store; no photo or thumbnail is under it.
const StagingPrefix = "staging/"

// StagingConfig bounds staged uploads. A zero field takes its default.
type StagingConfig struct {
	// Expiry is how long an upload may take from its creation (default 6 hours): a phone
	// that loses its network resumes within it; after it, the upload is gone and its staged
	// bytes are swept.
	Expiry time.Duration
	// MaxOpenPerLink bounds the uploads in progress through one parent link (default 20: a
	// family picks a few photos at a time). MaxOpen bounds them on the whole service, every
	// server together (default 2000: at the 30 MiB photo limit, 60 GB of staged bytes).
	MaxOpenPerLink, MaxOpen int
	// Lease is how long a writer's hold on an upload lasts without being renewed (default 10
	// s): after a crash, another server can take the upload over this soon.
	Lease time.Duration
}

func (c StagingConfig) withDefaults() StagingConfig {
	c.Expiry = cmp.Or(c.Expiry, 6*time.Hour)
	c.MaxOpenPerLink = cmp.Or(c.MaxOpenPerLink, 20)
	c.MaxOpen = cmp.Or(c.MaxOpen, 2000)
	c.Lease = cmp.Or(c.Lease, 10*time.Second)
	return c
}

// Staging returns the staged uploads of the service, bounded by cfg.
func (s *Service) Staging(cfg StagingConfig) *Staging {
	return &Staging{s: s, cfg: cfg.withDefaults()}
}

// Config returns the bounds in force.
func (st *Staging) Config() StagingConfig { return st.cfg }

// StagedUpload is one resumable upload.
type StagedUpload struct {
	ID          uuid.UUID
	ProcedureID uuid.UUID
	LinkID      uuid.UUID
	Photo       PhotoUpload
	Size        int64
	// Offset is how many bytes are staged: the offset the client resumes from.
	Offset    int64
	ExpiresAt time.Time
	// PhotoID is the stored photo, once there is one; Refusal why the photo was refused (see
	// StagingRefusal), once it was.
	PhotoID *uuid.UUID
	Refusal string
}

// Complete reports whether every byte is staged.
func (u StagedUpload) Complete() bool { return u.Offset == u.Size }

// Ended reports whether the upload has stored its photo or been refused.
func (u StagedUpload) Ended() bool { return u.PhotoID != nil || u.Refusal != "" }

// SessionIDLen is the length of a parent session's id.
const SessionIDLen = 16

// CreateStaged starts a resumable upload of size bytes for the parent actor a, bound to its
// session. It checks what a one-request upload checks before its body is read (the step and
// the view, the follow-up still active, the link's quotas, the declared size within lim) and
// the bounds on open uploads. When an earlier try of the same upload_id has stored its photo,
// the upload is created complete, with that photo.
func (st *Staging) CreateStaged(ctx context.Context, a Actor, session []byte, up PhotoUpload, size int64, lim imagestore.Limits) (StagedUpload, error) {
	s := st.s
	if a.Kind != ActorParent {
		return StagedUpload{}, Errorf(EFORBIDDEN, "only a family's session sends photos in pieces")
	}
	if len(session) != SessionIDLen {
		return StagedUpload{}, Errorf(EUNAUTHORIZED, "no parent session")
	}
	lim = lim.WithDefaults()
	if size <= 0 {
		return StagedUpload{}, invalidField("Upload-Length", "the photo is empty")
	}
	if size > lim.MaxBytes {
		return StagedUpload{}, &imagestore.RejectError{Reason: imagestore.ReasonTooLarge,
			Detail: fmt.Sprintf("declared %d bytes, limit %d", size, lim.MaxBytes)}
	}
	earlier, err := s.checkUpload(ctx, a, a.Procedure, up)
	if err != nil {
		return StagedUpload{}, wrap(err, "stage upload")
	}
	u := StagedUpload{ID: uuid.New(), ProcedureID: a.Procedure, LinkID: a.ID, Photo: up, Size: size}
	var photoID any
	if earlier != nil {
		u.Offset, u.PhotoID, photoID = size, &earlier.ID, earlier.ID
	}
	st.removeExpiredRows(ctx)
	ctx, cancel := context.WithTimeout(ctx, s.rowTimeout)
	defer cancel()
	err = s.pool.QueryRow(ctx, `insert into resumable_uploads (id, clinic_id, procedure_id, parent_link_id, session_id,
			timepoint_key, view, upload_id, size_bytes, offset_bytes, photo_id, expires_at, kind)
		select $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, now() + make_interval(secs => $12), $15
		where $11::uuid is not null or (
			(select count(*) from resumable_uploads where parent_link_id = $4 and photo_id is null and refusal is null
				and expires_at > now()) < $13
			and (select count(*) from resumable_uploads where photo_id is null and refusal is null and expires_at > now()) < $14)
		returning expires_at`,
		u.ID, a.ClinicID, a.Procedure, a.ID, session, up.Timepoint, up.View, up.UploadID, size, u.Offset, photoID,
		st.cfg.Expiry.Seconds(), st.cfg.MaxOpenPerLink, st.cfg.MaxOpen, up.kind()).Scan(&u.ExpiresAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return StagedUpload{}, Errorf(ETOOMANY, "Too many photos are being sent at once. Please wait until one has arrived.")
	}
	if err != nil {
		return StagedUpload{}, wrap(unavailable(err), "stage upload")
	}
	return u, nil
}

// removeExpiredRows deletes the rows of uploads that expired an hour ago and whose segments
// the sweeper has removed (no pending note is left); a bounded batch at a time, at each
// creation. It is housekeeping: a failure is logged and changes nothing else.
func (st *Staging) removeExpiredRows(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, st.s.rowTimeout)
	defer cancel()
	_, err := st.s.pool.Exec(ctx, `delete from resumable_uploads where id in (
		select u.id from resumable_uploads u where u.expires_at < now() - interval '1 hour'
			and not exists (select 1 from resumable_segments g join pending_objects p on p.object_key = g.object_key
				where g.upload = u.id)
		order by u.expires_at limit 100)`)
	if err != nil {
		st.s.log.Warn("staging: expired rows left for the next creation", "error", err.Error())
	}
}

const stagedColumns = `id, procedure_id, parent_link_id, timepoint_key, view, upload_id, size_bytes, offset_bytes, expires_at,
	photo_id, coalesce(refusal, ''), kind`

func scanStaged(row pgx.Row) (StagedUpload, error) {
	var u StagedUpload
	err := row.Scan(&u.ID, &u.ProcedureID, &u.LinkID, &u.Photo.Timepoint, &u.Photo.View, &u.Photo.UploadID, &u.Size,
		&u.Offset, &u.ExpiresAt, &u.PhotoID, &u.Refusal, &u.Photo.Kind)
	return u, err
}

// Staged returns the upload id of the session, if it has not expired: another session's
// upload, another family's, an expired one or none at all is not found alike.
func (st *Staging) Staged(ctx context.Context, a Actor, session []byte, id uuid.UUID) (StagedUpload, error) {
	if a.Kind != ActorParent || len(session) != SessionIDLen {
		return StagedUpload{}, Errorf(ENOTFOUND, "upload not found")
	}
	u, err := scanStaged(st.s.pool.QueryRow(ctx, `select `+stagedColumns+` from resumable_uploads
		where id = $1 and parent_link_id = $2 and procedure_id = $3 and session_id = $4 and expires_at > now()`,
		id, a.ID, a.Procedure, session))
	if err != nil {
		return StagedUpload{}, notFound(err, "upload")
	}
	return u, nil
}

// ErrLeaseLost is a segment that could not be committed: the writer's lease on the upload, or
// the offset it started from, is no longer current.
var ErrLeaseLost = Errorf(ECONFLICT, "This upload is being written by another request; ask for its offset and resume from there.")

// StageSegment stores the n bytes of r as the segment of upload id at offset, under token's
// lease, and moves the upload's offset past it. The write runs detached from ctx's
// cancellation, with the store's deadline: a client that cut its connection still gets the
// bytes it had sent staged. ErrLeaseLost means nothing was added.
func (st *Staging) StageSegment(ctx context.Context, id, token uuid.UUID, offset int64, r io.Reader, n int64) error {
	s := st.s
	ctx = context.WithoutCancel(ctx)
	key := stagingKey(id)
	rctx, cancel := context.WithTimeout(ctx, s.rowTimeout)
	// The note is dated so that the sweeper, which takes notes older than its grace, takes
	// this one when the upload expires.
	tag, err := s.pool.Exec(rctx, `with u as (select expires_at from resumable_uploads where id = $1 and lock_token = $4),
			g as (insert into resumable_segments (upload, offset_bytes, size_bytes, object_key) select $1, $2, $3, $5 from u returning 1)
		insert into pending_objects (object_key, created_at)
			select $5, u.expires_at - make_interval(secs => $6) from u where exists (select 1 from g)`,
		id, offset, n, token, key, s.PendingGrace().Seconds())
	cancel()
	if err != nil {
		return wrap(unavailable(err), "stage segment of %s", id)
	}
	if tag.RowsAffected() == 0 {
		return ErrLeaseLost
	}
	pctx, cancel := context.WithTimeout(ctx, s.storeTimeout)
	err = s.store.Put(pctx, key, r, n, "application/octet-stream")
	cancel()
	if err != nil {
		// The row and the note stay: the object may still land, and goes with the upload.
		return wrap(&Error{Code: EUNAVAILABLE, Message: "The photo store is unavailable; please try again.", Err: err},
			"stage segment of %s", id)
	}
	rctx, cancel = context.WithTimeout(ctx, s.rowTimeout)
	defer cancel()
	var committed bool
	err = s.pool.QueryRow(rctx, `with adv as (update resumable_uploads set offset_bytes = $2 + $3
			where id = $1 and offset_bytes = $2 and lock_token = $4 and photo_id is null and refusal is null returning 1),
		seg as (update resumable_segments set stored = true where object_key = $5 and exists (select 1 from adv) returning 1)
		select exists (select 1 from seg)`, id, offset, n, token, key).Scan(&committed)
	if err != nil {
		return wrap(unavailable(err), "commit segment of %s", id)
	}
	if !committed {
		st.dropSegment(ctx, key)
		return ErrLeaseLost
	}
	return nil
}

// stagingKey is a new segment's key: the upload's own folder, and a random name.
func stagingKey(id uuid.UUID) string {
	b := make([]byte, 12)
	rand.Read(b)
	return StagingPrefix + id.String() + "/" + hex.EncodeToString(b)
}

// dropSegment removes an uncommitted segment's object, then its row and its note; what fails
// is left to the sweeper, which the note still points at.
func (st *Staging) dropSegment(ctx context.Context, key string) {
	if !st.s.deleteObject(ctx, key) {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, st.s.rowTimeout)
	defer cancel()
	if _, err := st.s.pool.Exec(ctx, `with g as (delete from resumable_segments where object_key = $1)
		delete from pending_objects where object_key = $1`, key); err != nil {
		st.s.log.Warn("staging: segment note left for the sweeper", "error", err.Error())
	}
}

// OpenStaged returns a reader of upload id's first n staged bytes (n at most its offset), segment
// after segment. The caller closes it.
func (st *Staging) OpenStaged(ctx context.Context, id uuid.UUID, n int64) (io.ReadCloser, error) {
	rows, err := st.s.pool.Query(ctx, `select offset_bytes, size_bytes, object_key from resumable_segments
		where upload = $1 and stored and offset_bytes < $2 order by offset_bytes`, id, n)
	if err != nil {
		return nil, wrap(unavailable(err), "open staged %s", id)
	}
	type seg struct {
		off, n int64
		key    string
	}
	segs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (seg, error) {
		var g seg
		return g, r.Scan(&g.off, &g.n, &g.key)
	})
	if err != nil {
		return nil, wrap(unavailable(err), "open staged %s", id)
	}
	var at int64
	for _, g := range segs {
		if g.off != at {
			return nil, fmt.Errorf("followup: staged upload %s has a gap at %d", id, at)
		}
		at += g.n
	}
	if at < n {
		return nil, fmt.Errorf("followup: staged upload %s holds %d bytes, not %d", id, at, n)
	}
	sr := &segmentReader{ctx: ctx, store: st.s.store, left: n}
	for _, g := range segs {
		sr.keys = append(sr.keys, g.key)
	}
	return sr, nil
}

// segmentReader reads segments in order, opening each when the previous one ends.
type segmentReader struct {
	ctx   context.Context
	store imagestore.Store
	keys  []string
	cur   io.ReadCloser
	left  int64
}

func (r *segmentReader) Read(p []byte) (int, error) {
	for {
		if r.left <= 0 {
			return 0, io.EOF
		}
		if r.cur == nil {
			if len(r.keys) == 0 {
				return 0, io.ErrUnexpectedEOF
			}
			rc, _, err := r.store.Open(r.ctx, r.keys[0])
			if err != nil {
				return 0, &Error{Code: EUNAVAILABLE, Message: "The photo store is unavailable; please try again.", Err: err}
			}
			r.cur, r.keys = rc, r.keys[1:]
		}
		if int64(len(p)) > r.left {
			p = p[:r.left]
		}
		n, err := r.cur.Read(p)
		r.left -= int64(n)
		if errors.Is(err, io.EOF) {
			r.cur.Close()
			r.cur, err = nil, nil
		}
		if n > 0 || err != nil {
			return n, err
		}
	}
}

func (r *segmentReader) Close() error {
	if r.cur != nil {
		return r.cur.Close()
	}
	return nil
}

// Stored marks upload id as having stored photo, and removes its staged bytes.
func (st *Staging) Stored(ctx context.Context, id, photo uuid.UUID) error {
	return st.end(ctx, id, `photo_id = $2`, photo)
}

// StagingRefusal names why an upload's photo was refused: "reject:" and an imagestore reason
// (the sanitizer's refusal), or "error:" and an error code (the step no longer takes it...).
func StagingRefusal(err error) string {
	var re *imagestore.RejectError
	if errors.As(err, &re) {
		return "reject:" + string(re.Reason)
	}
	return "error:" + ErrorCode(err)
}

// Refused marks upload id as refused (refusal from StagingRefusal), and removes its staged bytes.
func (st *Staging) Refused(ctx context.Context, id uuid.UUID, refusal string) error {
	return st.end(ctx, id, `refusal = $2`, refusal)
}

func (st *Staging) end(ctx context.Context, id uuid.UUID, set string, v any) error {
	ctx = context.WithoutCancel(ctx)
	rctx, cancel := context.WithTimeout(ctx, st.s.rowTimeout)
	_, err := st.s.pool.Exec(rctx, `update resumable_uploads set `+set+`, offset_bytes = size_bytes where id = $1`, id, v)
	cancel()
	if err != nil {
		return wrap(unavailable(err), "end staged upload %s", id)
	}
	return st.Discard(ctx, id)
}

// Discard removes upload id's staged bytes, their rows and their notes; the upload's own row
// stays. An object that cannot be deleted keeps its note, for the sweeper.
func (st *Staging) Discard(ctx context.Context, id uuid.UUID) error {
	s := st.s
	ctx = context.WithoutCancel(ctx)
	rctx, cancel := context.WithTimeout(ctx, s.rowTimeout)
	rows, err := s.pool.Query(rctx, `select object_key from resumable_segments where upload = $1`, id)
	var keys []string
	if err == nil {
		keys, err = pgx.CollectRows(rows, pgx.RowTo[string])
	}
	cancel()
	if err != nil {
		return wrap(unavailable(err), "discard staged %s", id)
	}
	var gone []string
	var failed error
	for _, k := range keys {
		dctx, cancel := context.WithTimeout(ctx, s.rowTimeout)
		if err := s.store.Delete(dctx, k); err != nil {
			failed = err
		} else {
			gone = append(gone, k)
		}
		cancel()
	}
	if len(gone) > 0 {
		rctx, cancel := context.WithTimeout(ctx, s.rowTimeout)
		_, err := s.pool.Exec(rctx, `with g as (delete from resumable_segments where object_key = any($1))
			delete from pending_objects where object_key = any($1)`, gone)
		cancel()
		if err != nil {
			return wrap(unavailable(err), "discard staged %s", id)
		}
	}
	if failed != nil {
		return wrap(&Error{Code: EUNAVAILABLE, Message: "The photo store is unavailable; please try again.", Err: failed},
			"discard staged %s", id)
	}
	return nil
}

// Terminate ends upload id for good: its staged bytes and its row go (a stored photo stays).
func (st *Staging) Terminate(ctx context.Context, id uuid.UUID) error {
	if err := st.Discard(ctx, id); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), st.s.rowTimeout)
	defer cancel()
	_, err := st.s.pool.Exec(ctx, `delete from resumable_uploads u where id = $1
		and not exists (select 1 from resumable_segments g where g.upload = u.id)`, id)
	return wrap(unavailable(err), "terminate staged %s", id)
}
