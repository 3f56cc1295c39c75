// Package thumbnails makes the thumbnails of stored photos, off the request path: a worker in
// each server (Run) claims the photos without thumbnails one at a time, decodes each within
// the process's decode budget, stores its thumbnails (keys from the content hash, see
// imagestore.ThumbKey) and records its capture quality from the same decode. A photo whose
// thumbnails cannot be made is recorded (attempts, last error) and, after its retries, marked
// unreadable; it never holds up the others. It owns the thumbnail columns of the photos table.
//
// From the core (package followup) it uses the photo store, the signal that this process has
// given it work (ThumbnailsDue), how long ago this process last worked on an upload
// (SinceUpload: uploads get the CPU first) and the store's deadline (StoreTimeout).
//
//	th, err := thumbnails.New(thumbnails.Config{Core: core, Pool: pool, Logger: log})
//	go th.Run(ctx, 30*time.Second) // on any number of servers
package thumbnails

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/dermfollow/dermfollow/followup"
	"github.com/dermfollow/dermfollow/imagestore"
)

// Config holds a Thumbnailer's dependencies.
type Config struct {
	// Core is the follow-up core whose photos get thumbnails.
	Core *followup.Service
	Pool *pgxpool.Pool
	// Logger as the core's. The clock is the core's (Core.Now): photos are received by it.
	Logger *slog.Logger
}

// Thumbnailer makes the thumbnails of the photos that lack them.
type Thumbnailer struct {
	core  *followup.Service
	pool  *pgxpool.Pool
	store imagestore.Store
	log   *slog.Logger
	now   func() time.Time
	// decodeBudget bounds the memory the decodes hold at once: the process's, shared with
	// every other decode.
	decodeBudget *imagestore.DecodeBudget
}

// New returns a Thumbnailer.
func New(cfg Config) (*Thumbnailer, error) {
	if cfg.Core == nil || cfg.Pool == nil {
		return nil, errors.New("thumbnails: Core and Pool are required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &Thumbnailer{core: cfg.Core, pool: cfg.Pool, store: cfg.Core.Store(), log: cfg.Logger, now: cfg.Core.Now,
		decodeBudget: imagestore.DefaultDecodeBudget()}, nil
}

func wrap(err error, format string, args ...any) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("thumbnails: "+format+": %w", append(args, err)...)
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
func (th *Thumbnailer) thumbnailTurn(ctx context.Context) bool {
	for {
		idle := th.core.SinceUpload()
		if idle >= thumbnailQuiet {
			return true
		}
		var oldest *time.Time
		err := th.pool.QueryRow(ctx, `select min(received_at) from photos where `+thumbnailQueue, th.now()).Scan(&oldest)
		if err != nil || oldest == nil || th.now().Sub(*oldest) >= thumbnailMaxLag {
			return ctx.Err() == nil // nothing pending, or overdue; errors surface in Make
		}
		select {
		case <-ctx.Done():
			return false
		case <-time.After(thumbnailQuiet - idle):
		}
	}
}

// Run makes missing thumbnails until ctx ends: right after an upload in this process (once
// uploads pause, see thumbnailQuiet), and every interval for photos that any process left
// without (it died half-way, the store was down). Several servers may run it: each photo is
// claimed with SKIP LOCKED. One Run a process: it takes the core's ThumbnailsDue signals.
func (th *Thumbnailer) Run(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		for th.thumbnailTurn(ctx) {
			claimed, _, err := th.makeOne(ctx)
			if err != nil && ctx.Err() == nil {
				th.log.Warn("thumbnails", "error", err.Error())
			}
			if !claimed || err != nil {
				break
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-th.core.ThumbnailsDue():
		}
	}
}

// Make works on up to limit photos that lack thumbnails and returns how many it made them
// for; a photo whose thumbnails fail is recorded (see thumbnailAttempts) and passed by.
// Decoding is the slow part (about a quarter second for 12 MP), which is why it happens here,
// off the request path.
func (th *Thumbnailer) Make(ctx context.Context, limit int) (int, error) {
	done := 0
	for range limit {
		claimed, made, err := th.makeOne(ctx)
		if err != nil || !claimed {
			return done, err
		}
		if made {
			done++
		}
	}
	return done, nil
}

// makeOne claims the oldest photo in the queue and makes its thumbnails, or records why it
// could not. claimed is false when the queue is empty.
func (th *Thumbnailer) makeOne(ctx context.Context) (claimed, made bool, err error) {
	err = followup.WithTx(ctx, th.pool, func(tx pgx.Tx) error {
		var id uuid.UUID
		var key string
		var sum []byte
		var orientation, attempts int
		err := tx.QueryRow(ctx, `select id, object_key, sha256, orientation, thumbnail_attempts from photos
			where `+thumbnailQueue+` order by received_at limit 1 for update skip locked`, th.now()).
			Scan(&id, &key, &sum, &orientation, &attempts)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil
		}
		if err != nil {
			return followup.Unavailable(err)
		}
		claimed = true
		quality, werr := th.write(ctx, key, sum, orientation)
		var pf photoFault
		switch {
		case errors.As(werr, &pf):
			return th.recordFailure(ctx, tx, id, attempts+1, pf.err)
		case werr != nil:
			return wrap(werr, "photo %s", id)
		}
		if _, err := tx.Exec(ctx, `update photos set thumbnails_at = now(), thumbnail_error = null, thumbnail_retry_at = null,
			quality = $2 where id = $1`, id, quality); err != nil {
			return followup.Unavailable(err)
		}
		made = true
		return nil
	})
	return claimed, made, err
}

