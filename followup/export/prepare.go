package export

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"os"

	"github.com/dermfollow/dermfollow/followup"
	"github.com/dermfollow/dermfollow/imagestore"
)

// preparePhoto reads a stored photo (into chunks, the memory reserved for it, or else into a
// temp file), checks it is the photo that was stored, sanitizes it again, verifies and hashes
// the result. A photo that is missing, changed or fails the sanitizer or the verifier is left
// out (excluded); a store that cannot be reached stops the export, so that no photo is
// silently missing for a passing reason.
func (s *Service) preparePhoto(ctx context.Context, it exportItem, chunks [][]byte) (p prepared) {
	if err := ctx.Err(); err != nil {
		return prepared{err: err}
	}
	r, _, err := s.store.Open(ctx, it.objectKey)
	if errors.Is(err, imagestore.ErrNotExist) {
		return prepared{excluded: "missing"}
	}
	if err != nil {
		return prepared{err: followup.StoreUnavailable(err)}
	}
	defer r.Close()
	var src io.ReaderAt
	var spool *os.File
	defer func() {
		if p.clean == nil && spool != nil {
			spool.Close()
		}
	}()
	h := sha256.New()
	var n int64
	// One byte more than the row says: a larger object is a changed one, never read whole.
	body := io.LimitReader(r, it.size+1)
	if int64(len(chunks))*exportChunk > it.size {
		f := imagestore.NewChunks(chunks)
		n, err = f.ReadFrom(io.TeeReader(body, h))
		src = f
	} else {
		if spool, err = os.CreateTemp("", "dermfollow-export-photo-*"); err != nil {
			return prepared{err: err}
		}
		os.Remove(spool.Name())
		n, err = io.Copy(io.MultiWriter(spool, h), body)
		src = spool
	}
	if errors.Is(err, imagestore.ErrNotExist) {
		return prepared{excluded: "missing"}
	}
	if err != nil {
		return prepared{err: followup.StoreUnavailable(err)}
	}
	if n != it.size || !bytes.Equal(h.Sum(nil), it.sha256) {
		return prepared{excluded: "changed"}
	}
	lim := imagestore.DefaultLimits()
	lim.MaxBytes = max(lim.MaxBytes, n) // the upload limit may have been raised since
	clean, err := imagestore.Sanitize(src, n, lim)
	if err != nil {
		var re *imagestore.RejectError
		if errors.As(err, &re) && re.Reason == imagestore.ReasonUnclean {
			return prepared{excluded: "verifier"}
		}
		if errors.As(err, &re) {
			return prepared{excluded: "sanitizer"}
		}
		return prepared{err: err}
	}
	// Sanitize has run imagestore.Verify, the independent verifier, over exactly the bytes
	// clean.NewReader gives (src is ours alone and does not change), and refused them
	// (ReasonUnclean, left out above) if anything outside the allowlist remained.
	// The manifest's SHA-256 is taken here, by the worker, to spare the writer a pass. A
	// stored photo was sanitized on upload, so the sanitizer usually gives its bytes back
	// unchanged: then it is the SHA-256 just checked, and a comparison (far cheaper than a
	// hash) stands in for a second hash.
	if clean.Size() == n {
		same, err := sameBytes(clean.NewReader(), io.NewSectionReader(src, 0, n))
		if err != nil {
			return prepared{err: err}
		}
		if same {
			return prepared{spool: spool, clean: clean, sum: hex.EncodeToString(it.sha256)}
		}
	}
	sum := sha256.New()
	if _, err := io.Copy(sum, clean.NewReader()); err != nil {
		return prepared{err: err}
	}
	return prepared{spool: spool, clean: clean, sum: hex.EncodeToString(sum.Sum(nil))}
}

// sameBytes reports whether a and b give the same bytes.
func sameBytes(a, b io.Reader) (bool, error) {
	var bufA, bufB [32 << 10]byte
	for {
		na, errA := io.ReadFull(a, bufA[:])
		nb, errB := io.ReadFull(b, bufB[:])
		endA := errA == io.EOF || errA == io.ErrUnexpectedEOF
		endB := errB == io.EOF || errB == io.ErrUnexpectedEOF
		switch {
		case errA != nil && !endA:
			return false, errA
		case errB != nil && !endB:
			return false, errB
		case na != nb || !bytes.Equal(bufA[:na], bufB[:nb]):
			return false, nil
		case endA || endB:
			return endA == endB, nil
		}
	}
}
