package web

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/labstack/echo/v4"
	tusd "github.com/tus/tusd/v2/pkg/handler"
	expslog "golang.org/x/exp/slog"

	"github.com/dermfollow/dermfollow/followup"
	"github.com/dermfollow/dermfollow/followup/staging"
	"github.com/dermfollow/dermfollow/imagestore"
)

// Resumable family uploads: the tus protocol v1.0.0 (core, creation, termination,
// expiration) under the family's session, served by tusd's handler over the follow-up core's
// staged uploads (package followup/staging). docs/api.md describes it for other clients.
//
//	POST    /p/uploads       create: Upload-Length (required, at most the photo limit) and
//	                         Upload-Metadata timepoint, view and upload_id; 201 and Location
//	HEAD    /p/uploads/{id}  the offset to resume from (Upload-Offset)
//	PATCH   /p/uploads/{id}  bytes at Upload-Offset; the one that brings the last byte
//	                         answers 200 with the photo, or its refusal
//	DELETE  /p/uploads/{id}  give the upload up; its staged bytes go at once
//	OPTIONS /p/uploads       what the server supports
//
// Every request needs the family's session cookie, and every one but HEAD and OPTIONS the
// page's form token in X-CSRF-Token, as the page's other requests do. An upload belongs to the
// session that created it: for any other caller (another session of the same link, another
// family, a clinician, nobody) it does not exist (404). Bodies count against the upload slots
// and the upload memory budget, as one-request uploads do; the photo, once whole, goes through
// followup.Service.AddPhoto exactly as one sent in one request.
//
// tusd is mounted as its handlers, behind these: they check the session, the token and the
// slots, answer uploads that have ended (stored or refused) themselves, and hand tusd a
// request whose context carries the caller; tusd's data store and locker (resumable_store.go)
// read it from there.
type resumableUploads struct {
	s      *Server
	family *parentPages
	tus    *tusd.UnroutedHandler
}

const (
	resumableBase = "/p/uploads/"
	// photoIDHeader carries the stored photo's id on the answers that end an upload (the last
	// PATCH, a HEAD or a creation of an upload whose photo is stored).
	photoIDHeader = "Dermfollow-Photo-Id"
	// refusalHeader names why an upload's photo was refused, on a HEAD (which has no body).
	refusalHeader = "Dermfollow-Refusal"
)

// newResumableUploads builds the handler; nothing it does needs the server's dependencies yet
// (routes are also listed from a bare Server, see authz_coverage_test.go).
func newResumableUploads(s *Server, family *parentPages) *resumableUploads {
	r := &resumableUploads{s: s, family: family}
	composer := tusd.NewStoreComposer()
	store := tusStore{r: r}
	composer.UseCore(store)
	composer.UseTerminater(store)
	composer.UseLocker(tusLocker{r: r})
	h, err := tusd.NewUnroutedHandler(tusd.Config{
		StoreComposer:             composer,
		BasePath:                  resumableBase,
		MaxSize:                   s.limits.MaxBytes,
		DisableDownload:           true, // the staged bytes still hold the phone's metadata
		DisableConcatenation:      true,
		Cors:                      &tusd.CorsConfig{Disable: true}, // same origin only
		Logger:                    expslog.New(expslog.NewTextHandler(io.Discard, nil)),
		PreFinishResponseCallback: r.finishHook,
		// A lock held by a request whose client is gone is released within a lease (10 s)
		// once asked; a request waits for it a little longer.
		AcquireLockTimeout: 15 * time.Second,
		// Reads are bounded by the minimum-rate deadline of upload routes (limits.go), which
		// tusd's own idle deadline would otherwise replace: see tusWriter.
		NetworkTimeout:                   time.Minute,
		GracefulRequestCompletionTimeout: 30 * time.Second,
	})
	if err != nil {
		panic(err) // only for a configuration this code does not make
	}
	r.tus = h
	return r
}

func (r *resumableUploads) staging() *staging.Service { return r.s.staging }

// resumableCall is what one request to the protocol carries to tusd's data store and locker.
type resumableCall struct {
	actor   followup.Actor
	session []byte
	lang    string
	// create is the upload being created (POST).
	create followup.PhotoUpload
	// staged is the upload as read before the request went to tusd (HEAD, PATCH, DELETE).
	staged staging.Upload
	// lock is the lease this request holds on the upload, once it holds it.
	lock *tusLock
	// w is the response, for headers that tusd does not set.
	w http.ResponseWriter
	// recv is what PATCH received (resumable_receive.go).
	recv *receipt
	log  *loggerCtx
}

type callKey struct{}

func callFrom(ctx context.Context) *resumableCall {
	rc, _ := ctx.Value(callKey{}).(*resumableCall)
	return rc
}

// loggerCtx is the request's logger, kept for work that outlives the Echo context.
type loggerCtx struct{ c echo.Context }

