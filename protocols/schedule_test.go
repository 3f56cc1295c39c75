package protocols

import (
	"strings"
	"testing"
	"time"
)

func mustTime(tb testing.TB, s string) time.Time {
	tb.Helper()
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		tb.Fatal(err)
	}
	return t
}

func dueByKey(tb testing.TB, dues []Due, key string) Due {
	tb.Helper()
	for _, d := range dues {
		if d.Key == key {
			return d
		}
	}
	tb.Fatalf("no timepoint %q", key)
	return Due{}
}

// The shipped PWS protocol mixes hour offsets (baseline -1h, after-treatment +0h) and day offsets;
// each row is one timepoint of one procedure, late in the evening next to a clock change.
func TestScheduleAcrossClockChanges(t *testing.T) {
	t.Parallel()
	pws := mustProtocol(t, mustRegistry(t, ""), "pws-hemoporfin-pdt")
	cases := []struct {
		name, zone, performed, key string
		at                         string        // due instant, RFC 3339 with the local offset
		elapsed                    time.Duration // at - performed: shows calendar days vs hours
		dueOn, windowStart         string
		windowEnd                  string
		opens, closes, graceEnds   string
	}{
		// New York springs forward on 2025-03-09 at 02:00 (EST -05 to EDT -04).
		{"NY spring baseline", "America/New_York", "2025-03-08T23:30:00-05:00", "baseline",
			"2025-03-08T22:30:00-05:00", -time.Hour, "2025-03-08", "2025-03-08", "2025-03-08",
			"2025-03-08T00:00:00-05:00", "2025-03-08T23:30:00-05:00", "2025-03-12T00:00:00-04:00"},
		{"NY spring after-treatment cut at midnight", "America/New_York", "2025-03-08T23:30:00-05:00", "after-treatment",
			"2025-03-08T23:30:00-05:00", 0, "2025-03-08", "2025-03-08", "2025-03-08",
			"2025-03-08T23:30:00-05:00", "2025-03-09T00:00:00-05:00", "2025-03-12T00:00:00-04:00"},
		{"NY spring day 1 is a 23-hour day", "America/New_York", "2025-03-08T23:30:00-05:00", "day-1",
			"2025-03-09T23:30:00-04:00", 23 * time.Hour, "2025-03-09", "2025-03-09", "2025-03-09",
			"2025-03-09T00:00:00-05:00", "2025-03-10T00:00:00-04:00", "2025-03-13T00:00:00-04:00"},
		{"NY spring week 1 is 167 hours", "America/New_York", "2025-03-08T23:30:00-05:00", "week-1",
			"2025-03-15T23:30:00-04:00", 167 * time.Hour, "2025-03-15", "2025-03-14", "2025-03-16",
			"2025-03-14T00:00:00-04:00", "2025-03-17T00:00:00-04:00", "2025-03-20T00:00:00-04:00"},
		// An hour offset is exact: one hour before 03:30 EDT on the change day is 01:30 EST.
		{"NY spring baseline across the gap", "America/New_York", "2025-03-09T03:30:00-04:00", "baseline",
			"2025-03-09T01:30:00-05:00", -time.Hour, "2025-03-09", "2025-03-09", "2025-03-09",
			"2025-03-09T00:00:00-05:00", "2025-03-09T03:30:00-04:00", "2025-03-13T00:00:00-04:00"},
		// New York falls back on 2025-11-02 at 02:00 (EDT -04 to EST -05).
		{"NY fall day 1 is a 25-hour day", "America/New_York", "2025-11-01T23:30:00-04:00", "day-1",
			"2025-11-02T23:30:00-05:00", 25 * time.Hour, "2025-11-02", "2025-11-02", "2025-11-02",
			"2025-11-02T00:00:00-04:00", "2025-11-03T00:00:00-05:00", "2025-11-06T00:00:00-05:00"},
		{"NY fall week 1 is 169 hours", "America/New_York", "2025-11-01T23:30:00-04:00", "week-1",
			"2025-11-08T23:30:00-05:00", 169 * time.Hour, "2025-11-08", "2025-11-07", "2025-11-09",
			"2025-11-07T00:00:00-05:00", "2025-11-10T00:00:00-05:00", "2025-11-13T00:00:00-05:00"},
		// Berlin springs forward on 2025-03-30 at 02:00 (CET +01 to CEST +02).
		{"Berlin spring after-treatment", "Europe/Berlin", "2025-03-29T23:30:00+01:00", "after-treatment",
			"2025-03-29T23:30:00+01:00", 0, "2025-03-29", "2025-03-29", "2025-03-29",
			"2025-03-29T23:30:00+01:00", "2025-03-30T00:00:00+01:00", "2025-04-02T00:00:00+02:00"},
		{"Berlin spring day 1", "Europe/Berlin", "2025-03-29T23:30:00+01:00", "day-1",
			"2025-03-30T23:30:00+02:00", 23 * time.Hour, "2025-03-30", "2025-03-30", "2025-03-30",
			"2025-03-30T00:00:00+01:00", "2025-03-31T00:00:00+02:00", "2025-04-03T00:00:00+02:00"},
		{"Berlin spring day 4", "Europe/Berlin", "2025-03-29T23:30:00+01:00", "day-4",
			"2025-04-02T23:30:00+02:00", 4*24*time.Hour - time.Hour, "2025-04-02", "2025-04-01", "2025-04-03",
			"2025-04-01T00:00:00+02:00", "2025-04-04T00:00:00+02:00", "2025-04-07T00:00:00+02:00"},
		// Berlin falls back on 2025-10-26 at 03:00 (CEST +02 to CET +01).
		{"Berlin fall day 1", "Europe/Berlin", "2025-10-25T23:30:00+02:00", "day-1",
			"2025-10-26T23:30:00+01:00", 25 * time.Hour, "2025-10-26", "2025-10-26", "2025-10-26",
			"2025-10-26T00:00:00+02:00", "2025-10-27T00:00:00+01:00", "2025-10-30T00:00:00+01:00"},
		{"Berlin fall week 2", "Europe/Berlin", "2025-10-25T23:30:00+02:00", "week-2",
			"2025-11-08T23:30:00+01:00", 14*24*time.Hour + time.Hour, "2025-11-08", "2025-11-06", "2025-11-10",
			"2025-11-06T00:00:00+01:00", "2025-11-11T00:00:00+01:00", "2025-11-14T00:00:00+01:00"},
		// Shanghai has no clock changes, but its dates are not UTC dates: 00:30 local is the
		// evening before in UTC, and the schedule must follow the local date.
		{"Shanghai early morning day 1", "Asia/Shanghai", "2025-05-31T16:30:00Z", "day-1",
			"2025-06-02T00:30:00+08:00", 24 * time.Hour, "2025-06-02", "2025-06-02", "2025-06-02",
			"2025-06-02T00:00:00+08:00", "2025-06-03T00:00:00+08:00", "2025-06-06T00:00:00+08:00"},
		{"Shanghai late evening after-treatment", "Asia/Shanghai", "2025-06-01T23:30:00+08:00", "after-treatment",
			"2025-06-01T23:30:00+08:00", 0, "2025-06-01", "2025-06-01", "2025-06-01",
			"2025-06-01T23:30:00+08:00", "2025-06-02T00:00:00+08:00", "2025-06-05T00:00:00+08:00"},
		{"Shanghai late evening week 8", "Asia/Shanghai", "2025-06-01T23:30:00+08:00", "week-8",
			"2025-07-27T23:30:00+08:00", 56 * 24 * time.Hour, "2025-07-27", "2025-07-22", "2025-07-27",
			"2025-07-22T00:00:00+08:00", "2025-07-28T00:00:00+08:00", "2025-07-31T00:00:00+08:00"},
		// Havana springs forward at midnight: 2025-03-09 starts at 01:00 (CDT -04).
		{"Havana day without a midnight", "America/Havana", "2025-03-08T12:00:00-05:00", "day-1",
			"2025-03-09T12:00:00-04:00", 23 * time.Hour, "2025-03-09", "2025-03-09", "2025-03-09",
			"2025-03-09T01:00:00-04:00", "2025-03-10T00:00:00-04:00", "2025-03-13T00:00:00-04:00"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			loc := mustLocation(t, c.zone)
			performed := mustTime(t, c.performed)
			d := dueByKey(t, pws.Schedule(performed, loc), c.key)
			check := func(what string, got time.Time, want string) {
				t.Helper()
				if w := mustTime(t, want); !got.Equal(w) {
					t.Errorf("%s = %s, want %s", what, got.In(loc).Format(time.RFC3339), w.Format(time.RFC3339))
				}
			}
			check("At", d.At, c.at)
			check("Opens", d.Opens, c.opens)
			check("Closes", d.Closes, c.closes)
			check("GraceEnds", d.GraceEnds, c.graceEnds)
			if got := d.At.Sub(performed); got != c.elapsed {
				t.Errorf("At - performed = %v, want %v", got, c.elapsed)
			}
			for _, f := range []struct{ name, got, want string }{
				{"DueOn", d.DueOn.String(), c.dueOn},
				{"WindowStart", d.WindowStart.String(), c.windowStart},
				{"WindowEnd", d.WindowEnd.String(), c.windowEnd},
			} {
				if f.got != f.want {
					t.Errorf("%s = %s, want %s", f.name, f.got, f.want)
				}
			}
		})
	}
}

