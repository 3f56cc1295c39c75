package web

import (
	"net/http"
	"net/url"
	"strings"

	"github.com/labstack/echo/v4"
)

// requireStepUp asks for the second factor again before the route's action when the
// session's last check is accounts.StepUpAge old or more (StepUpDue): starting or
// downloading an export, managing users and the clinic's settings, issuing API tokens and
// removing a factor. back is the page to return to after the check; a GET returns to itself.
// A page is sent to /verify; the API answers a cookie's POST 403, and a cookie's GET (a
// download link) goes to /verify like a page. Requests with an API token are not asked: the
// token was issued behind a step-up, or by the operator's CLI.
func (s *Server) requireStepUp(back string) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			due, err := s.stepUpDue(c)
			if err != nil {
				return err
			}
			if !due {
				return next(c)
			}
			r := c.Request()
			api := strings.HasPrefix(c.Path(), "/api/")
			to := back
			if r.Method == http.MethodGet {
				to = r.URL.RequestURI()
			} else if api {
				return &echo.HTTPError{Code: http.StatusForbidden,
					Message: "confirm your second factor again first, at /verify in the browser: the last check is more than 15 minutes old"}
			}
			if !api {
				s.flashIn(c, "si_stepup_flash")
			}
			return c.Redirect(http.StatusSeeOther, "/verify?next="+url.QueryEscape(localPath(to)))
		}
	}
}

// stepUpDue reports whether the request's session must confirm its second factor again.
// A user with no second factor whom the clinic lets sign in without one has nothing to
// confirm, and is not asked.
func (s *Server) stepUpDue(c echo.Context) (bool, error) {
	if strings.HasPrefix(c.Path(), "/api/") && c.Get(viaSessionKey) != true {
		return false, nil
	}
	ctx := c.Request().Context()
	if !s.accounts.StepUpDue(s.verifiedAt(ctx)) {
		return false, nil
	}
	st, err := s.accounts.SecondFactorState(ctx, actorOf(c).ID)
	if err != nil {
		return false, err
	}
	return st.Enrolled || st.Required, nil
}
