package export

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/jackc/pgx/v5"

	"github.com/dermfollow/dermfollow/followup"
	"github.com/dermfollow/dermfollow/imagestore"
)

// Sweep deletes the archives of expired exports and marks them expired, and deletes
// archives no export refers to (a worker died between storing one and recording it). It
// returns how many archives it deleted.
func (s *Service) Sweep(ctx context.Context) (int, error) {
	swept := 0
	for {
		var id uuid.UUID
		var key *string
		done := false
		err := s.inTx(ctx, func(tx pgx.Tx) error {
			err := tx.QueryRow(ctx, `select id, object_key from exports where status <> 'expired' and expires_at <= $1
				order by expires_at limit 1 for update skip locked`, s.now()).Scan(&id, &key)
			if errors.Is(err, pgx.ErrNoRows) {
				done = true
				return nil
			}
			if err != nil {
				return followup.Unavailable(err)
			}
			if key != nil {
				if err := s.store.Delete(ctx, *key); err != nil {
					return &followup.Error{Code: followup.EUNAVAILABLE, Message: "the archive store is unavailable", Err: err}
				}
				swept++
			}
			_, err = tx.Exec(ctx, `update exports set status = 'expired', run_id = null, object_key = null where id = $1`, id)
			return followup.Unavailable(err)
		})
		if err != nil {
			return swept, wrap(err, "sweep exports")
		}
		if done {
			break
		}
	}
	n, err := s.sweepExportLeftovers(ctx)
	return swept + n, err
}

// exportLeftoverEvery is how often Sweep looks through the store for archives no
// export names: it lists the bucket, so not at every tick of the exporter.
const exportLeftoverEvery = 10 * time.Minute

// sweepExportLeftovers removes finished archives that no export names (a process died between
// storing one and marking its export done, before the archives had pending notes), at a
// process's first sweep and then every exportLeftoverEvery. The parts of archives whose run
// died half-way are the pending notes' (package sweep).
func (s *Service) sweepExportLeftovers(ctx context.Context) (int, error) {
	last := s.leftovers.Load()
	if last != 0 && time.Since(time.Unix(0, last)) < exportLeftoverEvery {
		return 0, nil
	}
	if !s.leftovers.CompareAndSwap(last, time.Now().UnixNano()) {
		return 0, nil
	}
	swept := 0
	cutoff := s.now().Add(-exportOrphanGrace)
	err := s.store.List(ctx, "exports/", func(o imagestore.ObjectInfo) error {
		if o.Modified.After(cutoff) || !strings.HasPrefix(o.Key, "exports/") {
			return nil
		}
		var exists bool
		if err := s.pool.QueryRow(ctx, `select exists (select 1 from exports where object_key = $1)`, o.Key).Scan(&exists); err != nil {
			return followup.Unavailable(err)
		}
		if exists {
			return nil
		}
		if err := s.store.Delete(ctx, o.Key); err != nil {
			return err
		}
		swept++
		return nil
	})
	return swept, wrap(err, "sweep export archives")
}
