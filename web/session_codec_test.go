package web

import (
	"log/slog"
	"maps"
	"strings"
	"testing"
	"time"

	"github.com/alexedwards/scs/v2"
)

func sampleSession() (time.Time, map[string]any) {
	return time.Unix(0, 1764028800123456789), map[string]any{
		sessionUserKey:  "0b7e6f1c-3c61-4d4e-9b1a-5f0c2f5f9a10",
		sessionEpochKey: int64(3),
		sessionSeenKey:  int64(-42),
		"note":          "token with ünïcode",
		"flash":         "",
		"remember":      true,
	}
}

func TestSessionCodecRoundTrip(t *testing.T) {
	deadline, values := sampleSession()
	b, err := sessionCodec{}.Encode(deadline, values)
	if err != nil {
		t.Fatal(err)
	}
	gotDeadline, got, err := decodeSession(b)
	if err != nil {
		t.Fatal(err)
	}
	if !gotDeadline.Equal(deadline) || !maps.Equal(got, values) {
		t.Errorf("decoded %v %v, want %v %v", gotDeadline, got, deadline, values)
	}
	if _, _, err := decodeSession(append(b, 0)); err == nil {
		t.Error("trailing byte accepted")
	}
	for i := len(sessionCodecMagic); i < len(b); i++ {
		if _, _, err := decodeSession(b[:i]); err == nil {
			t.Errorf("truncated to %d of %d bytes: no error", i, len(b))
		}
	}
}

// A session written by scs's gob codec before this one still loads: nobody is signed out
// by the upgrade.
func TestSessionCodecReadsGobSessions(t *testing.T) {
	deadline, values := sampleSession()
	b, err := scs.GobCodec{}.Encode(deadline, values)
	if err != nil {
		t.Fatal(err)
	}
	gotDeadline, got, err := decodeSession(b)
	if err != nil || !gotDeadline.Equal(deadline) || !maps.Equal(got, values) {
		t.Errorf("gob session decoded as %v %v %v", gotDeadline, got, err)
	}
}

// What the session manager gets for an unreadable row is an empty, live session, never an
// error (which it would answer with 503 on every request carrying that cookie).
func TestSessionCodecUnreadableIsEmpty(t *testing.T) {
	var logs strings.Builder
	c := sessionCodec{log: slog.New(slog.NewTextHandler(&logs, nil))}
	deadline, values, err := c.Decode([]byte("not a session"))
	if err != nil || len(values) != 0 || !deadline.After(time.Now()) {
		t.Errorf("unreadable row decoded as %v %v %v", deadline, values, err)
	}
	if !strings.Contains(logs.String(), "unreadable session data") {
		t.Error("not logged")
	}
}

func TestSessionCodecRefusesOtherTypes(t *testing.T) {
	if _, err := (sessionCodec{}).Encode(time.Now(), map[string]any{"n": 3}); err == nil {
		t.Error("an int (not int64) was encoded; scs's GetInt64 would not read it back")
	}
}

func FuzzSessionCodec(f *testing.F) {
	deadline, values := sampleSession()
	b, _ := sessionCodec{}.Encode(deadline, values)
	f.Add(b)
	g, _ := scs.GobCodec{}.Encode(deadline, values)
	f.Add(g)
	f.Add([]byte(sessionCodecMagic + "\x00\xff\xff\xff\xff\x0f"))
	f.Fuzz(func(t *testing.T, b []byte) {
		d, v, err := decodeSession(b)
		if err != nil {
			return
		}
		// What decodes must encode and decode to the same session.
		again, err := sessionCodec{}.Encode(d, v)
		if err != nil {
			return // a gob session may hold other types
		}
		d2, v2, err := decodeSession(again)
		if err != nil || !d2.Equal(d) || len(v2) != len(v) {
			t.Fatalf("re-encoded session: %v %v %v, want %v %v", d2, v2, err, d, v)
		}
	})
}
