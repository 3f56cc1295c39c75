package web

import (
	"errors"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/labstack/echo/v4"

	"github.com/dermfollow/dermfollow/followup"
)

// maxFormBody bounds a page form (the longest is a message of 2,000 characters, which
// URL-encoded Chinese makes about 18 KB).
const maxFormBody = 64 << 10

// clientLimits bound what clients may send and hold, taken before a handler reads a byte.
type clientLimits struct {
	// bodyTimeout is how long a request that is not an upload may take to send its body.
	bodyTimeout time.Duration
	// An upload may take as long as it keeps moving: its read deadline starts uploadSlack
	// ahead and moves on by one second per uploadMinRate bytes received, never more than
	// uploadSlack ahead of now. A phone link slower than 2 KB/s on average over half a
	// minute is cut; no real one is (a weak 3G link moves 30 KB/s).
	uploadSlack   time.Duration
	uploadMinRate int
	// Uploads in progress at once, taken before the body is read: per link (a family picks
	// several photos at a time), per client address (a clinic's NAT carries many families),
	// and per server (each holds a spool: memory from the upload budget, or a temp file).
	perLink, perClient, perServer int
	// writeIdle is how long a response may wait for a client that stopped reading.
	writeIdle time.Duration
}

func defaultClientLimits() clientLimits {
	return clientLimits{bodyTimeout: 30 * time.Second, uploadSlack: 30 * time.Second, uploadMinRate: 2 << 10,
		perLink: 16, perClient: 32, perServer: 64, writeIdle: 30 * time.Second}
}

// boundBodies is the server-wide limit on request bodies and response writes, and the one
// check of text at the boundary. Upload routes (routes.go) get the minimum-rate deadline and bound their own
// bodies; every other route gets a body limit, a read deadline, and only the body types it
// can use: URL-encoded forms for pages, JSON for the API (bindJSON checks it), never
// multipart. Every query parameter and form value must be text (see checkText).
func (s *Server) boundBodies(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		req := c.Request()
		rc := http.NewResponseController(c.Response())
		res := c.Response()
		res.Writer = idleWriter{ResponseWriter: res.Writer, rc: rc, idle: s.clientLimits.writeIdle}
		if err := checkValues("", req.URL.Query()); err != nil {
			return err
		}
		if s.uploads[req.Method+" "+c.Path()] {
			req.Body = newRateBody(req.Body, rc, s.clientLimits, time.Now())
			return next(c)
		}
		rc.SetReadDeadline(time.Now().Add(s.clientLimits.bodyTimeout))
		if req.ContentLength == 0 || req.Body == nil || req.Body == http.NoBody {
			return next(c)
		}
		req.Body = http.MaxBytesReader(c.Response(), req.Body, maxFormBody)
		mt, _, _ := mime.ParseMediaType(req.Header.Get(echo.HeaderContentType))
		api := strings.HasPrefix(c.Path(), "/api/")
		switch {
		case api && mt == echo.MIMEApplicationJSON:
		case !api && mt == echo.MIMEApplicationForm:
			if err := req.ParseForm(); err != nil {
				var mbe *http.MaxBytesError
				if errors.As(err, &mbe) {
					return &echo.HTTPError{Code: http.StatusRequestEntityTooLarge, Message: "The form is too large."}
				}
				return badRequest("the form could not be read")
			}
			if err := checkValues("", req.PostForm); err != nil {
				return err
			}
		case api:
			return &echo.HTTPError{Code: http.StatusUnsupportedMediaType, Message: "send JSON with Content-Type: application/json"}
		default:
			return &echo.HTTPError{Code: http.StatusUnsupportedMediaType, Message: "Send the form as application/x-www-form-urlencoded."}
		}
		return next(c)
	}
}

