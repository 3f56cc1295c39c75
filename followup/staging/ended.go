package staging

import (
	"context"
	"errors"

	"github.com/dermfollow/dermfollow/followup"
	"github.com/dermfollow/dermfollow/imagestore"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// Stored marks upload id as having stored photo, and removes its staged bytes.
func (st *Service) Stored(ctx context.Context, id, photo uuid.UUID) error {
	return st.end(ctx, id, `photo_id = $2`, photo)
}

// Refusal names why an upload's photo was refused: "reject:" and an imagestore reason
// (the sanitizer's refusal), or "error:" and an error code (the step no longer takes it...).
func Refusal(err error) string {
	var re *imagestore.RejectError
	if errors.As(err, &re) {
		return "reject:" + string(re.Reason)
	}
	return "error:" + followup.ErrorCode(err)
}

// Refused marks upload id as refused (refusal from Refusal), and removes its staged bytes.
func (st *Service) Refused(ctx context.Context, id uuid.UUID, refusal string) error {
	return st.end(ctx, id, `refusal = $2`, refusal)
}

func (st *Service) end(ctx context.Context, id uuid.UUID, set string, v any) error {
	ctx = context.WithoutCancel(ctx)
	rctx, cancel := context.WithTimeout(ctx, st.core.RowTimeout())
	_, err := st.pool.Exec(rctx, `update resumable_uploads set `+set+`, offset_bytes = size_bytes where id = $1`, id, v)
	cancel()
	if err != nil {
		return wrap(followup.Unavailable(err), "end staged upload %s", id)
	}
	return st.Discard(ctx, id)
}

// Discard removes upload id's staged bytes, their rows and their notes; the upload's own row
// stays. An object that cannot be deleted keeps its note, for the sweeper.
func (st *Service) Discard(ctx context.Context, id uuid.UUID) error {
	ctx = context.WithoutCancel(ctx)
	rctx, cancel := context.WithTimeout(ctx, st.core.RowTimeout())
	rows, err := st.pool.Query(rctx, `select object_key from resumable_segments where upload = $1`, id)
	var keys []string
	if err == nil {
		keys, err = pgx.CollectRows(rows, pgx.RowTo[string])
	}
	cancel()
	if err != nil {
		return wrap(followup.Unavailable(err), "discard staged %s", id)
	}
	var gone []string
	var failed error
	for _, k := range keys {
		dctx, cancel := context.WithTimeout(ctx, st.core.RowTimeout())
		if err := st.store.Delete(dctx, k); err != nil {
			failed = err
		} else {
			gone = append(gone, k)
		}
		cancel()
	}
	if len(gone) > 0 {
		rctx, cancel := context.WithTimeout(ctx, st.core.RowTimeout())
		_, err := st.pool.Exec(rctx, `with g as (delete from resumable_segments where object_key = any($1))
			delete from pending_objects where object_key = any($1)`, gone)
		cancel()
		if err != nil {
			return wrap(followup.Unavailable(err), "discard staged %s", id)
		}
	}
	if failed != nil {
		return wrap(followup.StoreUnavailable(failed), "discard staged %s", id)
	}
	return nil
}

// Terminate ends upload id for good: its staged bytes and its row go (a stored photo stays).
func (st *Service) Terminate(ctx context.Context, id uuid.UUID) error {
	if err := st.Discard(ctx, id); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), st.core.RowTimeout())
	defer cancel()
	_, err := st.pool.Exec(ctx, `delete from resumable_uploads u where id = $1
		and not exists (select 1 from resumable_segments g where g.upload = u.id)`, id)
	return wrap(followup.Unavailable(err), "terminate staged %s", id)
}
