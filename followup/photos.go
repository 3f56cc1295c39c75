package followup

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"slices"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/dermfollow/dermfollow/imagestore"
)

// Photo is a stored, sanitized photo.
type Photo struct {
	ID          uuid.UUID `json:"id"`
	ProcedureID uuid.UUID `json:"procedure_id"`
	Timepoint   string    `json:"timepoint"` // "" for a concern photo
	View        string    `json:"view"`      // "" for a concern photo
	// Kind is PhotoScheduled, or PhotoConcern for a photo outside the schedule that the
	// family sent with a message (MessageID, once attached; see followup/conversation).
	Kind        string     `json:"kind"`
	MessageID   *uuid.UUID `json:"message_id,omitempty"`
	UploadID    string     `json:"upload_id"`
	ContentType string     `json:"content_type"`
	Size        int64      `json:"size"`
	SHA256      string     `json:"sha256"`
	Width       int        `json:"width"`
	Height      int        `json:"height"`
	Orientation int        `json:"orientation"`
	CapturedAt  *time.Time `json:"captured_at,omitempty"`
	// CapturedOffset says whether the camera recorded its UTC offset with the capture time:
	// then CapturedAt is the instant; else it is the camera's wall clock, written as if UTC.
	CapturedOffset bool      `json:"captured_at_has_offset"`
	ReceivedAt     time.Time `json:"received_at"`
	Source         string    `json:"source"`
	Status         string    `json:"status"`
	ThumbsReady    bool      `json:"thumbnails_ready"`
	// ThumbnailState is ThumbnailPending, ThumbnailReady or ThumbnailUnreadable.
	ThumbnailState string `json:"thumbnail_state"`
	// Quality is what the pixels say of how the photo was taken, once its thumbnails are
	// made (nil before, or for an unreadable photo).
	Quality *imagestore.Quality `json:"quality,omitempty"`

	objectKey string
}

// The states of a photo's thumbnails. An unreadable photo is one whose thumbnails could not be
// made after every attempt (see package thumbnails): its original is kept and can be downloaded.
const (
	ThumbnailPending    = "pending"
	ThumbnailReady      = "ready"
	ThumbnailUnreadable = "unreadable"
)

// Photo kinds: a photo of a step of the schedule, or one outside it that the family sends
// when something worries them (no step, no view).
const (
	PhotoScheduled = "scheduled"
	PhotoConcern   = "concern"
)

// PhotoUpload describes an upload: where it belongs and the client's idempotency key. A
// concern photo (Kind PhotoConcern) names no timepoint and no view.
type PhotoUpload struct {
	Timepoint string
	View      string
	UploadID  string
	Kind      string // "" is PhotoScheduled
}

func (up PhotoUpload) concern() bool { return up.Kind == PhotoConcern }

// kind is the upload's kind as stored: PhotoScheduled or PhotoConcern.
func (up PhotoUpload) kind() string {
	if up.concern() {
		return PhotoConcern
	}
	return PhotoScheduled
}

// ValidUploadID reports whether s can serve as an upload_id: 8 to 64 letters, digits, - or _.
func ValidUploadID(s string) bool {
	if len(s) < 8 || len(s) > 64 {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
			return false
		}
	}
	return true
}

// PhotoByUploadID returns the photo an earlier try of this upload stored, if any, so a retry
// can be answered before its body is even read.
func (s *Service) PhotoByUploadID(ctx context.Context, a Actor, procedureID uuid.UUID, uploadID string) (Photo, bool, error) {
	if a.Kind != ActorParent {
		if err := a.requireClinical(); err != nil {
			return Photo{}, false, err
		}
	}
	clinic, only := procedureScope(a)
	if only != uuid.Nil && only != procedureID {
		return Photo{}, false, Errorf(ENOTFOUND, "procedure not found")
	}
	p, err := scanPhoto(s.pool.QueryRow(ctx, photoColumns+` where procedure_id = $1 and upload_id = $2 and clinic_id = $3`,
		procedureID, uploadID, clinic))
	if errors.Is(err, pgx.ErrNoRows) {
		return Photo{}, false, nil
	}
	if err != nil {
		return Photo{}, false, unavailable(err)
	}
	return p, true, nil
}

