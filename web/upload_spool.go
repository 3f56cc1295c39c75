package web

import (
	"io"
	"os"

	"github.com/dermfollow/dermfollow/imagestore"
)

// uploadMemoryBudget bounds the memory that the uploads being received hold at once. An upload is
// held whole until it is sanitized and stored (the sanitizer reads it twice: to plan, then to
// copy), in chunks of this budget while it lasts; an upload that finds it spent goes on in a
// temp file. Writing every upload to a temp file and reading it back cost as much CPU as
// everything else the upload path does (make bench's ingest); 64 MiB holds sixteen
// typical phone photos, and keeps 16 concurrent 20 MB uploads far inside the upload memory
// target (the rest of them spill to disk).
const uploadMemoryBudget = 64 << 20

// spool is one upload's bytes on their way to the sanitizer: in memory chunks from the
// server's budget, or, once that is spent, in an unnamed temp file.
type spool struct {
	pool   *imagestore.ChunkPool
	chunks *imagestore.Chunks
	file   *os.File
}

func newSpool(pool *imagestore.ChunkPool) *spool {
	return &spool{pool: pool, chunks: imagestore.NewChunks(nil)}
}

// readError is an error of the upload's reader (the client's body), as opposed to the spool's.
type readError struct{ err error }

func (e readError) Error() string { return e.err.Error() }
func (e readError) Unwrap() error { return e.err }

type taggedReader struct{ r io.Reader }

func (t taggedReader) Read(p []byte) (int, error) {
	n, err := t.r.Read(p)
	if err != nil && err != io.EOF {
		err = readError{err}
	}
	return n, err
}

// fill reads r to its end and returns the spool's size. Errors of r come back as readError.
func (sp *spool) fill(r io.Reader) (int64, error) {
	r = taggedReader{r}
	for sp.file == nil {
		bufs := sp.pool.TryTake(1)
		if bufs == nil {
			if err := sp.spill(); err != nil {
				return 0, err
			}
			break
		}
		sp.chunks.Add(bufs[0])
		n, err := sp.chunks.ReadFrom(io.LimitReader(r, imagestore.ChunkSize))
		if err != nil || n < imagestore.ChunkSize {
			return sp.chunks.Len(), err
		}
	}
	if _, err := io.Copy(sp.file, r); err != nil {
		return 0, err
	}
	return sp.size()
}

// spill moves what is in memory to a temp file, which takes the rest.
func (sp *spool) spill() error {
	f, err := os.CreateTemp("", "dermfollow-upload-*")
	if err != nil {
		return err
	}
	os.Remove(f.Name()) // unnamed: nothing is left behind, whatever happens to the process
	sp.file = f
	if _, err := io.Copy(f, io.NewSectionReader(sp.chunks, 0, sp.chunks.Len())); err != nil {
		return err
	}
	sp.pool.Give(sp.chunks.Bufs())
	sp.chunks = nil
	return nil
}

func (sp *spool) size() (int64, error) {
	if sp.file == nil {
		return sp.chunks.Len(), nil
	}
	fi, err := sp.file.Stat()
	if err != nil {
		return 0, err
	}
	return fi.Size(), nil
}

func (sp *spool) ReadAt(p []byte, off int64) (int, error) {
	if sp.file != nil {
		return sp.file.ReadAt(p, off)
	}
	return sp.chunks.ReadAt(p, off)
}

// close gives the memory back and closes the file.
func (sp *spool) close() error {
	if sp.chunks != nil {
		sp.pool.Give(sp.chunks.Bufs())
		sp.chunks = nil
	}
	if sp.file != nil {
		return sp.file.Close()
	}
	return nil
}
