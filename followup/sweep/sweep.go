// Package sweep removes from the object store what no row accounts for, so that a failed
// upload leaves nothing behind: Pending follows the notes in pending_objects that the core (a
// photo's upload, an export's archive) and package staging (a resumable upload's segments)
// write before they store an object, and removes the objects whose note outlived its grace,
// with their multipart parts; Orphans is the full reconciliation that lists the bucket, for
// objects no note points at. It owns no table: it deletes the notes it has followed.
//
// From the core (package followup) it uses the store; the grace that suits the notes is the
// core's PendingGrace. It is tested where the objects it sweeps are made: the thumbnails'
// (TestThumbnailsAndSweep), the staged segments' (TestExpiredStagedUploadIsSwept), the
// export's archives' and, through faults of the store, web's uploads'.
//
//	sw, err := sweep.New(sweep.Config{Core: core, Pool: pool})
//	n, err := sw.Pending(ctx, core.PendingGrace()) // every PendingGrace, on any server
//	n, err = sw.Orphans(ctx, 24*time.Hour)          // once a day
package sweep

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/dermfollow/dermfollow/followup"
	"github.com/dermfollow/dermfollow/imagestore"
)

// Config holds a Sweeper's dependencies.
type Config struct {
	// Core is the follow-up core whose store is swept.
	Core *followup.Service
	Pool *pgxpool.Pool
}

// Sweeper removes the objects of failed uploads and the store's orphans, on the core's clock.
type Sweeper struct {
	pool  *pgxpool.Pool
	store imagestore.Store
	now   func() time.Time
}

// New returns a Sweeper.
func New(cfg Config) (*Sweeper, error) {
	if cfg.Core == nil || cfg.Pool == nil {
		return nil, errors.New("sweep: Core and Pool are required")
	}
	return &Sweeper{pool: cfg.Pool, store: cfg.Core.Store(), now: cfg.Core.Now}, nil
}

func wrap(err error, format string, args ...any) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("sweep: "+format+": %w", append(args, err)...)
}

// incompleteUploads is a store that keeps the parts of objects streamed but never finished
// (S3's multipart uploads); the local directory cleans its own temp files.
type incompleteUploads interface {
	AbortIncompleteUpload(ctx context.Context, key string) error
}

// Pending removes the objects of uploads that failed after noting them in
// pending_objects (the store or the database failed, the process died) and are older than
// grace, and their notes. Its work follows the uploads that failed, not the objects stored.
// A note whose photo is being committed is locked by that transaction and skipped.
func (sw *Sweeper) Pending(ctx context.Context, grace time.Duration) (int, error) {
	swept := 0
	for {
		n, err := sw.pendingBatch(ctx, grace, 200)
		swept += n
		if err != nil || n < 200 {
			return swept, wrap(err, "pending objects")
		}
	}
}

func (sw *Sweeper) pendingBatch(ctx context.Context, grace time.Duration, limit int) (int, error) {
	n := 0
	err := followup.WithTx(ctx, sw.pool, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `select object_key from pending_objects
			where created_at < now() - make_interval(secs => $1) order by created_at limit $2 for update skip locked`,
			grace.Seconds(), limit)
		if err != nil {
			return followup.Unavailable(err)
		}
		keys, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			return followup.Unavailable(err)
		}
		iu, _ := sw.store.(incompleteUploads)
		for _, k := range keys {
			if err := sw.store.Delete(ctx, k); err != nil {
				return err
			}
			if iu != nil { // an archive's parts, if its run died while storing it
				if err := iu.AbortIncompleteUpload(ctx, k); err != nil {
					return err
				}
			}
		}
		if _, err := tx.Exec(ctx, `delete from pending_objects where object_key = any($1)`, keys); err != nil {
			return followup.Unavailable(err)
		}
		n = len(keys)
		return nil
	})
	return n, err
}

// Orphans is the full reconciliation of the store against the database, for objects that
// no note in pending_objects points at (left by versions before the notes, or restored from a
// backup): photo objects without a row and older than grace, and thumbnails of content no
// photo has. It lists the bucket, so it runs rarely; it asks the database about 500 keys at a
// time.
func (sw *Sweeper) Orphans(ctx context.Context, grace time.Duration) (int, error) {
	cutoff := sw.now().Add(-grace)
	swept := 0
	photos := orphanBatch{sw: sw, query: `select k from unnest($1::text[]) k
		where not exists (select 1 from photos where object_key = k)
		and not exists (select 1 from pending_objects where object_key = k)`}
	thumbs := orphanBatch{sw: sw, query: `select k from unnest($1::text[]) k
		where not exists (select 1 from photos where sha256 = decode(substr(k, 8, 64), 'hex'))`}
	for _, b := range []struct {
		prefix string
		batch  *orphanBatch
	}{{"photos/", &photos}, {"thumbs/", &thumbs}} {
		err := sw.store.List(ctx, b.prefix, func(o imagestore.ObjectInfo) error {
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
			return swept, wrap(err, "%s", b.prefix)
		}
	}
	return swept, nil
}

// orphanBatch collects listed keys and deletes those the query returns (the orphans), 500 at a
// time.
type orphanBatch struct {
	sw    *Sweeper
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
	rows, err := b.sw.pool.Query(ctx, b.query, b.keys)
	if err != nil {
		return followup.Unavailable(err)
	}
	orphans, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return followup.Unavailable(err)
	}
	for _, k := range orphans {
		if err := b.sw.store.Delete(ctx, k); err != nil {
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
