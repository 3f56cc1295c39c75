package web

import (
	"net/http"

	"github.com/labstack/echo/v4"
)

// languageSet is POST /account/language: the signed-in user's language for the clinic's pages
// (lang=en or zh-CN, or empty to follow the browser's again), kept with the user, on every
// device; then back to the page it was chosen on (next, a local path).
func (s *Server) languageSet(c echo.Context) error {
	if err := s.accounts.SetLanguage(c.Request().Context(), actorOf(c), c.FormValue("lang")); err != nil {
		return err
	}
	return c.Redirect(http.StatusSeeOther, localPath(c.FormValue("next")))
}