// AddPhoto sanitizes and stores one photo for a timepoint and view of a procedure. src holds
// the upload (a spool); it is read, never kept. The photo is acknowledged only once its object
// is durably stored and its row committed; a retry with the same upload_id returns the same
// photo (created is then false) and stores nothing new.
//
// ctx is the request's: it ends the checks before the photo is sanitized, but once the photo
// is received and found sound, storing it runs detached from the request (with its own
// deadlines): a phone that gives up during the store or the commit must not leave half a
// photo, and its retry then finds the photo stored.
func (s *Service) AddPhoto(ctx context.Context, a Actor, procedureID uuid.UUID, up PhotoUpload, src io.ReaderAt, size int64, lim imagestore.Limits) (photo Photo, created bool, err error) {
	defer func() { err = wrap(err, "add photo to procedure %s", procedureID) }()
	s.uploadActivity()
	defer s.uploadActivity()
	earlier, err := s.checkUpload(ctx, a, procedureID, up)
	if err != nil || earlier != nil {
		return deref(earlier), false, err
	}
	clean, err := imagestore.Sanitize(src, size, lim)
	if err != nil {
		return Photo{}, false, err
	}
	s.hook(hookSanitized)
	return s.storePhoto(context.WithoutCancel(ctx), a, procedureID, up, clean)
}

func deref(p *Photo) Photo {
	if p == nil {
		return Photo{}
	}
	return *p
}

// checkUpload checks that the actor may add this photo: one round trip reads an earlier try
// of the upload (returned, when there is one), the procedure and its schedule.
func (s *Service) checkUpload(ctx context.Context, a Actor, procedureID uuid.UUID, up PhotoUpload) (*Photo, error) {
	if a.Kind != ActorParent && !a.canSeeIdentified() {
		return nil, Errorf(EFORBIDDEN, "your role cannot upload photos")
	}
	if !ValidUploadID(up.UploadID) {
		return nil, invalidField("upload_id", "must be 8 to 64 letters, digits, - or _")
	}
	switch up.Kind {
	case "", PhotoScheduled:
	case PhotoConcern:
		if up.Timepoint != "" || up.View != "" {
			return nil, invalidField("timepoint", "a photo outside the schedule names no step and no view")
		}
	default:
		return nil, invalidField("kind", "must be scheduled or concern")
	}
	if err := inScope(a, procedureID); err != nil {
		return nil, err
	}
	clinic, _ := procedureScope(a)
	var earlier []Photo
	var proc Procedure
	var tps []Timepoint
	var quota photoUse
	b := &pgx.Batch{}
	queueRows(b, &earlier, scanPhotoRow, photoColumns+` where procedure_id = $1 and upload_id = $2 and clinic_id = $3`,
		procedureID, up.UploadID, clinic)
	queueProcedure(b, a, procedureID, &proc)
	s.queueSchedule(b, clinic, procedureID, &tps)
	queueQuota(b, a, procedureID, up.Timepoint, s.now(), &quota)
	if err := s.sendBatch(ctx, b); err != nil {
		return nil, err
	}
	if len(earlier) > 0 {
		return &earlier[0], nil
	}
	if err := quota.check(s.quota); err != nil {
		return nil, err
	}
	if proc.Status != StatusActive {
		return nil, Errorf(ECONFLICT, "This follow-up has ended; the clinic no longer takes photos for it.")
	}
	if up.concern() {
		return nil, nil
	}
	i := slices.IndexFunc(tps, func(t Timepoint) bool { return t.Key == up.Timepoint })
	if i < 0 {
		return nil, invalidField("timepoint", "this follow-up has no step %q", up.Timepoint)
	}
	if a.Kind == ActorParent && tps[i].Who == "clinic" {
		return nil, invalidField("timepoint", "the clinic takes the photos of step %s", up.Timepoint)
	}
	if !slices.Contains(tps[i].Views, up.View) {
		return nil, invalidField("view", "step %s asks for %v, not %q", up.Timepoint, tps[i].Views, up.View)
	}
	return nil, nil
}

// errTryAgain is the answer to an upload whose outcome this try cannot know or could not
// reach: the same upload_id, sent again, gets the photo if it was stored, or stores it.
var errTryAgain = Errorf(EUNAVAILABLE, "The photo could not be stored; please try again.")

