package staging

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"

	"github.com/dermfollow/dermfollow/followup"
	"github.com/dermfollow/dermfollow/imagestore"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// ErrLeaseLost is a segment that could not be committed: the writer's lease on the upload, or
// the offset it started from, is no longer current.
var ErrLeaseLost = followup.Errorf(followup.ECONFLICT, "This upload is being written by another request; ask for its offset and resume from there.")

// StageSegment stores the n bytes of r as the segment of upload id at offset, under token's
// lease, and moves the upload's offset past it. The write runs detached from ctx's
// cancellation, with the store's deadline: a client that cut its connection still gets the
// bytes it had sent staged. ErrLeaseLost means nothing was added.
func (st *Service) StageSegment(ctx context.Context, id, token uuid.UUID, offset int64, r io.Reader, n int64) error {
	ctx = context.WithoutCancel(ctx)
	key := stagingKey(id)
	rctx, cancel := context.WithTimeout(ctx, st.core.RowTimeout())
	// The note is dated so that the sweeper, which takes notes older than its grace, takes
	// this one when the upload expires.
	tag, err := st.pool.Exec(rctx, `with u as (select expires_at from resumable_uploads where id = $1 and lock_token = $4),
			g as (insert into resumable_segments (upload, offset_bytes, size_bytes, object_key) select $1, $2, $3, $5 from u returning 1)
		insert into pending_objects (object_key, created_at)
			select $5, u.expires_at - make_interval(secs => $6) from u where exists (select 1 from g)`,
		id, offset, n, token, key, st.core.PendingGrace().Seconds())
	cancel()
	if err != nil {
		return wrap(followup.Unavailable(err), "stage segment of %s", id)
	}
	if tag.RowsAffected() == 0 {
		return ErrLeaseLost
	}
	pctx, cancel := context.WithTimeout(ctx, st.core.StoreTimeout())
	err = st.store.Put(pctx, key, r, n, "application/octet-stream")
	cancel()
	if err != nil {
		// The row and the note stay: the object may still land, and goes with the upload.
		return wrap(followup.StoreUnavailable(err), "stage segment of %s", id)
	}
	rctx, cancel = context.WithTimeout(ctx, st.core.RowTimeout())
	defer cancel()
	var committed bool
	err = st.pool.QueryRow(rctx, `with adv as (update resumable_uploads set offset_bytes = $2 + $3
			where id = $1 and offset_bytes = $2 and lock_token = $4 and photo_id is null and refusal is null returning 1),
		seg as (update resumable_segments set stored = true where object_key = $5 and exists (select 1 from adv) returning 1)
		select exists (select 1 from seg)`, id, offset, n, token, key).Scan(&committed)
	if err != nil {
		return wrap(followup.Unavailable(err), "commit segment of %s", id)
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
	return Prefix + id.String() + "/" + hex.EncodeToString(b)
}

// dropSegment removes an uncommitted segment's object, then its row and its note; what fails
// is left to the sweeper, which the note still points at.
func (st *Service) dropSegment(ctx context.Context, key string) {
	dctx, cancel := context.WithTimeout(ctx, st.core.RowTimeout())
	err := st.store.Delete(dctx, key)
	cancel()
	if err != nil {
		st.log.Warn("object left for the sweeper", "error", err.Error())
		return
	}
	ctx, cancel = context.WithTimeout(ctx, st.core.RowTimeout())
	defer cancel()
	if _, err := st.pool.Exec(ctx, `with g as (delete from resumable_segments where object_key = $1)
		delete from pending_objects where object_key = $1`, key); err != nil {
		st.log.Warn("staging: segment note left for the sweeper", "error", err.Error())
	}
}

// OpenStaged returns a reader of upload id's first n staged bytes (n at most its offset), segment
// after segment. The caller closes it.
func (st *Service) OpenStaged(ctx context.Context, id uuid.UUID, n int64) (io.ReadCloser, error) {
	rows, err := st.pool.Query(ctx, `select offset_bytes, size_bytes, object_key from resumable_segments
		where upload = $1 and stored and offset_bytes < $2 order by offset_bytes`, id, n)
	if err != nil {
		return nil, wrap(followup.Unavailable(err), "open staged %s", id)
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
		return nil, wrap(followup.Unavailable(err), "open staged %s", id)
	}
	var at int64
	for _, g := range segs {
		if g.off != at {
			return nil, fmt.Errorf("staging: upload %s has a gap at %d", id, at)
		}
		at += g.n
	}
	if at < n {
		return nil, fmt.Errorf("staging: upload %s holds %d bytes, not %d", id, at, n)
	}
	sr := &segmentReader{ctx: ctx, store: st.store, left: n}
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
				return 0, followup.StoreUnavailable(err)
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
