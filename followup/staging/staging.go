// Package staging keeps the photos that families send in pieces (resumable uploads, which the
// web layer speaks as the tus protocol) until the last byte is in: each upload is a row bound
// to the parent session that created it and to the photo it will become (procedure, step,
// view, upload_id); its bytes are objects in the store under Prefix, one per piece received
// (a segment), encrypted at rest like every object the store keeps. When the upload is
// complete the web layer hands its bytes to the core's AddPhoto, exactly as a one-request
// upload, and then marks the upload stored or refused, which deletes the staged bytes at once.
// It owns the tables resumable_uploads and resumable_segments.
//
// The staged bytes are the phone's file, with its GPS position and serial numbers: no route
// reads them back, and every segment is noted in pending_objects dated so that the sweeper
// (package sweep) removes it, and aborts any multipart parts of it, as soon as the upload has
// expired (Config.Expiry, hours). The rows of expired uploads go later, once their segments
// have been swept.
//
// One request at a time writes an upload, on any server: it holds a lease (Lock, Renew,
// Unlock), and a segment is committed only while the lease is held and only at the offset the
// upload had, so that a writer that lost its lease (a paused or cut-off server) can never
// extend the upload or leave a gap.
//
// From the core (package followup) it uses the checks a photo upload passes before its body
// is read (CheckUpload), the kind a photo is stored as (PhotoUpload.StoredKind), the store and
// its deadlines (StoreTimeout, RowTimeout) and the sweeper's grace (PendingGrace).
//
//	st, err := staging.New(staging.Config{Core: core, Pool: pool})
//	u, err := st.CreateStaged(ctx, family, session, up, size, limits)
package staging

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/dermfollow/dermfollow/followup"
	"github.com/dermfollow/dermfollow/imagestore"
)

// Prefix is where staged bytes live in the store; no photo or thumbnail is under it.
const Prefix = "staging/"

// Config holds the staged uploads' dependencies and bounds. A zero bound takes its default.
type Config struct {
	// Core is the follow-up core the photos go to, with its store.
	Core   *followup.Service
	Pool   *pgxpool.Pool
	Logger *slog.Logger
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

// Service is the staged uploads of every clinic.
type Service struct {
	core  *followup.Service
	pool  *pgxpool.Pool
	store imagestore.Store
	log   *slog.Logger
	cfg   Config
}

// New returns a Service.
func New(cfg Config) (*Service, error) {
	if cfg.Core == nil || cfg.Pool == nil {
		return nil, errors.New("staging: Core and Pool are required")
	}
	cfg.Logger = cmp.Or(cfg.Logger, slog.Default())
	cfg.Expiry = cmp.Or(cfg.Expiry, 6*time.Hour)
	cfg.MaxOpenPerLink = cmp.Or(cfg.MaxOpenPerLink, 20)
	cfg.MaxOpen = cmp.Or(cfg.MaxOpen, 2000)
	cfg.Lease = cmp.Or(cfg.Lease, 10*time.Second)
	return &Service{core: cfg.Core, pool: cfg.Pool, store: cfg.Core.Store(), log: cfg.Logger, cfg: cfg}, nil
}

// Lease is how long a writer's hold on an upload lasts without being renewed (Config.Lease).
func (st *Service) Lease() time.Duration { return st.cfg.Lease }

func wrap(err error, format string, args ...any) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("staging: "+format+": %w", append(args, err)...)
}

// Upload is one resumable upload.
type Upload struct {
	ID          uuid.UUID
	ProcedureID uuid.UUID
	LinkID      uuid.UUID
	Photo       followup.PhotoUpload
	Size        int64
	// Offset is how many bytes are staged: the offset the client resumes from.
	Offset    int64
	ExpiresAt time.Time
	// PhotoID is the stored photo, once there is one; Refusal why the photo was refused (see
	// Refusal), once it was.
	PhotoID *uuid.UUID
	Refusal string
}

// Complete reports whether every byte is staged.
func (u Upload) Complete() bool { return u.Offset == u.Size }

// Ended reports whether the upload has stored its photo or been refused.
func (u Upload) Ended() bool { return u.PhotoID != nil || u.Refusal != "" }

// SessionIDLen is the length of a parent session's id.
const SessionIDLen = 16

