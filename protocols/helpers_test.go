package protocols

import (
	"testing"
	"time"
	_ "time/tzdata" // the zones the tests need, whatever the machine has
)

func mustRegistry(tb testing.TB, dir string) *Registry {
	tb.Helper()
	r, err := LoadRegistry(dir)
	if err != nil {
		tb.Fatalf("LoadRegistry(%q): %v", dir, err)
	}
	return r
}

func mustLocation(tb testing.TB, name string) *time.Location {
	tb.Helper()
	loc, err := time.LoadLocation(name)
	if err != nil {
		tb.Fatalf("load zone %s: %v", name, err)
	}
	return loc
}

func mustProtocol(tb testing.TB, r *Registry, id string) *Protocol {
	tb.Helper()
	p, err := r.Latest(id)
	if err != nil {
		tb.Fatal(err)
	}
	return p
}