// A day offset keeps the wall-clock time, and when that time does not exist on the due date
// (a spring-forward gap) the date still stays right.
func TestScheduleWallClockInGap(t *testing.T) {
	t.Parallel()
	pws := mustProtocol(t, mustRegistry(t, ""), "pws-hemoporfin-pdt")
	for _, c := range []struct{ zone, performed, due string }{
		{"Europe/Berlin", "2025-03-29T02:30:00+01:00", "2025-03-30"},
		{"America/New_York", "2025-03-08T02:30:00-05:00", "2025-03-09"},
		{"America/Havana", "2025-03-08T00:30:00-05:00", "2025-03-09"},
	} {
		loc := mustLocation(t, c.zone)
		d := dueByKey(t, pws.Schedule(mustTime(t, c.performed), loc), "day-1")
		if d.DueOn.String() != c.due || DateOf(d.At, loc) != d.DueOn || d.At.Before(d.Opens) || !d.At.Before(d.Closes) {
			t.Errorf("%s: DueOn %s, At %s, window [%s, %s)", c.zone, d.DueOn, d.At.In(loc), d.Opens.In(loc), d.Closes.In(loc))
		}
	}
}

// The first and last instants of a day window belong to its first and last local dates, in
// every zone and for every timepoint of every shipped protocol.
func TestWindowEdges(t *testing.T) {
	t.Parallel()
	r := mustRegistry(t, "")
	zones := []string{"America/New_York", "Europe/Berlin", "Asia/Shanghai", "America/Havana", "Australia/Lord_Howe", "UTC"}
	performed := []string{"2025-03-08T23:30:00-05:00", "2025-10-25T21:30:00Z", "2025-06-01T15:30:00Z", "2025-03-29T01:15:00Z"}
	for _, zone := range zones {
		loc := mustLocation(t, zone)
		for _, ps := range performed {
			for _, p := range r.Protocols() {
				for _, d := range p.Schedule(mustTime(t, ps), loc) {
					last := d.Closes.Add(-time.Nanosecond)
					if DateOf(d.Opens, loc) != d.WindowStart || DateOf(last, loc) != d.WindowEnd {
						t.Errorf("%s %s %s: window [%s, %s) vs dates %s..%s", zone, p.ID, d.Key, d.Opens.In(loc), d.Closes.In(loc), d.WindowStart, d.WindowEnd)
					}
					if d.Offset.Unit == Days {
						if !d.Opens.Equal(d.WindowStart.Start(loc)) || DateOf(d.Opens.Add(-time.Nanosecond), loc) != d.WindowStart.AddDays(-1) ||
							DateOf(d.Closes, loc) != d.WindowEnd.AddDays(1) {
							t.Errorf("%s %s %s: window [%s, %s) is not whole local days", zone, p.ID, d.Key, d.Opens.In(loc), d.Closes.In(loc))
						}
					}
					if !d.GraceEnds.Equal(d.WindowEnd.AddDays(1 + p.Grace).Start(loc)) {
						t.Errorf("%s %s %s: grace ends %s", zone, p.ID, d.Key, d.GraceEnds.In(loc))
					}
				}
			}
		}
	}
}

