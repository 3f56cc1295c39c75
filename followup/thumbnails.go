package followup

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"strings"
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

// thumbnailQueue is the predicate of the photos the thumbnailer still has to make, given the
// time as $1: without thumbnails, not given up on, and not waiting for a retry.
const thumbnailQueue = `thumbnails_at is null and unreadable_at is null
	and (thumbnail_retry_at is null or thumbnail_retry_at <= $1)`

// A photo whose thumbnails fail is tried thumbnailAttempts times, waiting thumbnailBackoff
// times the number of failures so far between tries, and is then unreadable. The failures that
// count are the photo's own (its bytes do not decode, exceed the decode budget, or its object
// is missing); a store or database that cannot be reached stops the batch instead, and counts
// against no photo.
const (
	thumbnailAttempts = 3
	thumbnailBackoff  = time.Minute
)

// thumbnailTurn waits until the thumbnail worker may start a photo (see thumbnailQuiet). It
// returns false when ctx ends first.
func (s *Service) thumbnailTurn(ctx context.Context) bool {
	for {
		idle := time.Since(time.Unix(0, s.lastUpload.Load()))
		if idle >= thumbnailQuiet {
			return true
		}
		var oldest *time.Time
		err := s.pool.QueryRow(ctx, `select min(received_at) from photos where `+thumbnailQueue, s.now()).Scan(&oldest)
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
			claimed, _, err := s.makeOneThumbnail(ctx)
			if err != nil && ctx.Err() == nil {
				s.log.Warn("thumbnails", "error", err.Error())
			}
			if !claimed || err != nil {
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

// MakeThumbnails works on up to limit photos that lack thumbnails and returns how many it made
// them for; a photo whose thumbnails fail is recorded (see thumbnailAttempts) and passed by.
// Decoding is the slow part (about a quarter second for 12 MP), which is why it happens here,
// off the request path.
func (s *Service) MakeThumbnails(ctx context.Context, limit int) (int, error) {
	done := 0
	for range limit {
		claimed, made, err := s.makeOneThumbnail(ctx)
		if err != nil || !claimed {
			return done, err
		}
		if made {
			done++
		}
	}
	return done, nil
}

// makeOneThumbnail claims the oldest photo in the queue and makes its thumbnails, or records
// why it could not. claimed is false when the queue is empty.
func (s *Service) makeOneThumbnail(ctx context.Context) (claimed, made bool, err error) {
	err = s.inTx(ctx, func(tx pgx.Tx) error {
		var id uuid.UUID
		var key string
		var sum []byte
		var orientation, attempts int
		err := tx.QueryRow(ctx, `select id, object_key, sha256, orientation, thumbnail_attempts from photos
			where `+thumbnailQueue+` order by received_at limit 1 for update skip locked`, s.now()).
			Scan(&id, &key, &sum, &orientation, &attempts)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil
		}
		if err != nil {
			return unavailable(err)
		}
		claimed = true
		quality, werr := s.writeThumbnails(ctx, key, sum, orientation)
		var pf photoFault
		switch {
		case errors.As(werr, &pf):
			return s.recordThumbnailFailure(ctx, tx, id, attempts+1, pf.err)
		case werr != nil:
			return wrap(werr, "thumbnails of photo %s", id)
		}
		if _, err := tx.Exec(ctx, `update photos set thumbnails_at = now(), thumbnail_error = null, thumbnail_retry_at = null,
			quality = $2 where id = $1`, id, quality); err != nil {
			return unavailable(err)
		}
		made = true
		return nil
	})
	return claimed, made, err
}

// recordThumbnailFailure notes a failed attempt at a photo's thumbnails, and gives up on the
// photo at the last one.
func (s *Service) recordThumbnailFailure(ctx context.Context, tx pgx.Tx, id uuid.UUID, attempt int, cause error) error {
	msg := cause.Error()
	if len(msg) > 500 {
		msg = msg[:500]
	}
	msg = strings.ToValidUTF8(msg, "?")
	var retryAt, unreadableAt *time.Time
	now := s.now()
	if attempt >= thumbnailAttempts {
		unreadableAt = &now
		s.log.Warn("thumbnails: photo is unreadable", "photo", id.String(), "attempts", attempt, "error", msg)
	} else {
		t := now.Add(time.Duration(attempt) * thumbnailBackoff)
		retryAt = &t
		s.log.Info("thumbnails: photo failed, will try again", "photo", id.String(), "attempt", attempt, "error", msg)
	}
	_, err := tx.Exec(ctx, `update photos set thumbnail_attempts = $2, thumbnail_error = $3, thumbnail_retry_at = $4,
		unreadable_at = $5 where id = $1`, id, attempt, msg, retryAt, unreadableAt)
	return unavailable(err)
}

// photoFault is a failure of one photo's own bytes (or of its object's absence), as opposed to
// the store or the database failing.
type photoFault struct{ err error }

func (f photoFault) Error() string { return f.err.Error() }
func (f photoFault) Unwrap() error { return f.err }

// writeThumbnails makes and stores a photo's thumbnails and returns its quality, measured from
// the same decode.
func (s *Service) writeThumbnails(ctx context.Context, key string, sum []byte, orientation int) (imagestore.Quality, error) {
	r, info, err := s.store.Open(ctx, key)
	if errors.Is(err, imagestore.ErrNotExist) {
		return imagestore.Quality{}, photoFault{err}
	}
	if err != nil {
		return imagestore.Quality{}, err
	}
	defer r.Close()
	// The decode waits for room in the process's decode budget and is refused beyond its
	// ceiling, both judged from the header before any pixel is decoded.
	thumbs, quality, err := s.decodeBudget.ThumbnailsAndQuality(ctx, r, info.Size, orientation, imagestore.ThumbSizes(), imagestore.Limits{})
	var reject *imagestore.RejectError
	if errors.As(err, &reject) {
		return imagestore.Quality{}, photoFault{err} // the photo's own bytes: the same every time
	}
	if err != nil {
		return imagestore.Quality{}, err // the store failed mid-read, or ctx ended while waiting for the budget
	}
	hexsum := hex.EncodeToString(sum)
	for _, t := range thumbs {
		pctx, cancel := context.WithTimeout(ctx, s.storeTimeout)
		err := s.store.Put(pctx, imagestore.ThumbKey(hexsum, t.Size), bytes.NewReader(t.JPEG), int64(len(t.JPEG)), "image/jpeg")
		cancel()
		if err != nil {
			return imagestore.Quality{}, err
		}
	}
	return quality, nil
}

// PendingGrace is how long an object may stay noted in pending_objects before it is taken for
// an orphan: longer than any upload can still be on its way (the store's deadline and the
// statements' around it), with as much again for a margin. An export's archive keeps its note
// fresh while its run lives. With the default StoreTimeout, 3.5 minutes.
func (s *Service) PendingGrace() time.Duration { return 2 * (s.storeTimeout + 3*s.rowTimeout) }

// incompleteUploads is a store that keeps the parts of objects streamed but never finished
// (S3's multipart uploads); the local directory cleans its own temp files.
type incompleteUploads interface {
	AbortIncompleteUpload(ctx context.Context, key string) error
}

// SweepPending removes the objects of uploads that failed after noting them in
// pending_objects (the store or the database failed, the process died) and are older than
// grace, and their notes. Its work follows the uploads that failed, not the objects stored.
// A note whose photo is being committed is locked by that transaction and skipped.
func (s *Service) SweepPending(ctx context.Context, grace time.Duration) (int, error) {
	swept := 0
	for {
		n, err := s.sweepPendingBatch(ctx, grace, 200)
		swept += n
		if err != nil || n < 200 {
			return swept, wrap(err, "sweep pending objects")
		}
	}
}

func (s *Service) sweepPendingBatch(ctx context.Context, grace time.Duration, limit int) (int, error) {
	n := 0
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `select object_key from pending_objects
			where created_at < now() - make_interval(secs => $1) order by created_at limit $2 for update skip locked`,
			grace.Seconds(), limit)
		if err != nil {
			return unavailable(err)
		}
		keys, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			return unavailable(err)
		}
		iu, _ := s.store.(incompleteUploads)
		for _, k := range keys {
			if err := s.store.Delete(ctx, k); err != nil {
				return err
			}
			if iu != nil { // an archive's parts, if its run died while storing it
				if err := iu.AbortIncompleteUpload(ctx, k); err != nil {
					return err
				}
			}
		}
		if _, err := tx.Exec(ctx, `delete from pending_objects where object_key = any($1)`, keys); err != nil {
			return unavailable(err)
		}
		n = len(keys)
		return nil
	})
	return n, err
}

