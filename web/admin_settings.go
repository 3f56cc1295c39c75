package web

import (
	"net/http"

	"github.com/labstack/echo/v4"
)

// The sign-in part of the clinic's settings page (clinic_settings.go), for its admins: whether clinicians need a second factor
// (admins and researchers always do), and whether a passkey alone signs in. Changing them
// asks for a recent second factor (requireStepUp); each change is audited by accounts.

// signInSettingsSave is POST /admin/settings/sign-in.
func (s *Server) signInSettingsSave(c echo.Context) error {
	a := actorOf(c)
	if err := a.CanManageUsersOf(a.ClinicID); err != nil {
		return err
	}
	require, ok1 := checkbox(c, "require_second_factor")
	passwordless, ok2 := checkbox(c, "allow_passwordless")
	if !ok1 || !ok2 {
		contact, err := s.svc.ContactSettings(c.Request().Context(), a)
		if err != nil {
			return err
		}
		return s.renderSettings(c, http.StatusUnprocessableEntity,
			settingsData{Contact: contact, PolicyError: tr(clinicLang(c), "si_settings_bad")})
	}
	ctx := c.Request().Context()
	if err := s.accounts.SetClinicSecondFactor(ctx, a, require); err != nil {
		return err
	}
	if err := s.accounts.SetClinicPasswordless(ctx, a, passwordless); err != nil {
		return err
	}
	s.flashIn(c, "si_settings_saved")
	return c.Redirect(http.StatusSeeOther, "/admin/settings")
}

// checkbox reads a form's checkbox: absent is off, "on" (what browsers send) is on, and
// anything else is not an answer.
func checkbox(c echo.Context, name string) (on, ok bool) {
	v, present := c.Request().PostForm[name] // parsed by boundBodies; the query does not count
	switch {
	case !present:
		return false, true
	case len(v) == 1 && v[0] == "on":
		return true, true
	}
	return false, false
}
