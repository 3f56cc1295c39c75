package web

import (
	"context"
	"net/http"
	"strings"
	"unicode/utf8"

	"github.com/labstack/echo/v4"

	"github.com/dermfollow/dermfollow/followup"
	"github.com/dermfollow/dermfollow/followup/accounts"
)

// Passkeys on the pages. A passkey form (static/passkey.js) posts twice, as forms do
// (URL-encoded, with the form token): once to Base+"/options", which begins the ceremony and
// answers the browser's options as JSON, keeping the ceremony's id in the session; then to
// Base, with the browser's answer in the field credential (its JSON), which finishes the
// ceremony and answers {"next": URL}. Errors answer in the API's JSON shape with a message in
// the page's language, which the script shows.

// passkeyDone is what a finished ceremony answers: where the page goes next.
type passkeyDone struct {
	Next string `json:"next"`
}

// passkeyBegin answers a ceremony's options and keeps its id in the session.
func (s *Server) passkeyBegin(c echo.Context, begin func(ctx context.Context) (accounts.Ceremony, error)) error {
	ctx := c.Request().Context()
	cer, err := begin(ctx)
	if err != nil {
		return s.passkeyFailed(c, err)
	}
	s.clinic.sessions.Put(ctx, ceremonyKey, cer.ID)
	c.Response().Header().Set("Cache-Control", "no-store")
	return c.JSONBlob(http.StatusOK, cer.Options)
}

// passkeyAnswer takes the session's ceremony (once) and the browser's answer.
func (s *Server) passkeyAnswer(c echo.Context) (ceremony string, credential []byte) {
	return s.clinic.sessions.PopString(c.Request().Context(), ceremonyKey), []byte(c.FormValue("credential"))
}

// passkeyFailed answers a passkey route's error as JSON; the message says what to do, in the
// page's language, never why the library refused.
func (s *Server) passkeyFailed(c echo.Context, err error) error {
	status, body := errorResponse(err, "en")
	key := "si_passkey_failed"
	switch followup.ErrorCode(err) {
	case followup.EUNAUTHORIZED:
		key = "si_passkey_refused"
	case followup.EINVALID:
		key = "si_passkey_unreadable"
	case followup.ECONFLICT:
		key = "si_passkey_exists"
	case followup.EFORBIDDEN:
		key = "si_passkey_forbidden"
	case followup.ENOTFOUND:
		key = "si_passkey_none"
	case followup.ETOOMANY:
		key = "si_passkey_busy"
	}
	if status >= 500 { // refusals are audited by accounts; their reasons stay out of the log
		logger(c).ErrorContext(c.Request().Context(), "passkey route failed", "route", routeLabel(c), "error", err.Error())
	}
	body.Error.Message = tr(clinicLang(c), key)
	return c.JSON(status, body)
}

// passkeyName is a new passkey's name from the form, checked as accounts checks it.
func passkeyName(c echo.Context) (string, bool) {
	name := strings.TrimSpace(c.FormValue("name"))
	n := utf8.RuneCountInString(name)
	return name, n > 0 && n <= accounts.MaxPasskeyName
}

// The second step of a sign-in with a passkey.

func (s *Server) secondFactorPasskeyOptions(c echo.Context) error {
	return s.passkeyBegin(c, func(ctx context.Context) (accounts.Ceremony, error) {
		return s.accounts.BeginLogin(ctx, pendingFrom(c).actor.ID)
	})
}

func (s *Server) secondFactorPasskey(c echo.Context) error {
	p := pendingFrom(c)
	ctx := c.Request().Context()
	ceremony, cred := s.passkeyAnswer(c)
	v, err := s.accounts.FinishLogin(ctx, p.actor.ID, ceremony, cred, realIPAddr(c))
	if err != nil {
		return s.passkeyFailed(c, err)
	}
	if err := s.finishSignIn(ctx, p.actor, p.epoch, v.At); err != nil {
		return err
	}
	return c.JSON(http.StatusOK, passkeyDone{Next: p.next})
}

// A step-up with a passkey.

func (s *Server) verifyPasskeyOptions(c echo.Context) error {
	return s.passkeyBegin(c, func(ctx context.Context) (accounts.Ceremony, error) {
		return s.accounts.BeginLogin(ctx, actorOf(c).ID)
	})
}

func (s *Server) verifyPasskey(c echo.Context) error {
	ctx := c.Request().Context()
	ceremony, cred := s.passkeyAnswer(c)
	v, err := s.accounts.FinishLogin(ctx, actorOf(c).ID, ceremony, cred, realIPAddr(c))
	if err != nil {
		return s.passkeyFailed(c, err)
	}
	s.markVerified(ctx, v.At)
	return c.JSON(http.StatusOK, passkeyDone{Next: localPath(c.FormValue("next"))})
}

// Signing in with a passkey alone, where the user's clinic allows it (accounts refuses it
// otherwise). Each begun ceremony keeps a row for a few minutes, so begins are limited per
// address.

func (s *Server) passwordlessOptions(c echo.Context) error {
	if ok, wait := s.clinic.passkeyBegins.Take(c.RealIP()); !ok {
		waitMessage(c, clinicLang(c), wait)
		return s.passkeyFailed(c, followup.Errorf(followup.ETOOMANY, "too many passkey sign-ins from this address"))
	}
	return s.passkeyBegin(c, s.accounts.BeginPasswordlessLogin)
}

func (s *Server) passwordless(c echo.Context) error {
	ctx := c.Request().Context()
	ceremony, cred := s.passkeyAnswer(c)
	a, v, err := s.accounts.FinishPasswordlessLogin(ctx, ceremony, cred, realIPAddr(c))
	if err != nil {
		return s.passkeyFailed(c, err)
	}
	_, epoch, err := s.accounts.SessionUser(ctx, a.ID, a.Addr)
	if err != nil {
		return s.passkeyFailed(c, err)
	}
	if err := s.finishSignIn(ctx, a, epoch, v.At); err != nil {
		return err
	}
	return c.JSON(http.StatusOK, passkeyDone{Next: localPath(c.FormValue("next"))})
}

// Adding a passkey: at the sign-in's enrolment, or on the account page (setupFlow).

func (s *Server) passkeyRegisterOptions(c echo.Context) error {
	f := s.setupFlowOf(c)
	return s.passkeyBegin(c, func(ctx context.Context) (accounts.Ceremony, error) {
		return s.accounts.BeginRegistration(ctx, f.actor)
	})
}

func (s *Server) passkeyRegister(c echo.Context) error {
	f := s.setupFlowOf(c)
	ctx := c.Request().Context()
	name, ok := passkeyName(c)
	if !ok {
		return c.JSON(http.StatusUnprocessableEntity, errorBody{errorDetail{Code: followup.EINVALID,
			Message: trf(clinicLang(c), "si_passkey_name_bad", itoa(accounts.MaxPasskeyName))}})
	}
	ceremony, cred := s.passkeyAnswer(c)
	if _, err := s.accounts.FinishRegistration(ctx, f.actor, ceremony, name, cred); err != nil {
		return s.passkeyFailed(c, err)
	}
	next, err := f.done(ctx)
	if err != nil {
		return err
	}
	s.flashIn(c, "si_passkey_added")
	return c.JSON(http.StatusOK, passkeyDone{Next: next})
}
