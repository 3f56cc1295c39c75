package imagestore_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"testing/iotest"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/dermfollow/dermfollow/imagestore"
	"github.com/dermfollow/dermfollow/imagestore/s3test"
)

// The contract every Store backend keeps. Each backend runs the same suite.
func TestLocalStoreContract(t *testing.T) {
	t.Parallel()
	testStoreContract(t, func(t *testing.T) backend {
		dir := t.TempDir()
		s, err := imagestore.NewLocalStore(dir)
		if err != nil {
			t.Fatal(err)
		}
		return backend{s, func(t *testing.T) []string {
			// A failed Put must not leave its temp file behind.
			entries, err := os.ReadDir(filepath.Join(dir, ".tmp"))
			if err != nil {
				t.Fatal(err)
			}
			var names []string
			for _, e := range entries {
				names = append(names, ".tmp/"+e.Name())
			}
			return names
		}}
	})
}

// The S3 store runs the suite twice: with the production part sizes (photos go in one PUT,
// streams in parts of 8 MiB) and with the smallest part S3 allows, so that the multipart paths
// (known and unknown size) are exercised by objects of a few MiB.
func TestS3StoreContract(t *testing.T) {
	t.Parallel()
	for name, partSize := range map[string]int64{"DefaultParts": 0, "SmallParts": 5 << 20} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			testStoreContract(t, func(t *testing.T) backend {
				return newS3Backend(t, partSize)
			})
		})
	}
}

func TestS3PartSizeLimits(t *testing.T) {
	t.Parallel()
	for _, c := range []struct{ part, stream int64 }{{4 << 20, 0}, {0, 4 << 20}, {6 << 30, 0}} {
		cfg := s3test.Config(t)
		cfg.PartSize, cfg.StreamPartSize = c.part, c.stream
		if _, err := imagestore.NewS3Store(testCtx(t), cfg); err == nil {
			t.Errorf("NewS3Store with part sizes %d and %d succeeded; S3 allows 5 MiB to 5 GiB", c.part, c.stream)
		}
	}
}

// backend is a store under test with a way to see what a failed Put may have left outside the
// store's listing: temp files (local) or incomplete multipart uploads (S3).
type backend struct {
	imagestore.Store
	unfinished func(t *testing.T) []string
}

func newS3Backend(t *testing.T, partSize int64) backend {
	cfg := s3test.Config(t)
	cfg.PartSize, cfg.StreamPartSize = partSize, partSize
	s, err := imagestore.NewS3Store(testCtx(t), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		s3test.Empty(t, s)
		s3test.RemoveBucket(t, cfg)
	})
	client, err := minio.New(cfg.Endpoint, &minio.Options{Creds: credentials.NewStaticV4(cfg.AccessKey, cfg.SecretKey, "")})
	if err != nil {
		t.Fatal(err)
	}
	return backend{s, func(t *testing.T) []string {
		var out []string
		for u := range client.ListIncompleteUploads(testCtx(t), cfg.Bucket, "", true) {
			if u.Err != nil {
				t.Fatal(u.Err)
			}
			out = append(out, "incomplete upload of "+u.Key)
		}
		return out
	}}
}

