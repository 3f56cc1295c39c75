package web

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/google/uuid"
	tusd "github.com/tus/tusd/v2/pkg/handler"

	"github.com/dermfollow/dermfollow/followup"
	"github.com/dermfollow/dermfollow/followup/staging"
	"github.com/dermfollow/dermfollow/imagestore"
)

// Receiving a PATCH. Its bytes go into spools (upload_spool.go: memory from the upload budget,
// else a temp file), a part at a time, and each part is staged in the store (a segment) once
// it holds stageMin bytes and stageEvery has passed since the last one was, or when it reaches
// stageMax: a connection that is cut, or a server that dies, costs the phone at most the bytes
// of the last second or so, while a fast link's photo arrives whole before anything is staged
// and goes straight to AddPhoto from memory, as a one-request upload does. The first
// headCheckLen bytes of an upload are one part, checked with imagestore.CheckHead before
// anything more is read or staged, so that a photo that cannot be taken is refused after its
// first bytes, not its last; when a connection is cut before they are all in, what came is
// checked and staged, and the next request reads it back to check them together.
const (
	headCheckLen = 256 << 10
	stageMin     = 32 << 10
	stageMax     = 8 << 20
	stageEvery   = time.Second
	// finishTimeout bounds storing a photo whose bytes are all in, detached from the request:
	// a phone that gives up after its last byte still gets its photo stored.
	finishTimeout = 3 * time.Minute
)

// receipt is what one PATCH received: its parts from offset start, and how far they are staged.
type receipt struct {
	up    *tusUpload
	start int64
	parts []*spool
	sizes []int64
	// queued parts are staged, in order, by one goroutine at a time.
	queued   int
	mu       sync.Mutex
	stagedTo int64
	err      error
	flushing sync.WaitGroup
	work     chan int
	// complete: every byte of the upload is in hand (staged or in parts).
	complete bool
}

func (rc *receipt) size() int64 {
	var n int64
	for _, s := range rc.sizes {
		n += s
	}
	return n
}

// stage queues the parts not yet queued for staging.
func (rc *receipt) stage() {
	if rc.work == nil {
		rc.work = make(chan int, 1024)
		go rc.stager()
	}
	for ; rc.queued < len(rc.parts); rc.queued++ {
		rc.flushing.Add(1)
		rc.work <- rc.queued
	}
}

// stager stages queued parts in order until one fails; the rest are then skipped.
func (rc *receipt) stager() {
	st := rc.up.r.staging()
	off := rc.start
	for i := range rc.work {
		rc.mu.Lock()
		failed := rc.err != nil
		rc.mu.Unlock()
		if !failed {
			n := rc.sizes[i]
			err := st.StageSegment(context.Background(), rc.up.u.ID, rc.up.call.lock.token, off, io.NewSectionReader(rc.parts[i], 0, n), n)
			rc.mu.Lock()
			if err != nil {
				rc.err = err
			} else {
				off += n
				rc.stagedTo = off
			}
			rc.mu.Unlock()
		}
		rc.flushing.Done()
	}
}

// wait waits for the queued parts and returns how far the upload is staged, and the first
// failure.
func (rc *receipt) wait() (int64, error) {
	rc.flushing.Wait()
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return rc.stagedTo, rc.err
}

func (rc *receipt) failed() error {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return rc.err
}

// close ends the stager and gives the parts' memory back, once nothing reads them.
func (rc *receipt) close() {
	rc.flushing.Wait()
	if rc.work != nil {
		close(rc.work)
		rc.work = nil
	}
	for _, p := range rc.parts {
		p.close()
	}
	rc.parts = nil
}

// cutReader ends a part: at max bytes, or at min once every has passed since the last part
// was staged, or once stop says so. eof reports that the body itself ended.
type cutReader struct {
	r        io.Reader
	n        int64
	min, max int64
	since    time.Time
	every    time.Duration
	stop     func() bool
	eof      bool
}

func (c *cutReader) Read(p []byte) (int, error) {
	if c.n >= c.max || c.n >= c.min && time.Since(c.since) >= c.every || c.n > 0 && c.stop() {
		return 0, io.EOF
	}
	if int64(len(p)) > c.max-c.n {
		p = p[:c.max-c.n]
	}
	n, err := c.r.Read(p)
	c.n += int64(n)
	if err != nil {
		c.eof = true
	}
	return n, err
}

