package accounts

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/dermfollow/dermfollow/followup"
	"github.com/dermfollow/dermfollow/followup/pgtest"
)

// Wrong passwords from many addresses, on two servers, cannot lock the clinician out: past
// the account's budget every password of it is checked after AccountSlowdown, the right one
// signs in. Wrong passwords from one address make that address wait for the account (the
// right password from there is not checked), not the others. Unknown emails alike.
func TestPasswordThrottleAcrossServers(t *testing.T) {
	t.Parallel()
	url := pgtest.NewDatabase(t)
	s1, clock := newFactorServiceOn(t, url)
	s2, err := New(Config{Pool: pgtest.OpenPool(t, url), Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var slept []time.Duration
	for _, s := range []*Service{s1, s2} {
		s.sleep = func(_ context.Context, d time.Duration) error {
			mu.Lock()
			defer mu.Unlock()
			slept = append(slept, d)
			return nil
		}
	}
	sleeps := func() int { mu.Lock(); defer mu.Unlock(); return len(slept) }
	ctx := testCtx(t)
	c := mustClinic(t, s1, "Throttle "+uuid.NewString()[:8], "")
	u, _ := mustUser(t, s1, c.ID, followup.RoleClinician)

	for i := range AccountFailures {
		s := s1
		if i%2 == 1 {
			s = s2
		}
		addr := netip.AddrFrom4([4]byte{192, 0, 2, byte(i + 1)}) // a different address each time
		_, _, err := s.Authenticate(ctx, u.Email, fmt.Sprintf("wrong password %d", i), addr)
		wantCode(t, "failure", err, followup.EUNAUTHORIZED)
		clock.Add(time.Minute)
	}
	if n := sleeps(); n != 0 {
		t.Errorf("%d attempts slowed within the budget", n)
	}
	// The eleventh, from yet another address, with the right password: slowed, checked, in.
	if _, _, err := s2.Authenticate(ctx, u.Email, testPassword, netip.MustParseAddr("203.0.113.50")); err != nil {
		t.Errorf("the clinician after 10 failures from elsewhere: %v", err)
	}
	if mu.Lock(); len(slept) != 1 || slept[0] != AccountSlowdown {
		t.Errorf("slowed %v, want once by %v", slept, AccountSlowdown)
	}
	mu.Unlock()
	// A wrong one past the budget is slowed too, and answered wrong, not too many.
	_, _, err = s1.Authenticate(ctx, u.Email, "wrong again", netip.MustParseAddr("203.0.113.51"))
	wantCode(t, "a failure past the account's budget", err, followup.EUNAUTHORIZED)
	if n := sleeps(); n != 2 {
		t.Errorf("%d attempts slowed, want 2", n)
	}

	// One address's failures: that address waits for this account, and the right password
	// from it is not checked; from elsewhere it signs in.
	clock.Add(FailureWindow)
	one := netip.MustParseAddr("198.51.100.9")
	for range AccountFailures {
		_, _, err := s1.Authenticate(ctx, u.Email, "wrong", one)
		wantCode(t, "failure from one address", err, followup.EUNAUTHORIZED)
	}
	audited := countRows(t, s1, `select count(*) from audit_events where target_id = $1 and action in ('login', 'login_failed')`, u.ID)
	_, _, err = s2.Authenticate(ctx, u.Email, testPassword, one)
	wantCode(t, "the same address after 10 failures", err, followup.ETOOMANY)
	if wait, ok := RetryAfter(err); !ok || wait <= 0 || wait > FailureWindow {
		t.Errorf("wait = %v (%v)", wait, ok)
	}
	if msg := followup.ErrorMessage(err); !strings.HasPrefix(msg, "Too many failed attempts. Wait") {
		t.Errorf("message %q", msg)
	}
	if n := countRows(t, s1, `select count(*) from audit_events where target_id = $1 and action in ('login', 'login_failed')`, u.ID); n != audited {
		t.Errorf("the refused attempt was checked (%d audit rows, was %d)", n, audited)
	}
	if _, _, err := s1.Authenticate(ctx, u.Email, testPassword, netip.MustParseAddr("203.0.113.60")); err != nil {
		t.Errorf("from another address: %v", err)
	}
	clock.Add(FailureWindow)
	if _, _, err := s1.Authenticate(ctx, u.Email, testPassword, one); err != nil {
		t.Errorf("the address after the wait: %v", err)
	}

	// Unknown emails are limited alike, and the throttle keeps no email.
	for range AccountFailures {
		s1.Authenticate(ctx, "nobody@example.org", "x", netip.Addr{})
	}
	_, _, err = s1.Authenticate(ctx, "nobody@example.org", "x", netip.Addr{})
	wantCode(t, "unknown email", err, followup.ETOOMANY)
	if n := countRows(t, s1, `select count(*) from sign_in_failures where scope like '%nobody%'`); n != 0 {
		t.Errorf("sign_in_failures names the email")
	}
}

func TestAddressThrottle(t *testing.T) {
	t.Parallel()
	s, _ := newFactorService(t)
	ctx := testCtx(t)
	c := mustClinic(t, s, "Addresses "+uuid.NewString()[:8], "")
	var users []User
	for range 3 {
		u, _ := mustUser(t, s, c.ID, followup.RoleClinician)
		users = append(users, u)
	}
	fresh, _ := mustUser(t, s, c.ID, followup.RoleClinician)
	// IPv6 addresses of one /64 are one client.
	for i := range AddressFailures {
		addr := netip.MustParseAddr(fmt.Sprintf("2001:db8:1:2::%x", i+1))
		_, _, err := s.Authenticate(ctx, users[i%3].Email, "wrong", addr)
		wantCode(t, "failure", err, followup.EUNAUTHORIZED)
	}
	_, _, err := s.Authenticate(ctx, fresh.Email, testPassword, netip.MustParseAddr("2001:db8:1:2:ffff::1"))
	wantCode(t, "another account from the /64", err, followup.ETOOMANY)
	if _, _, err := s.Authenticate(ctx, fresh.Email, testPassword, netip.MustParseAddr("2001:db8:1:3::1")); err != nil {
		t.Errorf("from another /64: %v", err)
	}
	if _, _, err := s.Authenticate(ctx, fresh.Email, testPassword, netip.Addr{}); err != nil {
		t.Errorf("without an address: %v", err)
	}
}

// Thirty wrong codes at once: only the account's budget is checked (and audited),
// the rest are refused unchecked, and so is the right code then. After the wait it passes.
func TestCodeThrottleConcurrent(t *testing.T) {
	t.Parallel()
	s, clock := newFactorService(t)
	ctx := testCtx(t)
	c := mustClinic(t, s, "Burst "+uuid.NewString()[:8], "")
	u, a := mustUser(t, s, c.ID, followup.RoleAdmin)
	secret, _ := enrolTOTP(t, s, clock, a)
	clock.Add(time.Minute)
	right := codeAt(t, secret, clock.Now())
	wrong := fmt.Sprintf("%06d", (atoi(right)+1)%1000000)

	var mu sync.Mutex
	codes := map[string]int{}
	var wg sync.WaitGroup
	for i := range 30 {
		wg.Go(func() {
			addr := netip.AddrFrom4([4]byte{198, 51, 100, byte(i)})
			_, err := s.VerifySecondFactor(ctx, u.ID, wrong, addr)
			if w, ok := RetryAfter(err); ok && (w <= 0 || w > FailureWindow) {
				t.Errorf("wait %v", w)
			}
			mu.Lock()
			codes[followup.ErrorCode(err)]++
			mu.Unlock()
		})
	}
	wg.Wait()
	// Reservations are serialized: exactly the budget is checked.
	if codes[followup.EUNAUTHORIZED] != AccountFailures || codes[followup.ETOOMANY] != 30-AccountFailures {
		t.Errorf("30 concurrent wrong codes: %v; want %d checked, the rest too many", codes, AccountFailures)
	}
	checked := countRows(t, s, `select count(*) from audit_events where action = $1 and target_id = $2`, AuditSecondFactorFailed, u.ID)
	if checked != codes[followup.EUNAUTHORIZED] {
		t.Errorf("%d failures audited, %d answered wrong", checked, codes[followup.EUNAUTHORIZED])
	}
	_, err := s.VerifySecondFactor(ctx, u.ID, right, netip.MustParseAddr("203.0.113.1"))
	wantCode(t, "the right code during the wait", err, followup.ETOOMANY)
	// The codes' budget is theirs: the password still signs in (the next step waits).
	if _, _, err = s.Authenticate(ctx, u.Email, testPassword, netip.Addr{}); err != nil {
		t.Errorf("the password during the codes' wait: %v", err)
	}
	clock.Add(FailureWindow)
	if _, err := s.VerifySecondFactor(ctx, u.ID, codeAt(t, secret, clock.Now()), netip.MustParseAddr("203.0.113.1")); err != nil {
		t.Errorf("after the wait: %v", err)
	}
	// The old failures are swept.
	if n, err := s.DeleteExpiredSignInState(ctx); err != nil || n < int64(checked) {
		t.Errorf("DeleteExpiredSignInState = %d, %v; want at least the %d old failures", n, err, checked)
	}
}

func atoi(s string) int {
	n := 0
	for _, c := range s {
		n = n*10 + int(c-'0')
	}
	return n
}
