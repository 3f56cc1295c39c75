package web

import (
	"context"
	"net/http"
	"net/url"
	"time"

	"github.com/google/uuid"
	"github.com/labstack/echo/v4"

	"github.com/dermfollow/dermfollow/followup"
	"github.com/dermfollow/dermfollow/followup/accounts"
)

// A session is signed in only once every step its sign-in needs has passed (accounts.SignIn
// says which). Until then it holds the sign-in in progress under keys of its own, never
// sessionUserKey, so that no clinic page and no API route sees a user in it: all it may do is
// its next step, the second factor or the enrolment of one (requirePending).
//
// A signed-in session also keeps when its second factor last passed (verifiedKey, by the
// accounts' clock), for the actions that ask for it again (requireStepUp).
const (
	pendingUserKey  = "pending_user"
	pendingStepKey  = "pending_step"  // accounts.StepSecondFactor or accounts.StepEnrol
	pendingEpochKey = "pending_epoch" // the user's session epoch when the password passed
	pendingAtKey    = "pending_at"    // when the password passed (Unix nanoseconds)
	pendingNextKey  = "pending_next"  // where to go once signed in
	verifiedKey     = "verified"      // when the second factor last passed (Unix nanoseconds)
	ceremonyKey     = "ceremony"      // the passkey ceremony begun by this session

	// pendingTTL is how long a sign-in may take from its password to its last step.
	pendingTTL = 10 * time.Minute

	pendingKey    = "pending"     // where requirePending leaves the pendingSignIn in the context
	viaSessionKey = "via_session" // set by requireUser for a request signed in by cookie
)

// sessionKeys are every key a signed-in or signing-in session holds; signOut removes them.
var sessionKeys = []string{sessionUserKey, sessionEpochKey, sessionSeenKey, verifiedKey, ceremonyKey,
	pendingUserKey, pendingStepKey, pendingEpochKey, pendingAtKey, pendingNextKey}

// pendingSignIn is a sign-in whose password passed and whose next step has not.
type pendingSignIn struct {
	actor followup.Actor
	step  accounts.SignInStep
	epoch int64
	next  string
}

// stepPath is the page of a pending sign-in's step.
func (p pendingSignIn) stepPath() string {
	if p.step == accounts.StepEnrol {
		return "/login/enrol"
	}
	return "/login/second-factor"
}

// afterPassword moves a sign-in on from its password: signed in at once where nothing more
// is needed, else to the step it needs, under a new session token either way.
func (s *Server) afterPassword(c echo.Context, res accounts.SignInResult, next string) error {
	ctx := c.Request().Context()
	_, epoch, err := s.accounts.SessionUser(ctx, res.Actor.ID, res.Actor.Addr)
	if err != nil {
		return err
	}
	if res.Next == accounts.StepDone {
		if err := s.finishSignIn(ctx, res.Actor, epoch, time.Time{}); err != nil {
			return err
		}
		return c.Redirect(http.StatusSeeOther, next)
	}
	sm := s.clinic.sessions
	if err := sm.RenewToken(ctx); err != nil {
		return err
	}
	s.signOut(ctx)
	p := pendingSignIn{step: res.Next, next: next}
	sm.Put(ctx, pendingUserKey, res.Actor.ID.String())
	sm.Put(ctx, pendingStepKey, string(res.Next))
	sm.Put(ctx, pendingEpochKey, epoch)
	sm.Put(ctx, pendingAtKey, time.Now().UnixNano())
	sm.Put(ctx, pendingNextKey, next)
	return c.Redirect(http.StatusSeeOther, p.stepPath())
}

// pendingOf returns the session's sign-in in progress. ok is false when there is none, it
// took longer than pendingTTL, or its user is gone, disabled or signed out everywhere since
// the password; such a sign-in is dropped.
func (s *Server) pendingOf(c echo.Context) (pendingSignIn, bool, error) {
	ctx := c.Request().Context()
	sm := s.clinic.sessions
	id, err := uuid.Parse(sm.GetString(ctx, pendingUserKey))
	if err != nil {
		return pendingSignIn{}, false, nil
	}
	if age := time.Since(time.Unix(0, sm.GetInt64(ctx, pendingAtKey))); age < 0 || age > pendingTTL {
		s.signOut(ctx)
		return pendingSignIn{}, false, nil
	}
	a, epoch, err := s.accounts.SessionUser(ctx, id, realIPAddr(c))
	if err != nil && followup.ErrorCode(err) != followup.EUNAUTHORIZED {
		return pendingSignIn{}, false, err
	}
	if err != nil || epoch != sm.GetInt64(ctx, pendingEpochKey) {
		s.signOut(ctx)
		return pendingSignIn{}, false, nil
	}
	step := accounts.SignInStep(sm.GetString(ctx, pendingStepKey))
	if step != accounts.StepSecondFactor && step != accounts.StepEnrol {
		s.signOut(ctx)
		return pendingSignIn{}, false, nil
	}
	return pendingSignIn{actor: a, step: step, epoch: epoch, next: localPath(sm.GetString(ctx, pendingNextKey))}, true, nil
}

// finishSignIn signs the session in as a (sign-in's user) with the epoch read when its
// password passed; verified is when its second factor passed (zero: it had none).
func (s *Server) finishSignIn(ctx context.Context, a followup.Actor, epoch int64, verified time.Time) error {
	s.signOut(ctx)
	if err := s.signIn(ctx, a, epoch); err != nil {
		return err
	}
	if !verified.IsZero() {
		s.markVerified(ctx, verified)
	}
	return nil
}

// markVerified records that the session's second factor passed at (the accounts' clock).
func (s *Server) markVerified(ctx context.Context, at time.Time) {
	s.clinic.sessions.Put(ctx, verifiedKey, at.UnixNano())
}

// verifiedAt is when the session's second factor last passed (zero: never).
func (s *Server) verifiedAt(ctx context.Context) time.Time {
	ns := s.clinic.sessions.GetInt64(ctx, verifiedKey)
	if ns == 0 {
		return time.Time{}
	}
	return time.Unix(0, ns)
}

// requirePending admits only a session whose sign-in is at step. Anyone else is sent where
// they belong: a signed-in user to the worklist, a sign-in at its other step to that step,
// anyone else to the sign-in (GET), or refused (other methods).
func (s *Server) requirePending(step accounts.SignInStep) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			p, ok, err := s.pendingOf(c)
			if err != nil {
				return err
			}
			if ok && p.step == step {
				c.Set(pendingKey, p)
				return next(c)
			}
			if c.Request().Method != http.MethodGet {
				return followup.Errorf(followup.EUNAUTHORIZED, "sign in first")
			}
			if ok {
				return c.Redirect(http.StatusSeeOther, p.stepPath())
			}
			if _, in, err := s.sessionActor(c); err == nil && in {
				return c.Redirect(http.StatusSeeOther, "/")
			}
			return c.Redirect(http.StatusSeeOther, "/login?next="+url.QueryEscape("/"))
		}
	}
}

// pendingFrom is the sign-in requirePending admitted.
func pendingFrom(c echo.Context) pendingSignIn {
	p, _ := c.Get(pendingKey).(pendingSignIn)
	return p
}
