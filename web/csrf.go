package web

import (
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"
)

// Cross-site request forgery is refused in two layers, the same for the clinic's pages, the
// family's pages and the API's cookie callers:
//
//  1. net/http.CrossOriginProtection, once, server-wide (crossOrigin): an unsafe request that
//     the browser marks as coming from another origin (Sec-Fetch-Site, or an Origin that is
//     not this host) is refused. Clients that send neither header (scripts, the bearer API)
//     pass.
//  2. A form token, for browsers that send neither: an HMAC, under a key derived from the
//     server secret, of the session the page belongs to (a clinician's session, the sign-in
//     cookie of an anonymous visitor, a family's session cookie). It needs no storage, so an
//     anonymous visit to the sign-in page writes no session row. formTokens makes and checks
//     it; forms send it in the field csrf_token, scripts in the X-CSRF-Token header, and
//     multipart uploads (whose bodies are streamed) in the csrf_token query parameter.
const (
	csrfField  = "csrf_token"
	csrfHeader = "X-CSRF-Token"
	// signInCookie binds the sign-in form's token for a visitor not signed in: random, no row
	// behind it.
	signInCookie = "dermfollow_signin"
)

// crossOrigin is http.CrossOriginProtection as Echo middleware, answering in the error shape.
func (s *Server) crossOrigin(next echo.HandlerFunc) echo.HandlerFunc {
	cop := http.NewCrossOriginProtection()
	return func(c echo.Context) error {
		if err := cop.Check(c.Request()); err != nil {
			return &echo.HTTPError{Code: http.StatusForbidden, Message: "This request came from another site and was refused. Use the page of this service.", Internal: err}
		}
		return next(c)
	}
}

// formTokens makes and checks form tokens (see above).
type formTokens struct{ key []byte }

func newFormTokens(secret []byte) formTokens {
	if len(secret) == 0 { // tests, a first run: tokens then end with the process, which is safe
		secret = make([]byte, 32)
		rand.Read(secret)
	}
	k, err := hkdf.Key(sha256.New, secret, nil, "dermfollow form token", 32)
	if err != nil {
		panic(err) // only for impossible lengths
	}
	return formTokens{key: k}
}

// token is the form token of the session named by binding.
func (f formTokens) token(binding string) string {
	m := hmac.New(sha256.New, f.key)
	m.Write([]byte(binding))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// valid reports whether the request carries binding's token.
func (f formTokens) valid(c echo.Context, binding string) bool {
	got := requestFormToken(c)
	return binding != "" && got != "" && hmac.Equal([]byte(got), []byte(f.token(binding)))
}

// requestFormToken finds the token where the kind of request carries it.
func requestFormToken(c echo.Context) string {
	req := c.Request()
	if t := req.Header.Get(csrfHeader); t != "" {
		return t
	}
	if strings.HasPrefix(req.Header.Get(echo.HeaderContentType), echo.MIMEMultipartForm) {
		return c.QueryParam(csrfField)
	}
	return req.PostFormValue(csrfField) // parsed, within its limit, by boundBodies
}

// safeMethod reports whether the method changes nothing (and so needs no form token).
func safeMethod(m string) bool {
	return m == http.MethodGet || m == http.MethodHead || m == http.MethodOptions
}

// clinicBinding names what a clinic page's form token is bound to: the signed-in session
// (its token changes at sign-in), or else the visitor's sign-in cookie, made when create is
// true and there is none.
func (s *Server) clinicBinding(c echo.Context, create bool) string {
	ctx := c.Request().Context()
	if s.clinic.sessions.Exists(ctx, sessionUserKey) {
		if tok := s.clinic.sessions.Token(ctx); tok != "" {
			return "clinic session:" + tok
		}
	}
	if ck, err := c.Cookie(signInCookie); err == nil && len(ck.Value) >= 16 {
		return "sign-in:" + ck.Value
	}
	if !create {
		return ""
	}
	b := make([]byte, 16)
	rand.Read(b)
	v := base64.RawURLEncoding.EncodeToString(b)
	c.SetCookie(&http.Cookie{Name: signInCookie, Value: v, Path: "/", HttpOnly: true,
		Secure: s.clinic.sessions.Cookie.Secure, SameSite: http.SameSiteLaxMode})
	return "sign-in:" + v
}

// csrfToken is the form token of the page being rendered.
func (s *Server) csrfToken(c echo.Context) string { return s.forms.token(s.clinicBinding(c, true)) }

// csrfProtect refuses (403) an unsafe page request without its form token.
func (s *Server) csrfProtect(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if !safeMethod(c.Request().Method) && !s.forms.valid(c, s.clinicBinding(c, false)) {
			return &echo.HTTPError{Code: http.StatusForbidden, Message: "The form has expired or did not come from this site. Go back, reload the page and try again."}
		}
		return next(c)
	}
}
