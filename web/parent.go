package web

import (
	"encoding/base64"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/labstack/echo/v4"

	"github.com/dermfollow/dermfollow/followup"
	"github.com/dermfollow/dermfollow/followup/conversation"
	"github.com/dermfollow/dermfollow/imagestore"
)

// parentPages are the family's pages: the link swap, the home page with the upload cards,
// the uploads and the thumbnails, all behind the session cookie (parent_session.go).
type parentPages struct {
	s   *Server
	key []byte // signs session cookies and CSRF tokens
}

// openLink is GET /p/{token}: it swaps the link for a session cookie and redirects to /p/, so
// the token leaves the address bar and the history at once.
func (h *parentPages) openLink(c echo.Context) error {
	h.s.rememberLang(c)
	a, err := h.s.parentFromToken(c, c.Param("token"))
	if err != nil {
		var he *echo.HTTPError
		switch {
		case followup.ErrorCode(err) == followup.ENOTFOUND:
			return h.invalid(c, http.StatusNotFound, "invalid_body")
		case errors.As(err, &he) && he.Code == http.StatusTooManyRequests:
			return h.invalid(c, http.StatusTooManyRequests, "too_many")
		}
		return err
	}
	var current *parentSession
	if ck, err := c.Cookie(parentCookie); err == nil {
		if ps, err := h.decodeParentSession(ck.Value, time.Now()); err == nil {
			current = &ps
		}
	}
	h.setParentCookie(c, newParentSession(a.ID, current))
	c.Response().Header().Set("Cache-Control", "no-store")
	return c.Redirect(http.StatusSeeOther, parentHome)
}

// invalidPage is the friendly page for a link that does not open: no details, whom to ask.
type invalidPage struct {
	Lang string
	T    map[string]string
	Body string
}

func (h *parentPages) invalid(c echo.Context, status int, key string) error {
	lang := chooseLang(c, "")
	p := invalidPage{Lang: lang, T: catalogue[lang], Body: tr(lang, key)}
	return h.s.render(c, status, pageInfo{Lang: lang, Title: p.T["invalid_title"]}, invalidView(p))
}

// home is GET /p/[?before=]: the family's page (before= pages the conversation back).
func (h *parentPages) home(c echo.Context) error {
	ps, a, err := h.parentFromCookie(c)
	if err != nil {
		if noSession(err) {
			h.clearParentCookie(c)
			return h.invalid(c, http.StatusNotFound, "invalid_body")
		}
		return err
	}
	h.s.rememberLang(c)
	return h.renderHome(c, http.StatusOK, ps, a, talkForm{})
}

// renderHome renders the family's page with status; form is the message form as a refused
// post left it (the zero value: a fresh one).
func (h *parentPages) renderHome(c echo.Context, status int, ps parentSession, a followup.Actor, form talkForm) error {
	ctx := c.Request().Context()
	home, err := h.s.svc.ParentHome(ctx, a)
	if err != nil {
		return err
	}
	thread, err := h.s.conv.FamilyThread(ctx, a, conversation.Page{Before: c.QueryParam("before")})
	if followup.ErrorCode(err) == followup.EINVALID { // a cursor that is not one: the newest
		thread, err = h.s.conv.FamilyThread(ctx, a, conversation.Page{})
	}
	if err != nil {
		return err
	}
	lang := chooseLang(c, home.PreferredLanguage)
	csrf := h.csrfToken(ps)
	flash := c.QueryParam("m")
	page := buildParentPage(home, lang, flash, "/p/photos?csrf_token="+csrf)
	form.Action = "/p/messages?csrf_token=" + url.QueryEscape(csrf)
	page.addTalk(home, thread, flash, form)
	page.CSRF = csrf
	page.Owner = h.uploadOwner(ps.LinkID)
	return h.s.render(c, status, pageInfo{Lang: lang, Title: page.Heading, CSRF: csrf}, parentHomeView(page))
}

