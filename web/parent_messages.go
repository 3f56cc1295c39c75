package web

import (
	"errors"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"strings"

	"github.com/google/uuid"
	"github.com/labstack/echo/v4"

	"github.com/dermfollow/dermfollow/followup"
	"github.com/dermfollow/dermfollow/followup/conversation"
)

// The family's side of the conversation, under its session (parent_session.go), in JSON:
// GET /p/messages reads the thread, POST /p/messages writes to the clinic, optionally with a
// concern photo (the file and its upload_id in the same multipart post), which goes through
// the upload path every photo takes, or with the ids of concern photos sent before through
// POST /p/photos with kind=concern.

// maxMessageParts bounds a message post's multipart parts: body, message_id, upload_id, file
// and a few photo_id.
const maxMessageParts = 16

// familyThread is GET /p/messages[?before=&limit=].
func (h *parentPages) familyThread(c echo.Context) error {
	_, a, err := h.familySession(c, false)
	if err != nil {
		return err
	}
	p, err := threadPage(c)
	if err != nil {
		return err
	}
	t, err := h.s.conv.FamilyThread(c.Request().Context(), a, p)
	if err != nil {
		return err
	}
	c.Response().Header().Set("Cache-Control", "no-store")
	return c.JSON(http.StatusOK, t)
}

// familySession is the family's session and actor, or the error to answer with: 401 without
// a valid session, 403 without the page's form token where the request needs one.
func (h *parentPages) familySession(c echo.Context, needsCSRF bool) (parentSession, followup.Actor, error) {
	lang := chooseLang(c, "")
	ps, a, err := h.parentFromCookie(c)
	if err != nil {
		if noSession(err) {
			return ps, a, followup.Errorf(followup.EUNAUTHORIZED, "%s", tr(lang, "err_session"))
		}
		return ps, a, err
	}
	if needsCSRF && !h.validCSRF(c, ps) {
		return ps, a, followup.Errorf(followup.EFORBIDDEN, "%s", tr(lang, "err_forbidden"))
	}
	return ps, a, nil
}

// postedMessage is the answer to a family post: the message and, when the photo sent with it
// was refused (by the sanitizer, a quota), why; the message is kept either way.
type postedMessage struct {
	Message      conversation.Message `json:"message"`
	PhotoRefused *errorDetail         `json:"photo_refused,omitempty"`
}

// familyPost is POST /p/messages: multipart/form-data (body, message_id, photo_id..., and
// upload_id before file) or JSON (body, message_id, photo_ids). 201 with the new message, 200
// with the one an earlier try of the same message_id posted.
func (h *parentPages) familyPost(c echo.Context) error {
	if wantsHTML(c.Request()) {
		return h.sendForm(c) // the page's form without the script (parent_message_send.go)
	}
	_, a, err := h.familySession(c, true)
	if err != nil {
		return err
	}
	var in conversation.Post
	u := &uploadParts{up: followup.PhotoUpload{Kind: followup.PhotoConcern}}
	defer u.close()
	mt, params, _ := mime.ParseMediaType(c.Request().Header.Get("Content-Type"))
	switch mt {
	case "multipart/form-data":
		release, ok := h.s.uploadSlots.take(c.RealIP(), a.ID)
		if !ok {
			c.Response().Header().Set("Retry-After", "30")
			return &echo.HTTPError{Code: http.StatusTooManyRequests, Message: tr(chooseLang(c, ""), "err_busy")}
		}
		defer release()
		if err := h.readMessageForm(c, a, params["boundary"], &in, u); err != nil {
			return err
		}
	case "application/json":
		var j struct {
			Body      string      `json:"body"`
			MessageID string      `json:"message_id"`
			PhotoIDs  []uuid.UUID `json:"photo_ids"`
		}
		if err := bindJSON(c, &j); err != nil {
			return err
		}
		in = conversation.Post{Body: j.Body, ClientID: j.MessageID, PhotoIDs: j.PhotoIDs}
	default:
		return &echo.HTTPError{Code: http.StatusUnsupportedMediaType, Message: "send multipart/form-data or JSON"}
	}
	// The text is checked before any photo is stored: a message refused stores nothing.
	if in.Body, err = conversation.CheckBody(in.Body); err != nil {
		return err
	}
	var out postedMessage
	var refused error
	if in.PhotoIDs, refused, err = h.storeConcern(c, a, u, in.PhotoIDs); err != nil {
		return err
	}
	if refused != nil {
		_, body := errorResponse(refused, chooseLang(c, ""))
		out.PhotoRefused = &body.Error
	}
	m, created, err := h.s.conv.Post(c.Request().Context(), a, in)
	if err != nil {
		return err
	}
	out.Message = m
	if created {
		return c.JSON(http.StatusCreated, out)
	}
	return c.JSON(http.StatusOK, out)
}