// session admits the family's session, or answers as if nothing were there. Requests that
// change something must speak tus 1.0.0 and carry the page's form token.
func (r *resumableUploads) session(c echo.Context, unsafe bool) (*resumableCall, error) {
	if unsafe && c.Request().Header.Get("Tus-Resumable") != "1.0.0" {
		c.Response().Header().Set("Tus-Version", "1.0.0")
		return nil, &echo.HTTPError{Code: http.StatusPreconditionFailed, Message: "send Tus-Resumable: 1.0.0"}
	}
	ps, a, err := r.family.parentFromCookie(c)
	lang := chooseLang(c, "")
	if err != nil {
		if noSession(err) {
			return nil, followup.Errorf(followup.ENOTFOUND, "%s", tr(lang, "err_session"))
		}
		return nil, err
	}
	if unsafe && !r.family.validCSRF(c, ps) {
		return nil, followup.Errorf(followup.EFORBIDDEN, "%s", tr(lang, "err_forbidden"))
	}
	return &resumableCall{actor: a, session: ps.ID[:], lang: lang, w: c.Response(), log: &loggerCtx{c}}, nil
}

// upload reads the request's upload, which only its own session finds.
func (r *resumableUploads) upload(c echo.Context, call *resumableCall) error {
	id, err := uuid.Parse(c.Param("id"))
	if err != nil {
		return followup.Errorf(followup.ENOTFOUND, "upload not found")
	}
	u, err := r.staging().Staged(c.Request().Context(), call.actor, call.session, id)
	if err != nil {
		return err
	}
	call.staged = u
	return nil
}

// slot takes an upload slot for a request with a body.
func (r *resumableUploads) slot(c echo.Context, call *resumableCall) (func(), error) {
	release, ok := r.s.uploadSlots.take(c.RealIP(), call.actor.ID)
	if !ok {
		c.Response().Header().Set("Retry-After", "30")
		return nil, &echo.HTTPError{Code: http.StatusTooManyRequests, Message: tr(call.lang, "err_busy")}
	}
	return release, nil
}

// create is POST /p/uploads.
func (r *resumableUploads) create(c echo.Context) error {
	call, err := r.session(c, true)
	if err != nil {
		if followup.ErrorCode(err) == followup.ENOTFOUND {
			return followup.Errorf(followup.EUNAUTHORIZED, "%s", tr(chooseLang(c, ""), "err_session"))
		}
		return err
	}
	req := c.Request()
	if req.Header.Get("Upload-Defer-Length") != "" || req.Header.Get("Upload-Concat") != "" {
		return badRequest("send Upload-Length: uploads of unknown length and concatenation are not supported")
	}
	size, err := strconv.ParseInt(req.Header.Get("Upload-Length"), 10, 64)
	if err != nil || size <= 0 {
		return badRequest("Upload-Length is required: the photo's size in bytes")
	}
	if size > r.s.limits.MaxBytes {
		return tooLargeIn(call.lang)
	}
	up, err := parseUploadMetadata(req.Header.Get("Upload-Metadata"))
	if err != nil {
		return err
	}
	call.create = up
	release, err := r.slot(c, call)
	if err != nil {
		return err
	}
	defer release()
	defer func() {
		if call.recv != nil {
			call.recv.close()
		}
	}()
	return r.serve(c, call, r.tus.PostFile, "")
}

func tooLargeIn(lang string) error {
	return &echo.HTTPError{Code: http.StatusRequestEntityTooLarge, Message: tr(lang, "err_too_large")}
}

// head is HEAD /p/uploads/{id}.
func (r *resumableUploads) head(c echo.Context) error {
	call, err := r.session(c, false)
	if err != nil {
		return err
	}
	if err := r.upload(c, call); err != nil {
		return err
	}
	if call.staged.Ended() || call.staged.Complete() {
		return r.answerEnded(c, call)
	}
	return r.serve(c, call, r.tus.HeadFile, call.staged.ID.String())
}

// patch is PATCH /p/uploads/{id}.
func (r *resumableUploads) patch(c echo.Context) error {
	call, err := r.session(c, true)
	if err != nil {
		return err
	}
	if err := r.upload(c, call); err != nil {
		return err
	}
	if call.staged.Ended() || call.staged.Complete() {
		return r.answerEnded(c, call)
	}
	if r.s.draining.Load() {
		// A stopping server takes no more bytes: the phone goes on with another one.
		c.Response().Header().Set("Retry-After", "1")
		return followup.Errorf(followup.EUNAVAILABLE, "%s", tr(call.lang, "err_generic"))
	}
	release, err := r.slot(c, call)
	if err != nil {
		return err
	}
	defer release()
	defer func() {
		if call.recv != nil {
			call.recv.close()
		}
	}()
	return r.serve(c, call, r.tus.PatchFile, call.staged.ID.String())
}

// terminate is DELETE /p/uploads/{id}: the staged bytes go at once; a photo already stored
// stays.
func (r *resumableUploads) terminate(c echo.Context) error {
	call, err := r.session(c, true)
	if err != nil {
		return err
	}
	if err := r.upload(c, call); err != nil {
		return err
	}
	return r.serve(c, call, r.tus.DelFile, call.staged.ID.String())
}

