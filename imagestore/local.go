package imagestore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// LocalStore keeps objects as files below a directory: the embedded default for a single
// server. Writes are atomic (temp file, fsync, rename, fsync of the directory), so a crash
// leaves either the whole object or none.
type LocalStore struct {
	root string
}

var _ Store = (*LocalStore)(nil)

// tmpDir holds writes in progress; it is inside root so rename stays on one file system.
// No key can name it: key segments never start with a dot.
const tmpDir = ".tmp"

// NewLocalStore opens (creating if needed) a store below dir and removes temp files that a
// crashed writer left more than an hour ago.
func NewLocalStore(dir string) (*LocalStore, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("imagestore: local store %q: %w", dir, err)
	}
	if err := os.MkdirAll(filepath.Join(abs, tmpDir), 0o700); err != nil {
		return nil, fmt.Errorf("imagestore: local store: %w", err)
	}
	s := &LocalStore{root: abs}
	s.removeStaleTemps(time.Hour)
	return s, nil
}

func (s *LocalStore) removeStaleTemps(age time.Duration) {
	entries, err := os.ReadDir(filepath.Join(s.root, tmpDir))
	if err != nil {
		return
	}
	for _, e := range entries {
		if info, err := e.Info(); err == nil && time.Since(info.ModTime()) > age {
			_ = os.Remove(filepath.Join(s.root, tmpDir, e.Name()))
		}
	}
}

func (s *LocalStore) path(key string) (string, error) {
	if err := ValidateKey(key); err != nil {
		return "", err
	}
	return filepath.Join(s.root, filepath.FromSlash(key)), nil
}

func (s *LocalStore) Put(ctx context.Context, key string, r io.Reader, size int64, contentType string) (err error) {
	dst, err := s.path(key)
	if err != nil {
		return err
	}
	f, err := os.CreateTemp(filepath.Join(s.root, tmpDir), "put-*")
	if err != nil {
		return fmt.Errorf("imagestore: put %s: %w", key, err)
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	var src io.Reader = ctxReader{ctx, r}
	if size >= 0 {
		src = &countingReader{r: src, want: size}
	}
	if _, err = io.Copy(f, src); err != nil {
		return fmt.Errorf("imagestore: put %s: %w", key, err)
	}
	if err = f.Sync(); err != nil {
		return fmt.Errorf("imagestore: put %s: sync: %w", key, err)
	}
	if err = f.Close(); err != nil {
		return fmt.Errorf("imagestore: put %s: %w", key, err)
	}
	dir := filepath.Dir(dst)
	if err = os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("imagestore: put %s: %w", key, err)
	}
	if err = os.Rename(f.Name(), dst); err != nil {
		return fmt.Errorf("imagestore: put %s: %w", key, err)
	}
	// The rename is durable only once the directory entry is on disk.
	if err = syncDir(dir); err != nil {
		return fmt.Errorf("imagestore: put %s: sync dir: %w", key, err)
	}
	return nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

func (s *LocalStore) Open(ctx context.Context, key string) (io.ReadCloser, ObjectInfo, error) {
	p, err := s.path(key)
	if err != nil {
		return nil, ObjectInfo{}, err
	}
	f, err := os.Open(p)
	if err != nil {
		return nil, ObjectInfo{}, mapFSError(key, err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, ObjectInfo{}, mapFSError(key, err)
	}
	if st.IsDir() {
		f.Close()
		return nil, ObjectInfo{}, fmt.Errorf("%w: %s", ErrNotExist, key)
	}
	return f, ObjectInfo{Key: key, Size: st.Size(), Modified: st.ModTime()}, nil
}

func (s *LocalStore) Stat(ctx context.Context, key string) (ObjectInfo, error) {
	p, err := s.path(key)
	if err != nil {
		return ObjectInfo{}, err
	}
	st, err := os.Stat(p)
	if err != nil {
		return ObjectInfo{}, mapFSError(key, err)
	}
	if st.IsDir() {
		return ObjectInfo{}, fmt.Errorf("%w: %s", ErrNotExist, key)
	}
	return ObjectInfo{Key: key, Size: st.Size(), Modified: st.ModTime()}, nil
}

func (s *LocalStore) Delete(ctx context.Context, key string) error {
	p, err := s.path(key)
	if err != nil {
		return err
	}
	if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("imagestore: delete %s: %w", key, err)
	}
	return nil
}

func (s *LocalStore) List(ctx context.Context, prefix string, fn func(ObjectInfo) error) error {
	if err := validatePrefix(prefix); err != nil {
		return err
	}
	// Walk from the deepest directory the prefix names, then filter by the full prefix.
	start := s.root
	if i := strings.LastIndex(prefix, "/"); i >= 0 {
		start = filepath.Join(s.root, filepath.FromSlash(prefix[:i]))
	}
	err := filepath.WalkDir(start, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		rel, _ := filepath.Rel(s.root, p)
		key := filepath.ToSlash(rel)
		if d.IsDir() {
			if key == tmpDir {
				return fs.SkipDir
			}
			return nil
		}
		if !strings.HasPrefix(key, prefix) {
			return nil
		}
		info, err := d.Info()
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil // deleted while listing
			}
			return err
		}
		return fn(ObjectInfo{Key: key, Size: info.Size(), Modified: info.ModTime()})
	})
	if err != nil {
		return fmt.Errorf("imagestore: list %q: %w", prefix, err)
	}
	return nil
}

func (s *LocalStore) SignedURL(ctx context.Context, key string, expiry time.Duration, downloadName string) (string, error) {
	return "", ErrNotSupported
}

func (s *LocalStore) Ping(ctx context.Context) error {
	st, err := os.Stat(filepath.Join(s.root, tmpDir))
	if err != nil {
		return fmt.Errorf("imagestore: local store: %w", err)
	}
	if !st.IsDir() {
		return fmt.Errorf("imagestore: local store: %s is not a directory", st.Name())
	}
	return nil
}

func mapFSError(key string, err error) error {
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("%w: %s", ErrNotExist, key)
	}
	return fmt.Errorf("imagestore: %s: %w", key, err)
}

// ctxReader stops a long copy when the context ends.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}