// CreateStaged starts a resumable upload of size bytes for the parent actor a, bound to its
// session. It checks what a one-request upload checks before its body is read (the step and
// the view, the follow-up still active, the link's quotas, the declared size within lim) and
// the bounds on open uploads. When an earlier try of the same upload_id has stored its photo,
// the upload is created complete, with that photo.
func (st *Service) CreateStaged(ctx context.Context, a followup.Actor, session []byte, up followup.PhotoUpload, size int64, lim imagestore.Limits) (Upload, error) {
	if a.Kind != followup.ActorParent {
		return Upload{}, followup.Errorf(followup.EFORBIDDEN, "only a family's session sends photos in pieces")
	}
	if len(session) != SessionIDLen {
		return Upload{}, followup.Errorf(followup.EUNAUTHORIZED, "no parent session")
	}
	lim = lim.WithDefaults()
	if size <= 0 {
		return Upload{}, followup.InvalidField("Upload-Length", "the photo is empty")
	}
	if size > lim.MaxBytes {
		return Upload{}, &imagestore.RejectError{Reason: imagestore.ReasonTooLarge,
			Detail: fmt.Sprintf("declared %d bytes, limit %d", size, lim.MaxBytes)}
	}
	earlier, err := st.core.CheckUpload(ctx, a, a.Procedure, up)
	if err != nil {
		return Upload{}, wrap(err, "stage upload")
	}
	u := Upload{ID: uuid.New(), ProcedureID: a.Procedure, LinkID: a.ID, Photo: up, Size: size}
	var photoID any
	if earlier != nil {
		u.Offset, u.PhotoID, photoID = size, &earlier.ID, earlier.ID
	}
	st.removeExpiredRows(ctx)
	ctx, cancel := context.WithTimeout(ctx, st.core.RowTimeout())
	defer cancel()
	err = st.pool.QueryRow(ctx, `insert into resumable_uploads (id, clinic_id, procedure_id, parent_link_id, session_id,
			timepoint_key, view, upload_id, size_bytes, offset_bytes, photo_id, expires_at, kind)
		select $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, now() + make_interval(secs => $12), $15
		where $11::uuid is not null or (
			(select count(*) from resumable_uploads where parent_link_id = $4 and photo_id is null and refusal is null
				and expires_at > now()) < $13
			and (select count(*) from resumable_uploads where photo_id is null and refusal is null and expires_at > now()) < $14)
		returning expires_at`,
		u.ID, a.ClinicID, a.Procedure, a.ID, session, up.Timepoint, up.View, up.UploadID, size, u.Offset, photoID,
		st.cfg.Expiry.Seconds(), st.cfg.MaxOpenPerLink, st.cfg.MaxOpen, up.StoredKind()).Scan(&u.ExpiresAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return Upload{}, followup.Errorf(followup.ETOOMANY, "Too many photos are being sent at once. Please wait until one has arrived.")
	}
	if err != nil {
		return Upload{}, wrap(followup.Unavailable(err), "stage upload")
	}
	return u, nil
}

// removeExpiredRows deletes the rows of uploads that expired an hour ago and whose segments
// the sweeper has removed (no pending note is left); a bounded batch at a time, at each
// creation. It is housekeeping: a failure is logged and changes nothing else.
func (st *Service) removeExpiredRows(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, st.core.RowTimeout())
	defer cancel()
	_, err := st.pool.Exec(ctx, `delete from resumable_uploads where id in (
		select u.id from resumable_uploads u where u.expires_at < now() - interval '1 hour'
			and not exists (select 1 from resumable_segments g join pending_objects p on p.object_key = g.object_key
				where g.upload = u.id)
		order by u.expires_at limit 100)`)
	if err != nil {
		st.log.Warn("staging: expired rows left for the next creation", "error", err.Error())
	}
}

const stagedColumns = `id, procedure_id, parent_link_id, timepoint_key, view, upload_id, size_bytes, offset_bytes, expires_at,
	photo_id, coalesce(refusal, ''), kind`

func scanStaged(row pgx.Row) (Upload, error) {
	var u Upload
	err := row.Scan(&u.ID, &u.ProcedureID, &u.LinkID, &u.Photo.Timepoint, &u.Photo.View, &u.Photo.UploadID, &u.Size,
		&u.Offset, &u.ExpiresAt, &u.PhotoID, &u.Refusal, &u.Photo.Kind)
	return u, err
}

// Staged returns the upload id of the session, if it has not expired: another session's
// upload, another family's, an expired one or none at all is not found alike.
func (st *Service) Staged(ctx context.Context, a followup.Actor, session []byte, id uuid.UUID) (Upload, error) {
	if a.Kind != followup.ActorParent || len(session) != SessionIDLen {
		return Upload{}, followup.Errorf(followup.ENOTFOUND, "upload not found")
	}
	u, err := scanStaged(st.pool.QueryRow(ctx, `select `+stagedColumns+` from resumable_uploads
		where id = $1 and parent_link_id = $2 and procedure_id = $3 and session_id = $4 and expires_at > now()`,
		id, a.ID, a.Procedure, session))
	if err != nil {
		return Upload{}, followup.NotFound(err, "upload")
	}
	return u, nil
}