// storePhoto stores a sanitized photo's object and commits its row. ctx is detached from the
// request; each step has its own deadline.
//
// The object's key is noted in pending_objects before the object is stored, and the note is
// removed in the transaction that commits the photo's row: whatever fails after the store took
// the bytes, the note says the object may be an orphan, and the sweeper removes it once no
// upload can still be in flight (package sweep). An object is removed right away only where
// its row certainly does not exist; never after a COMMIT whose answer was lost.
func (s *Service) storePhoto(ctx context.Context, a Actor, procedureID uuid.UUID, up PhotoUpload, clean *imagestore.Clean) (Photo, bool, error) {
	key := newObjectKey("photos")
	if err := s.notePending(ctx, key); err != nil {
		return Photo{}, false, err
	}
	h := sha256.New()
	pctx, cancel := context.WithTimeout(ctx, s.storeTimeout)
	err := s.store.Put(pctx, key, io.TeeReader(clean.NewReader(), h), clean.Size(), clean.Format.ContentType())
	cancel()
	if err != nil {
		// No object is visible now, but a store that stalled past the deadline may still
		// complete the PUT it was given: the note stays, and the sweeper removes whatever
		// lands once no upload can still be in flight.
		s.deleteObject(ctx, key)
		return Photo{}, false, &Error{Code: EUNAVAILABLE, Message: errTryAgain.Message, Err: err}
	}
	s.hook(hookStored)
	p := newPhoto(a, procedureID, up, clean, key, h.Sum(nil))
	created, err := s.insertPhoto(ctx, a, &p, clean)
	var unknown *commitUnknownError
	switch {
	case errors.As(err, &unknown):
		// The row may have been committed: look. What is not found stays noted for the sweeper.
		if got, ok, lerr := s.photoByUploadID(ctx, procedureID, up.UploadID); lerr == nil && ok && got.objectKey == key {
			s.nudgeThumbnailer()
			return got, true, nil
		}
		return Photo{}, false, &Error{Code: EUNAVAILABLE, Message: errTryAgain.Message, Err: err}
	case err != nil:
		s.discardObject(ctx, key) // rolled back: the row certainly does not exist
		return Photo{}, false, err
	case !created:
		s.discardObject(ctx, key) // a concurrent try of the same upload stored it first
		existing, ok, err := s.photoByUploadID(ctx, procedureID, up.UploadID)
		if err != nil || !ok {
			return Photo{}, false, errors.Join(errTryAgain, err)
		}
		return existing, false, nil
	}
	s.nudgeThumbnailer()
	return p, true, nil
}

// newPhoto is the row of a photo about to be committed.
func newPhoto(a Actor, procedureID uuid.UUID, up PhotoUpload, clean *imagestore.Clean, key string, sum []byte) Photo {
	meta := clean.Meta
	var captured *time.Time
	if !meta.TakenAt.IsZero() {
		captured = &meta.TakenAt
	}
	p := Photo{ProcedureID: procedureID, Timepoint: up.Timepoint, View: up.View, UploadID: up.UploadID, Kind: PhotoScheduled,
		ContentType: clean.Format.ContentType(), Size: clean.Size(), SHA256: hex.EncodeToString(sum),
		Width: meta.Width, Height: meta.Height, Orientation: max(1, meta.Orientation), CapturedAt: captured, CapturedOffset: meta.TakenAtHasOffset,
		Status: "active", ThumbnailState: ThumbnailPending, objectKey: key}
	if up.concern() {
		p.Kind = PhotoConcern
	}
	p.Source = "clinic"
	if a.Kind == ActorParent {
		p.Source = "family"
	}
	return p
}