// WriteChunk receives a PATCH's body (tusd has checked its offset and bounded its length).
// It returns the bytes it staged, or, once the upload is complete, every byte received: the
// photo is then stored by finishHook, from the parts in memory.
func (up *tusUpload) WriteChunk(ctx context.Context, offset int64, src io.Reader) (int64, error) {
	call := up.call
	if call.lock == nil || offset != up.u.Offset {
		return 0, tusError(call, fmt.Errorf("web: write of upload %s without its lock", up.u.ID))
	}
	rc := &receipt{up: up, start: offset, stagedTo: offset}
	call.recv = rc
	size := up.u.Size
	headLen := min(headCheckLen, size)
	// An upload cut before its first bytes were all in: they are read back, so that the check
	// sees them together.
	var prefix []byte
	if offset > 0 && offset < headLen {
		sp, err := up.r.readStaged(ctx, up.u.ID, offset)
		if err != nil {
			return 0, tusError(call, err)
		}
		prefix = make([]byte, offset)
		_, err = sp.ReadAt(prefix, 0)
		sp.close()
		if err != nil && !errors.Is(err, io.EOF) {
			return 0, tusError(call, err)
		}
	}
	at := offset
	lastStaged := time.Now()
	for at < size {
		cr := &cutReader{r: src, min: stageMin, max: min(stageMax, size-at), since: lastStaged, every: stageEvery,
			stop: up.r.s.draining.Load}
		head := at < headLen
		if head {
			cr.max = headLen - at
			cr.min = cr.max
		}
		sp := newSpool(up.r.s.uploadMemory)
		n, err := sp.fill(cr)
		if err != nil {
			sp.close()
			staged, _ := rc.wait()
			return staged - offset, tusError(call, err)
		}
		if n == 0 {
			sp.close()
			break
		}
		rc.parts, rc.sizes = append(rc.parts, sp), append(rc.sizes, n)
		at += n
		if head {
			if err := up.checkHead(prefix, sp, n); err != nil {
				return 0, err
			}
		}
		if cr.eof || at == size {
			break
		}
		if err := rc.failed(); err != nil {
			break
		}
		if up.r.s.draining.Load() {
			// The server is stopping: what came is staged and the request ends, so that the
			// phone goes on with another server rather than be cut at the shutdown.
			break
		}
		if time.Since(lastStaged) >= stageEvery || rc.size()-(rc.stagedTo-offset) >= stageMax {
			rc.stage()
			lastStaged = time.Now()
		}
	}
	if at == size && rc.failed() == nil {
		rc.complete = true
		return size - offset, nil
	}
	rc.stage()
	staged, err := rc.wait()
	if err != nil {
		return staged - offset, tusError(call, err)
	}
	return staged - offset, nil
}

// checkHead refuses the upload from its first bytes (those staged before, prefix, and the n
// of sp) when the sanitizer would refuse it whole.
func (up *tusUpload) checkHead(prefix []byte, sp *spool, n int64) error {
	head := make([]byte, int64(len(prefix))+n)
	copy(head, prefix)
	if _, err := sp.ReadAt(head[len(prefix):], 0); err != nil && !errors.Is(err, io.EOF) {
		return tusError(up.call, err)
	}
	err := imagestore.CheckHead(head, up.u.Size, up.r.s.limits)
	if err == nil {
		return nil
	}
	if rerr := up.r.staging().Refused(context.Background(), up.u.ID, staging.Refusal(err)); rerr != nil {
		logger(up.call.log.c).Warn("resumable upload: refusal not recorded", "error", rerr.Error())
	}
	return tusError(up.call, err)
}

// finishHook is tusd's PreFinishResponseCallback: the last byte is in, and the photo goes
// through the one path every upload takes. Its answer carries the photo, or the refusal.
func (r *resumableUploads) finishHook(hook tusd.HookEvent) (tusd.HTTPResponse, error) {
	call := callFrom(hook.Context)
	if call == nil || call.recv == nil || !call.recv.complete {
		return tusd.HTTPResponse{}, tusd.ErrNotFound
	}
	p, err := r.finish(hook.Context, call, call.recv)
	if err != nil {
		return tusd.HTTPResponse{}, tusError(call, err)
	}
	body, _ := json.Marshal(p)
	return tusd.HTTPResponse{StatusCode: http.StatusOK, Body: string(body),
		Header: tusd.HTTPHeader{"Content-Type": "application/json", photoIDHeader: p.ID.String()}}, nil
}

// finish stores the photo of an upload whose bytes are all in: the staged ones (read back, for
// an upload resumed from an offset) and the parts this request received. Once the photo is
// stored or refused for good, the staged bytes go; when storing fails for now (the store is
// down), the rest of the bytes are staged, so that a retry (HEAD) finishes it from staging.
func (r *resumableUploads) finish(ctx context.Context, call *resumableCall, rc *receipt) (followup.Photo, error) {
	u := call.staged
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), finishTimeout)
	defer cancel()
	src := &concatReaderAt{}
	if rc.start > 0 {
		sp, err := r.readStaged(ctx, u.ID, rc.start)
		if err != nil {
			return followup.Photo{}, err
		}
		defer sp.close()
		src.add(sp, rc.start)
	}
	for i, p := range rc.parts {
		src.add(p, rc.sizes[i])
	}
	p, err := r.addPhoto(ctx, call, src, u.Size)
	if err != nil && !finalRefusal(err) {
		rc.stage()
	}
	rc.wait()
	r.ended(ctx, call, p, err)
	return p, err
}

