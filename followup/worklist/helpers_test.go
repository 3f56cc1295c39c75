package worklist

import (
	"testing"

	"github.com/dermfollow/dermfollow/followup/followuptest"
)

// fixture is followuptest's clinic (a clinician and a child enrolled in the PWS protocol at
// 10:00 in Shanghai, seven hours before the clock) with the worklist (wl) over its core.
type fixture struct {
	*followuptest.Fixture
	wl *Service
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	f := followuptest.New(t)
	return &fixture{Fixture: f, wl: New(f.Core, f.Pool)}
}
