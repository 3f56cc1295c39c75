package web

import (
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// failureLimiter counts failures (wrong parent tokens, failed logins) per client address and
// says when an address has had too many. Each server counts on its own: behind a load
// balancer of n servers, a guesser gets at most n times the budget, still far too few guesses
// for 256-bit tokens; the limit is there to keep logs and the database quiet.
type failureLimiter struct {
	mu      sync.Mutex
	burst   int
	every   rate.Limit
	clients map[string]*clientFailures
	swept   time.Time
}

type clientFailures struct {
	lim  *rate.Limiter
	seen time.Time
}

// newFailureLimiter allows burst failures, refilled over window.
func newFailureLimiter(burst int, window time.Duration) *failureLimiter {
	return &failureLimiter{burst: burst, every: rate.Every(window / time.Duration(burst)), clients: map[string]*clientFailures{}}
}

// Blocked reports whether addr has used up its failures.
func (f *failureLimiter) Blocked(addr string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	c, ok := f.clients[addr]
	return ok && c.lim.Tokens() < 1
}

// Fail records a failure of addr.
func (f *failureLimiter) Fail(addr string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	now := time.Now()
	if now.Sub(f.swept) > time.Minute {
		for k, c := range f.clients { // forget addresses that have been quiet: bounded memory
			if now.Sub(c.seen) > 30*time.Minute {
				delete(f.clients, k)
			}
		}
		f.swept = now
	}
	c, ok := f.clients[addr]
	if !ok {
		c = &clientFailures{lim: rate.NewLimiter(f.every, f.burst)}
		f.clients[addr] = c
	}
	c.seen = now
	c.lim.AllowN(now, 1)
}
