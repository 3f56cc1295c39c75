package web

import (
	"context"
	"net/http"
	"net/netip"
	"strconv"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/dermfollow/dermfollow/followup"
)

// userAuthenticator turns an API token into the user it stands for. *followup.Service is one;
// tests may pass their own.
type userAuthenticator interface {
	AuthenticateToken(ctx context.Context, token string, addr netip.Addr) (followup.Actor, error)
}

// actorKey is where requireUser leaves the signed-in user in the echo context.
const actorKey = "actor"

// authenticator is the seam between the middleware and the service.
func (s *Server) authenticator() userAuthenticator { return s.accounts }

// requireUser admits requests from a signed-in clinic user and puts the user's Actor in the
// context (see actorOf). The credential is "Authorization: Bearer TOKEN" (a token from
// `dermfollow token create`) or a clinician's session cookie; anything else answers 401 with
// WWW-Authenticate: Bearer.
//
// The token is never logged: it travels only from the header to AuthenticateToken, which
// stores and compares its SHA-256.
func (s *Server) requireUser(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		actor, err := s.authenticate(c)
		if err != nil {
			return err
		}
		c.Set(actorKey, actor)
		return next(c)
	}
}

// authenticate finds the user behind a request: an "Authorization: Bearer TOKEN" header, or
// else a signed-in session cookie (the pages' scripts and images). A cookie-authenticated
// request that changes something must carry the session's CSRF token in X-CSRF-Token, since
// the browser sends the cookie whoever made the page.
func (s *Server) authenticate(c echo.Context) (followup.Actor, error) {
	header := c.Request().Header.Get(echo.HeaderAuthorization)
	if header == "" {
		ctx, actor, ok, err := s.cookieSession(c)
		if err != nil {
			return followup.Actor{}, err
		}
		if !ok {
			return followup.Actor{}, unauthorized(c, "", "sign in first: send Authorization: Bearer TOKEN")
		}
		if !safeMethod(c.Request().Method) && !s.forms.valid(c, "clinic session:"+s.clinic.sessions.Token(ctx)) {
			return followup.Actor{}, &echo.HTTPError{Code: http.StatusForbidden, Message: "send the page's CSRF token in the " + csrfHeader + " header"}
		}
		c.Set(viaSessionKey, true) // the step-up applies (signin_stepup.go)
		return actor, nil
	}
	token, ok := bearerToken(header)
	if !ok {
		return followup.Actor{}, unauthorized(c, "invalid_request", "the Authorization header must be: Bearer TOKEN")
	}
	actor, err := s.authenticator().AuthenticateToken(c.Request().Context(), token, realIPAddr(c))
	if err != nil {
		if followup.ErrorCode(err) == followup.EUNAUTHORIZED {
			return followup.Actor{}, s.tokenRefused(c)
		}
		// The database is down or similar: 503/500, not "your token is wrong". The error
		// never contains the token.
		return followup.Actor{}, err
	}
	if actor.Kind != followup.ActorUser {
		return followup.Actor{}, unauthorized(c, "invalid_token", "the API token is not valid")
	}
	return actor, nil
}

// tokenRefused answers a wrong API token. Tokens are 256 random bits, so guessing one is
// hopeless; the budget per address (ratelimit.go) keeps a flood of guesses out of the audit
// log and the database: within it each refusal is audited and answered 401, beyond it 429.
// A valid token always works, whatever its address sent before: clients behind one NAT share
// an address.
func (s *Server) tokenRefused(c echo.Context) error {
	if ok, wait := s.tokenFailures.Take(c.RealIP()); !ok {
		c.Response().Header().Set("Retry-After", strconv.Itoa(int(wait.Seconds())+1))
		return &echo.HTTPError{Code: http.StatusTooManyRequests, Message: "too many invalid API tokens from this address; wait and try again"}
	}
	if err := s.accounts.RecordTokenFailure(c.Request().Context(), realIPAddr(c)); err != nil {
		return err
	}
	return unauthorized(c, "invalid_token", "the API token is not valid")
}

// bearerToken takes the token out of "Bearer TOKEN" (the scheme is case-insensitive, RFC 6750).
func bearerToken(header string) (string, bool) {
	scheme, token, ok := strings.Cut(header, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	token = strings.TrimLeft(token, " ")
	if token == "" || strings.ContainsAny(token, " \t") {
		return "", false
	}
	return token, true
}

// unauthorized answers 401 in the usual error shape, with the challenge RFC 6750 asks for.
func unauthorized(c echo.Context, bearerError, message string) error {
	challenge := `Bearer realm="dermfollow"`
	if bearerError != "" {
		challenge += `, error="` + bearerError + `"`
	}
	c.Response().Header().Set(echo.HeaderWWWAuthenticate, challenge)
	return followup.Errorf(followup.EUNAUTHORIZED, "%s", message)
}

// realIPAddr is the client's address (through trusted proxies only, see ipExtractor) for the
// audit log; zero when it cannot be parsed.
func realIPAddr(c echo.Context) netip.Addr {
	addr, err := netip.ParseAddr(c.RealIP())
	if err != nil {
		return netip.Addr{}
	}
	return addr.Unmap()
}

// actorOf returns the user requireUser admitted; the zero Actor (not a user) outside it.
func actorOf(c echo.Context) followup.Actor {
	a, _ := c.Get(actorKey).(followup.Actor)
	return a
}
