package web

import (
	"context"
	"net/http"
	"slices"

	"github.com/a-h/templ"
	"github.com/google/uuid"
	"github.com/labstack/echo/v4"

	"github.com/dermfollow/dermfollow/followup"
	"github.com/dermfollow/dermfollow/followup/accounts"
)

// The second step of a sign-in (/login/second-factor) and the step-up of a signed-in session
// (/verify): a code of the user's authenticator app, a recovery code, or a passkey. Wrong
// codes are throttled and audited by accounts.VerifySecondFactor.

type factorData struct {
	Error   string
	Code    bool   // the user has an authenticator app or recovery codes
	Passkey bool   // the user has a passkey and this server takes them
	Base    string // "/login/second-factor" or "/verify": the code form, and Base+"/passkey"
	Next    string // the step-up's way back
	// NoFactor: a step-up of a user with nothing to check (the page links to the account).
	NoFactor bool
}

func (s *Server) factorData(ctx context.Context, user uuid.UUID, base string) (factorData, error) {
	st, err := s.accounts.SecondFactorState(ctx, user)
	if err != nil {
		return factorData{}, err
	}
	return factorData{Base: base, NoFactor: !st.Enrolled,
		Code:    slices.Contains(st.Methods, accounts.MethodTOTP) || slices.Contains(st.Methods, accounts.MethodRecoveryCode),
		Passkey: st.PasskeysAvailable && slices.Contains(st.Methods, accounts.MethodPasskey)}, nil
}

func (s *Server) secondFactorForm(c echo.Context) error {
	d, err := s.factorData(c.Request().Context(), pendingFrom(c).actor.ID, "/login/second-factor")
	if err != nil {
		return err
	}
	return s.langPage(c, http.StatusOK, "si_factor_title", factorPage(d))
}

func (s *Server) secondFactor(c echo.Context) error {
	p := pendingFrom(c)
	ctx := c.Request().Context()
	v, err := s.accounts.VerifySecondFactor(ctx, p.actor.ID, c.FormValue("code"), realIPAddr(c))
	if err != nil {
		return s.codeRefused(c, err, p.actor.ID, "/login/second-factor", "", factorPage)
	}
	if err := s.finishSignIn(ctx, p.actor, p.epoch, v.At); err != nil {
		return err
	}
	return c.Redirect(http.StatusSeeOther, p.next)
}

// codeRefused answers a code that did not pass with its form again and why, or passes on
// an error that is not about the code.
func (s *Server) codeRefused(c echo.Context, err error, user uuid.UUID, base, next string, page func(factorData) templ.Component) error {
	status, msg, ok := codeFailure(c, err)
	if !ok {
		return err
	}
	d, derr := s.factorData(c.Request().Context(), user, base)
	if derr != nil {
		return derr
	}
	d.Error, d.Next = msg, next
	title := "si_factor_title"
	if base == "/verify" {
		title = "si_verify_title"
	}
	return s.langPage(c, status, title, page(d))
}

// codeFailure is the status and message of a refused code; ok is false for other errors.
func codeFailure(c echo.Context, err error) (status int, msg string, ok bool) {
	lang := clinicLang(c)
	switch followup.ErrorCode(err) {
	case followup.EINVALID:
		return http.StatusUnprocessableEntity, tr(lang, "si_code_format"), true
	case followup.EUNAUTHORIZED:
		return http.StatusUnauthorized, tr(lang, "si_code_wrong"), true
	case followup.ETOOMANY:
		if wait, ok := accounts.RetryAfter(err); ok {
			return http.StatusTooManyRequests, waitMessage(c, lang, wait), true
		}
	}
	return 0, "", false
}

// The step-up: a signed-in user confirms the second factor again (requireStepUp sends them).

func (s *Server) verifyForm(c echo.Context) error {
	d, err := s.factorData(c.Request().Context(), actorOf(c).ID, "/verify")
	if err != nil {
		return err
	}
	d.Next = localPath(c.QueryParam("next"))
	return s.langPage(c, http.StatusOK, "si_verify_title", verifyPage(d))
}

func (s *Server) verify(c echo.Context) error {
	a := actorOf(c)
	ctx := c.Request().Context()
	next := localPath(c.FormValue("next"))
	v, err := s.accounts.VerifySecondFactor(ctx, a.ID, c.FormValue("code"), realIPAddr(c))
	if err != nil {
		return s.codeRefused(c, err, a.ID, "/verify", next, verifyPage)
	}
	s.markVerified(ctx, v.At)
	return c.Redirect(http.StatusSeeOther, next)
}
