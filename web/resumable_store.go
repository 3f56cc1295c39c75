package web

import (
	"context"
	"errors"
	"io"
	"net/http"
	"time"

	"github.com/google/uuid"
	tusd "github.com/tus/tusd/v2/pkg/handler"

	"github.com/dermfollow/dermfollow/followup"
	"github.com/dermfollow/dermfollow/followup/staging"
)

// tusd's data store and locker over the follow-up core's staged uploads. Each call finds the
// request's caller in its context (resumable.go); without one (a request that did not come
// through resumableUploads) every upload is not found.

type tusStore struct{ r *resumableUploads }

var (
	_ tusd.DataStore           = tusStore{}
	_ tusd.TerminaterDataStore = tusStore{}
	_ tusd.Locker              = tusLocker{}
)

func (ts tusStore) NewUpload(ctx context.Context, info tusd.FileInfo) (tusd.Upload, error) {
	call := callFrom(ctx)
	if call == nil {
		return nil, tusd.ErrNotFound
	}
	u, err := ts.r.staging().CreateStaged(ctx, call.actor, call.session, call.create, info.Size, ts.r.s.limits)
	if err != nil {
		return nil, tusError(call, err)
	}
	call.staged = u
	h := call.w.Header()
	h.Set("Upload-Expires", u.ExpiresAt.UTC().Format(http.TimeFormat))
	if u.PhotoID != nil {
		// An earlier try of this upload_id stored its photo: the upload is complete already.
		h.Set(photoIDHeader, u.PhotoID.String())
	}
	return &tusUpload{r: ts.r, call: call, u: u}, nil
}

func (ts tusStore) GetUpload(ctx context.Context, id string) (tusd.Upload, error) {
	call := callFrom(ctx)
	uid, err := uuid.Parse(id)
	if call == nil || err != nil {
		return nil, tusd.ErrNotFound
	}
	// Read again: the lock is held now, and the offset is the one to write at.
	u, err := ts.r.staging().Staged(ctx, call.actor, call.session, uid)
	if err != nil {
		return nil, tusError(call, err)
	}
	call.staged = u
	return &tusUpload{r: ts.r, call: call, u: u}, nil
}

func (ts tusStore) AsTerminatableUpload(up tusd.Upload) tusd.TerminatableUpload {
	return up.(*tusUpload)
}

// tusUpload is one staged upload, for one request.
type tusUpload struct {
	r    *resumableUploads
	call *resumableCall
	u    staging.Upload
}

func (up *tusUpload) GetInfo(context.Context) (tusd.FileInfo, error) {
	return tusd.FileInfo{ID: up.u.ID.String(), Size: up.u.Size, Offset: up.u.Offset, MetaData: tusd.MetaData{}}, nil
}

// GetReader is never called: downloads are off (the staged bytes hold the phone's metadata).
func (up *tusUpload) GetReader(context.Context) (io.ReadCloser, error) {
	return nil, tusd.ErrNotImplemented
}

// FinishUpload has nothing to do: finishHook stores the photo, with the answer it makes.
func (up *tusUpload) FinishUpload(context.Context) error { return nil }

func (up *tusUpload) Terminate(ctx context.Context) error {
	if err := up.r.staging().Terminate(ctx, up.u.ID); err != nil {
		return tusError(up.call, err)
	}
	return nil
}

// tusLocker gives tusd a lock per upload that holds across servers: the lease in the upload's
// row (staging.Service.Lock). A request that finds the lease held asks its holder to let go
// and waits; the holder sees the request when it next renews (every third of a lease), stops
// reading its body, stages what it has and lets go.
type tusLocker struct{ r *resumableUploads }

func (l tusLocker) NewLock(id string) (tusd.Lock, error) {
	uid, err := uuid.Parse(id)
	if err != nil {
		return nil, tusd.ErrNotFound
	}
	return &tusLock{r: l.r, id: uid}, nil
}

type tusLock struct {
	r     *resumableUploads
	id    uuid.UUID
	token uuid.UUID
	held  bool
	stop  chan struct{}
	done  chan struct{}
}

// lockPoll is how often a request waiting for an upload's lease tries again.
const lockPoll = 100 * time.Millisecond

func (l *tusLock) Lock(ctx context.Context, requestUnlock func()) error {
	call := callFrom(ctx)
	if call == nil {
		return tusd.ErrNotFound
	}
	st := l.r.staging()
	l.token = uuid.New()
	asked := false
	for {
		locked, exists, err := st.Lock(ctx, l.id, l.token)
		if err != nil {
			return tusError(call, err)
		}
		if !exists {
			return nil // nothing to lock: GetUpload answers not found
		}
		if locked {
			break
		}
		if !asked {
			if err := st.RequestUnlock(ctx, l.id); err != nil {
				return tusError(call, err)
			}
			asked = true
		}
		select {
		case <-ctx.Done():
			return tusError(call, &followup.Error{Code: followup.ECONFLICT, Message: tr(call.lang, "err_locked")})
		case <-time.After(lockPoll):
		}
	}
	l.held = true
	call.lock = l
	l.stop, l.done = make(chan struct{}), make(chan struct{})
	go l.keep(st, requestUnlock)
	return nil
}

// keep renews the lease until Unlock, and asks the request to let go (tusd stops reading its
// body) when another request asks for it or the lease was lost.
func (l *tusLock) keep(st *staging.Service, requestUnlock func()) {
	defer close(l.done)
	every := st.Lease() / 3
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-l.stop:
			return
		case <-t.C:
		}
		ctx, cancel := context.WithTimeout(context.Background(), every)
		held, release, err := st.Renew(ctx, l.id, l.token)
		cancel()
		if err == nil && (!held || release) {
			requestUnlock()
		}
	}
}

func (l *tusLock) Unlock() error {
	if !l.held {
		return nil
	}
	l.held = false
	close(l.stop)
	<-l.done
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := l.r.staging().Unlock(ctx, l.id, l.token)
	if err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	return nil
}
