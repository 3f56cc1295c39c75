package imagestore

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"

	"golang.org/x/sync/semaphore"
)

// DecodeBudget bounds the memory that decoding photos holds. Before a decode allocates any
// pixel, what it will hold (the decoded image at the scale it decodes at, by format, bit depth
// and colour type, and the thumbnails' working images) is computed from the file's header
// alone; a decode that needs more than PerDecode is refused (a *RejectError with
// ReasonTooManyPixels), and one that fits waits until the decodes in flight leave room for it
// within Total. So N photos of any shape thumbnailed at once hold at most Total, and one
// crafted file cannot take the process down.
type DecodeBudget struct {
	total, perDecode int64
	sem              *semaphore.Weighted
	held, peak       atomic.Int64
}

// The default budget: one decode may hold up to 256 MiB (a 48 MP RGBA PNG, or any JPEG up to
// the pixel limit at the scales thumbnails use), and the process's decodes together 512 MiB.
const (
	DefaultDecodeBudgetTotal     = 512 << 20
	DefaultDecodeBudgetPerDecode = 256 << 20
)

// NewDecodeBudget returns a budget of total bytes, of which one decode may take perDecode
// (at most total; 0 means total).
func NewDecodeBudget(total, perDecode int64) *DecodeBudget {
	total = max(total, 1)
	if perDecode <= 0 || perDecode > total {
		perDecode = total
	}
	return &DecodeBudget{total: total, perDecode: perDecode, sem: semaphore.NewWeighted(total)}
}

// DefaultDecodeBudget is the process's budget (DefaultDecodeBudgetTotal and
// DefaultDecodeBudgetPerDecode), shared by every caller that does not make its own; Thumbnail
// and Thumbnails draw from it.
var DefaultDecodeBudget = sync.OnceValue(func() *DecodeBudget {
	return NewDecodeBudget(DefaultDecodeBudgetTotal, DefaultDecodeBudgetPerDecode)
})

// Total is the most the decodes drawing from b hold together.
func (b *DecodeBudget) Total() int64 { return b.total }

// PerDecode is the most one decode may hold.
func (b *DecodeBudget) PerDecode() int64 { return b.perDecode }

// Held is what the decodes in flight hold now (for metrics and tests).
func (b *DecodeBudget) Held() int64 { return b.held.Load() }

// Peak is the most the decodes in flight have held at once.
func (b *DecodeBudget) Peak() int64 { return b.peak.Load() }

// acquire takes n bytes of the budget, waiting while other decodes hold too much of it, and
// returns the function that gives them back. It refuses n over the per-decode ceiling at
// once, and returns ctx's error if ctx ends while it waits.
func (b *DecodeBudget) acquire(ctx context.Context, n int64) (release func(), err error) {
	if n > b.perDecode {
		return nil, rejectf(ReasonTooManyPixels, "decoding needs %d MB, more than the %d MB one decode may hold",
			n>>20, b.perDecode>>20)
	}
	n = max(n, 1)
	if err := b.sem.Acquire(ctx, n); err != nil {
		return nil, fmt.Errorf("imagestore: wait for decode memory: %w", err)
	}
	held := b.held.Add(n)
	for p := b.peak.Load(); held > p && !b.peak.CompareAndSwap(p, held); p = b.peak.Load() {
	}
	var once sync.Once
	return func() {
		once.Do(func() {
			b.held.Add(-n)
			b.sem.Release(n)
		})
	}, nil
}
