package web

import (
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/dermfollow/dermfollow/followup"
)

// The clinician's pages: sign-in, the worklist, patients and procedures, the timeline, the
// comparison and grading. Every page runs in a server-side session (session.go) with CSRF
// protection on every form (csrf.go); errors answer as HTML pages.

// loginLimiter limits failed sign-ins per client address and per email; separate from the
// parent links' limiter, so one cannot be used to lock out the other.
type loginLimiter struct{ byAddr, byEmail *failureLimiter }

func newLoginLimiter() loginLimiter {
	return loginLimiter{byAddr: newFailureLimiter(20, 15*time.Minute), byEmail: newFailureLimiter(10, 15*time.Minute)}
}

// clinicPage is what every clinic page template gets.
type clinicPage struct {
	Title string
	User  followup.Actor
	CSRF  string
	Flash string
	Data  any
}

func (s *Server) page(c echo.Context, status int, name, title string, data any) error {
	return s.render(c, status, "clinic/"+name, clinicPage{Title: title, User: actorOf(c), CSRF: s.csrfToken(c),
		Flash: s.clinic.sessions.PopString(c.Request().Context(), "flash"), Data: data})
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
		status, body := errorResponse(err, requestLang(c))
		if status >= 500 {
			logger(c).ErrorContext(c.Request().Context(), "page failed", "route", routeLabel(c), "error", err.Error())
		}
		if status == http.StatusUnauthorized {
			body.Error.Message = "Sign in again."
		}
		if rerr := s.page(c, status, "error", http.StatusText(status), body.Error); rerr != nil {
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
			if c.Request().Method == http.MethodGet {
				return c.Redirect(http.StatusSeeOther, "/login?next="+url.QueryEscape(c.Request().URL.RequestURI()))
			}
			return followup.Errorf(followup.EUNAUTHORIZED, "sign in first")
		}
		c.Set(actorKey, a)
		return next(c)
	}
}

// localPath keeps a post-login redirect on this site: a path, never //host or a scheme.
func localPath(p string) string {
	if !strings.HasPrefix(p, "/") || strings.HasPrefix(p, "//") || strings.HasPrefix(p, `/\`) || strings.ContainsAny(p, "\r\n") {
		return "/"
	}
	return p
}

type loginData struct {
	Email, Next, Error string
}

func (s *Server) loginForm(c echo.Context) error {
	if _, ok, err := s.sessionActor(c); err == nil && ok {
		return c.Redirect(http.StatusSeeOther, localPath(c.QueryParam("next")))
	}
	return s.page(c, http.StatusOK, "login", "Sign in", loginData{Next: localPath(c.QueryParam("next"))})
}

func (s *Server) login(c echo.Context) error {
	email := strings.ToLower(strings.TrimSpace(c.FormValue("email")))
	password := c.FormValue("password")
	next := localPath(c.FormValue("next"))
	addr := c.RealIP()
	fail := func(status int, msg string) error {
		return s.page(c, status, "login", "Sign in", loginData{Email: email, Next: next, Error: msg})
	}
	if s.clinic.loginFailures.byAddr.Blocked(addr) || s.clinic.loginFailures.byEmail.Blocked(email) {
		c.Response().Header().Set("Retry-After", "300")
		return fail(http.StatusTooManyRequests, "Too many failed sign-ins. Wait a few minutes and try again.")
	}
	if email == "" || password == "" || len(email) > 254 {
		return fail(http.StatusUnprocessableEntity, "Enter your email and password.")
	}
	ctx := c.Request().Context()
	a, _, err := s.svc.Authenticate(ctx, email, password, realIPAddr(c))
	if followup.ErrorCode(err) == followup.EUNAUTHORIZED {
		s.clinic.loginFailures.byAddr.Fail(addr)
		s.clinic.loginFailures.byEmail.Fail(email)
		return fail(http.StatusUnauthorized, followup.ErrorMessage(err))
	}
	if err != nil {
		return err
	}
	_, epoch, err := s.svc.SessionUser(ctx, a.ID, a.Addr)
	if err != nil {
		return err
	}
	if err := s.signIn(ctx, a, epoch); err != nil {
		return err
	}
	return c.Redirect(http.StatusSeeOther, next)
}

func (s *Server) logout(c echo.Context) error {
	ctx := c.Request().Context()
	if err := s.svc.RecordLogout(ctx, actorOf(c)); err != nil {
		return err
	}
	if err := s.clinic.sessions.Destroy(ctx); err != nil {
		return err
	}
	return c.Redirect(http.StatusSeeOther, "/login")
}

func (s *Server) logoutEverywhere(c echo.Context) error {
	ctx := c.Request().Context()
	if _, err := s.svc.EndAllSessions(ctx, actorOf(c)); err != nil {
		return err
	}
	if err := s.clinic.sessions.Destroy(ctx); err != nil {
		return err
	}
	return c.Redirect(http.StatusSeeOther, "/login")
}
