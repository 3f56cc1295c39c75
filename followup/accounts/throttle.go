package accounts

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/dermfollow/dermfollow/followup"
)

// Failed passwords and codes are limited per account and per client address, in PostgreSQL so
// that the budget holds across every server. Each attempt takes one failure of its budgets
// before it is checked, and gives it back only when it was right; so of many concurrent
// guesses no more than the budget are ever checked, and once it is spent an attempt is refused
// without being checked at all.
//
// Nobody can lock someone else out. A password's budgets that refuse are the address's and
// the account's from that address; the account's from anywhere, once spent, only slows every
// further password of the account down (AccountSlowdown) and still checks it, so that wrong
// passwords from many addresses cost an attacker time without shutting the clinician out.
// Codes (the second factor) have a budget of their own per account, which refuses: only who
// knows the password reaches them. Passkeys are not limited: a signature cannot be guessed.
const (
	// FailureWindow is how long a failure counts against a budget.
	FailureWindow = 15 * time.Minute
	// AccountFailures is the budget of an account from one address, and of its codes, in
	// FailureWindow; and the account's from anywhere, past which its passwords are slowed.
	AccountFailures = 10
	// AccountSlowdown is the wait before a password of an account whose budget from anywhere
	// is spent is checked.
	AccountSlowdown = 3 * time.Second
	// AddressFailures is the budget of a client address (any accounts) in FailureWindow; IPv6
	// addresses count by their /64, which one client usually holds whole.
	AddressFailures = 20
)

// WaitError is the cause of the followup.ETOOMANY answer to an attempt refused for a spent
// budget: Wait is how long until the next attempt is checked.
type WaitError struct{ Wait time.Duration }

func (e *WaitError) Error() string { return "too many failed attempts; wait " + e.Wait.String() }

// RetryAfter returns how long a sign-in refused for too many failures must wait, and whether
// err is such a refusal (a page shows the wait and sets Retry-After).
func RetryAfter(err error) (time.Duration, bool) {
	var w *WaitError
	if errors.As(err, &w) {
		return w.Wait, true
	}
	return 0, false
}

func errWait(wait time.Duration) error {
	minutes := int((wait + time.Minute - 1) / time.Minute)
	msg := "Too many failed attempts. Wait a minute and try again."
	if minutes > 1 {
		msg = fmt.Sprintf("Too many failed attempts. Wait %d minutes and try again.", minutes)
	}
	return &followup.Error{Code: followup.ETOOMANY, Message: msg, Err: &WaitError{Wait: wait}}
}

// budget is one scope an attempt counts against, with its limit. A slowing budget, once
// spent, delays the attempt (AccountSlowdown) instead of refusing it.
type budget struct {
	scope string
	limit int
	slows bool
}

// passwordBudgets are the budgets of a password for account ("user:<id>", or an unknown
// email's) from addr: the account's from anywhere (slowing), from this address, and the
// address's.
func passwordBudgets(account string, addr netip.Addr) []budget {
	key, ok := addrKey(addr)
	if !ok {
		key = "unknown"
	}
	bs := []budget{{scope: account, limit: AccountFailures, slows: true},
		{scope: account + "@" + key, limit: AccountFailures}}
	return append(bs, addrBudgets(addr)...)
}

func accountScope(user uuid.UUID) string { return "user:" + user.String() }

// codeBudget is the budget of an account's second-factor codes (authenticator app and
// recovery codes).
func codeBudget(user uuid.UUID) budget {
	return budget{scope: "code:" + user.String(), limit: AccountFailures}
}

// emailScope is the account scope of an email without an account, so that unknown emails
// are limited as known ones are (and the limit does not tell them apart). The email is kept
// hashed: people type passwords into the email field.
func emailScope(email string) string {
	h := sha256.Sum256([]byte(email))
	return "email:" + hex.EncodeToString(h[:16])
}

// addrKey is what an address counts as: itself, or its /64 for IPv6; false when unknown.
func addrKey(addr netip.Addr) (string, bool) {
	if !addr.IsValid() {
		return "", false
	}
	addr = addr.Unmap().WithZone("")
	if addr.Is6() {
		p, _ := addr.Prefix(64)
		return p.String(), true
	}
	return addr.String(), true
}

// addrBudgets is the budget of a client address; none when the address is unknown.
func addrBudgets(addr netip.Addr) []budget {
	key, ok := addrKey(addr)
	if !ok {
		return nil
	}
	return []budget{{scope: "addr:" + key, limit: AddressFailures}}
}

