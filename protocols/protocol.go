package protocols

import (
	"fmt"
	"regexp"
	"strconv"
)

// Who takes a timepoint's photos.
const (
	Clinic = "clinic" // at a visit, by the clinic team
	Family = "family" // at home, by a parent or the patient, through the secure link
)

// Protocol is one version of a follow-up protocol. Values handed out by a Registry are shared:
// treat them as read-only.
type Protocol struct {
	ID           string      `json:"id"`
	Version      int         `json:"version"`
	Title        Text        `json:"title"`
	Instructions Text        `json:"instructions"` // general guidance for the whole follow-up
	Kinds        []string    `json:"kinds"`        // procedure kinds it applies to
	Scale        string      `json:"scale"`        // id of the grading scale
	Grace        int         `json:"grace_days"`   // days a closed window stays overdue before it is missed
	Timepoints   []Timepoint `json:"timepoints"`   // in time order
	Source       string      `json:"-"`            // file it was read from, for messages

	versionLine int // where the version is written, for registry conflicts
}

// Timepoint is one step of a protocol: when photos are due, which views, and the care that goes
// with it.
type Timepoint struct {
	Key       string   `json:"key"`
	Label     Text     `json:"label"`
	Offset    Offset   `json:"offset"`
	Before    int      `json:"before"` // window length before the due time, in Offset.Unit
	After     int      `json:"after"`  // window length after the due time, in Offset.Unit
	Who       string   `json:"who"`    // Clinic or Family
	Views     []string `json:"views"`
	Aftercare Text     `json:"aftercare"`
	Remind    bool     `json:"remind"`
}

// Unit is the unit of an offset and its window.
type Unit string

// Day offsets count calendar days in the clinic's zone; hour offsets are exact durations.
const (
	Days  Unit = "d"
	Hours Unit = "h"
)

// Offset is the time from the procedure to a timepoint, written "+7d", "-1h" or "0h" in files.
type Offset struct {
	N    int
	Unit Unit
}

// String formats the offset with its sign and unit, as in "+7d" or "-1h".
func (o Offset) String() string { return fmt.Sprintf("%+d%s", o.N, o.Unit) }

// MarshalText makes an Offset appear as "+7d" in JSON.
func (o Offset) MarshalText() ([]byte, error) { return []byte(o.String()), nil }

// nominalHours orders offsets of both units on one line (a day counts 24 hours).
func (o Offset) nominalHours() int {
	if o.Unit == Days {
		return o.N * 24
	}
	return o.N
}

// Limits keep arithmetic far from overflow and catch the wildest typos (7000d for 70d).
const (
	maxDays  = 3650
	maxHours = 240
)

var amountPattern = regexp.MustCompile(`^([+-]?)([0-9]{1,6})([dh])$`)

// parseAmount parses "7d", "+7d", "-1h". The unit is required: a bare number is a mistake
// waiting to happen (days or hours?).
func parseAmount(s string) (Offset, error) {
	m := amountPattern.FindStringSubmatch(s)
	if m == nil {
		if _, err := strconv.Atoi(s); err == nil {
			return Offset{}, fmt.Errorf("%q needs a unit: write %sd (days) or %sh (hours)", s, s, s)
		}
		return Offset{}, fmt.Errorf("%q is not an offset: write a whole number of days or hours such as 7d, -1h or 0h", s)
	}
	n, _ := strconv.Atoi(m[2])
	if m[1] == "-" {
		n = -n
	}
	o := Offset{N: n, Unit: Unit(m[3])}
	limit := maxDays
	if o.Unit == Hours {
		limit = maxHours
	}
	if n > limit || n < -limit {
		return Offset{}, fmt.Errorf("%q is too far from the procedure (at most %d%s)", s, limit, o.Unit)
	}
	return o, nil
}

// Scale is a grading scale for the response to treatment.
type Scale struct {
	ID     string  `json:"id"`
	Title  Text    `json:"title"`
	Levels []Level `json:"levels"` // worst first
}

// Level is one grade of a scale. Key and Value are stable: assessments store them.
type Level struct {
	Key   string `json:"key"`
	Value int    `json:"value"`
	Label Text   `json:"label"`
}

// Level returns the level with the given key.
func (s *Scale) Level(key string) (Level, bool) {
	for _, l := range s.Levels {
		if l.Key == key {
			return l, true
		}
	}
	return Level{}, false
}

// Timepoint returns the timepoint with the given key.
func (p *Protocol) Timepoint(key string) (Timepoint, bool) {
	for _, tp := range p.Timepoints {
		if tp.Key == key {
			return tp, true
		}
	}
	return Timepoint{}, false
}

// slugPattern is the shape of ids, keys and kinds: they travel in URLs and form fields.
var slugPattern = regexp.MustCompile(`^[a-z0-9]+(-[a-z0-9]+)*$`)