func TestStateTransitions(t *testing.T) {
	t.Parallel()
	pws := mustProtocol(t, mustRegistry(t, ""), "pws-hemoporfin-pdt")
	loc := mustLocation(t, "America/New_York")
	dues := pws.Schedule(mustTime(t, "2025-03-08T23:30:00-05:00"), loc)
	day4 := dueByKey(t, dues, "day-4")            // window 03-11..03-13, grace to 03-16 inclusive
	after := dueByKey(t, dues, "after-treatment") // window 23:30 to midnight
	all := map[string]bool{"front": true, "left-oblique": true, "right-oblique": true}
	some := map[string]bool{"front": true, "close-up": true} // close-up is not required here
	ns := time.Nanosecond
	cases := []struct {
		name     string
		due      Due
		received map[string]bool
		now      time.Time
		want     State
	}{
		{"day before the window", day4, nil, mustTime(t, "2025-03-10T12:00:00-04:00"), StateUpcoming},
		{"last instant before the window", day4, some, day4.Opens.Add(-ns), StateUpcoming},
		{"first instant of the window", day4, nil, mustTime(t, "2025-03-11T00:00:00-04:00"), StateOpen},
		{"some views in the window", day4, some, mustTime(t, "2025-03-12T08:00:00-04:00"), StateOpen},
		{"last instant of the window", day4, some, mustTime(t, "2025-03-13T23:59:59.999999999-04:00"), StateOpen},
		{"first instant after the window", day4, some, mustTime(t, "2025-03-14T00:00:00-04:00"), StateOverdue},
		{"last instant of the grace days", day4, nil, mustTime(t, "2025-03-16T23:59:59.999999999-04:00"), StateOverdue},
		{"grace over", day4, some, mustTime(t, "2025-03-17T00:00:00-04:00"), StateMissed},
		{"long after", day4, nil, mustTime(t, "2026-01-01T00:00:00-05:00"), StateMissed},
		{"complete early", day4, all, day4.Opens.Add(-48 * time.Hour), StateComplete},
		{"complete in the window", day4, all, day4.Opens, StateComplete},
		{"complete late", day4, all, day4.GraceEnds.Add(30 * 24 * time.Hour), StateComplete},
		{"hour window opens at the procedure", after, nil, after.Opens, StateOpen},
		{"hour window just before", after, nil, after.Opens.Add(-ns), StateUpcoming},
		{"hour window last instant", after, nil, mustTime(t, "2025-03-08T23:59:59.999999999-05:00"), StateOpen},
		{"hour window cut at midnight", after, nil, mustTime(t, "2025-03-09T00:00:00-05:00"), StateOverdue},
		{"hour window grace over", after, nil, mustTime(t, "2025-03-12T00:00:00-04:00"), StateMissed},
	}
	for _, c := range cases {
		if got := c.due.State(c.received, c.now); got != c.want {
			t.Errorf("%s: State = %s, want %s", c.name, got, c.want)
		}
	}
	if got := strings.Join(day4.Missing(some), ","); got != "left-oblique,right-oblique" {
		t.Errorf("Missing = %s", got)
	}
}

