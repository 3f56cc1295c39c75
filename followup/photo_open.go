package followup

import (
	"context"
	"errors"
	"io"
	"slices"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/dermfollow/dermfollow/imagestore"
)

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
		switch p.ThumbnailState {
		case ThumbnailUnreadable:
			return nil, Photo{}, Errorf(ENOTFOUND, "No thumbnail can be made of this photo: its image data cannot be read. The original can still be downloaded.")
		case ThumbnailPending:
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
		return nil, Photo{}, StoreUnavailable(err)
	}
	if variant != VariantOriginal {
		p.ContentType = "image/jpeg"
	}
	return r, p, nil
}
