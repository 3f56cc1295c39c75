package web

import (
	"context"
	"net/http"
	"net/netip"
	"time"

	"github.com/alexedwards/scs/v2"
	"github.com/google/uuid"
	"github.com/labstack/echo/v4"

	"github.com/dermfollow/dermfollow/followup"
)

// Clinician sessions live server-side in PostgreSQL (scs, stored by sessionStore); the browser holds
// only a random token in an HttpOnly, SameSite=Lax cookie, and the store keeps only the token's
// SHA-256. A session ends after sessionIdle without requests or sessionLifetime after sign-in,
// whichever comes first, and at once when its user logs out everywhere (the user's epoch moves
// on, see followup.EndAllSessions).
//
// The idle timeout is kept here rather than by scs: scs would rewrite the session row on every
// request (every thumbnail of a timeline), while a "last seen" time refreshed at most once per
// sessionTouch costs a write a minute.
const (
	sessionIdle     = 30 * time.Minute
	sessionLifetime = 12 * time.Hour
	sessionTouch    = time.Minute
	sessionCookie   = "dermfollow_session"

	sessionUserKey  = "user"  // the signed-in user's id (string)
	sessionEpochKey = "epoch" // the user's session epoch at sign-in
	sessionSeenKey  = "seen"  // when the signed-in session was last used (Unix nanoseconds)
)

// initSessions builds the session manager. Sessions are kept in PostgreSQL through the
// follow-up core (sessionStore).
func (s *Server) initSessions() {
	m := scs.New()
	m.Lifetime = sessionLifetime
	m.HashTokenInStore = true
	m.Codec = sessionCodec{log: s.log}
	m.Cookie.Name = sessionCookie
	m.Cookie.HttpOnly = true
	m.Cookie.SameSite = http.SameSiteLaxMode
	m.Cookie.Secure = s.cfg.Secure
	m.Cookie.Path = "/"
	// A browser session cookie: the server-side expiry is what counts, and closing the
	// browser ends the session too.
	m.Cookie.Persist = false
	m.ErrorFunc = func(w http.ResponseWriter, r *http.Request, err error) {
		s.log.ErrorContext(r.Context(), "session store failed", "error", err.Error())
		http.Error(w, "The service is temporarily unavailable; please try again.", http.StatusServiceUnavailable)
	}
	// Expired rows are removed by the server's background work (followup.DeleteExpiredSessions).
	m.Store = sessionStore{accounts: s.accounts}
	s.clinic = &clinicState{sessions: m, loginFailures: newLoginLimiter(), idle: sessionIdle,
		passkeyBegins: newFailureLimiter(20, 5*time.Minute)}
}

// clinicState is what the clinician's pages keep for the server's life.
type clinicState struct {
	sessions      *scs.SessionManager
	loginFailures loginLimiter
	idle          time.Duration // sessionIdle; tests shorten it
	// passkeyBegins limits the passkey sign-ins begun per address (each keeps a row for
	// the ceremony's few minutes).
	passkeyBegins *failureLimiter
}

// withSession loads the session of the request's cookie (none yet: a fresh one) and saves it
// after the handler, writing the cookie when it changed.
func (s *Server) withSession(next echo.HandlerFunc) echo.HandlerFunc {
	h := echo.WrapMiddleware(s.clinic.sessions.LoadAndSave)(next)
	return func(c echo.Context) error {
		r := c.Request()
		c.SetRequest(r.WithContext(withSessionLookup(r.Context())))
		return h(c)
	}
}

// sessionActor returns the signed-in user of a loaded session. ok is false when the session
// is anonymous, idle for too long, its user is gone or disabled, or it was ended by "log out
// everywhere"; such a session is emptied.
func (s *Server) sessionActor(c echo.Context) (followup.Actor, bool, error) {
	ctx := c.Request().Context()
	id, err := uuid.Parse(s.clinic.sessions.GetString(ctx, sessionUserKey))
	if err != nil {
		return followup.Actor{}, false, nil
	}
	now := time.Now()
	seen := time.Unix(0, s.clinic.sessions.GetInt64(ctx, sessionSeenKey))
	if now.Sub(seen) > s.clinic.idle {
		s.signOut(ctx)
		return followup.Actor{}, false, nil
	}
	a, epoch, err := s.sessionUser(ctx, id, realIPAddr(c))
	if err != nil && followup.ErrorCode(err) != followup.EUNAUTHORIZED {
		return followup.Actor{}, false, err
	}
	if err != nil || epoch != s.clinic.sessions.GetInt64(ctx, sessionEpochKey) {
		s.signOut(ctx)
		return followup.Actor{}, false, nil
	}
	if now.Sub(seen) > min(sessionTouch, s.clinic.idle/4) {
		s.clinic.sessions.Put(ctx, sessionSeenKey, now.UnixNano())
	}
	return a, true, nil
}

// sessionUser is followup.SessionUser, answered from what loading the session read when it
// can be: the same facts, read in the same request.
func (s *Server) sessionUser(ctx context.Context, id uuid.UUID, addr netip.Addr) (followup.Actor, int64, error) {
	u, ok := lookedUpUser(ctx, id)
	if !ok {
		return s.accounts.SessionUser(ctx, id, addr)
	}
	if u == nil {
		return followup.Actor{}, 0, followup.Errorf(followup.EUNAUTHORIZED, "sign in again")
	}
	return followup.Actor{Kind: followup.ActorUser, ID: id, ClinicID: u.ClinicID, Role: u.Role, Lang: u.Lang, Addr: addr.Unmap()}, u.Epoch, nil
}

// signOut empties a session of its user and of any sign-in in progress (signin_session.go),
// keeping it as an anonymous one.
func (s *Server) signOut(ctx context.Context) {
	for _, k := range sessionKeys {
		s.clinic.sessions.Remove(ctx, k)
	}
}

// signIn turns the request's session into a signed-in one: a new token (no session fixation),
// a fresh absolute lifetime, and with the new token a new form token (csrf.go).
func (s *Server) signIn(ctx context.Context, a followup.Actor, epoch int64) error {
	if err := s.clinic.sessions.RenewToken(ctx); err != nil {
		return err
	}
	s.clinic.sessions.Put(ctx, sessionUserKey, a.ID.String())
	s.clinic.sessions.Put(ctx, sessionEpochKey, epoch)
	s.clinic.sessions.Put(ctx, sessionSeenKey, time.Now().UnixNano())
	return nil
}

// cookieSession loads the session named by the request's cookie for an API request, outside
// withSession: the JSON API answers with its own status codes and never sets cookies. A
// refreshed last-seen time is saved in the store. ok is false without a signed-in session.
func (s *Server) cookieSession(c echo.Context) (context.Context, followup.Actor, bool, error) {
	ck, err := c.Request().Cookie(sessionCookie)
	if err != nil || ck.Value == "" {
		return nil, followup.Actor{}, false, nil
	}
	ctx, err := s.clinic.sessions.Load(withSessionLookup(c.Request().Context()), ck.Value)
	if err != nil {
		return nil, followup.Actor{}, false, err
	}
	c.SetRequest(c.Request().WithContext(ctx))
	a, ok, err := s.sessionActor(c)
	if err != nil || !ok {
		return nil, followup.Actor{}, false, err
	}
	if s.clinic.sessions.Status(ctx) == scs.Modified {
		if _, _, err := s.clinic.sessions.Commit(ctx); err != nil {
			return nil, followup.Actor{}, false, err
		}
	}
	return ctx, a, true, nil
}
