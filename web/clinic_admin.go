package web

import (
	"net/http"
	"net/netip"

	"github.com/labstack/echo/v4"

	"github.com/dermfollow/dermfollow/followup"
	"github.com/dermfollow/dermfollow/followup/accounts"
)

// The admin's pages: a patient's audit log and the clinic's users.

type auditData struct {
	Patient followup.Patient
	Entries []followup.AuditEntry
}

func (s *Server) patientAudit(c echo.Context) error {
	id, err := pathID(c, "id")
	if err != nil {
		return err
	}
	ctx, a := c.Request().Context(), actorOf(c)
	entries, err := s.svc.PatientAudit(ctx, a, id)
	if err != nil {
		return err
	}
	p, err := s.svc.Patient(ctx, a, id)
	if err != nil {
		return err
	}
	return s.page(c, http.StatusOK, tr(clinicLang(c), "cl_title_audit"), auditPage(auditData{Patient: p, Entries: entries}))
}

type usersData struct {
	Users []accounts.User
	In    accounts.NewUser
	Error string
	Roles []string
}

func (s *Server) usersList(c echo.Context) error {
	return s.renderUsers(c, http.StatusOK, usersData{In: accounts.NewUser{Role: followup.RoleClinician}})
}

func (s *Server) renderUsers(c echo.Context, status int, d usersData) error {
	users, err := s.accounts.ClinicUsers(c.Request().Context(), actorOf(c))
	if err != nil {
		return err
	}
	d.Users = users
	d.Roles = []string{followup.RoleClinician, followup.RoleResearcher, followup.RoleAdmin}
	return s.page(c, status, tr(clinicLang(c), "cl_title_users"), usersPage(d))
}

func (s *Server) userCreate(c echo.Context) error {
	a := actorOf(c)
	in := accounts.NewUser{Email: c.FormValue("email"), Name: c.FormValue("name"), Role: c.FormValue("role"), Password: c.FormValue("password")}
	_, err := s.accounts.CreateUser(c.Request().Context(), a, in)
	if code := followup.ErrorCode(err); code == followup.EINVALID || code == followup.ECONFLICT {
		in.Password = "" // never sent back
		return s.renderUsers(c, http.StatusUnprocessableEntity, usersData{In: in, Error: followup.ErrorMessage(err)})
	}
	if err != nil {
		return err
	}
	s.flash(c, "User created.")
	return c.Redirect(http.StatusSeeOther, "/admin/users")
}

// userSetDisabled disables or re-enables a user of the admin's clinic; a disabled user's
// sessions end at once (followup.SetUserDisabled).
func (s *Server) userSetDisabled(disabled bool) echo.HandlerFunc {
	return func(c echo.Context) error {
		id, err := pathID(c, "id")
		if err != nil {
			return err
		}
		err = s.accounts.SetUserDisabled(c.Request().Context(), actorOf(c), id, disabled)
		if followup.ErrorCode(err) == followup.EINVALID {
			return s.renderUsers(c, http.StatusUnprocessableEntity, usersData{In: accounts.NewUser{Role: followup.RoleClinician},
				Error: followup.ErrorMessage(err)})
		}
		if err != nil {
			return err
		}
		if disabled {
			s.flash(c, "User disabled; their sessions have ended.")
		} else {
			s.flash(c, "User enabled.")
		}
		return c.Redirect(http.StatusSeeOther, "/admin/users")
	}
}

// addrText is an audit entry's client address, or "" when none was recorded.
func addrText(a *netip.Addr) string {
	if a == nil {
		return ""
	}
	return a.String()
}
