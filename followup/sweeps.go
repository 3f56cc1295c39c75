package followup

import (
	"context"
	"encoding/hex"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/dermfollow/dermfollow/imagestore"
)

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
