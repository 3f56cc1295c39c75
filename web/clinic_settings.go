package web

import (
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/dermfollow/dermfollow/followup"
	"github.com/dermfollow/dermfollow/followup/accounts"
	"github.com/dermfollow/dermfollow/followup/reminders"
)

// The clinic's settings page (admins): how families reach the clinic and where the notices of
// their messages go (followup.ContactSettings), beside the reminder settings
// (reminders.Settings), which the page shows and the API changes (PUT /api/v1/reminder-settings:
// the gateway's secret is write-only, and a form that sent it back each time would have to
// hold it).

type settingsData struct {
	Contact     followup.ContactSettings
	Reminders   reminders.Settings
	Policy      accounts.SignInPolicy // the sign-in settings (admin_settings.go)
	Error       string                // the contact form's
	PolicyError string                // the sign-in form's
}

// requireAdminPage refuses the settings to everyone but the clinic's admins.
func requireAdminPage(c echo.Context) error {
	if !actorOf(c).IsUser(followup.RoleAdmin) {
		return followup.Errorf(followup.EFORBIDDEN, "only an admin can change the clinic's settings")
	}
	return nil
}

// settingsPage is GET /admin/settings.
func (s *Server) settingsPage(c echo.Context) error {
	if err := requireAdminPage(c); err != nil {
		return err
	}
	contact, err := s.svc.ContactSettings(c.Request().Context(), actorOf(c))
	if err != nil {
		return err
	}
	return s.renderSettings(c, http.StatusOK, settingsData{Contact: contact})
}

func (s *Server) renderSettings(c echo.Context, status int, d settingsData) error {
	rs, err := s.reminders.ClinicSettings(c.Request().Context(), actorOf(c))
	if err != nil {
		return err
	}
	d.Reminders = rs
	if d.Policy, err = s.accounts.ClinicSignInPolicy(c.Request().Context(), actorOf(c)); err != nil {
		return err
	}
	return s.page(c, status, tr(clinicLang(c), "settings_title"), settingsPage(d))
}

// settingsContactSave is POST /admin/settings/contact: the form's values, saved, or shown again
// with the reason (422) and nothing changed.
func (s *Server) settingsContactSave(c echo.Context) error {
	if err := requireAdminPage(c); err != nil {
		return err
	}
	in := followup.ContactSettings{MessageInbox: c.FormValue("message_inbox"), Phone: c.FormValue("contact_phone"),
		Hours: c.FormValue("clinic_hours")}
	_, err := s.svc.SetContactSettings(c.Request().Context(), actorOf(c), in)
	if followup.ErrorCode(err) == followup.EINVALID {
		return s.renderSettings(c, http.StatusUnprocessableEntity, settingsData{Contact: in, Error: followup.ErrorMessage(err)})
	}
	if err != nil {
		return err
	}
	s.flash(c, tr(clinicLang(c), "settings_saved"))
	return c.Redirect(http.StatusSeeOther, "/admin/settings")
}

func (s *Server) apiGetContactSettings(c echo.Context) error {
	out, err := s.svc.ContactSettings(c.Request().Context(), actorOf(c))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, out)
}

// apiContactSettings is PUT /api/v1/contact-settings (admins): every field, as the form.
func (s *Server) apiContactSettings(c echo.Context) error {
	var in followup.ContactSettings
	if err := bindJSON(c, &in); err != nil {
		return err
	}
	out, err := s.svc.SetContactSettings(c.Request().Context(), actorOf(c), in)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, out)
}
