package imagestore_test

import (
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"testing"
	"testing/iotest"

	"github.com/dermfollow/dermfollow/imagestore"
)

func TestChunks(t *testing.T) {
	t.Parallel()
	const cs = imagestore.ChunkSize
	for _, size := range []int64{0, 1, cs - 1, cs, cs + 1, 3*cs + 17} {
		n := int((size + cs - 1) / cs)
		bufs := make([][]byte, n)
		for i := range bufs {
			bufs[i] = make([]byte, cs)
		}
		want := make([]byte, size)
		rand.NewChaCha8([32]byte{byte(size)}).Read(want)
		for _, how := range []string{"ReadFrom", "Write"} {
			c := imagestore.NewChunks(bufs)
			var err error
			if how == "ReadFrom" {
				_, err = c.ReadFrom(iotest.HalfReader(bytes.NewReader(want)))
			} else {
				_, err = io.Copy(struct{ io.Writer }{c}, iotest.OneByteReader(bytes.NewReader(want)))
			}
			if err != nil || c.Len() != size {
				t.Fatalf("%s of %d bytes: %d, %v", how, size, c.Len(), err)
			}
			got, err := io.ReadAll(io.NewSectionReader(c, 0, size+10))
			if err != nil || !bytes.Equal(got, want) {
				t.Errorf("%s size %d: read back %d bytes, %v", how, size, len(got), err)
			}
			if size > 10 {
				p := make([]byte, 10)
				if m, err := c.ReadAt(p, size-5); m != 5 || err != io.EOF || !bytes.Equal(p[:5], want[size-5:]) {
					t.Errorf("%s size %d: ReadAt over the end = %d, %v", how, size, m, err)
				}
			}
		}
		// One byte more than the chunks hold is refused, never written past them.
		over := make([]byte, int64(n)*cs+1)
		if _, err := imagestore.NewChunks(bufs).ReadFrom(bytes.NewReader(over)); !errors.Is(err, imagestore.ErrChunksFull) {
			t.Errorf("size %d: ReadFrom of more than the chunks hold = %v", size, err)
		}
		if _, err := imagestore.NewChunks(bufs).Write(over); !errors.Is(err, imagestore.ErrChunksFull) {
			t.Errorf("size %d: Write of more than the chunks hold = %v", size, err)
		}
	}
	if _, err := imagestore.NewChunks(nil).ReadAt(make([]byte, 1), -1); err == nil {
		t.Error("ReadAt at a negative offset succeeded")
	}
}
