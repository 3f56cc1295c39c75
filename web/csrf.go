package web

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"net/http"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
)

// CSRF protection is a synchronizer token kept in the server-side session: every form carries
// it in the field csrf_token, scripts send it in the X-CSRF-Token header, and multipart uploads
// (whose bodies are streamed, never parsed up front) in the csrf_token query parameter. The
// SameSite=Lax cookie is a second line, not the only one.
const (
	clinicCSRFField  = "csrf_token"
	clinicCSRFHeader = "X-CSRF-Token"
)

func newClinicCSRFToken() string {
	b := make([]byte, 32)
	rand.Read(b) // never fails (crypto/rand)
	return base64.RawURLEncoding.EncodeToString(b)
}

// csrfToken returns the session's CSRF token, making one for a session that has none. Such a
// session is anonymous (signIn sets a token): it is kept only as long as the idle timeout, so
// visits to the sign-in page leave no long-lived rows behind.
func (s *Server) csrfToken(c echo.Context) string {
	ctx := c.Request().Context()
	t := s.clinic.sessions.GetString(ctx, sessionCSRFKey)
	if t == "" {
		t = newClinicCSRFToken()
		s.clinic.sessions.Put(ctx, sessionCSRFKey, t)
		if !s.clinic.sessions.Exists(ctx, sessionUserKey) {
			s.clinic.sessions.SetDeadline(ctx, time.Now().Add(sessionIdle))
		}
	}
	return t
}

// clinicSafeMethod reports whether the method changes nothing (and so needs no CSRF token).
func clinicSafeMethod(m string) bool {
	return m == http.MethodGet || m == http.MethodHead || m == http.MethodOptions
}

// checkCSRF refuses (403) an unsafe request of a loaded session whose token is missing or wrong.
func (s *Server) checkCSRF(c echo.Context) error {
	req := c.Request()
	if clinicSafeMethod(req.Method) {
		return nil
	}
	want := s.clinic.sessions.GetString(req.Context(), sessionCSRFKey)
	got := req.Header.Get(clinicCSRFHeader)
	if got == "" {
		if strings.HasPrefix(req.Header.Get(echo.HeaderContentType), echo.MIMEMultipartForm) {
			got = c.QueryParam(clinicCSRFField)
		} else {
			got = c.FormValue(clinicCSRFField)
		}
	}
	if want == "" || got == "" || subtle.ConstantTimeCompare([]byte(want), []byte(got)) != 1 {
		return &echo.HTTPError{Code: http.StatusForbidden, Message: "The form has expired or did not come from this site. Go back, reload the page and try again."}
	}
	return nil
}

// csrfProtect is checkCSRF as middleware for the pages.
func (s *Server) csrfProtect(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if err := s.checkCSRF(c); err != nil {
			return err
		}
		return next(c)
	}
}
