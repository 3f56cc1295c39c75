package protocols

import (
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

// randomTimepoints makes a candidate protocol: offsets increase, windows are random, and many
// candidates overlap. The validator decides which are valid; the property test then checks that
// whatever it accepts behaves.
func randomTimepoints(rng *rand.Rand) []Timepoint {
	views := viewNames()
	n := 1 + rng.IntN(7)
	tps := make([]Timepoint, 0, n)
	cursor := -48 + rng.IntN(48) // nominal hours after the procedure
	for i := range n {
		tp := Timepoint{Key: "tp-" + string(rune('a'+i)), Who: Family}
		if rng.IntN(3) == 0 {
			h := min(max(cursor+rng.IntN(30), -maxHours), maxHours)
			tp.Offset = Offset{h, Hours}
			tp.Before, tp.After = rng.IntN(30), rng.IntN(30)
		} else {
			d := (cursor+23)/24 + rng.IntN(10)
			if cursor < 0 {
				d = cursor/24 + rng.IntN(10)
			}
			tp.Offset = Offset{d, Days}
			tp.Before, tp.After = rng.IntN(4), rng.IntN(4)
		}
		for _, v := range views {
			if rng.IntN(3) == 0 {
				tp.Views = append(tp.Views, v)
			}
		}
		if len(tp.Views) == 0 {
			tp.Views = []string{views[rng.IntN(len(views))]}
		}
		tps = append(tps, tp)
		cursor = tp.Offset.nominalHours() + 1 + rng.IntN(72)
	}
	return tps
}

func stateRank(s State) int {
	return slices.Index([]State{StateUpcoming, StateOpen, StateOverdue, StateMissed, StateComplete}, s)
}

// For random valid protocols, procedure times and zones (clock changes included): windows never
// overlap, and a timepoint's state only ever moves forward as time passes and photos arrive.
func TestScheduleProperties(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(2024, 4))
	var zones []*time.Location
	for _, z := range []string{"America/New_York", "Europe/Berlin", "Asia/Shanghai", "America/Havana",
		"America/Santiago", "Australia/Lord_Howe", "Pacific/Chatham", "America/St_Johns", "Asia/Kolkata", "UTC"} {
		zones = append(zones, mustLocation(t, z))
	}
	// Procedures cluster around clock changes, where mistakes hide.
	changes := []time.Time{
		mustTime(t, "2025-03-09T07:00:00Z"), mustTime(t, "2025-11-02T06:00:00Z"), // New York
		mustTime(t, "2025-03-30T01:00:00Z"), mustTime(t, "2025-10-26T01:00:00Z"), // Berlin
		mustTime(t, "2025-03-09T05:00:00Z"), mustTime(t, "2025-09-07T04:00:00Z"), // Havana, Santiago
	}
	accepted, mixed := 0, 0
	for range 3000 {
		tps := randomTimepoints(rng)
		valid := true
		checkTimepoints(tps, nil, func(string, string) { valid = false })
		if !valid {
			continue
		}
		accepted++
		units := map[Unit]bool{}
		for _, tp := range tps {
			units[tp.Offset.Unit] = true
		}
		if len(units) == 2 {
			mixed++
		}
		p := &Protocol{ID: "random", Version: 1, Grace: rng.IntN(5), Timepoints: tps}
		loc := zones[rng.IntN(len(zones))]
		performed := changes[rng.IntN(len(changes))].Add(time.Duration(rng.Int64N(int64(120*time.Hour))) - 60*time.Hour)
		dues := p.Schedule(performed, loc)

		for i, d := range dues {
			if d.Closes.Before(d.Opens) || d.GraceEnds.Before(d.Closes) ||
				d.DueOn.Before(d.WindowStart) || d.DueOn.After(d.WindowEnd) || DateOf(d.At, loc) != d.DueOn ||
				DateOf(d.Opens, loc) != d.WindowStart || DateOf(d.Closes.Add(-time.Nanosecond), loc) != d.WindowEnd {
				t.Fatalf("%s in %s, %+v: inconsistent window %+v", performed, loc, tps, d)
			}
			for _, e := range dues[i+1:] {
				if e.Opens.Before(d.Closes) {
					t.Fatalf("%s in %s, %+v: %s [%s, %s) overlaps %s [%s, %s)", performed, loc, tps,
						d.Key, d.Opens.In(loc), d.Closes.In(loc), e.Key, e.Opens.In(loc), e.Closes.In(loc))
				}
				if d.Offset.Unit == Days && e.Offset.Unit == Days && !d.WindowEnd.Before(e.WindowStart) {
					t.Fatalf("%+v: day windows %s..%s and %s..%s share a date", tps, d.WindowStart, d.WindowEnd, e.WindowStart, e.WindowEnd)
				}
			}
		}

		// Walk time forward over the whole schedule, photos arriving now and then.
		var nows []time.Time
		for _, d := range dues {
			for _, edge := range []time.Time{d.Opens, d.Closes, d.GraceEnds} {
				nows = append(nows, edge.Add(-time.Nanosecond), edge)
			}
		}
		start, end := dues[0].Opens.Add(-72*time.Hour), dues[len(dues)-1].GraceEnds.Add(72*time.Hour)
		for now := start; now.Before(end); now = now.Add(time.Minute + time.Duration(rng.Int64N(int64(18*time.Hour)))) {
			nows = append(nows, now)
		}
		slices.SortFunc(nows, func(a, b time.Time) int { return a.Compare(b) })
		received := map[string]map[string]bool{}
		prev := make([]State, len(dues))
		for step, now := range nows {
			if rng.IntN(40) == 0 { // a photo arrives
				d := dues[rng.IntN(len(dues))]
				if received[d.Key] == nil {
					received[d.Key] = map[string]bool{}
				}
				received[d.Key][d.Views[rng.IntN(len(d.Views))]] = true
			}
			states := States(dues, received, now)
			for i, s := range states {
				if step > 0 && stateRank(s) < stateRank(prev[i]) {
					t.Fatalf("%s moved back from %s to %s at %s (%+v)", dues[i].Key, prev[i], s, now.In(loc), dues[i])
				}
			}
			prev = states
		}
	}
	t.Logf("%d valid protocols, %d mixing hours and days", accepted, mixed)
	if accepted < 300 || mixed < 30 {
		t.Fatalf("only %d valid protocols (%d mixing hours and days): the generator needs tuning", accepted, mixed)
	}
}
