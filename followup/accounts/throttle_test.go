package accounts

import (
	"fmt"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/dermfollow/dermfollow/followup"
	"github.com/dermfollow/dermfollow/followup/pgtest"
)

// Failed passwords count against the account from anywhere, on every server: two Services
// on two pools of one database stand for two servers.
func TestPasswordThrottleAcrossServers(t *testing.T) {
	t.Parallel()
	url := pgtest.NewDatabase(t)
	s1, clock := newFactorServiceOn(t, url)
	s2, err := New(Config{Pool: pgtest.OpenPool(t, url), Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
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
	// The eleventh attempt waits, even with the right password, which is not checked.
	_, _, err = s2.Authenticate(ctx, u.Email, testPassword, netip.MustParseAddr("203.0.113.50"))
	wantCode(t, "after 10 failures", err, followup.ETOOMANY)
	wait, ok := RetryAfter(err)
	// The first failure was 10 minutes ago: it ages out in 5.
	if !ok || wait != 5*time.Minute {
		t.Errorf("wait = %v (%v), want 5m", wait, ok)
	}
	if msg := followup.ErrorMessage(err); msg != "Too many failed attempts. Wait 5 minutes and try again." {
		t.Errorf("message %q", msg)
	}
	if n := countRows(t, s1, `select count(*) from audit_events where target_id = $1 and action in ('login', 'login_failed')`, u.ID); n != AccountFailures {
		t.Errorf("%d sign-in audit rows, want %d: the refused attempt was checked", n, AccountFailures)
	}
	clock.Add(5 * time.Minute)
	if _, _, err := s1.Authenticate(ctx, u.Email, testPassword, netip.MustParseAddr("203.0.113.50")); err != nil {
		t.Errorf("after the wait: %v", err)
	}
	// The success gave its attempt back: one more failure is allowed before the next wait.
	_, _, err = s1.Authenticate(ctx, u.Email, "wrong again", netip.Addr{})
	wantCode(t, "one more failure", err, followup.EUNAUTHORIZED)
	_, _, err = s1.Authenticate(ctx, u.Email, "wrong again", netip.Addr{})
	wantCode(t, "budget spent again", err, followup.ETOOMANY)

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
	_, _, err = s.Authenticate(ctx, u.Email, testPassword, netip.Addr{}) // one budget for passwords and codes
	wantCode(t, "the password during the wait", err, followup.ETOOMANY)
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
