package web

import (
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/labstack/echo/v4"

	"github.com/dermfollow/dermfollow/followup"
	"github.com/dermfollow/dermfollow/followup/staging"
)

// The family's session: opening /p/{token} swaps the link for a cookie that names the link,
// when the session ends and the session's own random id, signed with HMAC-SHA256. The token
// itself is never stored in the browser beyond that first request. Every request checks the
// link again (ParentActor), so revoking a link ends its sessions at once. The session id binds
// what the session started (a resumable upload) to the one browser that started it; opening the
// link again in that browser keeps it, another browser or phone gets its own.

const (
	parentCookie     = "df_parent"
	parentCookiePath = "/p/"
	parentSessionTTL = 12 * time.Hour
	parentHome       = "/p/"
)

// parentSession is a verified session cookie.
type parentSession struct {
	LinkID  uuid.UUID
	Expires time.Time
	// ID is random per session (see above). Cookies made before there was one (24 bytes)
	// take theirs from a hash of the cookie.
	ID [staging.SessionIDLen]byte
}

// newParentSession starts a session of link, keeping the id of the browser's current session
// of the same link, if it has one.
func newParentSession(link uuid.UUID, current *parentSession) parentSession {
	ps := parentSession{LinkID: link, Expires: time.Now().Add(parentSessionTTL).Truncate(time.Second)}
	if current != nil && current.LinkID == link {
		ps.ID = current.ID
	} else {
		rand.Read(ps.ID[:])
	}
	return ps
}

// parentKey derives the session signing key from the server secret. Without a configured
// secret (tests, a first run) the server makes a random one: sessions then end with the
// process, which is safe.
func parentKey(secret []byte) []byte {
	if len(secret) == 0 {
		secret = make([]byte, 32)
		rand.Read(secret)
	}
	k, err := hkdf.Key(sha256.New, secret, nil, "dermfollow parent session", 32)
	if err != nil {
		panic(err) // only for impossible lengths
	}
	return k
}

func (h *parentPages) sessionMAC(msg []byte) []byte {
	m := hmac.New(sha256.New, h.key)
	m.Write(msg)
	return m.Sum(nil)
}

// encodeParentSession is base64url(link id (16 bytes) | expiry unix seconds (8 bytes) |
// session id (16 bytes)) "." base64url(HMAC of those 40 bytes).
func (h *parentPages) encodeParentSession(ps parentSession) string {
	msg := make([]byte, 40)
	copy(msg, ps.LinkID[:])
	binary.BigEndian.PutUint64(msg[16:], uint64(ps.Expires.Unix()))
	copy(msg[24:], ps.ID[:])
	return base64.RawURLEncoding.EncodeToString(msg) + "." + base64.RawURLEncoding.EncodeToString(h.sessionMAC(msg))
}

var errBadSession = errors.New("web: no valid parent session")

func (h *parentPages) decodeParentSession(v string, now time.Time) (parentSession, error) {
	body, sig, ok := strings.Cut(v, ".")
	if !ok {
		return parentSession{}, errBadSession
	}
	msg, err1 := base64.RawURLEncoding.DecodeString(body)
	mac, err2 := base64.RawURLEncoding.DecodeString(sig)
	if err1 != nil || err2 != nil || len(msg) != 24 && len(msg) != 40 || !hmac.Equal(mac, h.sessionMAC(msg)) {
		return parentSession{}, errBadSession
	}
	ps := parentSession{Expires: time.Unix(int64(binary.BigEndian.Uint64(msg[16:24])), 0)}
	copy(ps.LinkID[:], msg[:16])
	if len(msg) == 40 {
		copy(ps.ID[:], msg[24:])
	} else {
		sum := sha256.Sum256([]byte("dermfollow parent session id:" + v))
		copy(ps.ID[:], sum[:])
	}
	if !now.Before(ps.Expires) {
		return parentSession{}, errBadSession
	}
	return ps, nil
}

// csrfToken is the page's form token (csrf.go), bound to the family's session.
func (h *parentPages) csrfToken(ps parentSession) string {
	return h.s.forms.token(familyBinding(h.encodeParentSession(ps)))
}

func (h *parentPages) setParentCookie(c echo.Context, ps parentSession) {
	c.SetCookie(&http.Cookie{Name: parentCookie, Value: h.encodeParentSession(ps), Path: parentCookiePath,
		Expires: ps.Expires, MaxAge: int(time.Until(ps.Expires).Seconds()),
		HttpOnly: true, Secure: h.s.cfg.Secure, SameSite: http.SameSiteLaxMode})
}

func (h *parentPages) clearParentCookie(c echo.Context) {
	c.SetCookie(&http.Cookie{Name: parentCookie, Value: "", Path: parentCookiePath, MaxAge: -1,
		HttpOnly: true, Secure: h.s.cfg.Secure, SameSite: http.SameSiteLaxMode})
}

// parentFromCookie returns the session and the Actor of a request's cookie, checking the link
// again. Any failure (no cookie, bad signature, expired, link revoked or expired) is
// errBadSession or a followup not-found error; a database failure is returned as it is.
func (h *parentPages) parentFromCookie(c echo.Context) (parentSession, followup.Actor, error) {
	ck, err := c.Cookie(parentCookie)
	if err != nil {
		return parentSession{}, followup.Actor{}, errBadSession
	}
	ps, err := h.decodeParentSession(ck.Value, time.Now())
	if err != nil {
		return parentSession{}, followup.Actor{}, err
	}
	a, err := h.s.svc.ParentActor(c.Request().Context(), ps.LinkID)
	if err != nil {
		return parentSession{}, followup.Actor{}, err
	}
	a.Addr = realIPAddr(c)
	return ps, a, nil
}

// noSession reports whether err means "not signed in" rather than a failure of the server.
func noSession(err error) bool {
	return errors.Is(err, errBadSession) || followup.ErrorCode(err) == followup.ENOTFOUND
}

// validCSRF checks the page's form token (csrf.go), bound to the family's session.
func (h *parentPages) validCSRF(c echo.Context, ps parentSession) bool {
	return h.s.forms.valid(c, familyBinding(h.encodeParentSession(ps)))
}

func familyBinding(cookie string) string { return "family session:" + cookie }
