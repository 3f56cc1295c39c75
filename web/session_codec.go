package web

import (
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/alexedwards/scs/v2"
)

// sessionCodec encodes a session's deadline and values for the store. Sessions hold only
// strings and integers (the user id, the epoch, the CSRF token, a flash message, times), so a
// small tagged binary format does: scs's default, gob, built a decoder and re-read the type
// description on every request, about a twentieth of the server's CPU for a page.
//
// Layout: magic, the deadline in Unix nanoseconds (varint), the value count (uvarint), then
// each key (uvarint length, bytes), a type byte and the value: a string as uvarint length
// and bytes, an int64 as varint, a bool as one byte. Rows written by the gob codec before
// this one still decode (the magic tells them apart), so no one is signed out by an upgrade.
//
// A row neither format can read (damaged, or written by a later release) is decoded as an
// empty session and logged: the user is asked to sign in again, where the session manager
// would otherwise answer 503 to every request with that cookie.
type sessionCodec struct {
	log *slog.Logger
}

var _ scs.Codec = sessionCodec{}

const (
	sessionCodecMagic = "\xdfS1"
	// maxSessionValues bounds a decoded session; ours hold at most a handful.
	maxSessionValues = 64

	sessionString byte = 's'
	sessionInt64  byte = 'i'
	sessionBool   byte = 'b'
)

var errSessionData = errors.New("web: malformed session data")

func (sessionCodec) Encode(deadline time.Time, values map[string]any) ([]byte, error) {
	if ns := deadline.UnixNano(); !time.Unix(0, ns).Equal(deadline) {
		return nil, fmt.Errorf("web: session deadline %v is outside the years 1678 to 2262", deadline)
	}
	b := make([]byte, 0, 128)
	b = append(b, sessionCodecMagic...)
	b = binary.AppendVarint(b, deadline.UnixNano())
	b = binary.AppendUvarint(b, uint64(len(values)))
	for k, v := range values {
		b = appendSessionString(b, k)
		switch v := v.(type) {
		case string:
			b = appendSessionString(append(b, sessionString), v)
		case int64:
			b = binary.AppendVarint(append(b, sessionInt64), v)
		case bool:
			x := byte(0)
			if v {
				x = 1
			}
			b = append(b, sessionBool, x)
		default:
			return nil, fmt.Errorf("web: session value %q has type %T; only string, int64 and bool are kept", k, v)
		}
	}
	return b, nil
}

func (c sessionCodec) Decode(b []byte) (time.Time, map[string]any, error) {
	deadline, values, err := decodeSession(b)
	if err != nil {
		c.log.Warn("unreadable session data; starting a new session", "error", err.Error())
		return time.Now().Add(sessionLifetime), map[string]any{}, nil
	}
	return deadline, values, nil
}

// decodeSession reads either format strictly: any malformation is an error.
func decodeSession(b []byte) (time.Time, map[string]any, error) {
	rest, ok := cutPrefix(b, sessionCodecMagic)
	if !ok {
		return scs.GobCodec{}.Decode(b)
	}
	d := sessionDecoder{b: rest}
	deadline := d.varint()
	n := d.uvarint()
	if n > maxSessionValues {
		return time.Time{}, nil, errSessionData
	}
	values := make(map[string]any, n)
	for range n {
		k := d.string()
		switch d.byte() {
		case sessionString:
			values[k] = d.string()
		case sessionInt64:
			values[k] = d.varint()
		case sessionBool:
			values[k] = d.byte() == 1
		default:
			d.err = errSessionData
		}
		if d.err != nil {
			return time.Time{}, nil, d.err
		}
	}
	if d.err != nil || len(d.b) != 0 {
		return time.Time{}, nil, errSessionData
	}
	return time.Unix(0, deadline), values, nil
}

func cutPrefix(b []byte, prefix string) ([]byte, bool) {
	if len(b) < len(prefix) || string(b[:len(prefix)]) != prefix {
		return b, false
	}
	return b[len(prefix):], true
}

func appendSessionString(b []byte, s string) []byte {
	return append(binary.AppendUvarint(b, uint64(len(s))), s...)
}

// sessionDecoder reads the fields in order; the first failure sticks in err and every later
// read returns a zero value.
type sessionDecoder struct {
	b   []byte
	err error
}

func (d *sessionDecoder) uvarint() uint64 {
	v, n := binary.Uvarint(d.b)
	if d.err != nil || n <= 0 {
		d.err = errSessionData
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *sessionDecoder) varint() int64 {
	v, n := binary.Varint(d.b)
	if d.err != nil || n <= 0 {
		d.err = errSessionData
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *sessionDecoder) byte() byte {
	if d.err != nil || len(d.b) == 0 {
		d.err = errSessionData
		return 0
	}
	c := d.b[0]
	d.b = d.b[1:]
	return c
}

func (d *sessionDecoder) string() string {
	n := d.uvarint()
	if d.err != nil || n > uint64(len(d.b)) {
		d.err = errSessionData
		return ""
	}
	s := string(d.b[:n])
	d.b = d.b[n:]
	return s
}