func testStoreContract(t *testing.T, newBackend func(*testing.T) backend) {
	newStore := func(t *testing.T) imagestore.Store { return newBackend(t).Store }
	t.Run("RoundTrip", func(t *testing.T) {
		t.Parallel()
		s, ctx := newStore(t), testCtx(t)
		body := []byte("hello photo")
		mustPut(t, s, "photos/ab/roundtrip", body)
		r, info, err := s.Open(ctx, "photos/ab/roundtrip")
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(r)
		r.Close()
		if err != nil || !bytes.Equal(got, body) {
			t.Fatalf("read back %q, %v; want %q", got, err, body)
		}
		if info.Size != int64(len(body)) {
			t.Errorf("Open size = %d, want %d", info.Size, len(body))
		}
		st, err := s.Stat(ctx, "photos/ab/roundtrip")
		if err != nil || st.Size != int64(len(body)) || st.Key != "photos/ab/roundtrip" {
			t.Errorf("Stat = %+v, %v", st, err)
		}
		// Put replaces.
		mustPut(t, s, "photos/ab/roundtrip", []byte("second"))
		if st, _ := s.Stat(ctx, "photos/ab/roundtrip"); st.Size != 6 {
			t.Errorf("after overwrite size = %d, want 6", st.Size)
		}
	})

	t.Run("MissingKey", func(t *testing.T) {
		t.Parallel()
		s, ctx := newStore(t), testCtx(t)
		if _, _, err := s.Open(ctx, "photos/none"); !errors.Is(err, imagestore.ErrNotExist) {
			t.Errorf("Open missing: %v, want ErrNotExist", err)
		}
		if _, err := s.Stat(ctx, "photos/none"); !errors.Is(err, imagestore.ErrNotExist) {
			t.Errorf("Stat missing: %v, want ErrNotExist", err)
		}
		if err := s.Delete(ctx, "photos/none"); err != nil {
			t.Errorf("Delete missing: %v, want nil", err)
		}
		mustPut(t, s, "photos/gone", []byte("x"))
		if err := s.Delete(ctx, "photos/gone"); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Stat(ctx, "photos/gone"); !errors.Is(err, imagestore.ErrNotExist) {
			t.Errorf("Stat after delete: %v, want ErrNotExist", err)
		}
	})

	t.Run("InvalidKeys", func(t *testing.T) {
		t.Parallel()
		s, ctx := newStore(t), testCtx(t)
		for _, key := range []string{"", "../escape", "a/../../b", "/abs", "a//b", "a/./b", ".hidden", "a/.tmp/b",
			`a\b`, "a b", "a\x00b", "ключ", strings.Repeat("a", imagestore.MaxKeyLen+1), "trailing/"} {
			if err := s.Put(ctx, key, strings.NewReader("x"), 1, "text/plain"); !errors.Is(err, imagestore.ErrInvalidKey) {
				t.Errorf("Put(%q): %v, want ErrInvalidKey", key, err)
			}
			if _, _, err := s.Open(ctx, key); !errors.Is(err, imagestore.ErrInvalidKey) {
				t.Errorf("Open(%q): %v, want ErrInvalidKey", key, err)
			}
			if err := s.Delete(ctx, key); !errors.Is(err, imagestore.ErrInvalidKey) {
				t.Errorf("Delete(%q): %v, want ErrInvalidKey", key, err)
			}
		}
	})

	t.Run("SizeMismatchLeavesNothing", func(t *testing.T) {
		t.Parallel()
		s, ctx := newStore(t), testCtx(t)
		if err := s.Put(ctx, "short", strings.NewReader("abc"), 10, "text/plain"); err == nil {
			t.Error("Put with a short reader succeeded")
		}
		if err := s.Put(ctx, "long", strings.NewReader("abcdefghijkl"), 3, "text/plain"); err == nil {
			t.Error("Put with a long reader succeeded")
		}
		for _, k := range []string{"short", "long"} {
			if _, err := s.Stat(ctx, k); !errors.Is(err, imagestore.ErrNotExist) {
				t.Errorf("after failed Put, Stat(%s): %v, want ErrNotExist", k, err)
			}
		}
	})

	t.Run("FailingReaderLeavesNothing", func(t *testing.T) {
		t.Parallel()
		s, ctx := newStore(t), testCtx(t)
		boom := errors.New("client went away")
		r := io.MultiReader(bytes.NewReader(make([]byte, 1<<20)), errReader{boom})
		if err := s.Put(ctx, "broken", r, 2<<20, "image/jpeg"); err == nil {
			t.Fatal("Put with a failing reader succeeded")
		}
		if _, err := s.Stat(ctx, "broken"); !errors.Is(err, imagestore.ErrNotExist) {
			t.Errorf("Stat after failed Put: %v, want ErrNotExist", err)
		}
	})

	t.Run("Large50MB", func(t *testing.T) {
		t.Parallel()
		s, ctx := newStore(t), testCtx(t)
		const size = 50 << 20
		want := sha256.New()
		src := io.TeeReader(io.LimitReader(rand.NewChaCha8([32]byte{7}), size), want)
		if err := s.Put(ctx, "big/object", src, size, "application/octet-stream"); err != nil {
			t.Fatal(err)
		}
		r, info, err := s.Open(ctx, "big/object")
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		got := sha256.New()
		n, err := io.Copy(got, r)
		if err != nil || n != size || info.Size != size {
			t.Fatalf("read %d bytes (info %d), %v; want %d", n, info.Size, err, size)
		}
		if !bytes.Equal(got.Sum(nil), want.Sum(nil)) {
			t.Error("SHA-256 of the object read back differs from what was written")
		}
	})

	t.Run("ConcurrentWriters", func(t *testing.T) {
		t.Parallel()
		s, ctx := newStore(t), testCtx(t)
		const writers = 16
		var wg sync.WaitGroup
		errs := make(chan error, writers)
		for i := range writers {
			wg.Go(func() {
				body := bytes.Repeat([]byte{byte(i)}, 64<<10+i)
				if err := s.Put(ctx, fmt.Sprintf("c/%02d", i), bytes.NewReader(body), int64(len(body)), "image/jpeg"); err != nil {
					errs <- err
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
		for i := range writers {
			r, _, err := s.Open(ctx, fmt.Sprintf("c/%02d", i))
			if err != nil {
				t.Fatal(err)
			}
			got, _ := io.ReadAll(r)
			r.Close()
			if !bytes.Equal(got, bytes.Repeat([]byte{byte(i)}, 64<<10+i)) {
				t.Errorf("object c/%02d holds another writer's bytes", i)
			}
		}
		var listed []string
		if err := s.List(ctx, "c/", func(o imagestore.ObjectInfo) error { listed = append(listed, o.Key); return nil }); err != nil {
			t.Fatal(err)
		}
		if len(listed) != writers {
			t.Errorf("List(c/) = %d keys, want %d", len(listed), writers)
		}
	})

	t.Run("ListPrefix", func(t *testing.T) {
		t.Parallel()
		s, ctx := newStore(t), testCtx(t)
		for _, k := range []string{"photos/a/1", "photos/a/2", "photos/b/1", "thumbs/a/1", "photosx"} {
			mustPut(t, s, k, []byte(k))
		}
		for prefix, want := range map[string]int{"": 5, "photos/": 3, "photos/a/": 2, "photos": 4, "thumbs/": 1, "none/": 0} {
			n := 0
			err := s.List(ctx, prefix, func(o imagestore.ObjectInfo) error {
				if !strings.HasPrefix(o.Key, prefix) || o.Size != int64(len(o.Key)) {
					t.Errorf("List(%q) gave %+v", prefix, o)
				}
				n++
				return nil
			})
			if err != nil || n != want {
				t.Errorf("List(%q) = %d objects, %v; want %d", prefix, n, err, want)
			}
		}
	})

	t.Run("CanceledContext", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)
		ctx, cancel := context.WithCancel(testCtx(t))
		cancel()
		if err := s.Put(ctx, "canceled", strings.NewReader("abc"), 3, "text/plain"); err == nil {
			t.Error("Put with a canceled context succeeded")
		}
		if _, err := s.Stat(testCtx(t), "canceled"); !errors.Is(err, imagestore.ErrNotExist) {
			t.Errorf("Stat after canceled Put: %v, want ErrNotExist", err)
		}
	})

	t.Run("UnknownSizeRoundTrip", func(t *testing.T) {
		t.Parallel()
		s, ctx := newStore(t), testCtx(t)
		// 12 MiB and a bit: more than the two parts an S3 stream holds at once (of 5 MiB, or
		// of 8 MiB by default); written in uneven reads, as an archive arrives through a pipe.
		const size = 12<<20 + 4321
		want := sha256.New()
		src := io.TeeReader(io.LimitReader(rand.NewChaCha8([32]byte{9}), size), want)
		if err := s.Put(ctx, "exports/unknown.zip", iotest.HalfReader(src), -1, "application/zip"); err != nil {
			t.Fatal(err)
		}
		r, info, err := s.Open(ctx, "exports/unknown.zip")
		if err != nil {
			t.Fatal(err)
		}
		got := sha256.New()
		n, err := io.Copy(got, r)
		r.Close()
		if err != nil || n != size || info.Size != size {
			t.Fatalf("read %d bytes (info %d), %v; want %d", n, info.Size, err, size)
		}
		if !bytes.Equal(got.Sum(nil), want.Sum(nil)) {
			t.Error("SHA-256 of the object read back differs from what was written")
		}
		// Small and empty objects of unknown size too.
		for key, body := range map[string]string{"u/small": "hello archive", "u/empty": ""} {
			if err := s.Put(ctx, key, strings.NewReader(body), -1, "text/plain"); err != nil {
				t.Fatalf("Put(%s, size -1): %v", key, err)
			}
			r, _, err := s.Open(ctx, key)
			if err != nil {
				t.Fatal(err)
			}
			b, err := io.ReadAll(r)
			r.Close()
			if err != nil || string(b) != body {
				t.Errorf("%s read back %q, %v; want %q", key, b, err, body)
			}
		}
	})

	t.Run("UnknownSizeFailingReaderLeavesNothing", func(t *testing.T) {
		t.Parallel()
		b, ctx := newBackend(t), testCtx(t)
		boom := errors.New("archive writer failed")
		// More than one of the smallest S3 parts arrives before the failure, so S3 has begun a
		// multipart upload that must be aborted.
		r := io.MultiReader(bytes.NewReader(make([]byte, 7<<20)), errReader{boom})
		err := b.Put(ctx, "exports/broken.zip", r, -1, "application/zip")
		if !errors.Is(err, boom) {
			t.Fatalf("Put with a failing reader of unknown size: %v, want the reader's error", err)
		}
		assertNothingLeft(t, b)
	})

	t.Run("UnknownSizeCanceledContextLeavesNothing", func(t *testing.T) {
		t.Parallel()
		b := newBackend(t)
		// Cancelled before the call.
		ctx, cancel := context.WithCancel(testCtx(t))
		cancel()
		if err := b.Put(ctx, "exports/early.zip", strings.NewReader("abc"), -1, "application/zip"); err == nil {
			t.Error("Put of unknown size with a cancelled context succeeded")
		}
		// Cancelled half-way, after more than one part of the smallest size has been read.
		ctx, cancel = context.WithCancel(testCtx(t))
		defer cancel()
		r := &cancelAfter{r: io.LimitReader(rand.NewChaCha8([32]byte{3}), 20<<20), n: 7 << 20, cancel: cancel}
		err := b.Put(ctx, "exports/late.zip", r, -1, "application/zip")
		if err == nil {
			t.Fatal("Put of unknown size cancelled half-way succeeded")
		}
		if !errors.Is(err, context.Canceled) {
			t.Errorf("Put cancelled half-way: %v, want context.Canceled", err)
		}
		if r.read >= 20<<20 {
			t.Errorf("Put read all %d bytes after the cancel", r.read)
		}
		assertNothingLeft(t, b)
	})

	t.Run("Ping", func(t *testing.T) {
		t.Parallel()
		if err := newStore(t).Ping(testCtx(t)); err != nil {
			t.Error(err)
		}
	})
}

func TestS3SignedURLAndEncryption(t *testing.T) {
	t.Parallel()
	s, _ := s3test.NewStore(t)
	ctx := testCtx(t)
	mustPut(t, s, "exports/x.zip", []byte("archive bytes"))
	enc, err := s.Encrypted(ctx, "exports/x.zip")
	if err != nil || !enc {
		t.Errorf("object encrypted at rest = %v, %v; want true (SSE-S3 with the MinIO KMS key)", enc, err)
	}
	u, err := s.SignedURL(ctx, "exports/x.zip", time.Minute, "export.zip")
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || string(body) != "archive bytes" {
		t.Errorf("GET signed URL = %d %q", resp.StatusCode, body)
	}
	if cd := resp.Header.Get("Content-Disposition"); !strings.Contains(cd, "export.zip") {
		t.Errorf("Content-Disposition = %q, want the download name", cd)
	}
}

func TestS3MissingBucketIsCreatedOnce(t *testing.T) {
	t.Parallel()
	cfg := s3test.Config(t)
	ctx := testCtx(t)
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for range 4 {
		wg.Go(func() {
			if _, err := imagestore.NewS3Store(ctx, cfg); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("concurrent NewS3Store on a missing bucket: %v", err)
	}
}

func TestS3Unreachable(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err := imagestore.NewS3Store(ctx, imagestore.S3Config{Endpoint: "127.0.0.1:1", Bucket: "b", AccessKey: "a", SecretKey: "b"})
	if err == nil {
		t.Fatal("NewS3Store against a closed port succeeded")
	}
}

func TestLocalSignedURLNotSupported(t *testing.T) {
	t.Parallel()
	s, err := imagestore.NewLocalStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.SignedURL(testCtx(t), "a", time.Minute, ""); !errors.Is(err, imagestore.ErrNotSupported) {
		t.Errorf("SignedURL: %v, want ErrNotSupported", err)
	}
}

func mustPut(t *testing.T, s imagestore.Store, key string, body []byte) {
	t.Helper()
	if err := s.Put(testCtx(t), key, bytes.NewReader(body), int64(len(body)), "application/octet-stream"); err != nil {
		t.Fatalf("Put(%s): %v", key, err)
	}
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// assertNothingLeft checks that no object is listed and nothing unfinished remains.
func assertNothingLeft(t *testing.T, b backend) {
	t.Helper()
	var listed []string
	if err := b.List(testCtx(t), "", func(o imagestore.ObjectInfo) error { listed = append(listed, o.Key); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(listed) > 0 {
		t.Errorf("after a failed Put the store lists %v", listed)
	}
	if left := b.unfinished(t); len(left) > 0 {
		t.Errorf("after a failed Put the store keeps %v", left)
	}
}

// cancelAfter reads through r, 64 KiB at a time as a pipe gives them, and cancels after n
// bytes, as a job stopped half-way does.
type cancelAfter struct {
	r      io.Reader
	n      int64
	read   int64
	cancel context.CancelFunc
}

func (c *cancelAfter) Read(p []byte) (int, error) {
	n, err := c.r.Read(p[:min(len(p), 64<<10)])
	c.read += int64(n)
	if c.read >= c.n {
		c.cancel()
	}
	return n, err
}

type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }

// TestS3RefusesBytesChangedInTransit: uploads carry a CRC32C of their bytes in a trailer
// instead of a signed payload (see S3Store.putOptions), so a byte changed between the server
// and the store must make the store refuse the upload, leaving no object. A proxy that changes
// one byte of the body shows it; the same proxy without the change shows the proxy alone is
// not the cause.
func TestS3RefusesBytesChangedInTransit(t *testing.T) {
	t.Parallel()
	direct, cfg := s3test.NewStore(t)
	body := bytes.Repeat([]byte("dermfollow photo bytes "), 1<<16) // 1.5 MB: one PUT
	for _, corrupt := range []bool{false, true} {
		cfg := cfg
		cfg.Endpoint = flipProxy(t, cfg.Endpoint, corrupt)
		cfg.MaxRetries = 1
		s, err := imagestore.NewS3Store(testCtx(t), cfg)
		if err != nil {
			t.Fatal(err)
		}
		key := fmt.Sprintf("photos/transit-%v", corrupt)
		err = s.Put(testCtx(t), key, bytes.NewReader(body), int64(len(body)), "image/jpeg")
		_, statErr := direct.Stat(testCtx(t), key)
		switch {
		case corrupt && err == nil:
			t.Error("an upload changed in transit was stored")
		case corrupt && !errors.Is(statErr, imagestore.ErrNotExist):
			t.Errorf("after a refused upload, Stat = %v, want ErrNotExist", statErr)
		case !corrupt && (err != nil || statErr != nil):
			t.Errorf("upload through the plain proxy: %v, stat %v", err, statErr)
		}
	}
}

// flipProxy forwards TCP connections to addr; with corrupt, it inverts the byte at offset
// 300,000 of what each client sends (inside the body of a 1.5 MB upload, past its headers).
func flipProxy(t *testing.T, addr string, corrupt bool) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				u, err := net.Dial("tcp", addr)
				if err != nil {
					return
				}
				defer u.Close()
				go io.Copy(c, u)
				var n int64
				buf := make([]byte, 32<<10)
				for {
					m, err := c.Read(buf)
					if corrupt && n <= 300000 && 300000 < n+int64(m) {
						buf[300000-n] ^= 0xff
					}
					n += int64(m)
					if _, werr := u.Write(buf[:m]); werr != nil || err != nil {
						return
					}
				}
			}()
		}
	}()
	return ln.Addr().String()
}