// attempt is what reserve took: one failure row per budget, and whether a slowing budget was
// spent (the attempt is then checked after AccountSlowdown).
type attempt struct {
	ids  []int64
	slow bool
}

// throttleLockSpace is the first key of the advisory locks that serialize reservations of one
// scope (the two-key space, apart from the one-key locks of migrations and River).
const throttleLockSpace = 0x2fa

// reserve takes one failure of every budget for an attempt about to be checked, or refuses
// with followup.ETOOMANY (a WaitError) when one of them is spent.
func (s *Service) reserve(ctx context.Context, budgets ...budget) (attempt, error) {
	budgets = slices.Clone(budgets)
	slices.SortFunc(budgets, func(a, b budget) int { return strings.Compare(a.scope, b.scope) })
	scopes := make([]string, len(budgets))
	for i, b := range budgets {
		scopes[i] = b.scope
	}
	now := s.now()
	since := now.Add(-FailureWindow)
	var at attempt
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		for _, sc := range scopes {
			if _, err := tx.Exec(ctx, `select pg_advisory_xact_lock($1, hashtext($2))`, throttleLockSpace, sc); err != nil {
				return followup.Unavailable(err)
			}
		}
		if _, err := tx.Exec(ctx, `delete from sign_in_failures where scope = any($1) and at <= $2`, scopes, since); err != nil {
			return followup.Unavailable(err)
		}
		rows, err := tx.Query(ctx, `select scope, at from sign_in_failures where scope = any($1) order by scope, at`, scopes)
		if err != nil {
			return followup.Unavailable(err)
		}
		recent := map[string][]time.Time{}
		var scope string
		var t time.Time
		if _, err := pgx.ForEachRow(rows, []any{&scope, &t}, func() error {
			recent[scope] = append(recent[scope], t)
			return nil
		}); err != nil {
			return followup.Unavailable(err)
		}
		if wait := spentWait(budgets, recent, now); wait > 0 {
			return errWait(wait)
		}
		at.slow = spentSlowing(budgets, recent)
		rows, err = tx.Query(ctx, `insert into sign_in_failures (scope, at) select unnest($1::text[]), $2 returning id`, scopes, now)
		if err != nil {
			return followup.Unavailable(err)
		}
		at.ids, err = pgx.CollectRows(rows, pgx.RowTo[int64])
		return followup.Unavailable(err)
	})
	return at, err
}

// spentWait is how long until every budget has room again (0: they all have).
func spentWait(budgets []budget, recent map[string][]time.Time, now time.Time) time.Duration {
	var wait time.Duration
	for _, b := range budgets {
		times := recent[b.scope]
		if b.slows || len(times) < b.limit {
			continue
		}
		// Room comes back when the failure that leaves limit-1 younger ones ages out.
		free := times[len(times)-b.limit].Add(FailureWindow)
		wait = max(wait, free.Sub(now), time.Second)
	}
	return wait
}

// spentSlowing reports whether a slowing budget is spent.
func spentSlowing(budgets []budget, recent map[string][]time.Time) bool {
	for _, b := range budgets {
		if b.slows && len(recent[b.scope]) >= b.limit {
			return true
		}
	}
	return false
}

// slowDown waits AccountSlowdown before a slowed attempt is checked (through s.sleep, which
// tests replace), or returns ctx's error.
func (s *Service) slowDown(ctx context.Context, at attempt) error {
	if !at.slow {
		return nil
	}
	return s.sleep(ctx, AccountSlowdown)
}

// sleepCtx waits d or until ctx ends.
func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// release gives back what reserve took, for an attempt that was right or could not be
// decided. It must happen even if the request is gone, or a success would count as a failure.
func (s *Service) release(ctx context.Context, at attempt) {
	if len(at.ids) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if _, err := s.pool.Exec(ctx, `delete from sign_in_failures where id = any($1)`, at.ids); err != nil {
		s.log.WarnContext(ctx, "sign-in throttle: giving back an attempt failed", "error", err.Error())
	}
}

// settle ends an attempt: a wrong answer (followup.EUNAUTHORIZED) keeps its failures taken,
// anything else gives them back.
func (s *Service) settle(ctx context.Context, at attempt, err error) {
	if followup.ErrorCode(err) != followup.EUNAUTHORIZED {
		s.release(ctx, at)
	}
}
