package web

import (
	"sync"
	"time"
)

// failureLimiter budgets failures (wrong parent tokens, failed sign-ins, wrong API tokens) per
// key: a client address, or an account and an address. Each key has a bucket of burst
// failures, refilled evenly over window. An attempt that might fail takes one failure from
// the bucket before the work that decides it (Take) and gives it back when it succeeded
// (Give): so a burst of concurrent attempts cannot all pass a check made before any of them
// had failed. Each server counts on its own: behind a load balancer of n servers, a guesser
// gets at most n times the budget.
type failureLimiter struct {
	mu      sync.Mutex
	burst   float64
	refill  time.Duration // time for one failure to come back
	buckets map[string]*failureBucket
	swept   time.Time
	now     func() time.Time
}

type failureBucket struct {
	tokens float64
	at     time.Time // when tokens was last brought up to date
}

// newFailureLimiter allows burst failures per key, refilled over window.
func newFailureLimiter(burst int, window time.Duration) *failureLimiter {
	return &failureLimiter{burst: float64(burst), refill: window / time.Duration(burst), buckets: map[string]*failureBucket{}, now: time.Now}
}

// bucket returns key's bucket brought up to now; the caller holds mu.
func (f *failureLimiter) bucket(key string, now time.Time) *failureBucket {
	if now.Sub(f.swept) > time.Minute {
		for k, b := range f.buckets { // forget full buckets: bounded memory
			if b.tokens+float64(now.Sub(b.at))/float64(f.refill) >= f.burst {
				delete(f.buckets, k)
			}
		}
		f.swept = now
	}
	b, ok := f.buckets[key]
	if !ok {
		b = &failureBucket{tokens: f.burst, at: now}
		f.buckets[key] = b
	}
	b.tokens = min(f.burst, b.tokens+float64(now.Sub(b.at))/float64(f.refill))
	b.at = now
	return b
}

// Take reserves one failure of key's budget for an attempt, or reports false and how long
// until one is back when the budget is spent.
func (f *failureLimiter) Take(key string) (ok bool, wait time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	b := f.bucket(key, f.now())
	if b.tokens >= 1 {
		b.tokens--
		return true, 0
	}
	return false, time.Duration((1 - b.tokens) * float64(f.refill))
}

// Give returns the failure an attempt took, once it has succeeded.
func (f *failureLimiter) Give(key string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	b := f.bucket(key, f.now())
	b.tokens = min(f.burst, b.tokens+1)
}

// Blocked reports whether key's budget is spent, without taking from it.
func (f *failureLimiter) Blocked(key string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.bucket(key, f.now()).tokens < 1
}

// Fail records a failure of key that no Take reserved.
func (f *failureLimiter) Fail(key string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	b := f.bucket(key, f.now())
	b.tokens = max(0, b.tokens-1)
}