// insertPhoto commits the photo's row, takes its object's pending note away and records the
// upload in the audit log, in one statement (one round trip: on the upload's critical path,
// each costs the family's phone its wait). created is false when a concurrent try of the same
// upload committed first; the note is then left for discardObject. A lost answer is a
// *commitUnknownError.
//
// The note is locked first (FOR UPDATE): a sweeper that holds it (the upload outlived its
// deadline, and the sweeper is removing the object) makes this wait and then find it gone,
// and the row is not written; one that comes later skips the locked note.
func (s *Service) insertPhoto(ctx context.Context, a Actor, p *Photo, clean *imagestore.Clean) (created bool, err error) {
	ctx, cancel := context.WithTimeout(ctx, s.rowTimeout)
	defer cancel()
	var linkID, uploader any
	if a.Kind == ActorParent {
		linkID = a.ID
	} else {
		uploader = a.ID
	}
	sum, _ := hex.DecodeString(p.SHA256)
	removed, _ := json.Marshal(removals(clean.Removed))
	meta := clean.Meta
	ev, err := auditValues(a, AuditEvent{Action: AuditPhotoUploaded, TargetKind: "photo",
		Detail: map[string]any{"procedure": p.ProcedureID, "kind": p.Kind, "timepoint": p.Timepoint, "view": p.View, "bytes": p.Size,
			"removed": removals(clean.Removed), "had_gps": meta.HadGPS, "had_serial": meta.HadSerial,
			"had_thumbnail": meta.HadThumbnail, "had_trailer": meta.HadTrailer}})
	if err != nil {
		return false, err
	}
	s.hook(hookInserting)
	var noted bool
	var id *uuid.UUID
	var received *time.Time
	err = s.pool.QueryRow(ctx, `with note as (select object_key from pending_objects where object_key = $6 for update),
		p as (insert into photos (clinic_id, procedure_id, timepoint_key, view, upload_id, object_key, content_type,
				size_bytes, sha256, width, height, orientation, captured_at, captured_offset, received_at, source, parent_link_id, uploaded_by,
				removed, kind)
			select $1::uuid, $2::uuid, nullif($3::text, ''), nullif($4::text, ''), $5::text, $6::text, $7::text, $8::bigint, $9::bytea,
				$10::int, $11::int, $12::smallint, $13::timestamptz, $27::boolean, $14::timestamptz, $15::text, $16::uuid, $17::uuid, $18::jsonb,
				$26::text
			where exists (select 1 from note)
			on conflict (procedure_id, upload_id) do nothing
			returning id, received_at),
		gone as (delete from pending_objects where object_key = $6 and exists (select 1 from p)),
		logged as (insert into audit_events (clinic_id, actor_kind, actor_id, action, target_kind, target_id, client_addr, detail)
			select $19::uuid, $20::text, $21::uuid, $22::text, $23::text, p.id, $24::inet, $25::jsonb from p)
		select exists (select 1 from note), (select id from p), (select received_at from p)`,
		a.ClinicID, p.ProcedureID, p.Timepoint, p.View, p.UploadID, p.objectKey, p.ContentType, p.Size, sum, p.Width, p.Height,
		p.Orientation, p.CapturedAt, s.now(), p.Source, linkID, uploader, removed,
		ev.clinic, ev.actorKind, ev.actor, ev.action, ev.targetKind, ev.addr, ev.detail, p.Kind, p.CapturedOffset).Scan(&noted, &id, &received)
	switch {
	case err != nil && pgCode(err) == "":
		// The statement, its own transaction, may have committed before its answer was lost.
		return false, &Error{Code: EUNAVAILABLE, Message: errTryAgain.Message, Err: &commitUnknownError{err}}
	case err != nil:
		return false, unavailable(err)
	case !noted:
		return false, &Error{Code: EUNAVAILABLE, Message: errTryAgain.Message, Err: errors.New("the object's pending note was swept")}
	case id == nil:
		return false, nil // a concurrent try of the same upload committed first
	}
	p.ID, p.ReceivedAt = *id, *received
	return true, nil
}

// photoByUploadID reads the photo an upload stored, if any, unscoped: for the write path,
// which has checked the actor already.
func (s *Service) photoByUploadID(ctx context.Context, procedureID uuid.UUID, uploadID string) (Photo, bool, error) {
	ctx, cancel := context.WithTimeout(ctx, s.rowTimeout)
	defer cancel()
	p, err := scanPhoto(s.pool.QueryRow(ctx, photoColumns+` where procedure_id = $1 and upload_id = $2`, procedureID, uploadID))
	if errors.Is(err, pgx.ErrNoRows) {
		return Photo{}, false, nil
	}
	if err != nil {
		return Photo{}, false, unavailable(err)
	}
	return p, true, nil
}

type removal struct {
	Kind  string `json:"kind"`
	Bytes int64  `json:"bytes"`
}

func removals(rs []imagestore.Removal) []removal {
	out := make([]removal, len(rs))
	for i, r := range rs {
		out[i] = removal{Kind: string(r.Kind), Bytes: r.Bytes}
	}
	return out
}

const photoColumns = `select id, procedure_id, coalesce(timepoint_key, ''), coalesce(view, ''), kind, message_id, upload_id, object_key, content_type, size_bytes, sha256,
	width, height, orientation, captured_at, coalesce(captured_offset, false), received_at, source, status, thumbnails_at is not null,
	unreadable_at is not null, quality from photos`

func scanPhotoRow(row pgx.CollectableRow) (Photo, error) { return scanPhoto(row) }

func scanPhoto(row pgx.Row) (Photo, error) {
	var p Photo
	var sum []byte
	var unreadable bool
	err := row.Scan(&p.ID, &p.ProcedureID, &p.Timepoint, &p.View, &p.Kind, &p.MessageID, &p.UploadID, &p.objectKey, &p.ContentType, &p.Size, &sum,
		&p.Width, &p.Height, &p.Orientation, &p.CapturedAt, &p.CapturedOffset, &p.ReceivedAt, &p.Source, &p.Status, &p.ThumbsReady, &unreadable,
		&p.Quality)
	p.SHA256 = hex.EncodeToString(sum)
	p.ThumbnailState = thumbnailState(p.ThumbsReady, unreadable)
	return p, err
}

func thumbnailState(ready, unreadable bool) string {
	switch {
	case ready:
		return ThumbnailReady
	case unreadable:
		return ThumbnailUnreadable
	}
	return ThumbnailPending
}
