package web

import (
	"net/http"

	"github.com/labstack/echo/v4"
)

// messageHandle is POST /procedures/{id}/messages/{mid}/handled: a family message needs no
// answer (or was answered by phone), from the procedure's page.
func (s *Server) messageHandle(c echo.Context) error {
	id, err := pathID(c, "id")
	if err != nil {
		return err
	}
	mid, err := pathID(c, "mid")
	if err != nil {
		return err
	}
	if _, err := s.conv.MarkHandled(c.Request().Context(), actorOf(c), id, mid); err != nil {
		return err
	}
	s.flash(c, tr(clinicLang(c), "cl_talk_handled"))
	return c.Redirect(http.StatusSeeOther, "/procedures/"+id.String()+"#conversation")
}
