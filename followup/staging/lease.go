package staging

import (
	"context"
	"errors"

	"github.com/dermfollow/dermfollow/followup"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// The write lease on a staged upload (see Staging): one request at a time writes an upload,
// on whichever server, and asks the holder to let go when it needs the upload itself.

// Lock takes the write lease on upload id for the holder token (a fresh one per request), or
// renews it if token holds it already. It reports false when another holder's lease is
// running, and exists false when there is no such upload (nothing to lock).
func (st *Service) Lock(ctx context.Context, id, token uuid.UUID) (locked, exists bool, err error) {
	err = st.pool.QueryRow(ctx, `with l as (update resumable_uploads set lock_token = $2,
			lock_until = now() + make_interval(secs => $3), unlock_requested = false
		where id = $1 and (lock_token is null or lock_token = $2 or lock_until < now()) returning 1)
		select exists (select 1 from l), exists (select 1 from resumable_uploads where id = $1)`,
		id, token, st.cfg.Lease.Seconds()).Scan(&locked, &exists)
	return locked, exists, followup.Unavailable(err)
}

// RequestUnlock asks the holder of upload id's lease to let it go soon (it sees the request at
// its next Renew).
func (st *Service) RequestUnlock(ctx context.Context, id uuid.UUID) error {
	_, err := st.pool.Exec(ctx, `update resumable_uploads set unlock_requested = true where id = $1 and lock_token is not null`, id)
	return followup.Unavailable(err)
}

// Renew extends token's lease on upload id. held is false when the lease was lost (it ran out
// and another holder took it); release is true when another request asked for it.
func (st *Service) Renew(ctx context.Context, id, token uuid.UUID) (held, release bool, err error) {
	err = st.pool.QueryRow(ctx, `update resumable_uploads set lock_until = now() + make_interval(secs => $3)
		where id = $1 and lock_token = $2 returning unlock_requested`, id, token, st.cfg.Lease.Seconds()).Scan(&release)
	if errors.Is(err, pgx.ErrNoRows) {
		return false, false, nil
	}
	return err == nil, release, followup.Unavailable(err)
}

// Unlock gives token's lease on upload id up.
func (st *Service) Unlock(ctx context.Context, id, token uuid.UUID) error {
	_, err := st.pool.Exec(ctx, `update resumable_uploads set lock_token = null, lock_until = null, unlock_requested = false
		where id = $1 and lock_token = $2`, id, token)
	return followup.Unavailable(err)
}
