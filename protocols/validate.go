package protocols

import (
	"fmt"
	"maps"
	"slices"
	"strings"
)

// defaultGrace is how many whole days a closed window stays overdue, when a protocol does not say.
const defaultGrace = 3

// maxGrace keeps "overdue" meaning "recently due".
const maxGrace = 60

// ValidateFile reads and checks one protocol file against the shipped grading scales. name is used
// in messages only. On failure the error is a *ValidationError listing every problem of the file,
// one "file:line: field: message" per line.
func ValidateFile(name string, data []byte) (*Protocol, error) {
	scales, err := shippedScales()
	if err != nil {
		return nil, err
	}
	return decodeProtocol(name, data, scales)
}

func decodeProtocol(name string, data []byte, scales map[string]*Scale) (*Protocol, error) {
	d := newDecoder(name)
	body := d.parse(data)
	if body == nil {
		return nil, d.err()
	}
	o, ok := d.object(entry{line: max(nodeLine(body), 1), node: body}, "",
		"id", "version", "title", "instructions", "kinds", "scale", "grace", "timepoints")
	if !ok {
		return nil, d.err()
	}
	p := &Protocol{Source: name, Grace: defaultGrace}
	if e, ok := d.get(o, "id"); ok {
		p.ID, _ = d.slug(e, "id", "id")
	}
	if e, ok := d.get(o, "version"); ok {
		if v, ok := d.integer(e, "version"); ok {
			if v < 1 {
				d.problem(e.line, "version", "must be 1 or more")
			} else {
				p.Version, p.versionLine = v, e.line
			}
		}
	}
	if e, ok := d.get(o, "title"); ok {
		p.Title = d.text(e, "title")
	}
	if e, ok := d.get(o, "instructions"); ok {
		p.Instructions = d.text(e, "instructions")
	}
	if e, ok := d.get(o, "kinds"); ok {
		p.Kinds = d.slugList(e, "kinds", "kind")
	}
	if e, ok := d.get(o, "scale"); ok {
		if id, ok := d.str(e, "scale"); ok {
			if _, known := scales[id]; known {
				p.Scale = id
			} else {
				d.problem(e.line, "scale", "unknown grading scale %q; known scales are %s", id, strings.Join(slices.Sorted(maps.Keys(scales)), ", "))
			}
		}
	}
	if e, ok := o.fields["grace"]; ok {
		if s, ok := d.str(e, "grace"); ok {
			g, err := parseAmount(s)
			switch {
			case err != nil:
				d.problem(e.line, "grace", "%v", err)
			case g.Unit != Days:
				d.problem(e.line, "grace", "must be in whole days, such as 3d")
			case g.N < 0 || g.N > maxGrace:
				d.problem(e.line, "grace", "must be between 0d and %dd", maxGrace)
			default:
				p.Grace = g.N
			}
		}
	}
	var usable []bool // timepoints whose offset and window decoded, for the checks across them
	if e, ok := d.get(o, "timepoints"); ok {
		items, _ := d.list(e, "timepoints")
		if len(items) == 0 {
			d.problem(e.line, "timepoints", "needs at least one timepoint")
		}
		for i, it := range items {
			tp, ok := d.timepoint(it, fmt.Sprintf("timepoints[%d]", i))
			p.Timepoints = append(p.Timepoints, tp)
			usable = append(usable, ok)
		}
	}
	checkTimepoints(p.Timepoints, usable, func(field, msg string) {
		d.problem(d.lineOf(field), field, "%s", msg)
	})
	if err := d.err(); err != nil {
		return nil, err
	}
	return p, nil
}

func (d *decoder) slugList(e entry, field, what string) []string {
	items, ok := d.list(e, field)
	if !ok {
		return nil
	}
	if len(items) == 0 {
		d.problem(e.line, field, "needs at least one %s", what)
	}
	var out []string
	for i, it := range items {
		f := fmt.Sprintf("%s[%d]", field, i)
		s, ok := d.slug(it, f, what)
		if !ok {
			continue
		}
		if slices.Contains(out, s) {
			d.problem(it.line, f, "%s %q is listed twice", what, s)
			continue
		}
		out = append(out, s)
	}
	return out
}

