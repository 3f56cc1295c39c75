package web

import (
	"net/http"
	"slices"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/dermfollow/dermfollow/followup"
	"github.com/dermfollow/dermfollow/followup/accounts"
)

// The account's security page: the signed-in user's authenticator app, passkeys and
// recovery codes, and their last sign-ins. Setting up a factor runs the enrolment's steps
// (signin_enrol.go) under /account; removing one, or making new recovery codes, asks for a
// recent second factor (requireStepUp), and a user who must have a second factor cannot
// remove the last one.

// recentSignInsShown is how many sign-ins the page lists.
const recentSignInsShown = 10

type accountData struct {
	User       accounts.User
	State      accounts.SecondFactorState
	TOTP       bool
	Passkeys   []accounts.Passkey
	PasskeysOn bool
	SignIns    []accounts.SignIn
	Error      string
}

func (s *Server) accountPage(c echo.Context) error { return s.renderAccount(c, http.StatusOK, "") }

func (s *Server) renderAccount(c echo.Context, status int, problem string) error {
	ctx, a := c.Request().Context(), actorOf(c)
	u, err := s.accounts.CurrentUser(ctx, a)
	if err != nil {
		return err
	}
	st, err := s.accounts.SecondFactorState(ctx, a.ID)
	if err != nil {
		return err
	}
	keys, err := s.accounts.ListPasskeys(ctx, a)
	if err != nil {
		return err
	}
	signIns, err := s.accounts.RecentSignIns(ctx, a, recentSignInsShown)
	if err != nil {
		return err
	}
	d := accountData{User: u, State: st, TOTP: slices.Contains(st.Methods, accounts.MethodTOTP), Passkeys: keys,
		PasskeysOn: st.PasskeysAvailable, SignIns: signIns, Error: problem}
	return s.langPage(c, status, "si_account_title", accountPage(d))
}

// lastFactor reports whether removing one factor (an app, or one passkey) would leave a
// user who must have a second factor with none.
func (s *Server) lastFactor(c echo.Context, removingApp bool) (bool, error) {
	st, err := s.accounts.SecondFactorState(c.Request().Context(), actorOf(c).ID)
	if err != nil {
		return false, err
	}
	apps := 0
	if slices.Contains(st.Methods, accounts.MethodTOTP) {
		apps = 1
	}
	kind := st.Passkeys
	if removingApp {
		kind = apps
	}
	// With none of the kind there is nothing to remove (accounts answers not found).
	return st.Required && kind > 0 && apps+st.Passkeys <= 1, nil
}

func (s *Server) totpRemove(c echo.Context) error {
	if last, err := s.lastFactor(c, true); err != nil || last {
		return s.keepLastFactor(c, err)
	}
	if err := s.accounts.RemoveTOTP(c.Request().Context(), actorOf(c)); err != nil {
		return err
	}
	s.flashIn(c, "si_totp_removed")
	return c.Redirect(http.StatusSeeOther, "/account")
}

// keepLastFactor refuses to remove the last factor of a user who must have one.
func (s *Server) keepLastFactor(c echo.Context, err error) error {
	if err != nil {
		return err
	}
	return s.renderAccount(c, http.StatusConflict, tr(clinicLang(c), "si_last_factor"))
}

// recoveryCodes replaces the user's recovery codes and shows the new ones once.
func (s *Server) recoveryCodes(c echo.Context) error {
	codes, err := s.accounts.RegenerateRecoveryCodes(c.Request().Context(), actorOf(c))
	if followup.ErrorCode(err) == followup.EINVALID {
		return s.renderAccount(c, http.StatusUnprocessableEntity, tr(clinicLang(c), "si_codes_need_factor"))
	}
	if err != nil {
		return err
	}
	return s.langPage(c, http.StatusOK, "si_codes_title", codesPage(setupData{Base: "/account", Codes: codes, Continue: "/account"}))
}

func (s *Server) passkeyRename(c echo.Context) error {
	id, err := pathID(c, "id")
	if err != nil {
		return err
	}
	name, ok := passkeyName(c)
	if !ok {
		return s.renderAccount(c, http.StatusUnprocessableEntity, trf(clinicLang(c), "si_passkey_name_bad", itoa(accounts.MaxPasskeyName)))
	}
	if err := s.accounts.RenamePasskey(c.Request().Context(), actorOf(c), id, strings.TrimSpace(name)); err != nil {
		return err
	}
	s.flashIn(c, "si_passkey_renamed")
	return c.Redirect(http.StatusSeeOther, "/account")
}

func (s *Server) passkeyRemove(c echo.Context) error {
	id, err := pathID(c, "id")
	if err != nil {
		return err
	}
	if last, err := s.lastFactor(c, false); err != nil || last {
		return s.keepLastFactor(c, err)
	}
	if err := s.accounts.RemovePasskey(c.Request().Context(), actorOf(c), id); err != nil {
		return err
	}
	s.flashIn(c, "si_passkey_removed")
	return c.Redirect(http.StatusSeeOther, "/account")
}