// options is OPTIONS /p/uploads: what this server supports, for a client that asks.
func (r *resumableUploads) options(c echo.Context) error {
	if _, err := r.session(c, false); err != nil {
		return err
	}
	h := c.Response().Header()
	h.Set("Tus-Resumable", "1.0.0")
	h.Set("Tus-Version", "1.0.0")
	h.Set("Tus-Extension", "creation,termination,expiration")
	h.Set("Tus-Max-Size", strconv.FormatInt(r.s.limits.MaxBytes, 10))
	return c.NoContent(http.StatusNoContent)
}

// serve hands the request to one of tusd's handlers, with the call in its context and, for an
// upload's own URL, the path tusd expects (the id alone).
func (r *resumableUploads) serve(c echo.Context, call *resumableCall, h http.HandlerFunc, id string) error {
	req := c.Request()
	out := req.WithContext(context.WithValue(req.Context(), callKey{}, call))
	if id != "" {
		u := *req.URL
		u.Path, u.RawPath = id, ""
		out.URL = &u
	}
	w := &tusWriter{ResponseWriter: c.Response(), rc: http.NewResponseController(c.Response())}
	if !call.staged.ExpiresAt.IsZero() {
		w.Header().Set("Upload-Expires", call.staged.ExpiresAt.UTC().Format(http.TimeFormat))
	}
	w.Header().Set("Cache-Control", "no-store")
	r.tus.Middleware(h).ServeHTTP(w, out)
	return nil
}

// answerEnded answers for an upload that holds every byte: with its photo, or its refusal;
// or, when a finish failed earlier (the store was down), by finishing it now.
func (r *resumableUploads) answerEnded(c echo.Context, call *resumableCall) error {
	u := call.staged
	if !u.Ended() {
		p, err := r.finishStaged(c.Request().Context(), call)
		if err != nil {
			return r.refusalAnswer(c, call, err)
		}
		u.PhotoID = &p.ID
	}
	h := c.Response().Header()
	h.Set("Tus-Resumable", "1.0.0")
	h.Set("Cache-Control", "no-store")
	h.Set("Upload-Expires", u.ExpiresAt.UTC().Format(http.TimeFormat))
	if u.Refusal != "" {
		return r.refusalAnswer(c, call, refusalError(u.Refusal, call.lang))
	}
	h.Set("Upload-Offset", strconv.FormatInt(u.Size, 10))
	h.Set("Upload-Length", strconv.FormatInt(u.Size, 10))
	h.Set(photoIDHeader, u.PhotoID.String())
	if c.Request().Method == http.MethodHead {
		return c.NoContent(http.StatusOK)
	}
	return c.JSON(http.StatusOK, map[string]string{"id": u.PhotoID.String()})
}

// refusalAnswer answers an upload's refusal (or a failure) in the JSON error shape; a HEAD,
// which has no body, names it in refusalHeader.
func (r *resumableUploads) refusalAnswer(c echo.Context, call *resumableCall, err error) error {
	status, body := errorResponse(err, call.lang)
	if c.Request().Method == http.MethodHead {
		c.Response().Header().Set(refusalHeader, body.Error.Code)
		return c.NoContent(status)
	}
	return err
}

// refusalError turns a stored refusal (staging.Refusal) back into the error it was.
func refusalError(refusal, lang string) error {
	if r, ok := strings.CutPrefix(refusal, "reject:"); ok {
		for _, known := range imagestore.Reasons() {
			if string(known) == r {
				return &imagestore.RejectError{Reason: known}
			}
		}
	}
	code, _ := strings.CutPrefix(refusal, "error:")
	switch code {
	case followup.EINVALID:
		return followup.Errorf(code, "%s", tr(lang, "err_invalid"))
	case followup.ECONFLICT:
		return followup.Errorf(code, "%s", tr(lang, "err_ended"))
	case followup.ETOOMANY:
		return followup.Errorf(code, "%s", tr(lang, "err_quota"))
	}
	return followup.Errorf(followup.EINVALID, "%s", tr(lang, "err_generic"))
}

// tusError is err as tusd sends it: the status and the JSON error shape of every other answer,
// in the family's language. Failures of the server are logged here, since tusd's own log is off.
func tusError(call *resumableCall, err error) error {
	var te tusd.Error
	if errors.As(err, &te) {
		return te
	}
	status, body := errorResponse(err, call.lang)
	if status >= 500 && call.log != nil {
		logger(call.log.c).Error("resumable upload failed", "status", status, "error", err.Error())
	}
	b, _ := json.Marshal(body)
	return tusd.Error{ErrorCode: body.Error.Code, Message: body.Error.Message, HTTPResponse: tusd.HTTPResponse{
		StatusCode: status, Body: string(b), Header: tusd.HTTPHeader{"Content-Type": "application/json"}}}
}
