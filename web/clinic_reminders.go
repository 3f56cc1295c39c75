package web

import (
	"context"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/dermfollow/dermfollow/followup"
)

// The reminder outbox on the clinician's pages: what was sent to the family, when, on which
// channel, delivered or failed and why; and the two controls, send a reminder now and turn the
// procedure's reminders off or on. The procedure page shows the outbox and the controls; the
// outbox page shows it alone. Times are in the clinic's zone.

// outboxRow is one reminder as the outbox page shows it, its times in the clinic's zone.
type outboxRow struct {
	followup.Reminder
	Label                string // the timepoint's name in the protocol
	Created, Due, SentAt string
}

type outboxData struct {
	procedurePage
	Zone string
	Rows []outboxRow
}

// reminderOutbox is GET /procedures/:id/reminders: the procedure's outbox, newest first.
func (s *Server) reminderOutbox(c echo.Context) error {
	pp, err := s.loadProcedure(c)
	if err != nil {
		return err
	}
	d := outboxData{procedurePage: pp}
	d.Rows, d.Zone = outboxRows(pp)
	return s.page(c, http.StatusOK, trf(clinicLang(c), "cl_title_reminders", pp.Patient.DisplayName), remindersPage(d))
}

// outboxRows is a procedure's outbox, newest first, with its times in the clinic's zone (whose
// name it returns too).
func outboxRows(pp procedurePage) ([]outboxRow, string) {
	rows := make([]outboxRow, 0, len(pp.reminders))
	for _, r := range pp.reminders {
		row := outboxRow{Reminder: r, Label: pp.label(r.Timepoint), Created: pp.at(r.CreatedAt), Due: pp.at(r.SendAfter)}
		if r.SentAt != nil {
			row.SentAt = pp.at(*r.SentAt)
		}
		rows = append(rows, row)
	}
	return rows, pp.clinic.TimeZone
}

// reminderSend queues a reminder by hand. The core's refusals (procedure closed, reminders
// off, no link, nothing due, sent a moment ago) come back as the flash on the outbox page.
func (s *Server) reminderSend(c echo.Context) error {
	id, err := pathID(c, "id")
	if err != nil {
		return err
	}
	outbox := "/procedures/" + id.String() + "/reminders"
	rs, err := s.reminders.Send(c.Request().Context(), actorOf(c), id)
	switch {
	case followup.ErrorCode(err) == followup.ECONFLICT:
		s.flash(c, "No reminder sent: "+followup.ErrorMessage(err)+".")
		return c.Redirect(http.StatusSeeOther, outbox)
	case err != nil:
		return err
	}
	msg := "Reminder queued."
	if len(rs) > 0 && rs[0].SendAfter.After(time.Now().Add(time.Minute)) {
		msg = "Reminder queued: it goes out after the clinic's quiet hours."
	}
	s.flash(c, msg)
	return c.Redirect(http.StatusSeeOther, outbox)
}

// reminderSwitch turns the procedure's reminders off (enabled=false) or on (enabled=true).
func (s *Server) reminderSwitch(c echo.Context) error {
	id, err := pathID(c, "id")
	if err != nil {
		return err
	}
	var enabled bool
	switch c.FormValue("enabled") {
	case "true":
		enabled = true
	case "false":
	default:
		return followup.Errorf(followup.EINVALID, "choose whether reminders are on or off")
	}
	if err := s.reminders.SetEnabled(c.Request().Context(), actorOf(c), id, enabled); err != nil {
		return err
	}
	if enabled {
		s.flash(c, "Reminders are on for this procedure.")
	} else {
		s.flash(c, "Reminders are off for this procedure: nothing more is sent, including reminders already queued.")
	}
	return c.Redirect(http.StatusSeeOther, "/procedures/"+id.String()+"#reminders")
}

// onOff names a switch's state.
// onOffText writes whether something is on, in the page's language.
func onOffText(ctx context.Context, on bool) string {
	if on {
		return msg(ctx, "cl_on")
	}
	return msg(ctx, "cl_off")
}
