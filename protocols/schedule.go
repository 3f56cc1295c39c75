package protocols

import (
	"slices"
	"time"
)

// Due is one timepoint of a procedure's schedule, placed on the clinic's calendar.
//
// The window is the half-open interval [Opens, Closes). For a day offset it covers whole local
// days, WindowStart through WindowEnd. For an hour offset it is exact to the hour but never leaves
// the local date it is due on, so WindowStart and WindowEnd both equal DueOn.
type Due struct {
	Timepoint
	At          time.Time `json:"at"`           // the due instant
	DueOn       Date      `json:"due_on"`       // local date of At
	WindowStart Date      `json:"window_start"` // first local date of the window
	WindowEnd   Date      `json:"window_end"`   // last local date of the window, inclusive
	Opens       time.Time `json:"opens"`        // first instant of the window
	Closes      time.Time `json:"closes"`       // first instant after the window
	GraceEnds   time.Time `json:"grace_ends"`   // overdue until then, missed from then
}

// Schedule places the protocol's timepoints on the calendar of a procedure performed at
// performedAt in the clinic's zone loc (UTC when nil):
//
//   - A day offset of n is n calendar days in loc, not n×24 hours: DueOn is the local date of the
//     procedure plus n days, and At is the same wall-clock time on that date (or the next valid
//     instant, if the clocks skip that time). The window runs from the start of DueOn−Before to
//     the end of DueOn+After, in whole local days.
//   - An hour offset is an exact duration: At = performedAt + n hours and DueOn is At's local date.
//     The window is [At−Before, At+After) in hours, cut to DueOn.
//   - Whatever the offset, the grace period ends at the start of the local day Grace days after
//     WindowEnd.
func (p *Protocol) Schedule(performedAt time.Time, loc *time.Location) []Due {
	if loc == nil {
		loc = time.UTC
	}
	local := performedAt.In(loc)
	day0 := DateOf(local, loc)
	dues := make([]Due, 0, len(p.Timepoints))
	for _, tp := range p.Timepoints {
		d := Due{Timepoint: tp}
		d.Views = slices.Clone(tp.Views) // callers may keep and change their schedule
		switch tp.Offset.Unit {
		case Hours:
			d.At = performedAt.Add(time.Duration(tp.Offset.N) * time.Hour)
			d.DueOn = DateOf(d.At, loc)
			d.WindowStart, d.WindowEnd = d.DueOn, d.DueOn
			dayStart, dayEnd := d.DueOn.Start(loc), d.DueOn.AddDays(1).Start(loc)
			d.Opens = latest(d.At.Add(-time.Duration(tp.Before)*time.Hour), dayStart)
			d.Closes = earliest(d.At.Add(time.Duration(tp.After)*time.Hour), dayEnd)
		default:
			d.DueOn = day0.AddDays(tp.Offset.N)
			d.At = time.Date(d.DueOn.Year, d.DueOn.Month, d.DueOn.Day,
				local.Hour(), local.Minute(), local.Second(), local.Nanosecond(), loc)
			if DateOf(d.At, loc) != d.DueOn { // a skipped wall-clock time can land on the eve
				d.At = d.DueOn.Start(loc)
			}
			d.WindowStart, d.WindowEnd = d.DueOn.AddDays(-tp.Before), d.DueOn.AddDays(tp.After)
			d.Opens, d.Closes = d.WindowStart.Start(loc), d.WindowEnd.AddDays(1).Start(loc)
		}
		d.GraceEnds = d.WindowEnd.AddDays(1 + p.Grace).Start(loc)
		dues = append(dues, d)
	}
	return dues
}

func latest(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func earliest(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

// State is where a timepoint stands for a family at a given moment.
type State string

// States in the order a timepoint moves through them. Complete can follow any of the others and
// nothing follows it; otherwise a timepoint only ever moves forward.
const (
	StateUpcoming State = "upcoming" // the window has not opened yet
	StateOpen     State = "open"     // inside the window, some views missing
	StateOverdue  State = "overdue"  // window closed, views missing, still within the grace days
	StateMissed   State = "missed"   // grace days over, views missing; late photos still count
	StateComplete State = "complete" // every required view has at least one photo, whenever taken
)

// State returns the timepoint's state at now, given the views that have at least one photo.
func (d Due) State(received map[string]bool, now time.Time) State {
	switch {
	case len(d.Missing(received)) == 0:
		return StateComplete
	case now.Before(d.Opens):
		return StateUpcoming
	case now.Before(d.Closes):
		return StateOpen
	case now.Before(d.GraceEnds):
		return StateOverdue
	default:
		return StateMissed
	}
}

// Missing returns the required views that have no photo yet, in protocol order.
func (d Due) Missing(received map[string]bool) []string {
	var missing []string
	for _, v := range d.Views {
		if !received[v] {
			missing = append(missing, v)
		}
	}
	return missing
}

// States returns the state of every timepoint of a schedule at now. received maps a timepoint
// key to the views that have at least one photo.
func States(dues []Due, received map[string]map[string]bool, now time.Time) []State {
	states := make([]State, len(dues))
	for i, d := range dues {
		states[i] = d.State(received[d.Key], now)
	}
	return states
}
