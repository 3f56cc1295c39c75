package imagestore_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dermfollow/dermfollow/imagestore"
	"github.com/dermfollow/dermfollow/imagestore/s3test"
)

// lentBody is a body whose bytes are "given back" when Put returns, as the upload spool's
// chunks are: a read after that is a read of memory another upload may hold by then.
type lentBody struct {
	mu       sync.Mutex
	b        []byte
	off      int
	returned bool
	late     *atomic.Int64 // reads after the bytes were given back
}

func (l *lentBody) Read(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.returned {
		l.late.Add(1)
		return 0, errors.New("read of a body after its Put returned")
	}
	if l.off == len(l.b) {
		return 0, io.EOF
	}
	// A body that comes a little slower than the socket takes it (a spool on disk, a busy
	// machine), so that the store's early answer arrives while the transport is still
	// sending: on loopback, the kernel's buffers would otherwise take a whole 4 MB body first.
	time.Sleep(200 * time.Microsecond)
	n := copy(p[:min(len(p), 32<<10)], l.b[l.off:])
	l.off += n
	return n, nil
}

func (l *lentBody) giveBack() {
	l.mu.Lock()
	l.returned, l.b = true, nil
	l.mu.Unlock()
}

// slowCloseTransport is minio-go's kind of transport over connections whose Close takes a
// while, as on a loaded machine: net/http closes a connection whose request it has given up
// on only after RoundTrip's caller has the answer, and its write loop goes on reading the
// body until the close lands. Slowing the close makes that window wide enough to hit every
// time instead of once in a few thousand uploads.
func slowCloseTransport() *slowCloseRT {
	t := http.DefaultTransport.(*http.Transport).Clone()
	rt := &slowCloseRT{Transport: t}
	d := &net.Dialer{Timeout: 10 * time.Second}
	t.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := d.DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		rt.open.Add(1)
		return &slowClose{Conn: c, open: &rt.open}, nil
	}
	return rt
}

type slowCloseRT struct {
	*http.Transport
	open atomic.Int64 // connections not yet closed
}

