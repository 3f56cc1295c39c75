// The photo store's side of a photo's life: every object is noted as pending before it is
// stored (see pending_objects), so that a crash between the store and the row leaves a note
// the sweeper follows, never an orphan nobody knows of.

package followup

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
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

// newObjectKey is random and carries nothing about the photo; the first byte shards it.
func newObjectKey(prefix string) string {
	b := make([]byte, 16)
	rand.Read(b)
	h := hex.EncodeToString(b)
	return fmt.Sprintf("%s/%s/%s", prefix, h[:2], h)
}