// timepoint decodes one timepoint; ok reports whether its offset and window are usable for the
// checks that compare timepoints.
func (d *decoder) timepoint(e entry, path string) (tp Timepoint, ok bool) {
	o, isObj := d.object(e, path, "key", "label", "offset", "before", "after", "who", "views", "aftercare", "remind")
	if !isObj {
		return tp, false
	}
	d.lines[path] = e.line
	if f, ok := d.get(o, "key"); ok {
		tp.Key, _ = d.slug(f, join(path, "key"), "key")
	}
	if f, ok := d.get(o, "label"); ok {
		tp.Label = d.text(f, join(path, "label"))
	}
	offsetOK := false
	if f, ok := d.get(o, "offset"); ok {
		if s, ok := d.str(f, join(path, "offset")); ok {
			off, err := parseAmount(s)
			if err != nil {
				d.problem(f.line, join(path, "offset"), "%v", err)
			} else {
				tp.Offset, offsetOK = off, true
			}
		}
	}
	timeOK := offsetOK
	window := func(name string) int {
		field := join(path, name)
		f, ok := d.get(o, name)
		if !ok {
			timeOK = false
			return 0
		}
		s, ok := d.str(f, field)
		if !ok {
			timeOK = false
			return 0
		}
		w, err := parseAmount(s)
		switch {
		case err != nil:
			d.problem(f.line, field, "%v", err)
		case w.N < 0:
			d.problem(f.line, field, "window must not be negative (%s)", w)
		case offsetOK && tp.Offset.Unit != w.Unit:
			d.problem(f.line, field, "%s is in %s but the offset %s is in %s; a window uses its offset's unit",
				s, unitName(w.Unit), tp.Offset, unitName(tp.Offset.Unit))
		default:
			return w.N
		}
		timeOK = false
		return 0
	}
	tp.Before = window("before")
	tp.After = window("after")
	if f, ok := d.get(o, "who"); ok {
		if s, ok := d.str(f, join(path, "who")); ok {
			if s == Clinic || s == Family {
				tp.Who = s
			} else {
				d.problem(f.line, join(path, "who"), "must be %s or %s, not %q", Clinic, Family, s)
			}
		}
	}
	if f, ok := d.get(o, "views"); ok {
		tp.Views = d.views(f, join(path, "views"))
	}
	if f, ok := d.get(o, "aftercare"); ok {
		tp.Aftercare = d.text(f, join(path, "aftercare"))
	}
	if f, ok := d.get(o, "remind"); ok {
		tp.Remind, _ = d.boolean(f, join(path, "remind"))
	}
	return tp, timeOK
}

func (d *decoder) views(e entry, field string) []string {
	items, ok := d.list(e, field)
	if !ok {
		return nil
	}
	if len(items) == 0 {
		d.problem(e.line, field, "needs at least one view")
	}
	var out []string
	for i, it := range items {
		f := fmt.Sprintf("%s[%d]", field, i)
		s, ok := d.str(it, f)
		if !ok {
			continue
		}
		if _, known := LookupView(s); !known {
			d.problem(it.line, f, "unknown view %q; known views are %s", s, strings.Join(viewNames(), ", "))
			continue
		}
		if slices.Contains(out, s) {
			d.problem(it.line, f, "view %q is listed twice", s)
			continue
		}
		out = append(out, s)
	}
	return out
}

func unitName(u Unit) string {
	if u == Hours {
		return "hours"
	}
	return "days"
}

// checkTimepoints applies the rules that compare timepoints: unique keys, offsets in strictly
// increasing order and windows that never overlap, whatever the procedure time and time zone.
// usable marks the timepoints whose offset and window decoded (nil: all).
func checkTimepoints(tps []Timepoint, usable []bool, report func(field, msg string)) {
	firstKey := map[string]int{}
	for i, tp := range tps {
		if tp.Key == "" {
			continue
		}
		if j, dup := firstKey[tp.Key]; dup {
			report(fmt.Sprintf("timepoints[%d].key", i), fmt.Sprintf("duplicate timepoint key %q (also timepoints[%d])", tp.Key, j))
			continue
		}
		firstKey[tp.Key] = i
	}
	prev := -1
	for i, tp := range tps {
		if usable != nil && !usable[i] {
			continue
		}
		if prev >= 0 {
			a := tps[prev]
			if tp.Offset.nominalHours() <= a.Offset.nominalHours() {
				report(fmt.Sprintf("timepoints[%d].offset", i), fmt.Sprintf(
					"offset %s is not after %s of timepoints[%d] %q; list timepoints in time order, one offset each",
					tp.Offset, a.Offset, prev, a.Key))
			} else if !windowsApart(a, tp) {
				report(fmt.Sprintf("timepoints[%d].before", i), fmt.Sprintf(
					"window %s overlaps the window %s of timepoints[%d] %q; shorten one of them",
					tp.windowText(), a.windowText(), prev, a.Key))
			}
		}
		prev = i
	}
}

