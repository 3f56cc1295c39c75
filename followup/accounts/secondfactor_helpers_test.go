package accounts

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"sync"
	"testing"
	"time"

	"github.com/go-webauthn/webauthn/protocol/webauthncbor"
	"github.com/pquerna/otp/hotp"

	"github.com/dermfollow/dermfollow/followup/pgtest"
)

// testClock is a settable clock, safe for concurrent tests.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *testClock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

const (
	testRPID   = "followup.example.org"
	testOrigin = "https://followup.example.org"
)

var testSecretKey = []byte("0123456789abcdef0123456789abcdef-test-key")

// newFactorService returns a Service over a fresh database with a secret key, passkeys on,
// and a clock of its own (a step boundary, so codes of the steps around it are easy to make).
func newFactorService(t testing.TB) (*Service, *testClock) {
	t.Helper()
	return newFactorServiceOn(t, pgtest.NewDatabase(t))
}

func newFactorServiceOn(t testing.TB, url string) (*Service, *testClock) {
	t.Helper()
	clock := &testClock{t: time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)}
	s, err := New(Config{Pool: pgtest.OpenPool(t, url), Now: clock.Now, SecretKey: testSecretKey,
		RPID: testRPID, RPOrigins: []string{testOrigin}})
	if err != nil {
		t.Fatal(err)
	}
	return s, clock
}

// codeAt is the authenticator app's code for secret (base32) at t.
func codeAt(t testing.TB, secret string, at time.Time) string {
	t.Helper()
	c, err := hotp.GenerateCodeCustom(secret, uint64(at.Unix()/totpPeriod), totpOpts)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// softAuthenticator is a passkey authenticator in software: one ES256 credential, "none"
// attestation, a signature counter, the user verified. It answers the options a ceremony
// gives the browser with the JSON a browser would send back.
type softAuthenticator struct {
	key     *ecdsa.PrivateKey
	credID  []byte
	handle  []byte // the user handle, learnt at registration
	counter uint32
	origin  string
	aaguid  [16]byte
}

func newSoftAuthenticator(t testing.TB) *softAuthenticator {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	a := &softAuthenticator{key: key, credID: make([]byte, 32), origin: testOrigin}
	rand.Read(a.credID)
	copy(a.aaguid[:], "dermfollow-test!")
	return a
}

var b64 = base64.RawURLEncoding

// ceremonyOptions is what the tests read of a ceremony's options.
type ceremonyOptions struct {
	PublicKey struct {
		Challenge string `json:"challenge"`
		RPID      string `json:"rpId"`
		RP        struct {
			ID string `json:"id"`
		} `json:"rp"`
		User struct {
			ID   string `json:"id"`
			Name string `json:"name"`
		} `json:"user"`
		Exclude []struct {
			ID string `json:"id"`
		} `json:"excludeCredentials"`
		Allow []struct {
			ID string `json:"id"`
		} `json:"allowCredentials"`
		UserVerification string `json:"userVerification"`
	} `json:"publicKey"`
}

func parseOptions(t testing.TB, options []byte) ceremonyOptions {
	t.Helper()
	var o ceremonyOptions
	if err := json.Unmarshal(options, &o); err != nil {
		t.Fatalf("options %s: %v", options, err)
	}
	return o
}

func (a *softAuthenticator) clientData(kind, challenge string) []byte {
	b, _ := json.Marshal(map[string]any{"type": kind, "challenge": challenge, "origin": a.origin, "crossOrigin": false})
	return b
}

func (a *softAuthenticator) authData(flags byte, attested []byte) []byte {
	rp := sha256.Sum256([]byte(testRPID))
	out := append(rp[:], flags)
	out = binary.BigEndian.AppendUint32(out, a.counter)
	return append(out, attested...)
}

// create answers a registration ceremony's options.
func (a *softAuthenticator) create(t testing.TB, options []byte) []byte {
	t.Helper()
	o := parseOptions(t, options)
	handle, err := b64.DecodeString(o.PublicKey.User.ID)
	if err != nil {
		t.Fatalf("user id %q: %v", o.PublicKey.User.ID, err)
	}
	a.handle = handle
	pub, err := a.key.PublicKey.Bytes() // 0x04 || X || Y
	if err != nil {
		t.Fatal(err)
	}
	cose, err := webauthncbor.Marshal(map[int]any{1: 2, 3: -7, -1: 1, -2: pub[1:33], -3: pub[33:]})
	if err != nil {
		t.Fatal(err)
	}
	attested := append(a.aaguid[:], byte(len(a.credID)>>8), byte(len(a.credID)))
	attested = append(append(attested, a.credID...), cose...)
	att, err := webauthncbor.Marshal(map[string]any{"fmt": "none", "attStmt": map[string]any{}, "authData": a.authData(0x45, attested)})
	if err != nil {
		t.Fatal(err)
	}
	return mustJSON(t, map[string]any{"id": b64.EncodeToString(a.credID), "rawId": b64.EncodeToString(a.credID), "type": "public-key",
		"clientExtensionResults": map[string]any{},
		"response": map[string]any{"clientDataJSON": b64.EncodeToString(a.clientData("webauthn.create", o.PublicKey.Challenge)),
			"attestationObject": b64.EncodeToString(att), "transports": []string{"internal", "hybrid"}}})
}

// get answers a sign-in ceremony's options, counting the use.
func (a *softAuthenticator) get(t testing.TB, options []byte) []byte {
	t.Helper()
	o := parseOptions(t, options)
	a.counter++
	data := a.authData(0x05, nil)
	cd := a.clientData("webauthn.get", o.PublicKey.Challenge)
	h := sha256.Sum256(cd)
	digest := sha256.Sum256(append(append([]byte{}, data...), h[:]...))
	sig, err := ecdsa.SignASN1(rand.Reader, a.key, digest[:])
	if err != nil {
		t.Fatal(err)
	}
	return mustJSON(t, map[string]any{"id": b64.EncodeToString(a.credID), "rawId": b64.EncodeToString(a.credID), "type": "public-key",
		"clientExtensionResults": map[string]any{},
		"response": map[string]any{"clientDataJSON": b64.EncodeToString(cd), "authenticatorData": b64.EncodeToString(data),
			"signature": b64.EncodeToString(sig), "userHandle": b64.EncodeToString(a.handle)}})
}

func mustJSON(t testing.TB, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// cancelledCtx is a context no database call can use: what answers with it did no I/O.
func cancelledCtx() context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	return ctx
}
