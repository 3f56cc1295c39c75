package web

import (
	"io"
	"mime"
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/dermfollow/dermfollow/followup"
	"github.com/dermfollow/dermfollow/followup/conversation"
)

// sendForm is POST /p/messages from the page's form without the script (multipart, a browser's
// Accept: text/html): Post/Redirect/Get back to the conversation with the outcome, or, when the
// message was refused, the page again with the text as written and why (422 for the text
// itself, the refusal's own status otherwise): nothing the family wrote is lost. A photo the
// sanitizer refuses does not hold the message back: it is sent, and the page says the photo
// was not. A link that no longer opens answers the friendly 404 page, as the page itself does.
func (h *parentPages) sendForm(c echo.Context) error {
	lang := chooseLang(c, "")
	ps, a, err := h.parentFromCookie(c)
	if err != nil {
		if !noSession(err) {
			return err
		}
		h.drain(c)
		h.clearParentCookie(c)
		return h.invalid(c, http.StatusNotFound, "invalid_body")
	}
	if !h.validCSRF(c, ps) {
		h.drain(c)
		return followup.Errorf(followup.EFORBIDDEN, "%s", tr(lang, "err_forbidden"))
	}
	mt, params, _ := mime.ParseMediaType(c.Request().Header.Get("Content-Type"))
	if mt != "multipart/form-data" {
		return &echo.HTTPError{Code: http.StatusUnsupportedMediaType, Message: "send the form as multipart/form-data"}
	}
	release, ok := h.s.uploadSlots.take(c.RealIP(), a.ID)
	if !ok {
		c.Response().Header().Set("Retry-After", "30")
		return &echo.HTTPError{Code: http.StatusTooManyRequests, Message: tr(lang, "err_busy")}
	}
	defer release()

	var in conversation.Post
	u := &uploadParts{up: followup.PhotoUpload{Kind: followup.PhotoConcern}}
	defer u.close()
	err = h.readMessageForm(c, a, params["boundary"], &in, u)
	form := talkForm{MessageID: in.ClientID, UploadID: u.up.UploadID, Body: keptText(in.Body)}
	bodyRefused := followup.ErrorCode(err) == followup.EINVALID && strings.HasPrefix(followup.ErrorMessage(err), "body:")
	if err == nil || bodyRefused {
		if problem := bodyProblem(in.Body); problem != "" {
			h.drain(c)
			form.ErrorKey, form.Field = problem, "body"
			return h.renderHome(c, http.StatusUnprocessableEntity, ps, a, form)
		}
	}
	if err != nil {
		h.drain(c)
		return err
	}
	if u.sp != nil && u.size == 0 {
		u.sp.close() // no photo chosen: the browser sends an empty file part
		u.sp = nil
	}
	var refused error
	if in.PhotoIDs, refused, err = h.storeConcern(c, a, u, in.PhotoIDs); err != nil {
		return h.sendRefused(c, ps, a, form, err)
	}
	for _, id := range in.PhotoIDs {
		form.PhotoIDs = append(form.PhotoIDs, id.String()) // a retry of the post attaches them
	}
	if _, _, err := h.s.conv.Post(c.Request().Context(), a, in); err != nil {
		return h.sendRefused(c, ps, a, form, err)
	}
	code := "msg-sent"
	if refused != nil {
		code = "msg-photo"
		if fc := flashCode(refused); strings.HasPrefix(fc, "reject-") {
			code = "msg-" + fc
		}
	}
	return c.Redirect(http.StatusSeeOther, parentHome+"?m="+code+"#talk")
}

// sendRefused answers a message the service refused (or could not take now) with the page and
// the text kept, or the friendly 404 page when the link stopped opening meanwhile.
func (h *parentPages) sendRefused(c echo.Context, ps parentSession, a followup.Actor, form talkForm, err error) error {
	status, _ := errorResponse(err, "en")
	switch code := followup.ErrorCode(err); {
	case code == followup.ENOTFOUND:
		h.clearParentCookie(c)
		return h.invalid(c, http.StatusNotFound, "invalid_body")
	case code == followup.ETOOMANY:
		form.ErrorKey = "talk_err_many"
	case code == followup.ECONFLICT:
		form.ErrorKey = "talk_ended"
	case status == http.StatusRequestEntityTooLarge:
		form.ErrorKey = "err_too_large"
	default:
		form.ErrorKey = "err_generic"
		if status >= 500 {
			logger(c).Error("family message post failed", "status", status, "error", errString(err))
		}
	}
	h.drain(c)
	return h.renderHome(c, status, ps, a, form)
}

// drain reads what is left of a refused form's body (within the upload limit) before the
// answer, so that the browser, still sending its photo, reads the answer rather than a reset.
func (h *parentPages) drain(c echo.Context) {
	io.Copy(io.Discard, io.LimitReader(c.Request().Body, h.s.limits.MaxBytes+64<<10))
}
