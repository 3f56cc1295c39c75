package web

import (
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/dermfollow/dermfollow/followup"
)

// messageReply is POST /procedures/{id}/messages: the clinic's answer to the family, from
// the procedure's page (body). Answering marks the family's earlier messages handled, by the
// one who answered (conversation.Service.Reply). A reply refused for its text comes back as
// the page with the text as written and why (422), so nothing typed is lost.
func (s *Server) messageReply(c echo.Context) error {
	id, err := pathID(c, "id")
	if err != nil {
		return err
	}
	body := c.FormValue("body")
	_, err = s.conv.Reply(c.Request().Context(), actorOf(c), id, body)
	if followup.ErrorCode(err) == followup.EINVALID {
		pp, lerr := s.loadProcedure(c)
		if lerr != nil {
			return lerr
		}
		d := newTimelineData(pp)
		if d.Talk, lerr = s.clinicThread(c, pp, replyForm{Body: keptText(body), Error: followup.ErrorMessage(err)}); lerr != nil {
			return lerr
		}
		return s.page(c, http.StatusUnprocessableEntity, pp.Patient.DisplayName, timelinePage(d))
	}
	if err != nil {
		return err
	}
	s.flash(c, tr(clinicLang(c), "cl_talk_sent"))
	return c.Redirect(http.StatusSeeOther, "/procedures/"+id.String()+"#conversation")
}
