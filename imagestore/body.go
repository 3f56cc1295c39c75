package imagestore

import (
	"errors"
	"io"
	"sync"
)

// errBodyReleased is what the HTTP transport reads from a body whose Put has returned.
var errBodyReleased = errors.New("imagestore: the body's Put has returned; its bytes are no longer available")

// bodyGuard stands between the caller's reader and the HTTP transport that sends it.
//
// net/http may go on reading a request body after RoundTrip has returned: a server that
// answers a PUT with an error before reading its body (503 SlowDown, a KMS or quota error), or
// a request context that ends mid-PUT, makes minio-go return while the transport's write loop
// is still copying the body to the socket in its own goroutine. The caller's bytes (chunks lent
// from a pool, a temp file) are released as soon as Put returns, and would be read after their
// release: a crash on a nil chunk, or another family's bytes on this request's socket.
//
// release, called before Put returns, waits for a Read in progress and makes every later Read
// fail without touching the caller's reader: once Put has returned, nothing reads r again, so
// the caller may give its memory back at once. The transport then fails its write and closes
// the connection, which is what it does for any body that fails.
type bodyGuard struct {
	mu       sync.Mutex
	r        io.Reader
	released bool
}

func newBodyGuard(r io.Reader) *bodyGuard { return &bodyGuard{r: r} }

func (g *bodyGuard) Read(p []byte) (int, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.released {
		return 0, errBodyReleased
	}
	return g.r.Read(p)
}

// release ends every use of the caller's reader. Reads of r do not block for long (memory, a
// local file, or a pipe read by the caller's own goroutine), so neither does release.
func (g *bodyGuard) release() {
	g.mu.Lock()
	g.released, g.r = true, nil
	g.mu.Unlock()
}
