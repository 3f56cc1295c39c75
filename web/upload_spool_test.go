package web

import (
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"testing"
	"testing/iotest"

	"github.com/dermfollow/dermfollow/imagestore"
)

// TestSpool: an upload is held in memory while the budget lasts and moves to a temp file,
// whole, when it runs out; either way it reads back byte for byte, and closing gives every
// chunk back.
func TestSpool(t *testing.T) {
	t.Parallel()
	const cs = imagestore.ChunkSize
	pool := imagestore.NewChunkPool(2 * cs)
	for _, size := range []int{0, 1, cs, cs + 7, 2 * cs, 2*cs + 1, 3*cs + 100} {
		want := make([]byte, size)
		rand.NewChaCha8([32]byte{byte(size)}).Read(want)
		sp := newSpool(pool)
		n, err := sp.fill(iotest.HalfReader(bytes.NewReader(want)))
		if err != nil || n != int64(size) {
			t.Fatalf("fill %d bytes = %d, %v", size, n, err)
		}
		inMemory := sp.file == nil
		if wantMemory := size < 2*cs; inMemory != wantMemory {
			t.Errorf("%d bytes with a budget of %d: in memory %v, want %v", size, 2*cs, inMemory, wantMemory)
		}
		got, err := io.ReadAll(io.NewSectionReader(sp, 0, n))
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("%d bytes: read back %d, %v", size, len(got), err)
		}
		if err := sp.close(); err != nil {
			t.Error(err)
		}
		if avail := pool.Available(); avail != 2 {
			t.Fatalf("after %d bytes, %d chunks available, want 2", size, avail)
		}
	}
	// A spool that finds the budget spent starts in a file.
	held := pool.TryTake(2)
	sp := newSpool(pool)
	if _, err := sp.fill(bytes.NewReader([]byte("photo"))); err != nil || sp.file == nil {
		t.Errorf("with no memory left: %v, file %v", err, sp.file != nil)
	}
	sp.close()
	pool.Give(held)
	// The client's errors are told apart from the spool's.
	broken := errors.New("connection reset")
	sp = newSpool(pool)
	_, err := sp.fill(io.MultiReader(bytes.NewReader(make([]byte, cs+3)), iotest.ErrReader(broken)))
	var re readError
	if !errors.As(err, &re) || !errors.Is(err, broken) {
		t.Errorf("fill from a failing client = %v, want a readError", err)
	}
	sp.close()
	if pool.Available() != 2 {
		t.Errorf("%d chunks available after a failed fill, want 2", pool.Available())
	}
}
