package followup

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/dermfollow/dermfollow/imagestore"
)

// Photo is a stored, sanitized photo.
type Photo struct {
	ID          uuid.UUID  `json:"id"`
	ProcedureID uuid.UUID  `json:"procedure_id"`
	Timepoint   string     `json:"timepoint"`
	View        string     `json:"view"`
	UploadID    string     `json:"upload_id"`
	ContentType string     `json:"content_type"`
	Size        int64      `json:"size"`
	SHA256      string     `json:"sha256"`
	Width       int        `json:"width"`
	Height      int        `json:"height"`
	Orientation int        `json:"orientation"`
	CapturedAt  *time.Time `json:"captured_at,omitempty"`
	ReceivedAt  time.Time  `json:"received_at"`
	Source      string     `json:"source"`
	Status      string     `json:"status"`
	ThumbsReady bool       `json:"thumbnails_ready"`

	objectKey string
}

// PhotoUpload describes an upload: where it belongs and the client's idempotency key.
type PhotoUpload struct {
	Timepoint string
	View      string
	UploadID  string
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
// the upload (a spooled temp file); it is read, never kept. The photo is acknowledged only
// once its object is durably stored and its row committed; a retry with the same upload_id
// returns the same photo (created is then false) and stores nothing new.
func (s *Service) AddPhoto(ctx context.Context, a Actor, procedureID uuid.UUID, up PhotoUpload, src io.ReaderAt, size int64, lim imagestore.Limits) (photo Photo, created bool, err error) {
	defer func() { err = wrap(err, "add photo to procedure %s", procedureID) }()
	s.uploadActivity()
	defer s.uploadActivity()
	if a.Kind != ActorParent && !a.canSeeIdentified() {
		return Photo{}, false, Errorf(EFORBIDDEN, "your role cannot upload photos")
	}
	if !ValidUploadID(up.UploadID) {
		return Photo{}, false, invalidField("upload_id", "must be 8 to 64 letters, digits, - or _")
	}
	// An earlier try of this upload, the procedure and its schedule: one round trip.
	if err := inScope(a, procedureID); err != nil {
		return Photo{}, false, err
	}
	clinic, _ := procedureScope(a)
	var earlier []Photo
	var proc Procedure
	var tps []Timepoint
	b := &pgx.Batch{}
	queueRows(b, &earlier, scanPhotoRow, photoColumns+` where procedure_id = $1 and upload_id = $2 and clinic_id = $3`,
		procedureID, up.UploadID, clinic)
	queueProcedure(b, a, procedureID, &proc)
	s.queueSchedule(b, clinic, procedureID, &tps)
	if err := s.sendBatch(ctx, b); err != nil {
		return Photo{}, false, err
	}
	if len(earlier) > 0 {
		return earlier[0], false, nil
	}
	if proc.Status != StatusActive {
		return Photo{}, false, Errorf(ECONFLICT, "This follow-up has ended; the clinic no longer takes photos for it.")
	}
	i := slices.IndexFunc(tps, func(t Timepoint) bool { return t.Key == up.Timepoint })
	if i < 0 {
		return Photo{}, false, invalidField("timepoint", "this follow-up has no step %q", up.Timepoint)
	}
	if a.Kind == ActorParent && tps[i].Who == "clinic" {
		return Photo{}, false, invalidField("timepoint", "the clinic takes the photos of step %s", up.Timepoint)
	}
	if !slices.Contains(tps[i].Views, up.View) {
		return Photo{}, false, invalidField("view", "step %s asks for %v, not %q", up.Timepoint, tps[i].Views, up.View)
	}

	clean, err := imagestore.Sanitize(src, size, lim)
	if err != nil {
		return Photo{}, false, err
	}
	key := newObjectKey("photos")
	h := sha256.New()
	if err := s.store.Put(ctx, key, io.TeeReader(clean.NewReader(), h), clean.Size(), clean.Format.ContentType()); err != nil {
		return Photo{}, false, &Error{Code: EUNAVAILABLE, Message: "The photo could not be stored; please try again.", Err: err}
	}
	// From here an error must not leave the object behind: remove it now (the sweeper would,
	// later, if this removal fails too).
	defer func() {
		if err != nil || !created {
			if derr := s.store.Delete(context.WithoutCancel(ctx), key); derr != nil {
				s.log.Warn("photo object left for the sweeper", "error", derr.Error())
			}
		}
	}()

	meta := clean.Meta
	removed, _ := json.Marshal(removals(clean.Removed))
	var captured *time.Time
	if !meta.TakenAt.IsZero() {
		captured = &meta.TakenAt
	}
	p := Photo{ProcedureID: procedureID, Timepoint: up.Timepoint, View: up.View, UploadID: up.UploadID,
		ContentType: clean.Format.ContentType(), Size: clean.Size(), SHA256: hex.EncodeToString(h.Sum(nil)),
		Width: meta.Width, Height: meta.Height, Orientation: max(1, meta.Orientation), CapturedAt: captured,
		Status: "active", objectKey: key}
	var linkID, uploader any
	if a.Kind == ActorParent {
		p.Source, linkID = "family", a.ID
	} else {
		p.Source, uploader = "clinic", a.ID
	}
	sum, _ := hex.DecodeString(p.SHA256)
	err = s.inTx(ctx, func(tx pgx.Tx) error {
		err := tx.QueryRow(ctx, `insert into photos (clinic_id, procedure_id, timepoint_key, view, upload_id, object_key,
				content_type, size_bytes, sha256, width, height, orientation, captured_at, received_at, source, parent_link_id,
				uploaded_by, removed)
			values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18)
			on conflict (procedure_id, upload_id) do nothing
			returning id, received_at`,
			a.ClinicID, procedureID, p.Timepoint, p.View, p.UploadID, key, p.ContentType, p.Size, sum, p.Width, p.Height,
			p.Orientation, captured, s.now(), p.Source, linkID, uploader, removed).Scan(&p.ID, &p.ReceivedAt)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil // a concurrent try of the same upload won; answered below
		}
		if err != nil {
			return unavailable(err)
		}
		created = true
		return audit(ctx, tx, a, AuditEvent{Action: AuditPhotoUploaded, TargetKind: "photo", TargetID: p.ID,
			Detail: map[string]any{"procedure": procedureID, "timepoint": p.Timepoint, "view": p.View, "bytes": p.Size,
				"removed": removals(clean.Removed), "had_gps": meta.HadGPS, "had_serial": meta.HadSerial,
				"had_thumbnail": meta.HadThumbnail, "had_trailer": meta.HadTrailer}})
	})
	if err != nil {
		created = false
		return Photo{}, false, err
	}
	if !created {
		existing, ok, err := s.PhotoByUploadID(ctx, a, procedureID, up.UploadID)
		if err != nil || !ok {
			return Photo{}, false, errors.Join(Errorf(EUNAVAILABLE, "please try again"), err)
		}
		return existing, false, nil
	}
	s.nudgeThumbnailer()
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

// newObjectKey is random and carries nothing about the photo; the first byte shards it.
func newObjectKey(prefix string) string {
	b := make([]byte, 16)
	rand.Read(b)
	h := hex.EncodeToString(b)
	return fmt.Sprintf("%s/%s/%s", prefix, h[:2], h)
}

const photoColumns = `select id, procedure_id, timepoint_key, view, upload_id, object_key, content_type, size_bytes, sha256,
	width, height, orientation, captured_at, received_at, source, status, thumbnails_at is not null from photos`

func scanPhotoRow(row pgx.CollectableRow) (Photo, error) { return scanPhoto(row) }

func scanPhoto(row pgx.Row) (Photo, error) {
	var p Photo
	var sum []byte
	err := row.Scan(&p.ID, &p.ProcedureID, &p.Timepoint, &p.View, &p.UploadID, &p.objectKey, &p.ContentType, &p.Size, &sum,
		&p.Width, &p.Height, &p.Orientation, &p.CapturedAt, &p.ReceivedAt, &p.Source, &p.Status, &p.ThumbsReady)
	p.SHA256 = hex.EncodeToString(sum)
	return p, err
}

// Photo variants that can be fetched.
const (
	VariantOriginal = "original"
	VariantSmall    = "small"
	VariantLarge    = "large"
)

// OpenPhoto returns the bytes of a photo (the sanitized original or a thumbnail) that the
// actor may see, and records the view in the audit log. Clinic users see their clinic's
// photos; a parent sees the thumbnails of its own procedure; researchers see none.
func (s *Service) OpenPhoto(ctx context.Context, a Actor, id uuid.UUID, variant string) (io.ReadCloser, Photo, error) {
	if a.Kind == ActorParent {
		if variant == VariantOriginal {
			return nil, Photo{}, Errorf(ENOTFOUND, "photo not found")
		}
	} else if err := a.requireClinical(); err != nil {
		return nil, Photo{}, err
	}
	clinic, only := procedureScope(a)
	p, err := scanPhoto(s.pool.QueryRow(ctx, photoColumns+` where id = $1 and clinic_id = $2`, id, clinic))
	if err != nil {
		return nil, Photo{}, notFound(err, "photo")
	}
	if only != uuid.Nil && p.ProcedureID != only {
		return nil, Photo{}, Errorf(ENOTFOUND, "photo not found")
	}
	key := p.objectKey
	if variant != VariantOriginal {
		i := slices.IndexFunc(imagestore.ThumbSizes(), func(t imagestore.ThumbSize) bool { return t.Name == variant })
		if i < 0 {
			return nil, Photo{}, invalidField("variant", "must be original, small or large")
		}
		if !p.ThumbsReady {
			return nil, Photo{}, Errorf(EUNAVAILABLE, "The thumbnail is being prepared; try again in a moment.")
		}
		key = imagestore.ThumbKey(p.SHA256, imagestore.ThumbSizes()[i])
	}
	if a.Kind == ActorUser {
		err := s.inTx(ctx, func(tx pgx.Tx) error {
			return audit(ctx, tx, a, AuditEvent{Action: AuditPhotoViewed, TargetKind: "photo", TargetID: p.ID,
				Detail: map[string]any{"variant": variant}})
		})
		if err != nil {
			return nil, Photo{}, err
		}
	}
	r, _, err := s.store.Open(ctx, key)
	if err != nil {
		if errors.Is(err, imagestore.ErrNotExist) && variant != VariantOriginal {
			// The thumbnail vanished (a store restored from an older backup): make it again.
			s.pool.Exec(ctx, `update photos set thumbnails_at = null where id = $1`, p.ID)
			s.nudgeThumbnailer()
			return nil, Photo{}, Errorf(EUNAVAILABLE, "The thumbnail is being prepared; try again in a moment.")
		}
		return nil, Photo{}, &Error{Code: EUNAVAILABLE, Message: "The photo store is unavailable; please try again.", Err: err}
	}
	if variant != VariantOriginal {
		p.ContentType = "image/jpeg"
	}
	return r, p, nil
}
