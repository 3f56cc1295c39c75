package imagestore

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
)

// ErrWritesRefused means the store is reachable but refuses to store objects (a policy, a
// quota, a read-only or full disk). ErrEncryptedWritesRefused means it takes plain writes but
// refuses the encrypted ones the configuration asks for: on MinIO, a server without a KMS.
var (
	ErrWritesRefused          = errors.New("imagestore: the store refuses writes")
	ErrEncryptedWritesRefused = errors.New("imagestore: the store refuses encrypted writes")
)

// ProbePrefix is reserved for the write probes' objects; no photo, thumbnail or archive is
// ever stored under it.
const ProbePrefix = "probe/"

// probeBody is what a write probe stores: nothing about anyone.
const probeBody = "dermfollow write probe\n"

// NewProbeKey returns a key under ProbePrefix for one process's probes.
func NewProbeKey() string {
	b := make([]byte, 8)
	rand.Read(b)
	return ProbePrefix + hex.EncodeToString(b)
}

// writeProbe stores a small object under key, exactly as photos are stored, and removes it.
func writeProbe(ctx context.Context, s Store, key string) error {
	if !strings.HasPrefix(key, ProbePrefix) {
		return fmt.Errorf("%w: a probe key starts with %s", ErrInvalidKey, ProbePrefix)
	}
	if err := s.Put(ctx, key, strings.NewReader(probeBody), int64(len(probeBody)), "text/plain"); err != nil {
		return err
	}
	return s.Delete(ctx, key)
}

// ProbeWrite tells whether the local directory takes writes: Ping only sees the folder.
func (s *LocalStore) ProbeWrite(ctx context.Context, key string) error {
	if err := writeProbe(ctx, s, key); err != nil {
		return fmt.Errorf("%w: %v", ErrWritesRefused, err)
	}
	return nil
}

// ProbeWrite tells whether the bucket takes the writes this store makes (encrypted ones when
// SSE is on), which Ping, a bucket lookup, does not. A store that refuses the write is asked
// once more without encryption, so that the answer can say which it is.
func (s *S3Store) ProbeWrite(ctx context.Context, key string) error {
	err := writeProbe(ctx, s, key)
	if err == nil || !errors.Is(err, errRefused) {
		return err // stored, or unreachable: Ping's concern
	}
	if s.sse != nil {
		plain := *s
		plain.sse = nil
		if writeProbe(ctx, &plain, key) == nil {
			return fmt.Errorf("%w: %v", ErrEncryptedWritesRefused, err)
		}
	}
	return fmt.Errorf("%w: %v", ErrWritesRefused, err)
}
