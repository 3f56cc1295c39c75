package imagestore

import (
	"errors"
	"io"
)

// CheckHead tells from the first bytes of a file that is to be size bytes long whether the
// sanitizer will refuse it, before the rest has arrived: a resumable upload refuses a HEIC, a
// declared size over the limit, pixel dimensions over the limits or a broken header at once,
// rather than after the phone has sent every byte. It returns the *RejectError that Sanitize
// would return, or nil when head does not decide: the file may still be refused once it is
// whole, never the other way round.
//
// It runs the sanitizer's own planner over head, with every read past head failing; a refusal
// the planner reaches without such a read depends on head and size alone.
func CheckHead(head []byte, size int64, lim Limits) error {
	if int64(len(head)) > size {
		head = head[:size]
	}
	_, err := plan(headReader(head), size, lim)
	var re *RejectError
	if errors.As(err, &re) {
		return re
	}
	return nil
}

// errBeyondHead is a read past the bytes CheckHead was given.
var errBeyondHead = errors.New("imagestore: read beyond the first bytes")

// headReader reads the first bytes of a file and fails every read beyond them with
// errBeyondHead (never io.EOF, which the planner would take for a truncated file).
type headReader []byte

func (h headReader) ReadAt(p []byte, off int64) (int, error) {
	if off >= int64(len(h)) {
		return 0, errBeyondHead
	}
	n := copy(p, h[off:])
	if n < len(p) {
		return n, errBeyondHead
	}
	return n, nil
}

var _ io.ReaderAt = headReader(nil)
