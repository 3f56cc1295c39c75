package protocols

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"
)

func TestDate(t *testing.T) {
	t.Parallel()
	d := Date{2024, time.February, 28}
	if got := d.AddDays(1).String(); got != "2024-02-29" {
		t.Errorf("leap day: %s", got)
	}
	if got := d.AddDays(366).String(); got != "2025-02-28" {
		t.Errorf("a year on: %s", got)
	}
	if got := d.AddDays(-59).String(); got != "2023-12-31" {
		t.Errorf("back across a year: %s", got)
	}
	if got := (Date{2025, time.March, 30}).DaysSince(Date{2025, time.March, 1}); got != 29 {
		t.Errorf("DaysSince = %d", got)
	}
	if got := (Date{2025, time.March, 1}).DaysSince(Date{2025, time.March, 30}); got != -29 {
		t.Errorf("DaysSince backwards = %d", got)
	}
	a, b := Date{2025, time.January, 31}, Date{2025, time.February, 1}
	if !a.Before(b) || !b.After(a) || a.Compare(b) != -1 || b.Compare(a) != 1 || a.Compare(a) != 0 || a.After(a) {
		t.Errorf("ordering of %s and %s", a, b)
	}
	if (Date{}).IsZero() != true || a.IsZero() {
		t.Errorf("IsZero")
	}
	shanghai := mustLocation(t, "Asia/Shanghai")
	if got := DateOf(mustTime(t, "2025-05-31T16:30:00Z"), shanghai); got != (Date{2025, time.June, 1}) {
		t.Errorf("DateOf in Shanghai = %s", got)
	}
}

func TestDateText(t *testing.T) {
	t.Parallel()
	b, err := json.Marshal(struct {
		D Date `json:"d"`
	}{Date{2025, time.March, 9}})
	if err != nil || string(b) != `{"d":"2025-03-09"}` {
		t.Fatalf("json: %s, %v", b, err)
	}
	var back struct {
		D Date `json:"d"`
	}
	if err := json.Unmarshal(b, &back); err != nil || back.D != (Date{2025, time.March, 9}) {
		t.Errorf("round trip: %v, %v", back.D, err)
	}
	for _, bad := range []string{"2025-3-9", "2025-02-30", "", "09/03/2025"} {
		if _, err := ParseDate(bad); err == nil {
			t.Errorf("ParseDate(%q) succeeded", bad)
		}
	}
}

func TestDateStart(t *testing.T) {
	t.Parallel()
	cases := []struct{ zone, date, want string }{
		{"America/New_York", "2025-03-09", "2025-03-09T00:00:00-05:00"},
		{"America/New_York", "2025-11-02", "2025-11-02T00:00:00-04:00"},
		{"Europe/Berlin", "2025-03-30", "2025-03-30T00:00:00+01:00"},
		{"Asia/Shanghai", "2025-06-01", "2025-06-01T00:00:00+08:00"},
		// Midnight does not exist where the clocks jump at midnight: the day starts at 01:00.
		{"America/Havana", "2025-03-09", "2025-03-09T01:00:00-04:00"},
		{"America/Santiago", "2025-09-07", "2025-09-07T01:00:00-03:00"},
	}
	for _, c := range cases {
		loc := mustLocation(t, c.zone)
		d, err := ParseDate(c.date)
		if err != nil {
			t.Fatal(err)
		}
		got := d.Start(loc)
		if want := mustTime(t, c.want); !got.Equal(want) {
			t.Errorf("%s %s starts at %s, want %s", c.zone, c.date, got.In(loc).Format(time.RFC3339), c.want)
		}
		if DateOf(got, loc) != d || DateOf(got.Add(-time.Nanosecond), loc) != d.AddDays(-1) {
			t.Errorf("%s %s: %s is not the first instant of the day", c.zone, c.date, got.In(loc))
		}
	}
}

// String writes what fmt's %04d-%02d-%02d writes, inside the years it formats by hand and out.
func TestDateString(t *testing.T) {
	t.Parallel()
	for _, d := range []Date{{}, {1, time.January, 1}, {987, time.October, 9}, {2026, time.December, 31}, {9999, time.December, 31},
		{10000, time.January, 1}, {-1, time.March, 5}, {2026, 13, 40}, {2026, 100, 1}, {2026, 1, 100}, {2026, -1, -1}} {
		if got, want := d.String(), fmt.Sprintf("%04d-%02d-%02d", d.Year, d.Month, d.Day); got != want {
			t.Errorf("%#v.String() = %q, want %q", d, got, want)
		}
	}
}