// finishStaged stores the photo of an upload whose bytes are all staged (an earlier finish
// failed for now): a HEAD or PATCH of it tries again, under the upload's lock.
func (r *resumableUploads) finishStaged(ctx context.Context, call *resumableCall) (followup.Photo, error) {
	u := call.staged
	lock := &tusLock{r: r, id: u.ID}
	lctx, cancel := context.WithTimeout(context.WithValue(ctx, callKey{}, call), 15*time.Second)
	err := lock.Lock(lctx, func() {})
	cancel()
	if err != nil {
		return followup.Photo{}, err
	}
	defer lock.Unlock()
	ctx, cancel = context.WithTimeout(context.WithoutCancel(ctx), finishTimeout)
	defer cancel()
	again, err := r.staging().Staged(ctx, call.actor, call.session, u.ID)
	if err != nil {
		return followup.Photo{}, err
	}
	if again.Ended() { // another request finished it meanwhile
		call.staged = again
		if again.Refusal != "" {
			return followup.Photo{}, refusalError(again.Refusal, call.lang)
		}
		return followup.Photo{ID: *again.PhotoID}, nil
	}
	sp, err := r.readStaged(ctx, u.ID, u.Size)
	if err != nil {
		return followup.Photo{}, err
	}
	defer sp.close()
	p, err := r.addPhoto(ctx, call, sp, u.Size)
	r.ended(ctx, call, p, err)
	return p, err
}

func (r *resumableUploads) addPhoto(ctx context.Context, call *resumableCall, src io.ReaderAt, size int64) (followup.Photo, error) {
	u := call.staged
	p, _, err := r.s.svc.AddPhoto(ctx, call.actor, u.ProcedureID, u.Photo, src, size, r.s.limits)
	return p, err
}

// ended records the outcome of a finish: stored (the staged bytes go), refused for good (they
// go too), or neither (they stay, for a retry).
func (r *resumableUploads) ended(ctx context.Context, call *resumableCall, p followup.Photo, err error) {
	var rerr error
	switch {
	case err == nil:
		rerr = r.staging().Stored(ctx, call.staged.ID, p.ID)
	case finalRefusal(err):
		rerr = r.staging().Refused(ctx, call.staged.ID, staging.Refusal(err))
	}
	if rerr != nil {
		logger(call.log.c).Warn("resumable upload: outcome not recorded; the staged bytes go at the next try or at expiry",
			"error", rerr.Error())
	}
}

// finalRefusal reports whether err refuses the photo for good: a retry would be refused the
// same (too large, not a photo it can take, a step that does not take it, a follow-up that
// has ended). Quotas, failures of the server and lost sessions are not.
func finalRefusal(err error) bool {
	switch status, _ := errorResponse(err, "en"); status {
	case http.StatusRequestEntityTooLarge, http.StatusUnsupportedMediaType, http.StatusUnprocessableEntity, http.StatusConflict:
		return !errors.Is(err, staging.ErrLeaseLost)
	}
	return false
}

// readStaged reads an upload's first n staged bytes into a spool.
func (r *resumableUploads) readStaged(ctx context.Context, id uuid.UUID, n int64) (*spool, error) {
	rd, err := r.staging().OpenStaged(ctx, id, n)
	if err != nil {
		return nil, err
	}
	defer rd.Close()
	sp := newSpool(r.s.uploadMemory)
	got, err := sp.fill(rd)
	if err == nil && got != n {
		err = fmt.Errorf("web: read %d staged bytes, want %d", got, n)
	}
	if err != nil {
		sp.close()
		return nil, followup.StoreUnavailable(err)
	}
	return sp, nil
}

// concatReaderAt reads parts one after another as one file.
type concatReaderAt struct {
	parts []io.ReaderAt
	ends  []int64
}

func (c *concatReaderAt) add(r io.ReaderAt, n int64) {
	var end int64
	if len(c.ends) > 0 {
		end = c.ends[len(c.ends)-1]
	}
	c.parts, c.ends = append(c.parts, r), append(c.ends, end+n)
}

func (c *concatReaderAt) ReadAt(p []byte, off int64) (int, error) {
	read := 0
	for i, end := range c.ends {
		if len(p) == 0 {
			return read, nil
		}
		if off >= end {
			continue
		}
		start := end
		if i > 0 {
			start = c.ends[i-1]
		} else {
			start = 0
		}
		n := min(int64(len(p)), end-off)
		m, err := c.parts[i].ReadAt(p[:n], off-start)
		read += m
		if err != nil && !(errors.Is(err, io.EOF) && int64(m) == n) {
			return read, err
		}
		p, off = p[n:], off+n
	}
	if len(p) > 0 {
		return read, io.EOF
	}
	return read, nil
}
