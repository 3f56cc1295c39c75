package web

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/pquerna/otp"
	"github.com/pquerna/otp/hotp"

	"github.com/dermfollow/dermfollow/followup"
	"github.com/dermfollow/dermfollow/followup/accounts"
)

// The fixtures' clinics do not ask their clinicians for a second factor (the tests about
// sign-in make their own), and their admins and researchers, who always need one, have an
// authenticator app: the fixtures' sign-ins pass its second step with a recovery code each
// (fixtureCode), which unlike an app's code can be used as often as a test signs in.

// testAccountsKey is the accounts' secret key in the tests (authenticator-app secrets).
var testAccountsKey = []byte("web test accounts secret key, at least 32 bytes")

// relaxClinics lets the clinicians of the clinics sign in with a password alone.
func relaxClinics(t testing.TB, pool *pgxpool.Pool, clinics ...followup.Clinic) {
	t.Helper()
	for _, c := range clinics {
		if _, err := pool.Exec(context.Background(), `update clinics set require_second_factor = false where id = $1`, c.ID); err != nil {
			t.Fatal(err)
		}
	}
}

// factorBook keeps the recovery codes of the fixtures' users, by email.
var factorBook = struct {
	sync.Mutex
	users map[string]*fixtureFactor
}{users: map[string]*fixtureFactor{}}

type fixtureFactor struct {
	acc   *accounts.Service
	actor followup.Actor
	codes []string
}

// testClock is the wall clock moved on by what a test adds.
type testClock struct{ ahead atomic.Int64 }

func (c *testClock) Now() time.Time { return time.Now().Add(time.Duration(c.ahead.Load())) }

// Advance moves the clock on by d.
func (c *testClock) Advance(d time.Duration) { c.ahead.Add(int64(d)) }

// totpCode is the authenticator app's code for secret (base32) at t.
func totpCode(t testing.TB, secret string, at time.Time) string {
	t.Helper()
	c, err := hotp.GenerateCodeCustom(secret, uint64(at.Unix()/30), hotp.ValidateOpts{Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// giveSecondFactor sets up an authenticator app for the user with email and keeps the
// recovery codes it comes with for fixtureCode.
func giveSecondFactor(t testing.TB, acc *accounts.Service, clinic followup.Clinic, email string) {
	t.Helper()
	ctx := context.Background()
	u, err := acc.UserByEmail(ctx, followup.SystemActor(clinic.ID), email)
	if err != nil {
		t.Fatal(err)
	}
	a := followup.Actor{Kind: followup.ActorUser, ID: u.ID, ClinicID: u.ClinicID, Role: u.Role}
	e, err := acc.BeginTOTP(ctx, a)
	if err != nil {
		t.Fatal(err)
	}
	codes, err := acc.ConfirmTOTP(ctx, a, totpCode(t, e.Secret, acc.Now()))
	if err != nil {
		t.Fatal(err)
	}
	factorBook.Lock()
	factorBook.users[email] = &fixtureFactor{acc: acc, actor: a, codes: codes}
	factorBook.Unlock()
}

// fixtureCode returns an unused recovery code of email (from giveSecondFactor), making new
// codes when they run out.
func fixtureCode(t testing.TB, email string) string {
	t.Helper()
	factorBook.Lock()
	defer factorBook.Unlock()
	f := factorBook.users[email]
	if f == nil {
		t.Fatalf("%s has no second factor of the fixture", email)
	}
	if len(f.codes) == 0 {
		codes, err := f.acc.RegenerateRecoveryCodes(context.Background(), f.actor)
		if err != nil {
			t.Fatal(err)
		}
		f.codes = codes
	}
	code := f.codes[0]
	f.codes = f.codes[1:]
	return code
}

// fixtureListener is the clinic fixture's listener and the origin pages are served from:
// 127.0.0.1, or localhost where passkeys are on (WebAuthn takes no IP address).
func fixtureListener(t testing.TB, passkeys bool) (net.Listener, string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	if passkeys {
		return ln, fmt.Sprintf("http://localhost:%d", port)
	}
	return ln, fmt.Sprintf("http://127.0.0.1:%d", port)
}

// fixtureAccounts is the clinic fixture's accounts configuration: on clock, with passkeys
// for a localhost origin.
func fixtureAccounts(pool *pgxpool.Pool, log *slog.Logger, clock *testClock, origin string) accounts.Config {
	cfg := accounts.Config{Pool: pool, Logger: log, SecretKey: testAccountsKey, Now: clock.Now}
	if strings.HasPrefix(origin, "http://localhost:") {
		cfg.RPID, cfg.RPOrigins = "localhost", []string{origin}
	}
	return cfg
}