// uploadOwner is the page's opaque name for the link (parentPage.Owner).
func (h *parentPages) uploadOwner(link uuid.UUID) string {
	return base64.RawURLEncoding.EncodeToString(h.sessionMAC(append([]byte("upload owner:"), link[:]...))[:16])
}

// thumbnail is GET /p/photos/{id}/thumbnail[?size=large]: the family's own photos only.
func (h *parentPages) thumbnail(c echo.Context) error {
	_, a, err := h.parentFromCookie(c)
	if err != nil {
		if noSession(err) {
			return followup.Errorf(followup.ENOTFOUND, "not found")
		}
		return err
	}
	id, err := pathID(c, "id")
	if err != nil {
		return err
	}
	size := c.QueryParam("size")
	switch size {
	case "":
		size = followup.VariantSmall
	case followup.VariantSmall, followup.VariantLarge:
	default:
		return badRequest("size must be small or large")
	}
	return h.s.sendPhoto(c, a, id, size)
}

// upload is POST /p/photos: the page's upload, by script (JSON answers) or by a plain form
// (Post/Redirect/Get with a message code).
func (h *parentPages) upload(c echo.Context) error {
	req := c.Request()
	form := wantsHTML(req)
	lang := chooseLang(c, "")
	ps, a, err := h.parentFromCookie(c)
	if err != nil {
		if !noSession(err) {
			return err
		}
		if form {
			return c.Redirect(http.StatusSeeOther, parentHome)
		}
		return followup.Errorf(followup.EUNAUTHORIZED, "%s", tr(lang, "err_session"))
	}
	if !h.validCSRF(c, ps) {
		return followup.Errorf(followup.EFORBIDDEN, "%s", tr(lang, "err_forbidden"))
	}
	if !form {
		return h.s.receivePhoto(c, a, a.Procedure)
	}
	// A form post: redirect to the page with the outcome.
	_, _, err = h.s.takeUpload(c, a, a.Procedure)
	code := "sent"
	if err != nil {
		code = flashCode(err)
		if st, _ := errorResponse(err, lang); st >= 500 {
			logger(c).Error("parent form upload failed", "status", st, "error", errString(err))
		}
	}
	return c.Redirect(http.StatusSeeOther, parentHome+"?m="+code+"#now")
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// wantsHTML tells a browser's form post (Accept: text/html...) from a script's request.
func wantsHTML(r *http.Request) bool { return strings.Contains(r.Header.Get("Accept"), "text/html") }

// flashCode names an upload's outcome for the page after the redirect; the page shows a
// fixed text for each code, so nothing from the request is echoed.
func flashCode(err error) string {
	var re *imagestore.RejectError
	if errors.As(err, &re) {
		return "reject-" + string(re.Reason)
	}
	var he *echo.HTTPError
	if errors.As(err, &he) {
		switch he.Code {
		case http.StatusRequestEntityTooLarge:
			return "too_large"
		case http.StatusTooManyRequests:
			return "busy"
		}
		return "invalid"
	}
	switch followup.ErrorCode(err) {
	case followup.EINVALID:
		return "invalid"
	case followup.ECONFLICT:
		return "ended"
	case followup.ETOOMANY:
		return "quota"
	}
	return "generic"
}

// flashText returns the message for a flash code and whether it reports a failure; "" for
// no message (or a code this server does not make).
func flashText(code, lang string) (string, bool) {
	switch code {
	case "":
		return "", false
	case "sent":
		return tr(lang, "flash_sent"), false
	case "too_large":
		return tr(lang, "err_too_large"), true
	case "invalid":
		return tr(lang, "err_invalid"), true
	case "ended":
		return tr(lang, "err_ended"), true
	case "generic":
		return tr(lang, "err_generic"), true
	case "busy":
		return tr(lang, "err_busy"), true
	case "quota":
		return tr(lang, "err_quota"), true
	}
	if r, ok := strings.CutPrefix(code, "reject-"); ok {
		for _, known := range imagestore.Reasons() {
			if string(known) == r {
				return known.Message(lang), true
			}
		}
	}
	return "", false
}
