package web

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/a-h/templ"
	"github.com/labstack/echo/v4"

	"github.com/dermfollow/dermfollow/followup"
	"github.com/dermfollow/dermfollow/followup/accounts"
)

// The sign-in's first step, the password; then the step the sign-in needs next
// (signin_session.go). The sign-in's and the account's pages speak the visitor's language.

type loginData struct {
	Email, Next, Error string
	Passkeys           bool // offer signing in with a passkey alone
}

func (s *Server) loginForm(c echo.Context) error {
	if _, ok, err := s.sessionActor(c); err == nil && ok {
		return c.Redirect(http.StatusSeeOther, localPath(c.QueryParam("next")))
	}
	return s.langPage(c, http.StatusOK, "si_signin_title", signInPage(loginData{Next: localPath(c.QueryParam("next")),
		Passkeys: s.accounts.PasskeysAvailable()}))
}

func (s *Server) login(c echo.Context) error {
	email := strings.ToLower(strings.TrimSpace(c.FormValue("email")))
	password := c.FormValue("password")
	next := localPath(c.FormValue("next"))
	addr := c.RealIP()
	lang := clinicLang(c)
	fail := func(status int, msg string) error {
		return s.langPage(c, status, "si_signin_title", signInPage(loginData{Email: email, Next: next, Error: msg,
			Passkeys: s.accounts.PasskeysAvailable()}))
	}
	if email == "" || password == "" || len(email) > 254 {
		return fail(http.StatusUnprocessableEntity, tr(lang, "si_enter_email_password"))
	}
	give, ok, wait := s.clinic.loginFailures.take(addr, email)
	if !ok {
		return fail(http.StatusTooManyRequests, waitMessage(c, lang, wait))
	}
	res, err := s.accounts.SignIn(c.Request().Context(), email, password, realIPAddr(c))
	if followup.ErrorCode(err) == followup.EUNAUTHORIZED {
		return fail(http.StatusUnauthorized, tr(lang, "si_login_wrong")) // the failure stays taken
	}
	give()
	if wait, ok := accounts.RetryAfter(err); ok {
		return fail(http.StatusTooManyRequests, waitMessage(c, lang, wait))
	}
	if err != nil {
		return err
	}
	return s.afterPassword(c, res, next)
}

// waitMessage tells how long to wait after too many failures, and says so in Retry-After.
func waitMessage(c echo.Context, lang string, wait time.Duration) string {
	c.Response().Header().Set("Retry-After", strconv.Itoa(int(wait.Seconds())+1))
	if minutes := int((wait + time.Minute - 1) / time.Minute); minutes > 1 {
		return trf(lang, "si_wait_minutes", strconv.Itoa(minutes))
	}
	return tr(lang, "si_wait_minute")
}

// langPage renders one of the sign-in's or the account's pages in clinicLang, titled by a
// catalogue key, with a link to the same page in the other language where it has an address.
func (s *Server) langPage(c echo.Context, status int, titleKey string, body templ.Component) error {
	s.rememberLang(c)
	return s.page(c, status, tr(clinicLang(c), titleKey), body)
}

// flashIn leaves a catalogue text for the next page, in the page's language.
func (s *Server) flashIn(c echo.Context, key string) { s.flash(c, tr(clinicLang(c), key)) }

// when writes a time of the account's pages (UTC, as the audit log does).
func when(t time.Time) string { return t.UTC().Format("2006-01-02 15:04") + " UTC" }

// whenOr is when, or the text of key for a zero time.
func whenOr(ctx context.Context, t time.Time, key string) string {
	if t.IsZero() {
		return msg(ctx, key)
	}
	return when(t)
}

// addrOrNone is a sign-in's address, or a dash where none was recorded.
func addrOrNone(si accounts.SignIn) string {
	if !si.Addr.IsValid() {
		return "—"
	}
	return si.Addr.String()
}
