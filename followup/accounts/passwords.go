package accounts

import (
	"context"
	"net/netip"
	"runtime"
	"strings"
	"sync"

	"github.com/alexedwards/argon2id"
	"github.com/jackc/pgx/v5"

	"github.com/dermfollow/dermfollow/followup"
)

// Password length limits, in characters. The upper bound keeps hashing cost bounded.
const (
	MinPasswordLength = 12
	MaxPasswordLength = 256
)

// passwordParams cost about 50 ms on a current server core. Parallelism is fixed (not
// NumCPU) so every hash costs the same wherever it was made; the parameters are stored in
// each hash, so raising them later keeps old hashes verifiable.
var passwordParams = &argon2id.Params{Memory: 64 * 1024, Iterations: 1, Parallelism: 2, SaltLength: 16, KeyLength: 32}

// hashSlots bounds concurrent argon2id work: each hash holds 64 MiB, so a burst of logins
// must queue rather than exhaust memory. It is process-wide because memory is; at most
// 8 slots, 512 MiB.
var hashSlots = make(chan struct{}, max(2, min(runtime.NumCPU(), 8)))

func withHashSlot(ctx context.Context, fn func() error) error {
	select {
	case hashSlots <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { <-hashSlots }()
	return fn()
}

// dummyHash is verified when no user has the email, so an unknown email costs as much time
// as a wrong password and timing does not reveal which emails exist.
var dummyHash = sync.OnceValues(func() (string, error) {
	return argon2id.CreateHash("dermfollow dummy password, never valid", passwordParams)
})

// errLogin is the one answer to every failed sign-in, whatever the reason.
func errLogin() error { return followup.Errorf(followup.EUNAUTHORIZED, "email or password is wrong") }

// Authenticate checks an email and password. Every failure answers followup.EUNAUTHORIZED "email or
// password is wrong" after the same amount of hashing, so neither the message nor the timing
// reveals which emails have accounts. Successes and failures are audited; the password never is.
// Failures count against the account's budgets and the address's (see AccountFailures): once
// one that refuses is spent the answer is followup.ETOOMANY with a WaitError, and the password
// is not checked; once the account's from anywhere is spent, the password is checked after
// AccountSlowdown. A success is the first step only: see SecondFactorState.
func (s *Service) Authenticate(ctx context.Context, email, password string, addr netip.Addr) (followup.Actor, User, error) {
	addr = addr.Unmap()
	// Lowercase and trim but do not validate: an invalid address takes the unknown-user path,
	// at the same cost.
	email = strings.ToLower(strings.TrimSpace(email))
	if len(password) > 4*MaxPasswordLength {
		password = password[:4*MaxPasswordLength] // never valid; bounds the hashing cost
	}
	if len(email) > 4*254 {
		email = email[:4*254] // never an account; bounds what is hashed and looked up
	}
	u, hash, err := s.userByEmail(ctx, email)
	known := err == nil
	if !known && followup.ErrorCode(err) != followup.ENOTFOUND {
		return followup.Actor{}, User{}, wrap(err, "authenticate")
	}
	account := emailScope(email)
	if known {
		account = accountScope(u.ID)
	}
	at, err := s.reserve(ctx, passwordBudgets(account, addr)...)
	if err != nil {
		return followup.Actor{}, User{}, wrap(err, "authenticate")
	}
	if err := s.slowDown(ctx, at); err != nil {
		s.release(ctx, at)
		return followup.Actor{}, User{}, wrap(err, "authenticate")
	}
	a, err := s.checkPassword(ctx, u, known, hash, password, addr)
	s.settle(ctx, at, err)
	if err != nil {
		return followup.Actor{}, User{}, err
	}
	return a, u, nil
}

// checkPassword is Authenticate once the attempt is within its budgets.
func (s *Service) checkPassword(ctx context.Context, u User, known bool, hash, password string, addr netip.Addr) (followup.Actor, error) {
	if !known {
		var err error
		if hash, err = dummyHash(); err != nil {
			return followup.Actor{}, wrap(err, "authenticate: dummy hash")
		}
	}
	var match bool
	if err := withHashSlot(ctx, func() (err error) {
		match, err = argon2id.ComparePasswordAndHash(password, hash)
		return err
	}); err != nil {
		return followup.Actor{}, wrap(err, "authenticate: verify password")
	}

	var reason string
	switch {
	case !known:
		reason = "unknown_email"
	case !match:
		reason = "wrong_password"
	case u.Disabled:
		reason = "disabled"
	}
	if reason != "" {
		// An unknown email gets no clinic, no target and nothing of what was typed.
		failed := followup.Actor{Kind: followup.ActorUser, Addr: addr}
		e := followup.AuditEvent{Action: AuditLoginFailed, Detail: map[string]any{"method": "password", "reason": reason}}
		if known {
			failed.ClinicID = u.ClinicID
			e.TargetKind, e.TargetID = "user", u.ID
		}
		if err := s.inTx(ctx, func(tx pgx.Tx) error { return followup.Audit(ctx, tx, failed, e) }); err != nil {
			return followup.Actor{}, wrap(err, "authenticate")
		}
		if reason == "disabled" {
			// Only someone who knows the password learns this.
			return followup.Actor{}, followup.Errorf(followup.EUNAUTHORIZED, "this account is disabled; ask your clinic's admin")
		}
		return followup.Actor{}, errLogin()
	}

	a := followup.Actor{Kind: followup.ActorUser, ID: u.ID, ClinicID: u.ClinicID, Role: u.Role, Addr: addr}
	if err := s.inTx(ctx, func(tx pgx.Tx) error {
		return followup.Audit(ctx, tx, a, followup.AuditEvent{Action: AuditLogin, TargetKind: "user", TargetID: u.ID, Detail: map[string]any{"method": "password"}})
	}); err != nil {
		return followup.Actor{}, wrap(err, "authenticate")
	}
	return a, nil
}