// recordFailure notes a failed attempt at a photo's thumbnails, and gives up on the photo at
// the last one.
func (th *Thumbnailer) recordFailure(ctx context.Context, tx pgx.Tx, id uuid.UUID, attempt int, cause error) error {
	msg := cause.Error()
	if len(msg) > 500 {
		msg = msg[:500]
	}
	msg = strings.ToValidUTF8(msg, "?")
	var retryAt, unreadableAt *time.Time
	now := th.now()
	if attempt >= thumbnailAttempts {
		unreadableAt = &now
		th.log.Warn("thumbnails: photo is unreadable", "photo", id.String(), "attempts", attempt, "error", msg)
	} else {
		t := now.Add(time.Duration(attempt) * thumbnailBackoff)
		retryAt = &t
		th.log.Info("thumbnails: photo failed, will try again", "photo", id.String(), "attempt", attempt, "error", msg)
	}
	_, err := tx.Exec(ctx, `update photos set thumbnail_attempts = $2, thumbnail_error = $3, thumbnail_retry_at = $4,
		unreadable_at = $5 where id = $1`, id, attempt, msg, retryAt, unreadableAt)
	return followup.Unavailable(err)
}

// photoFault is a failure of one photo's own bytes (or of its object's absence), as opposed to
// the store or the database failing.
type photoFault struct{ err error }

func (f photoFault) Error() string { return f.err.Error() }
func (f photoFault) Unwrap() error { return f.err }

// write makes and stores a photo's thumbnails and returns its quality, measured from the same
// decode.
func (th *Thumbnailer) write(ctx context.Context, key string, sum []byte, orientation int) (imagestore.Quality, error) {
	r, info, err := th.store.Open(ctx, key)
	if errors.Is(err, imagestore.ErrNotExist) {
		return imagestore.Quality{}, photoFault{err}
	}
	if err != nil {
		return imagestore.Quality{}, err
	}
	defer r.Close()
	// The decode waits for room in the process's decode budget and is refused beyond its
	// ceiling, both judged from the header before any pixel is decoded.
	thumbs, quality, err := th.decodeBudget.ThumbnailsAndQuality(ctx, r, info.Size, orientation, imagestore.ThumbSizes(), imagestore.Limits{})
	var reject *imagestore.RejectError
	if errors.As(err, &reject) {
		return imagestore.Quality{}, photoFault{err} // the photo's own bytes: the same every time
	}
	if err != nil {
		return imagestore.Quality{}, err // the store failed mid-read, or ctx ended while waiting for the budget
	}
	hexsum := hex.EncodeToString(sum)
	for _, t := range thumbs {
		pctx, cancel := context.WithTimeout(ctx, th.core.StoreTimeout())
		err := th.store.Put(pctx, imagestore.ThumbKey(hexsum, t.Size), bytes.NewReader(t.JPEG), int64(len(t.JPEG)), "image/jpeg")
		cancel()
		if err != nil {
			return imagestore.Quality{}, err
		}
	}
	return quality, nil
}
