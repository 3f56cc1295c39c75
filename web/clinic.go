package web

import (
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/a-h/templ"
	"github.com/labstack/echo/v4"

	"github.com/dermfollow/dermfollow/followup"
	"github.com/dermfollow/dermfollow/protocols"
)

// The clinician's pages: sign-in, the worklist, patients and procedures, the timeline, the
// comparison and grading. Every page runs in a server-side session (session.go) with CSRF
// protection on every form (csrf.go); errors answer as HTML pages.

// loginLimiter limits failed sign-ins per client address (any accounts: 20 in 15 minutes)
// and per account from one address (10 in 15 minutes): so nobody elsewhere can lock a
// clinician out by failing with their email, while each address gets few guesses at any
// account. Separate from the parent links' limiter, so one cannot be used to spend the other.
// A guesser spread over many addresses is the second factor's to stop.
type loginLimiter struct{ byAddr, byAccount *failureLimiter }

func newLoginLimiter() loginLimiter {
	return loginLimiter{byAddr: newFailureLimiter(20, 15*time.Minute), byAccount: newFailureLimiter(10, 15*time.Minute)}
}

// take reserves a failure of both budgets before a sign-in is checked, so that concurrent
// guesses cannot all pass the check; give returns them when the sign-in succeeds (or could not
// be decided). wait is how long until the spent budget has room again.
func (l loginLimiter) take(addr, email string) (give func(), ok bool, wait time.Duration) {
	account := email + "\x00" + addr
	if ok, wait := l.byAddr.Take(addr); !ok {
		return nil, false, wait
	}
	if ok, wait := l.byAccount.Take(account); !ok {
		l.byAddr.Give(addr)
		return nil, false, wait
	}
	return func() { l.byAddr.Give(addr); l.byAccount.Give(account) }, true, 0
}

// clinicLang is the language of the clinic's pages for this request: the signed-in user's
// own (POST /account/language), else the switch on the page (?lang=, remembered in a
// cookie), then the browser's Accept-Language, then English.
func clinicLang(c echo.Context) string {
	if l := pageLang(actorOf(c).Lang); l != "" {
		return l
	}
	return chooseLang(c, "")
}

// page renders a clinician's page: title names it (the layout adds the product's name), body
// is its component, which finds the user, the form token and the flash through pageOf.
func (s *Server) page(c echo.Context, status int, title string, body templ.Component) error {
	return s.render(c, status, s.clinicPageInfo(c, title), body)
}

// clinicPageInfo is what every clinic page gets besides its data: the language, the user, the
// form token, the flash, and for a GET the page's own address (where the language switch
// comes back to) and the same page in the other language.
func (s *Server) clinicPageInfo(c echo.Context, title string) pageInfo {
	lang := clinicLang(c)
	info := pageInfo{Lang: lang, Title: title, User: actorOf(c), CSRF: s.csrfToken(c),
		Flash: s.clinic.sessions.PopString(c.Request().Context(), "flash")}
	if r := c.Request(); r.Method == http.MethodGet {
		info.Path = r.URL.RequestURI()
		q := r.URL.Query()
		q.Set("lang", otherLang(lang))
		info.Switch = r.URL.Path + "?" + q.Encode()
	}
	return info
}

// otherLang is the pages' language that lang is not.
func otherLang(lang string) string {
	if lang == protocols.ZH {
		return protocols.EN
	}
	return protocols.ZH
}

// flash leaves a one-line message for the next page (after a redirect).
func (s *Server) flash(c echo.Context, msg string) {
	s.clinic.sessions.Put(c.Request().Context(), "flash", msg)
}

// clinicPageErrors answers a page's error as an HTML page with the right status, the message
// meant for users, and never an internal error's text.
func (s *Server) clinicPageErrors(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		err := next(c)
		if err == nil || c.Response().Committed {
			return err
		}
		lang := clinicLang(c)
		status, body := errorResponse(err, lang)
		if status >= 500 {
			logger(c).ErrorContext(c.Request().Context(), "page failed", "route", routeLabel(c), "error", err.Error())
		}
		if status == http.StatusUnauthorized {
			body.Error.Message = tr(lang, "cl_sign_in_again")
		}
		// The title says what happened in the page's language; the message, from the code that
		// refused, may be English.
		title, ok := catalogue[lang]["cl_error_"+body.Error.Code]
		if !ok {
			title = http.StatusText(status)
		}
		if rerr := s.page(c, status, title, errorPage(body.Error.Message)); rerr != nil {
			return err
		}
		return nil
	}
}

// requirePageUser admits signed-in clinic users; anyone else is sent to the sign-in page
// (GET) or refused (other methods).
func (s *Server) requirePageUser(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		a, ok, err := s.sessionActor(c)
		if err != nil {
			return err
		}
		if !ok {
			if c.Request().Method != http.MethodGet {
				return followup.Errorf(followup.EUNAUTHORIZED, "sign in first")
			}
			// A sign-in in progress may do nothing but its next step (signin_session.go).
			if p, pending, err := s.pendingOf(c); err != nil {
				return err
			} else if pending {
				return c.Redirect(http.StatusSeeOther, p.stepPath())
			}
			return c.Redirect(http.StatusSeeOther, "/login?next="+url.QueryEscape(c.Request().URL.RequestURI()))
		}
		c.Set(actorKey, a)
		return next(c)
	}
}

// localPath keeps a post-login redirect on this site: a path of this host, or "/". Browsers
// read a Location generously (a tab or newline dropped, a backslash taken for a slash, "//"
// for another host, percent-escapes of either), so anything but plain printable ASCII without
// backslashes is refused, and the path must parse as a path alone and still start with one
// slash once unescaped.
func localPath(p string) string {
	if len(p) == 0 || len(p) > 2048 || p[0] != '/' {
		return "/"
	}
	u, err := url.Parse(p)
	if err != nil || u.Scheme != "" || u.Host != "" || u.User != nil || u.Opaque != "" ||
		!plainPath(p) || !plainPath(u.Path) || strings.HasPrefix(u.Path, "//") {
		return "/"
	}
	return p
}

// plainPath reports whether p holds printable ASCII only, without backslashes.
func plainPath(p string) bool {
	for i := 0; i < len(p); i++ {
		if c := p[i]; c <= ' ' || c >= 0x7f || c == '\\' {
			return false
		}
	}
	return true
}

func (s *Server) logout(c echo.Context) error {
	ctx := c.Request().Context()
	if err := s.accounts.RecordLogout(ctx, actorOf(c)); err != nil {
		return err
	}
	if err := s.clinic.sessions.Destroy(ctx); err != nil {
		return err
	}
	return c.Redirect(http.StatusSeeOther, "/login")
}

func (s *Server) logoutEverywhere(c echo.Context) error {
	ctx := c.Request().Context()
	if _, err := s.accounts.EndAllSessions(ctx, actorOf(c)); err != nil {
		return err
	}
	if err := s.clinic.sessions.Destroy(ctx); err != nil {
		return err
	}
	return c.Redirect(http.StatusSeeOther, "/login")
}