// idleWriter gives each write of a response writeIdle to reach the client: a client that
// stops reading (a download of a 24 MB original left hanging) is cut, and the store
// connection behind it freed, instead of being held for ever; one that reads, however
// slowly, is not.
type idleWriter struct {
	http.ResponseWriter
	rc   *http.ResponseController
	idle time.Duration
}

func (w idleWriter) Write(p []byte) (int, error) {
	w.rc.SetWriteDeadline(time.Now().Add(w.idle))
	return w.ResponseWriter.Write(p)
}

func (w idleWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// checkValues checks every name and value of a query or a form.
func checkValues(prefix string, v url.Values) error {
	for name, vals := range v {
		if err := checkText(prefix+"parameter names", name); err != nil {
			return err
		}
		for _, val := range vals {
			if err := checkText(name, val); err != nil {
				return err
			}
		}
	}
	return nil
}

// checkText refuses what is not text: invalid UTF-8, NUL and the other control characters
// (C0, DEL and C1) except tab, newline and carriage return (forms send a textarea's line
// breaks as CRLF). PostgreSQL refuses NUL in text, and none of these has a place in a name, a
// note or a message. The error names the field.
func checkText(field, s string) error {
	if !utf8.ValidString(s) {
		return textError(field)
	}
	for _, r := range s {
		if r < 0x20 && r != '\t' && r != '\n' && r != '\r' || r >= 0x7f && r < 0xa0 {
			return textError(field)
		}
	}
	return nil
}

func textError(field string) error {
	if len(field) > 64 || !utf8.ValidString(field) || strings.ContainsFunc(field, func(r rune) bool { return r < 0x20 || r >= 0x7f && r < 0xa0 }) {
		field = "a field"
	}
	return followup.Errorf(followup.EINVALID, "%s: has characters that are not text (a control character or invalid UTF-8)", field)
}

// rateBody moves an upload's read deadline on as its bytes arrive (see uploadMinRate).
type rateBody struct {
	io.ReadCloser
	rc       *http.ResponseController
	lim      clientLimits
	deadline time.Time
}

func newRateBody(body io.ReadCloser, rc *http.ResponseController, lim clientLimits, now time.Time) *rateBody {
	b := &rateBody{ReadCloser: body, rc: rc, lim: lim, deadline: now.Add(lim.uploadSlack)}
	rc.SetReadDeadline(b.deadline)
	return b
}

func (b *rateBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if n > 0 {
		b.deadline = b.deadline.Add(time.Duration(n) * time.Second / time.Duration(b.lim.uploadMinRate))
		if most := time.Now().Add(b.lim.uploadSlack); b.deadline.After(most) {
			b.deadline = most
		}
		b.rc.SetReadDeadline(b.deadline)
	}
	return n, err
}

// uploadSlots counts the uploads in progress per link, per client address and on the server.
type uploadSlots struct {
	lim    *clientLimits
	mu     sync.Mutex
	total  int
	client map[string]int
	link   map[uuid.UUID]int
}

func newUploadSlots(lim *clientLimits) *uploadSlots {
	return &uploadSlots{lim: lim, client: map[string]int{}, link: map[uuid.UUID]int{}}
}

// take reserves a slot for an upload from addr (through link, for a family; uuid.Nil for the
// clinic), or reports false when any limit is reached. The caller calls release when done.
func (u *uploadSlots) take(addr string, link uuid.UUID) (release func(), ok bool) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.total >= u.lim.perServer || u.client[addr] >= u.lim.perClient ||
		link != uuid.Nil && u.link[link] >= u.lim.perLink {
		return nil, false
	}
	u.total++
	u.client[addr]++
	if link != uuid.Nil {
		u.link[link]++
	}
	return func() {
		u.mu.Lock()
		defer u.mu.Unlock()
		u.total--
		if u.client[addr]--; u.client[addr] == 0 {
			delete(u.client, addr)
		}
		if link != uuid.Nil {
			if u.link[link]--; u.link[link] == 0 {
				delete(u.link, link)
			}
		}
	}, true
}
