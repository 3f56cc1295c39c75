package imagestore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
)

// Store keeps objects (photos, thumbnails, export archives) under opaque keys. Keys are chosen
// by the caller, are random, and carry no names, dates or file names.
//
// Put is all or nothing: when it returns nil the object is durably stored (with exactly size
// bytes, when the size was given); when it fails, no object is visible under the key.
type Store interface {
	// Put stores r's bytes under key, replacing any object there. A size of 0 or more is
	// checked: a reader that gives more or fewer bytes fails with ErrSizeMismatch. A size below
	// 0 means "unknown": the object is whatever r gives until io.EOF (an archive streamed as it
	// is built); the S3 store then uploads it in parts of S3Config.StreamPartSize, holding two
	// parts in memory. Either way Put is all or nothing: when r fails or ctx ends before io.EOF, no
	// object is stored and nothing is left behind (no temp file, no incomplete multipart
	// upload). When Put returns, r is no longer read, whatever the outcome: the caller may
	// release or reuse r's memory at once.
	Put(ctx context.Context, key string, r io.Reader, size int64, contentType string) error
	// Open returns the object's bytes. The caller closes the reader.
	Open(ctx context.Context, key string) (io.ReadCloser, ObjectInfo, error)
	Stat(ctx context.Context, key string) (ObjectInfo, error)
	// Delete removes the object; deleting a missing object is not an error.
	Delete(ctx context.Context, key string) error
	// List calls fn for every object whose key starts with prefix, in no particular order.
	List(ctx context.Context, prefix string, fn func(ObjectInfo) error) error
	// SignedURL returns a short-lived URL that reads the object directly from the backend,
	// or ErrNotSupported where the backend has none (the local directory).
	SignedURL(ctx context.Context, key string, expiry time.Duration, downloadName string) (string, error)
	// Ping reports whether the backend is reachable and usable.
	Ping(ctx context.Context) error
}

// ObjectInfo describes a stored object. ContentType is the one given to Put where the backend
// records it (S3); the local directory leaves it empty, since the database holds it anyway.
type ObjectInfo struct {
	Key         string
	Size        int64
	ContentType string
	Modified    time.Time
}

// Neutral errors: backends map their own errors to these so callers never see a backend type.
var (
	ErrNotExist     = errors.New("imagestore: object does not exist")
	ErrInvalidKey   = errors.New("imagestore: invalid object key")
	ErrNotSupported = errors.New("imagestore: not supported by this store")
	// ErrSizeMismatch means the reader gave more or fewer bytes than the size passed to Put.
	ErrSizeMismatch = errors.New("imagestore: object size does not match")
)

// MaxKeyLen bounds keys well inside every backend's limit.
const MaxKeyLen = 512

// ValidateKey refuses keys that could escape a directory or confuse a backend: empty, too
// long, absolute, with empty segments or segments starting with a dot (".", "..", hidden
// names), backslashes or control bytes.
// Allowed bytes are ASCII letters, digits and "-_./".
func ValidateKey(key string) error {
	if key == "" || len(key) > MaxKeyLen {
		return fmt.Errorf("%w: length %d", ErrInvalidKey, len(key))
	}
	for i := 0; i < len(key); i++ {
		c := key[i]
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
			c == '-' || c == '_' || c == '.' || c == '/'
		if !ok {
			return fmt.Errorf("%w: byte %#x at %d", ErrInvalidKey, c, i)
		}
	}
	for _, seg := range strings.Split(key, "/") {
		if seg == "" {
			return fmt.Errorf("%w: empty segment or absolute key", ErrInvalidKey)
		}
		// Covers "." and "..", and keeps hidden names (the local store's temp folder) apart.
		if seg[0] == '.' {
			return fmt.Errorf("%w: segment starts with a dot", ErrInvalidKey)
		}
	}
	return nil
}

// validatePrefix accepts "" (everything) or a key-shaped prefix that may end in "/".
func validatePrefix(prefix string) error {
	if prefix == "" {
		return nil
	}
	return ValidateKey(strings.TrimSuffix(prefix, "/"))
}

// countingReader checks that exactly the announced number of bytes arrives.
type countingReader struct {
	r    io.Reader
	n    int64
	want int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	if c.n > c.want {
		return n, ErrSizeMismatch
	}
	if err == io.EOF && c.n != c.want {
		return n, ErrSizeMismatch
	}
	return n, err
}
