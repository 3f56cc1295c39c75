package web

import (
	"testing"

	"github.com/google/uuid"
)

// TestUploadSlotsEachLimit: the three bounds on uploads in progress each
// refuse on their own: per link, per client address (whatever the links) and per server
// (whatever the addresses); the clinic's uploads (no link) count against the address and
// the server only; a slot given back is taken again. TestUploadSlotsPerLink holds the link's
// bound through HTTP and TestStalledClientsHoldBoundedResources the address's through the
// real binary; nothing else reaches the server's.
func TestUploadSlotsEachLimit(t *testing.T) {
	t.Parallel()
	lim := clientLimits{perLink: 2, perClient: 3, perServer: 4}
	u := newUploadSlots(&lim)
	linkA, linkB := uuid.New(), uuid.New()
	take := func(addr string, link uuid.UUID, want bool, what string) func() {
		t.Helper()
		release, ok := u.take(addr, link)
		if ok != want {
			t.Fatalf("%s: take = %v, want %v", what, ok, want)
		}
		return release
	}
	a1 := take("192.0.2.1", linkA, true, "first through link A")
	take("192.0.2.1", linkA, true, "second through link A")
	take("192.0.2.2", linkA, false, "third through link A, from another address")
	take("192.0.2.1", linkB, true, "third from the address, through link B")
	take("192.0.2.1", uuid.Nil, false, "fourth from the address, the clinic's")
	take("198.51.100.1", uuid.Nil, true, "the clinic's from another address")
	take("203.0.113.1", linkB, false, "fifth on the server")
	a1()
	take("203.0.113.1", linkB, true, "a slot given back is taken again")
	if u.total != lim.perServer {
		t.Errorf("%d slots counted, want %d", u.total, lim.perServer)
	}
}
