package web

import (
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/dermfollow/dermfollow/followup"
	"github.com/dermfollow/dermfollow/followup/reminders"
)

// remindersOut is the outbox as the API returns it: never a message, a link or an address.
type remindersOut struct {
	Reminders []followup.Reminder `json:"reminders"`
}

func (s *Server) apiReminders(c echo.Context) error {
	id, err := pathID(c, "id")
	if err != nil {
		return err
	}
	rs, err := s.svc.Reminders(c.Request().Context(), actorOf(c), id)
	if err != nil {
		return err
	}
	if rs == nil {
		rs = []followup.Reminder{}
	}
	return c.JSON(http.StatusOK, remindersOut{Reminders: rs})
}

// apiSendReminder queues a reminder by hand: 202 with the queued outbox rows (one per
// channel; at night they wait for the end of the clinic's quiet hours, see send_after).
func (s *Server) apiSendReminder(c echo.Context) error {
	id, err := pathID(c, "id")
	if err != nil {
		return err
	}
	if c.Request().ContentLength > 0 {
		var in struct{}
		if err := bindJSON(c, &in); err != nil {
			return err
		}
	}
	rs, err := s.reminders.Send(c.Request().Context(), actorOf(c), id)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusAccepted, remindersOut{Reminders: rs})
}

func (s *Server) apiReminderSwitch(c echo.Context) error {
	id, err := pathID(c, "id")
	if err != nil {
		return err
	}
	var in struct {
		Enabled *bool `json:"enabled"`
	}
	if err := bindJSON(c, &in); err != nil {
		return err
	}
	if in.Enabled == nil {
		return badRequest("enabled is required: true or false")
	}
	if err := s.reminders.SetEnabled(c.Request().Context(), actorOf(c), id, *in.Enabled); err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]bool{"enabled": *in.Enabled})
}

func (s *Server) apiGetReminderSettings(c echo.Context) error {
	out, err := s.reminders.ClinicSettings(c.Request().Context(), actorOf(c))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, out)
}

// apiReminderSettings sets the clinic's messaging gateway and quiet hours (admins). The
// secret is write-only: it is never returned.
func (s *Server) apiReminderSettings(c echo.Context) error {
	var in reminders.Settings
	if err := bindJSON(c, &in); err != nil {
		return err
	}
	out, err := s.reminders.SetSettings(c.Request().Context(), actorOf(c), in)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, out)
}
