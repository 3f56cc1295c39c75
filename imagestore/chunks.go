package imagestore

import (
	"context"
	"errors"
	"io"
	"sync"
)

// ChunkSize is the size of the memory chunks that hold an image on its way through the
// sanitizer (an upload before it is stored, a stored photo on its way into an export): chunks
// of one size can be reused from image to image, and no image needs one large allocation.
const ChunkSize = 256 << 10

// ErrChunksFull means more bytes were written to Chunks than its chunks hold.
var ErrChunksFull = errors.New("imagestore: more bytes than the chunks hold")

// Chunks holds bytes in ChunkSize chunks given by the caller: written once, in order, then
// read at will through ReadAt (the sanitizer's input). It allocates nothing.
type Chunks struct {
	bufs [][]byte
	n    int64
}

// NewChunks returns an empty Chunks over bufs, each ChunkSize bytes long.
func NewChunks(bufs [][]byte) *Chunks { return &Chunks{bufs: bufs} }

// Add appends an empty chunk (ChunkSize bytes) to write into.
func (c *Chunks) Add(buf []byte) { c.bufs = append(c.bufs, buf) }

// Len is the number of bytes written.
func (c *Chunks) Len() int64 { return c.n }

// Bufs returns the chunks, to be given back to whoever lent them once the bytes are no
// longer needed.
func (c *Chunks) Bufs() [][]byte { return c.bufs }

// Write appends p, or fails with ErrChunksFull (having written what fits) when it does not fit.
func (c *Chunks) Write(p []byte) (int, error) {
	written := 0
	for len(p) > 0 {
		i, off := int(c.n/ChunkSize), int(c.n%ChunkSize)
		if i == len(c.bufs) {
			return written, ErrChunksFull
		}
		m := copy(c.bufs[i][off:], p)
		p, c.n, written = p[m:], c.n+int64(m), written+m
	}
	return written, nil
}

// ReadFrom appends r's bytes until io.EOF, reading straight into the chunks; it fails with
// ErrChunksFull when r has more than they hold.
func (c *Chunks) ReadFrom(r io.Reader) (int64, error) {
	start := c.n
	for {
		i, off := int(c.n/ChunkSize), int(c.n%ChunkSize)
		if i == len(c.bufs) {
			var probe [1]byte
			if m, err := io.ReadFull(r, probe[:]); m == 0 && (err == io.EOF || err == io.ErrUnexpectedEOF) {
				return c.n - start, nil
			} else if err != nil && m == 0 {
				return c.n - start, err
			}
			return c.n - start, ErrChunksFull
		}
		m, err := r.Read(c.bufs[i][off:])
		c.n += int64(m)
		if err == io.EOF {
			return c.n - start, nil
		}
		if err != nil {
			return c.n - start, err
		}
	}
}

// ReadAt reads the bytes written, as io.ReaderAt asks.
func (c *Chunks) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, errors.New("imagestore: negative offset")
	}
	read := 0
	for len(p) > 0 {
		if off >= c.n {
			return read, io.EOF
		}
		i, at := int(off/ChunkSize), int(off%ChunkSize)
		m := copy(p, c.bufs[i][at:min(ChunkSize, at+int(c.n-off))])
		p, off, read = p[m:], off+int64(m), read+m
	}
	return read, nil
}

// ChunkPool lends ChunkSize chunks up to a budget, reusing the chunks given back: a bound on
// the memory that images in flight hold, however many there are.
type ChunkPool struct {
	mu    sync.Mutex
	avail int      // chunks that may still be lent
	free  [][]byte // chunks allocated and not lent
	freed chan struct{}
}

// NewChunkPool returns a pool that lends at most budget bytes of chunks at once.
func NewChunkPool(budget int64) *ChunkPool {
	return &ChunkPool{avail: int(budget / ChunkSize), freed: make(chan struct{}, 1)}
}

// TryTake lends n chunks if the budget allows, else none (nil).
func (p *ChunkPool) TryTake(n int) [][]byte {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.avail < n {
		return nil
	}
	p.avail -= n
	out := make([][]byte, n)
	for i := range out {
		if k := len(p.free); k > 0 {
			out[i], p.free = p.free[k-1], p.free[:k-1]
		} else {
			out[i] = make([]byte, ChunkSize)
		}
	}
	return out
}

// Take lends n chunks, waiting until the budget allows, or fails when ctx ends. With one
// taker, chunks given back in the order they were taken, no taker waits for ever.
func (p *ChunkPool) Take(ctx context.Context, n int) ([][]byte, error) {
	for {
		if out := p.TryTake(n); out != nil || n == 0 {
			return out, nil
		}
		select {
		case <-p.freed:
		case <-ctx.Done():
			return nil, context.Cause(ctx)
		}
	}
}

// Give returns lent chunks to the pool.
func (p *ChunkPool) Give(bufs [][]byte) {
	p.mu.Lock()
	p.avail += len(bufs)
	p.free = append(p.free, bufs...)
	p.mu.Unlock()
	select {
	case p.freed <- struct{}{}:
	default:
	}
}

// Available is how many chunks the pool may still lend.
func (p *ChunkPool) Available() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.avail
}