// windowsApart reports whether a's window always closes before b's opens. Two day windows are
// compared day by day. An hour window never leaves the local date it is due on, but that date
// depends on the time of day of the procedure, so a mixed pair is compared against every date the
// hour window can fall on.
func windowsApart(a, b Timepoint) bool {
	if a.Offset.Unit == Hours && b.Offset.Unit == Hours {
		return a.Offset.N+a.After <= b.Offset.N-b.Before
	}
	_, aLast := a.dayRange()
	bFirst, _ := b.dayRange()
	return aLast < bFirst
}

// dayRange returns the first and last local dates, in days after the procedure's date, that the
// window can touch.
func (tp Timepoint) dayRange() (first, last int) {
	if tp.Offset.Unit == Days {
		return tp.Offset.N - tp.Before, tp.Offset.N + tp.After
	}
	return hourDates(tp.Offset.N)
}

// hourDates bounds the local date of procedure+h hours, in days after the procedure's date, over
// every time of day the procedure can have. Local days are taken to last between 23 and 25 hours,
// which holds wherever clocks move by at most an hour at a time (every zone in use today).
func hourDates(h int) (first, last int) {
	ceilDiv := func(a, b int) int { return (a + b - 1) / b }
	if h >= 0 {
		return h / 25, ceilDiv(h, 23)
	}
	u := -h
	return -ceilDiv(u, 23), -(u / 25)
}

// windowText describes a window relative to the procedure, for messages and tables.
func (tp Timepoint) windowText() string {
	u := tp.Offset.Unit
	return fmt.Sprintf("%+d%s to %+d%s", tp.Offset.N-tp.Before, u, tp.Offset.N+tp.After, u)
}

// decodeScale reads one grading scale file.
func decodeScale(name string, data []byte) (*Scale, error) {
	d := newDecoder(name)
	body := d.parse(data)
	if body == nil {
		return nil, d.err()
	}
	o, ok := d.object(entry{line: max(nodeLine(body), 1), node: body}, "", "id", "title", "levels")
	if !ok {
		return nil, d.err()
	}
	s := &Scale{}
	if e, ok := d.get(o, "id"); ok {
		s.ID, _ = d.slug(e, "id", "id")
	}
	if e, ok := d.get(o, "title"); ok {
		s.Title = d.text(e, "title")
	}
	if e, ok := d.get(o, "levels"); ok {
		items, _ := d.list(e, "levels")
		if len(items) < 2 {
			d.problem(e.line, "levels", "a scale needs at least two levels")
		}
		for i, it := range items {
			path := fmt.Sprintf("levels[%d]", i)
			lo, ok := d.object(it, path, "key", "value", "label")
			if !ok {
				continue
			}
			var l Level
			if f, ok := d.get(lo, "key"); ok {
				if k, ok := d.slug(f, join(path, "key"), "key"); ok {
					if _, dup := s.Level(k); dup {
						d.problem(f.line, join(path, "key"), "duplicate level key %q", k)
					}
					l.Key = k
				}
			}
			if f, ok := d.get(lo, "value"); ok {
				if v, ok := d.integer(f, join(path, "value")); ok {
					if n := len(s.Levels); n > 0 && v <= s.Levels[n-1].Value {
						d.problem(f.line, join(path, "value"), "values must increase from the worst level to the best")
					}
					l.Value = v
				}
			}
			if f, ok := d.get(lo, "label"); ok {
				l.Label = d.text(f, join(path, "label"))
			}
			s.Levels = append(s.Levels, l)
		}
	}
	if err := d.err(); err != nil {
		return nil, err
	}
	return s, nil
}