// SweepOrphans is the full reconciliation of the store against the database, for objects that
// no note in pending_objects points at (left by versions before the notes, or restored from a
// backup): photo objects without a row and older than grace, and thumbnails of content no
// photo has. It lists the bucket, so it runs rarely; it asks the database about 500 keys at a
// time.
func (s *Service) SweepOrphans(ctx context.Context, grace time.Duration) (int, error) {
	cutoff := s.now().Add(-grace)
	swept := 0
	photos := orphanBatch{s: s, query: `select k from unnest($1::text[]) k
		where not exists (select 1 from photos where object_key = k)
		and not exists (select 1 from pending_objects where object_key = k)`}
	thumbs := orphanBatch{s: s, query: `select k from unnest($1::text[]) k
		where not exists (select 1 from photos where sha256 = decode(substr(k, 8, 64), 'hex'))`}
	for _, b := range []struct {
		prefix string
		batch  *orphanBatch
	}{{"photos/", &photos}, {"thumbs/", &thumbs}} {
		err := s.store.List(ctx, b.prefix, func(o imagestore.ObjectInfo) error {
			if o.Modified.After(cutoff) || (b.prefix == "thumbs/" && thumbHash(o.Key) == nil) {
				return nil
			}
			return b.batch.add(ctx, o.Key)
		})
		if err == nil {
			err = b.batch.flush(ctx)
		}
		swept += b.batch.swept
		if err != nil {
			return swept, wrap(err, "sweep %s", b.prefix)
		}
	}
	return swept, nil
}

// orphanBatch collects listed keys and deletes those the query returns (the orphans), 500 at a
// time.
type orphanBatch struct {
	s     *Service
	query string
	keys  []string
	swept int
}

func (b *orphanBatch) add(ctx context.Context, key string) error {
	b.keys = append(b.keys, key)
	if len(b.keys) == 500 {
		return b.flush(ctx)
	}
	return nil
}

func (b *orphanBatch) flush(ctx context.Context) error {
	if len(b.keys) == 0 {
		return nil
	}
	rows, err := b.s.pool.Query(ctx, b.query, b.keys)
	if err != nil {
		return unavailable(err)
	}
	orphans, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return unavailable(err)
	}
	for _, k := range orphans {
		if err := b.s.store.Delete(ctx, k); err != nil {
			return err
		}
		b.swept++
	}
	b.keys = b.keys[:0]
	return nil
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
