// The photo store's side of a photo's life: every object is noted as pending before it is
// stored (see pending_objects), so that a crash between the store and the row leaves a note
// the sweeper follows, never an orphan nobody knows of.

package followup

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"time"
)

// notePending records that an object is about to be stored under key (see pending_objects).
func (s *Service) notePending(ctx context.Context, key string) error {
	ctx, cancel := context.WithTimeout(ctx, s.rowTimeout)
	defer cancel()
	if _, err := s.pool.Exec(ctx, `insert into pending_objects (object_key) values ($1)`, key); err != nil {
		return &Error{Code: EUNAVAILABLE, Message: errTryAgain.Message, Err: err}
	}
	return nil
}

// discardObject removes a stored object whose row certainly does not exist, then its pending
// note. Whatever fails here is left to the sweeper, which the note still points at.
func (s *Service) discardObject(ctx context.Context, key string) {
	ctx, cancel := context.WithTimeout(ctx, s.rowTimeout)
	defer cancel()
	if !s.deleteObject(ctx, key) {
		return
	}
	if _, err := s.pool.Exec(ctx, `delete from pending_objects where object_key = $1`, key); err != nil {
		s.log.Warn("pending note left for the sweeper", "error", err.Error())
	}
}

// deleteObject removes an object, leaving it to the sweeper (it has a note) when that fails.
func (s *Service) deleteObject(ctx context.Context, key string) bool {
	ctx, cancel := context.WithTimeout(ctx, s.rowTimeout)
	defer cancel()
	if err := s.store.Delete(ctx, key); err != nil {
		s.log.Warn("object left for the sweeper", "error", err.Error())
		return false
	}
	return true
}

// PendingGrace is how long an object may stay noted in pending_objects before it is taken for
// an orphan: longer than any upload can still be on its way (the store's deadline and the
// statements' around it), with as much again for a margin. An export's archive keeps its note
// fresh while its run lives. With the default StoreTimeout, 3.5 minutes.
func (s *Service) PendingGrace() time.Duration { return 2 * (s.storeTimeout + 3*s.rowTimeout) }

// newObjectKey is random and carries nothing about the photo; the first byte shards it.
func newObjectKey(prefix string) string {
	b := make([]byte, 16)
	rand.Read(b)
	h := hex.EncodeToString(b)
	return fmt.Sprintf("%s/%s/%s", prefix, h[:2], h)
}
