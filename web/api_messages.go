package web

import (
	"net/http"
	"strconv"

	"github.com/labstack/echo/v4"

	"github.com/dermfollow/dermfollow/followup"
	"github.com/dermfollow/dermfollow/followup/conversation"
)

// The conversation's API (followup/conversation): the clinic reads a procedure's thread,
// answers and marks the family's messages handled. The family's side is on its /p/ routes
// (parent_messages.go).

// threadPage reads a thread page's query: before (a thread's older cursor) and limit.
func threadPage(c echo.Context) (conversation.Page, error) {
	p := conversation.Page{Before: c.QueryParam("before")}
	if l := c.QueryParam("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil {
			return p, followup.InvalidField("limit", "must be a number")
		}
		p.Limit = n
	}
	return p, nil
}

// apiThread is GET /api/v1/procedures/{id}/messages: the thread, oldest first, audited as a
// view and marking the family's messages on the page read.
func (s *Server) apiThread(c echo.Context) error {
	id, err := pathID(c, "id")
	if err != nil {
		return err
	}
	p, err := threadPage(c)
	if err != nil {
		return err
	}
	t, err := s.conv.Thread(c.Request().Context(), actorOf(c), id, p)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, t)
}

// apiMessage is POST /api/v1/procedures/{id}/messages. A reply (body, and kind "note" or
// none) answers the thread and marks the family's earlier messages handled; a retake request
// (kind "retake", photo_id) and a note about one step (timepoint) are the core's messages to
// the family, as before the conversation, and answer nothing.
func (s *Server) apiMessage(c echo.Context) error {
	id, err := pathID(c, "id")
	if err != nil {
		return err
	}
	var in followup.NewMessage
	if err := bindJSON(c, &in); err != nil {
		return err
	}
	if (in.Kind == "" || in.Kind == "note") && in.Timepoint == "" && in.PhotoID == "" {
		m, err := s.conv.Reply(c.Request().Context(), actorOf(c), id, in.Body)
		if err != nil {
			return err
		}
		return c.JSON(http.StatusCreated, m)
	}
	m, err := s.svc.SendMessage(c.Request().Context(), actorOf(c), id, in)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusCreated, m)
}

// apiMessageHandled is POST /api/v1/procedures/{id}/messages/{mid}/handled.
func (s *Server) apiMessageHandled(c echo.Context) error {
	id, err := pathID(c, "id")
	if err != nil {
		return err
	}
	mid, err := pathID(c, "mid")
	if err != nil {
		return err
	}
	m, err := s.conv.MarkHandled(c.Request().Context(), actorOf(c), id, mid)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, m)
}