// storeConcern stores the post's photo, if it brought one, and adds its id to ids. A photo
// refused for what it is (its format, a quota) is returned as refused and the message goes
// without it; a failure to store it (503) fails the post, which its retry (the same
// message_id and upload_id) completes.
func (h *parentPages) storeConcern(c echo.Context, a followup.Actor, u *uploadParts, ids []uuid.UUID) (_ []uuid.UUID, refused, err error) {
	switch {
	case u.stored != nil:
		return append(ids, u.stored.ID), nil, nil
	case u.sp == nil:
		return ids, nil, nil
	case u.size == 0 || u.up.UploadID == "":
		return nil, nil, badRequest("a photo needs its upload_id, sent before the file, and may not be empty")
	}
	p, _, err := h.s.svc.AddPhoto(c.Request().Context(), a, a.Procedure, u.up, u.sp, u.size, h.s.limits)
	if err == nil {
		return append(ids, p.ID), nil, nil
	}
	if status, _ := errorResponse(err, chooseLang(c, "")); status >= 500 {
		return nil, nil, err
	}
	return ids, err, nil
}

// readMessageForm reads a multipart message post into in and u (the file spooled, or the
// photo an earlier try of its upload_id stored).
func (h *parentPages) readMessageForm(c echo.Context, a followup.Actor, boundary string, in *conversation.Post, u *uploadParts) error {
	if boundary == "" {
		return badRequest("the multipart body has no boundary")
	}
	mr := multipart.NewReader(http.MaxBytesReader(c.Response(), c.Request().Body, h.s.limits.MaxBytes+64<<10), boundary)
	for parts := 0; ; parts++ {
		part, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return uploadReadError(err)
		}
		if parts >= maxMessageParts {
			return badRequest("too many form parts")
		}
		name := part.FormName()
		if name == "file" {
			if u.sp != nil || u.stored != nil {
				return badRequest("send one file per message; send more through POST /p/photos with kind=concern")
			}
			if err := h.s.readUploadFile(c, a, a.Procedure, part, u); err != nil {
				return err
			}
			continue
		}
		v, err := io.ReadAll(io.LimitReader(part, 4*conversation.MaxBody+1))
		if err != nil {
			return uploadReadError(err)
		}
		val := string(v)
		if name == "body" {
			in.Body = val // kept for the form that shows it again, even when refused below
		}
		if err := checkText(name, val); err != nil {
			return err
		}
		if err := setMessageField(name, val, in, u); err != nil {
			return err
		}
	}
}

func setMessageField(name, val string, in *conversation.Post, u *uploadParts) error {
	switch name {
	case "body":
		if len(val) > 4*conversation.MaxBody {
			return followup.InvalidField("body", "must be at most %d characters", conversation.MaxBody)
		}
		in.Body = val
	case "message_id":
		in.ClientID = strings.TrimSpace(val)
	case "upload_id":
		u.up.UploadID = strings.TrimSpace(val)
	case "photo_id":
		id, err := uuid.Parse(strings.TrimSpace(val))
		if err != nil {
			return followup.InvalidField("photo_id", "must be a photo id")
		}
		in.PhotoIDs = append(in.PhotoIDs, id)
	default:
		return badRequest("unexpected form field " + quoteField(name))
	}
	return nil
}