// waitClosed closes the idle connections and waits until every connection is closed: from
// then on no write loop can read a body.
func (rt *slowCloseRT) waitClosed(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for rt.open.Load() > 0 {
		rt.CloseIdleConnections()
		if time.Now().After(deadline) {
			t.Fatalf("%d connections still open after 30 s", rt.open.Load())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

type slowClose struct {
	net.Conn
	once sync.Once
	open *atomic.Int64
}

func (c *slowClose) Close() error {
	time.Sleep(30 * time.Millisecond)
	err := c.Conn.Close()
	c.once.Do(func() { c.open.Add(-1) })
	return err
}

// TestS3PutNeverReadsBodyAfterReturn: whatever the store does with a PUT (answer an error
// before reading the body, reset the connection half-way, stall until the caller gives up),
// Put returns only once the transport can no longer read the body, so the caller may give
// its memory back at once. Without that, net/http's write loop goes on reading a body that
// the store refused, after Put has returned (the crash of a nil chunk, or another upload's
// bytes on this socket).
func TestS3PutNeverReadsBodyAfterReturn(t *testing.T) {
	t.Parallel()
	_, cfg := s3test.NewStore(t)
	proxy := s3test.NewFaultProxy(t, cfg.Endpoint)
	pcfg := proxy.Config(cfg)
	pcfg.MaxRetries = 1
	rt := slowCloseTransport()
	pcfg.Transport = rt
	s, err := imagestore.NewS3Store(testCtx(t), pcfg)
	if err != nil {
		t.Fatal(err)
	}
	body := bytes.Repeat([]byte{0xa5, 0x5a, 0x11, 0xee}, 1<<20) // 4 MB, one PUT
	faults := []s3test.Fault{
		{Kind: s3test.SlowDown}, {Kind: s3test.InternalError}, {Kind: s3test.AccessDenied},
		{Kind: s3test.Reset, After: 1 << 20}, {Kind: s3test.Stall, Stall: time.Minute},
	}
	for _, f := range faults {
		t.Run(f.Kind.String(), func(t *testing.T) {
			proxy.Always(f)
			var late atomic.Int64
			var wg sync.WaitGroup
			var failed atomic.Int64
			for i := range 16 {
				wg.Go(func() {
					ctx, cancel := context.WithTimeout(testCtx(t), 2*time.Minute)
					defer cancel()
					if f.Kind == s3test.Stall {
						// A phone that gives up while the store stalls.
						ctx, cancel = context.WithTimeout(ctx, 300*time.Millisecond)
						defer cancel()
					}
					b := &lentBody{b: bytes.Clone(body), late: &late}
					err := s.Put(ctx, fmt.Sprintf("photos/fault-%s-%d", f.Kind, i), b, int64(len(body)), "image/jpeg")
					b.giveBack()
					if err != nil {
						failed.Add(1)
					}
				})
			}
			wg.Wait()
			rt.waitClosed(t)
			if n := late.Load(); n > 0 {
				t.Errorf("%d reads of bodies after their Put returned", n)
			}
			if failed.Load() != 16 {
				t.Errorf("%d of 16 Puts failed under %s, want all", failed.Load(), f.Kind)
			}
			if proxy.Count(f.Kind) == 0 {
				t.Errorf("the proxy applied no %s fault", f.Kind)
			}
			// Healthy again: the next Put is stored.
			proxy.Heal()
			key := "photos/after-" + f.Kind.String()
			if err := s.Put(testCtx(t), key, bytes.NewReader(body), int64(len(body)), "image/jpeg"); err != nil {
				t.Fatalf("Put after the fault healed: %v", err)
			}
			if _, err := s.Stat(testCtx(t), key); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestS3PutCancelledMidPut: on a healthy store, phones that give up while their photo is on
// its way to the store (the request's context ends mid-PUT) make Put return while the
// transport may still be sending the body. Under load, 48 Puts whose contexts end at random
// moments of their bodies: none is read after its Put returned, what Put acknowledged is
// stored whole, and what it refused left nothing or the whole object. Run under -race (make test does), a read
// after the return is also a data race on the lent bytes.
func TestS3PutCancelledMidPut(t *testing.T) {
	t.Parallel()
	_, cfg := s3test.NewStore(t)
	cfg.MaxRetries = 1
	rt := slowCloseTransport()
	cfg.Transport = rt
	s, err := imagestore.NewS3Store(testCtx(t), cfg)
	if err != nil {
		t.Fatal(err)
	}
	body := bytes.Repeat([]byte{0x3c, 0xc3, 0x5a, 0xa5}, 1<<20) // 4 MB: about 25 ms of lentBody reads
	var late, cancelled, midBody, stored atomic.Int64
	var wg sync.WaitGroup
	next := make(chan int)
	for range 16 {
		wg.Go(func() {
			for i := range next {
				ctx, cancel := context.WithCancel(testCtx(t))
				// From before the first read to after the last: most land with the body half sent.
				timer := time.AfterFunc(time.Duration(2+i*i*7%400)*time.Millisecond, cancel)
				b := &lentBody{b: bytes.Clone(body), late: &late}
				key := fmt.Sprintf("photos/cancelled-%02d", i)
				err := s.Put(ctx, key, b, int64(len(body)), "image/jpeg")
				b.mu.Lock()
				if err != nil && b.off > 0 && b.off < len(body) {
					midBody.Add(1)
				}
				b.mu.Unlock()
				b.giveBack()
				timer.Stop()
				cancel()
				info, serr := s.Stat(testCtx(t), key)
				switch {
				case err == nil:
					stored.Add(1)
					if serr != nil || info.Size != int64(len(body)) {
						t.Errorf("%s acknowledged, stored as %+v (%v)", key, info, serr)
					}
				case errors.Is(err, context.Canceled):
					// Cancelled after the last byte left, the PUT may still be stored (which
					// is why callers note an object before its Put): whole, never in part.
					cancelled.Add(1)
					if serr == nil && info.Size != int64(len(body)) || serr != nil && !errors.Is(serr, imagestore.ErrNotExist) {
						t.Errorf("%s refused (%v), and stored as %+v (%v)", key, err, info, serr)
					}
				default:
					t.Errorf("%s: %v, want success or context.Canceled", key, err)
				}
			}
		})
	}
	for i := range 48 {
		next <- i
	}
	close(next)
	wg.Wait()
	rt.waitClosed(t)
	if n := late.Load(); n > 0 {
		t.Errorf("%d reads of bodies after their Put returned", n)
	}
	if midBody.Load() == 0 {
		t.Error("no Put was cancelled with its body half sent: the case was not exercised")
	}
	t.Logf("48 Puts under load, cancelled at random: %d cancelled (%d with the body half sent), %d stored whole, no body read after its Put returned",
		cancelled.Load(), midBody.Load(), stored.Load())
}

// TestS3ProbeWrite: the write probe tells a store that takes the configured writes from one
// that refuses encrypted writes (MinIO without a KMS), one that refuses all writes, and one
// that cannot be reached, and leaves no probe object behind.
func TestS3ProbeWrite(t *testing.T) {
	t.Parallel()
	ok, cfg := s3test.NewStore(t)
	key := imagestore.NewProbeKey()
	if err := ok.ProbeWrite(testCtx(t), key); err != nil {
		t.Errorf("probe of a store with a KMS: %v", err)
	}
	if _, err := ok.Stat(testCtx(t), key); !errors.Is(err, imagestore.ErrNotExist) {
		t.Errorf("the probe object is left behind: %v", err)
	}

	noKMS := s3test.StartMinIOWithoutKMS(t)
	encrypted, err := imagestore.NewS3Store(testCtx(t), noKMS.Config("probe-sse"))
	if err != nil {
		t.Fatal(err)
	}
	if err := encrypted.ProbeWrite(testCtx(t), key); !errors.Is(err, imagestore.ErrEncryptedWritesRefused) {
		t.Errorf("probe with SSE of MinIO without a KMS = %v, want ErrEncryptedWritesRefused", err)
	}
	plainCfg := noKMS.Config("probe-plain")
	plainCfg.SSE = false
	plain, err := imagestore.NewS3Store(testCtx(t), plainCfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := plain.ProbeWrite(testCtx(t), key); err != nil {
		t.Errorf("probe without SSE of MinIO without a KMS: %v", err)
	}

	proxy := s3test.NewFaultProxy(t, cfg.Endpoint)
	pcfg := proxy.Config(cfg)
	pcfg.MaxRetries = 1
	denied, err := imagestore.NewS3Store(testCtx(t), pcfg)
	if err != nil {
		t.Fatal(err)
	}
	proxy.Always(s3test.Fault{Kind: s3test.AccessDenied})
	if err := denied.ProbeWrite(testCtx(t), key); !errors.Is(err, imagestore.ErrWritesRefused) || errors.Is(err, imagestore.ErrEncryptedWritesRefused) {
		t.Errorf("probe of a store that refuses every write = %v, want ErrWritesRefused only", err)
	}

	noKMS.Stop(t)
	if err := encrypted.ProbeWrite(testCtx(t), key); err == nil || errors.Is(err, imagestore.ErrWritesRefused) || errors.Is(err, imagestore.ErrEncryptedWritesRefused) {
		t.Errorf("probe of a stopped store = %v, want an error of reaching it", err)
	}
	if err := encrypted.ProbeWrite(testCtx(t), "photos/x"); !errors.Is(err, imagestore.ErrInvalidKey) {
		t.Errorf("probe outside the probe prefix = %v, want ErrInvalidKey", err)
	}
}
