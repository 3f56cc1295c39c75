package followup

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/dermfollow/dermfollow/imagestore"
)

// nudgeThumbnailer wakes the thumbnail worker of this process without blocking.
func (s *Service) nudgeThumbnailer() {
	select {
	case s.thumbNudge <- struct{}{}:
	default:
	}
}

// Uploads come before thumbnails. Decoding a photo for its thumbnails costs ten to twenty
// times the CPU of taking the upload (sniffing, sanitizing, hashing and storing it), so a
// thumbnailer that ran beside a burst of uploads took most of the CPU the uploads were waiting
// for, and the families' phones waited longer for their 201. The worker therefore starts a
// photo only once no upload has been worked on for thumbnailQuiet, or once the oldest photo
// without thumbnails has waited thumbnailMaxLag: a long burst delays thumbnails by at most
// that, and they catch up after it.
const (
	thumbnailQuiet  = 500 * time.Millisecond
	thumbnailMaxLag = 30 * time.Second
)

// uploadActivity records that this process is working on an upload.
func (s *Service) uploadActivity() { s.lastUpload.Store(time.Now().UnixNano()) }

// thumbnailTurn waits until the thumbnail worker may start a photo (see thumbnailQuiet). It
// returns false when ctx ends first.
func (s *Service) thumbnailTurn(ctx context.Context) bool {
	for {
		idle := time.Since(time.Unix(0, s.lastUpload.Load()))
		if idle >= thumbnailQuiet {
			return true
		}
		var oldest *time.Time
		err := s.pool.QueryRow(ctx, `select min(received_at) from photos where thumbnails_at is null`).Scan(&oldest)
		if err != nil || oldest == nil || s.now().Sub(*oldest) >= thumbnailMaxLag {
			return ctx.Err() == nil // nothing pending, or overdue; errors surface in MakeThumbnails
		}
		select {
		case <-ctx.Done():
			return false
		case <-time.After(thumbnailQuiet - idle):
		}
	}
}

// RunThumbnailer makes missing thumbnails until ctx ends: right after an upload in this
// process (once uploads pause, see thumbnailQuiet), and every interval for photos that any
// process left without (it died half-way, the store was down). Several servers may run it:
// each photo is claimed with SKIP LOCKED.
func (s *Service) RunThumbnailer(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		for s.thumbnailTurn(ctx) {
			n, err := s.MakeThumbnails(ctx, 1)
			if err != nil && ctx.Err() == nil {
				s.log.Warn("thumbnails", "error", err.Error())
			}
			if n == 0 || err != nil {
				break
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-s.thumbNudge:
		}
	}
}

// MakeThumbnails makes the thumbnails of up to limit photos that lack them and returns how
// many it made. Decoding is the slow part (about a quarter second for 12 MP), which is why it
// happens here, off the request path.
func (s *Service) MakeThumbnails(ctx context.Context, limit int) (int, error) {
	done := 0
	for done < limit {
		made, err := s.makeOneThumbnail(ctx)
		if err != nil || !made {
			return done, err
		}
		done++
	}
	return done, nil
}

func (s *Service) makeOneThumbnail(ctx context.Context) (bool, error) {
	made := false
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		var id uuid.UUID
		var key string
		var sum []byte
		var orientation int
		err := tx.QueryRow(ctx, `select id, object_key, sha256, orientation from photos
			where thumbnails_at is null order by received_at limit 1 for update skip locked`).Scan(&id, &key, &sum, &orientation)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil
		}
		if err != nil {
			return unavailable(err)
		}
		if err := s.writeThumbnails(ctx, key, sum, orientation); err != nil {
			return wrap(err, "thumbnails of photo %s", id)
		}
		if _, err := tx.Exec(ctx, `update photos set thumbnails_at = now() where id = $1`, id); err != nil {
			return unavailable(err)
		}
		made = true
		return nil
	})
	return made, err
}

func (s *Service) writeThumbnails(ctx context.Context, key string, sum []byte, orientation int) error {
	r, _, err := s.store.Open(ctx, key)
	if err != nil {
		return err
	}
	defer r.Close()
	thumbs, err := imagestore.Thumbnails(r, orientation, imagestore.ThumbSizes(), imagestore.Limits{})
	if err != nil {
		return err
	}
	hexsum := hex.EncodeToString(sum)
	for _, t := range thumbs {
		if err := s.store.Put(ctx, imagestore.ThumbKey(hexsum, t.Size), bytes.NewReader(t.JPEG), int64(len(t.JPEG)), "image/jpeg"); err != nil {
			return err
		}
	}
	return nil
}

// SweepOrphans deletes photo objects that have no row and are older than grace, and
// thumbnails of content no photo has. Such objects are left by uploads that failed after the
// store took the bytes (the database was down, the process died). The grace period keeps the
// sweeper away from uploads in flight, whose rows are about to be committed.
func (s *Service) SweepOrphans(ctx context.Context, grace time.Duration) (int, error) {
	cutoff := s.now().Add(-grace)
	var batch []string
	swept := 0
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		rows, err := s.pool.Query(ctx, `select k from unnest($1::text[]) k where not exists (select 1 from photos where object_key = k)`, batch)
		if err != nil {
			return unavailable(err)
		}
		orphans, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			return unavailable(err)
		}
		for _, k := range orphans {
			if err := s.store.Delete(ctx, k); err != nil {
				return err
			}
			swept++
		}
		batch = batch[:0]
		return nil
	}
	err := s.store.List(ctx, "photos/", func(o imagestore.ObjectInfo) error {
		if o.Modified.After(cutoff) {
			return nil
		}
		batch = append(batch, o.Key)
		if len(batch) == 500 {
			return flush()
		}
		return nil
	})
	if err == nil {
		err = flush()
	}
	if err != nil {
		return swept, wrap(err, "sweep photos")
	}

	// Thumbnails are keyed by content hash: keep them while any photo has that content.
	err = s.store.List(ctx, "thumbs/", func(o imagestore.ObjectInfo) error {
		if o.Modified.After(cutoff) {
			return nil
		}
		sum := thumbHash(o.Key)
		if sum == nil {
			return nil
		}
		var exists bool
		if err := s.pool.QueryRow(ctx, `select exists (select 1 from photos where sha256 = $1)`, sum).Scan(&exists); err != nil {
			return unavailable(err)
		}
		if !exists {
			if err := s.store.Delete(ctx, o.Key); err != nil {
				return err
			}
			swept++
		}
		return nil
	})
	return swept, wrap(err, "sweep thumbnails")
}

// thumbHash extracts the content hash from a thumbnail key ("thumbs/<hex>/<size>.jpg").
func thumbHash(key string) []byte {
	const prefix = "thumbs/"
	if len(key) < len(prefix)+64 {
		return nil
	}
	out, err := hex.DecodeString(key[len(prefix) : len(prefix)+64])
	if err != nil {
		return nil
	}
	return out
}