func TestNoGraceGoesStraightToMissed(t *testing.T) {
	t.Parallel()
	p := &Protocol{Grace: 0, Timepoints: []Timepoint{{Key: "day-1", Offset: Offset{1, Days}, Views: []string{"front"}}}}
	loc := mustLocation(t, "Asia/Shanghai")
	d := p.Schedule(mustTime(t, "2025-06-01T10:00:00+08:00"), loc)[0]
	if !d.GraceEnds.Equal(d.Closes) {
		t.Fatalf("grace ends %s, closes %s", d.GraceEnds, d.Closes)
	}
	if got := d.State(nil, d.Closes.Add(-time.Nanosecond)); got != StateOpen {
		t.Errorf("last instant: %s", got)
	}
	if got := d.State(nil, d.Closes); got != StateMissed {
		t.Errorf("after the window: %s", got)
	}
}

func TestStates(t *testing.T) {
	t.Parallel()
	surgical := mustProtocol(t, mustRegistry(t, ""), "surgical-wound")
	loc := mustLocation(t, "Europe/Berlin")
	dues := surgical.Schedule(mustTime(t, "2025-10-20T09:00:00+02:00"), loc)
	received := map[string]map[string]bool{
		"day-2": {"front": true, "close-up": true},
		"day-7": {"front": true},
	}
	got := States(dues, received, mustTime(t, "2025-10-27T12:00:00+01:00")) // day 7
	want := []State{StateComplete, StateOpen, StateUpcoming, StateUpcoming, StateUpcoming}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("%s: %s, want %s", dues[i].Key, got[i], want[i])
		}
	}
	// A schedule is the caller's to keep: changing it leaves the protocol alone.
	dues[0].Views[0] = "changed"
	if surgical.Timepoints[0].Views[0] != "front" {
		t.Errorf("Schedule shares its views with the protocol")
	}
}

func TestScheduleNilLocationIsUTC(t *testing.T) {
	t.Parallel()
	p := &Protocol{Timepoints: []Timepoint{{Key: "d", Offset: Offset{1, Days}}}}
	d := p.Schedule(mustTime(t, "2025-06-01T23:30:00-05:00"), nil)[0]
	if d.DueOn.String() != "2025-06-03" {
		t.Errorf("DueOn = %s, want the UTC date plus one", d.DueOn)
	}
}
