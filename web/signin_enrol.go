package web

import (
	"context"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/dermfollow/dermfollow/followup"
)

// Setting up a second factor: at the sign-in of a user who must have one and has none
// (/login/enrol, the only thing such a sign-in may do), and on the account page (/account)
// for anyone signed in. Both run the same steps under their base path: the authenticator
// app (a QR code, then a code it shows; the recovery codes are shown once), or a passkey
// (signin_passkey.go).

// setupFlow is who sets up a factor, where, and what follows once they have.
type setupFlow struct {
	actor    followup.Actor
	inSignIn bool
	base     string
	// done runs once a factor is set up, and returns where to go on: the sign-in is then
	// signed in, its second factor passed just now.
	done func(ctx context.Context) (next string, err error)
}

func (s *Server) setupFlowOf(c echo.Context) setupFlow {
	if p, ok := c.Get(pendingKey).(pendingSignIn); ok {
		return setupFlow{actor: p.actor, inSignIn: true, base: "/login/enrol", done: func(ctx context.Context) (string, error) {
			return p.next, s.finishSignIn(ctx, p.actor, p.epoch, s.accounts.Now())
		}}
	}
	return setupFlow{actor: actorOf(c), base: "/account", done: func(ctx context.Context) (string, error) {
		s.markVerified(ctx, s.accounts.Now())
		return "/account", nil
	}}
}

type setupData struct {
	InSignIn bool
	Base     string
	Error    string
	Passkeys bool // this server takes passkeys
	// The authenticator app being set up: its QR code (the PNG; the page makes it a data: URL) and its
	// secret for typing in by hand, shown when it is begun; Confirming asks for its code.
	QRPNG      []byte
	Secret     string
	Confirming bool
	// Codes are the new recovery codes, shown this once; Continue is where to go then.
	Codes    []string
	Continue string
}

func (f setupFlow) data() setupData { return setupData{InSignIn: f.inSignIn, Base: f.base} }

// setupForm is the sign-in's enrolment: the clinic asks for a second factor, and there is none.
func (s *Server) setupForm(c echo.Context) error {
	d := s.setupFlowOf(c).data()
	d.Passkeys = s.accounts.PasskeysAvailable()
	return s.langPage(c, http.StatusOK, "si_enrol_title", setupPage(d))
}

// totpBegin makes a new authenticator-app secret and shows its QR code.
func (s *Server) totpBegin(c echo.Context) error {
	f := s.setupFlowOf(c)
	e, err := s.accounts.BeginTOTP(c.Request().Context(), f.actor)
	if followup.ErrorCode(err) == followup.ECONFLICT {
		s.flashIn(c, "si_totp_exists")
		return c.Redirect(http.StatusSeeOther, f.base)
	}
	if err != nil {
		return err
	}
	d := f.data()
	d.QRPNG, d.Secret, d.Confirming = e.QRPNG, e.Secret, true
	return s.langPage(c, http.StatusOK, "si_totp_title", totpPage(d))
}

// totpConfirm sets the app up with a code it shows, and shows the recovery codes once.
func (s *Server) totpConfirm(c echo.Context) error {
	f := s.setupFlowOf(c)
	ctx := c.Request().Context()
	codes, err := s.accounts.ConfirmTOTP(ctx, f.actor, c.FormValue("code"))
	switch followup.ErrorCode(err) {
	case "":
	case followup.ENOTFOUND: // not begun, or begun again elsewhere and confirmed there
		s.flashIn(c, "si_totp_start_again")
		return c.Redirect(http.StatusSeeOther, f.base)
	case followup.ECONFLICT:
		s.flashIn(c, "si_totp_exists")
		return c.Redirect(http.StatusSeeOther, f.base)
	default:
		status, msg, ok := codeFailure(c, err)
		if !ok {
			return err
		}
		d := f.data()
		d.Error, d.Confirming = msg, true
		return s.langPage(c, status, "si_totp_title", totpPage(d))
	}
	next, err := f.done(ctx)
	if err != nil {
		return err
	}
	d := f.data()
	d.Codes, d.Continue = codes, next
	return s.langPage(c, http.StatusOK, "si_codes_title", codesPage(d))
}
