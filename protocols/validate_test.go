package protocols

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

func TestShippedProtocolsValidate(t *testing.T) {
	t.Parallel()
	names, err := fs.Glob(embedded, "shipped/*.yaml")
	if err != nil || len(names) < 3 {
		t.Fatalf("shipped files: %v, %v", names, err)
	}
	for _, name := range names {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			data, err := embedded.ReadFile(name)
			if err != nil {
				t.Fatal(err)
			}
			p, err := ValidateFile(name, data)
			if err != nil {
				t.Fatalf("shipped protocol does not validate:\n%v", err)
			}
			// The file name carries id and version, so a new version is a new file beside the old.
			if want := "shipped/" + p.ID + ".v" + strconv.Itoa(p.Version) + ".yaml"; name != want {
				t.Errorf("file %s holds %s version %d; name it %s", name, p.ID, p.Version, want)
			}
			for _, tp := range p.Timepoints {
				for _, lang := range Langs() {
					if tp.Label[lang] == "" || tp.Aftercare[lang] == "" {
						t.Errorf("%s: %s text missing", tp.Key, lang)
					}
				}
				if strings.ContainsAny(tp.Aftercare[ZH], "\u00a0") || strings.Contains(tp.Aftercare[ZH], "  ") {
					t.Errorf("%s: stray spacing in the Chinese aftercare (a wrapped line in a folded block?)", tp.Key)
				}
			}
		})
	}
}

func TestShippedContent(t *testing.T) {
	t.Parallel()
	r := mustRegistry(t, "")
	want := map[string][]string{
		"pws-hemoporfin-pdt": {"baseline", "after-treatment", "day-1", "day-4", "week-1", "week-2", "week-4", "week-8"},
		"pdl-vascular-laser": {"baseline", "day-1", "week-1", "week-4", "week-8"},
		"surgical-wound":     {"day-2", "day-7", "day-14", "day-30", "day-90"},
	}
	for id, keys := range want {
		p, err := r.Latest(id)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, tp := range p.Timepoints {
			got = append(got, tp.Key)
		}
		if strings.Join(got, " ") != strings.Join(keys, " ") {
			t.Errorf("%s timepoints = %v, want %v", id, got, keys)
		}
	}
	pws, _ := r.Latest("pws-hemoporfin-pdt")
	if tp, _ := pws.Timepoint("baseline"); tp.Who != Clinic || !strings.Contains(strings.Join(tp.Views, " "), "left-oblique") {
		t.Errorf("pws baseline = %+v, want clinic photos with oblique views", tp)
	}
	if tp, _ := pws.Timepoint("after-treatment"); tp.Offset != (Offset{0, Hours}) {
		t.Errorf("pws after-treatment offset = %v, want +0h", tp.Offset)
	}
	for _, scale := range []string{"hemoporfin-4", "quartile-4"} {
		s, err := r.Scale(scale)
		if err != nil || len(s.Levels) != 4 {
			t.Fatalf("scale %s: %v, %v", scale, s, err)
		}
	}
	hemo, _ := r.Scale("hemoporfin-4")
	if got := hemo.Levels[0].Label[EN] + " | " + hemo.Levels[3].Label[EN]; !strings.Contains(got, "<20 %") || !strings.Contains(got, "≥90 %") {
		t.Errorf("hemoporfin-4 labels = %s", got)
	}
}

// Each file in testdata/invalid breaks one rule (many-problems.yaml several); the test pins the
// line and field of every expected problem and that nothing else is reported.
func TestInvalidFiles(t *testing.T) {
	t.Parallel()
	type want struct {
		line  int
		field string
		text  string // part of the message
	}
	cases := map[string][]want{
		"unknown-field.yaml": {
			{12, "colour", "unknown field"},
			{23, "timepoints[0].remnd", "unknown field"},
		},
		"duplicate-timepoint-key.yaml": {{22, "timepoints[1].key", `duplicate timepoint key "day-1"`}},
		"overlapping-windows.yaml":     {{25, "timepoints[1].before", "overlaps the window +1d to +6d"}},
		"negative-window.yaml":         {{25, "timepoints[1].before", "must not be negative"}},
		"missing-translation.yaml": {
			{4, "title.zh-CN", "missing Simplified Chinese"},
			{19, "timepoints[0].aftercare.zh-CN", "is empty"},
			{22, "timepoints[1].label.zh", "unknown language"},
			{22, "timepoints[1].label.zh-CN", "missing Simplified Chinese"},
		},
		"unknown-scale.yaml":        {{11, "scale", `unknown grading scale "percent-10"`}},
		"offsets-out-of-order.yaml": {{24, "timepoints[1].offset", "is not after +8d"}},
		"unknown-view.yaml":         {{28, "timepoints[1].views[1]", `unknown view "frontal"`}},
		"bad-who.yaml":              {{18, "timepoints[0].who", `must be clinic or family, not "parent"`}},
		"missing-id-version.yaml": {
			{2, "id", "missing"},
			{2, "version", "missing"},
		},
		"bad-version.yaml":          {{3, "version", "must be 1 or more"}},
		"window-unit-mismatch.yaml": {{26, "timepoints[1].after", "a window uses its offset's unit"}},
		"offset-without-unit.yaml":  {{15, "timepoints[0].offset", "needs a unit"}},
		"syntax-error.yaml":         {{20, "", "invalid YAML"}},
		"duplicate-yaml-key.yaml":   {{4, "", `"version" already defined`}},
		"missing-timepoint-fields.yaml": {
			{22, "timepoints[1].label", "missing"},
			{22, "timepoints[1].offset", "missing"},
			{22, "timepoints[1].before", "missing"},
			{22, "timepoints[1].after", "missing"},
			{22, "timepoints[1].who", "missing"},
			{22, "timepoints[1].views", "missing"},
			{22, "timepoints[1].aftercare", "missing"},
			{22, "timepoints[1].remind", "missing"},
		},
		"many-problems.yaml": {
			{2, "id", "lower-case"},
			{11, "scale", "unknown grading scale"},
			{18, "timepoints[0].who", "must be clinic or family"},
			{19, "timepoints[0].views[0]", `unknown view "top"`},
			{21, "timepoints[0].remind", `must be true or false, not "yes"`},
		},
		"two-documents.yaml": {{5, "", "one per file"}},
		"not-a-mapping.yaml": {{2, "", "must be a mapping"}},
		"empty.yaml":         {{0, "", "file is empty"}},
	}
	files, err := filepath.Glob("testdata/invalid/*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, file := range files {
		if _, ok := cases[filepath.Base(file)]; !ok {
			t.Errorf("%s has no expectations in TestInvalidFiles", file)
		}
	}
	for name, wants := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			file := filepath.Join("testdata", "invalid", name)
			data, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			p, err := ValidateFile(file, data)
			if p != nil {
				t.Errorf("got a protocol from an invalid file")
			}
			var ve *ValidationError
			if !errors.As(err, &ve) {
				t.Fatalf("error %v (%T), want *ValidationError", err, err)
			}
			if len(ve.Problems) != len(wants) {
				t.Errorf("got %d problems, want %d:\n%v", len(ve.Problems), len(wants), err)
			}
			lines := strings.Split(err.Error(), "\n")
			for i, w := range wants {
				if i >= len(ve.Problems) {
					break
				}
				got := ve.Problems[i]
				if got.File != file || got.Line != w.line || got.Field != w.field || !strings.Contains(got.Message, w.text) {
					t.Errorf("problem %d = %+v, want line %d field %q containing %q", i, got, w.line, w.field, w.text)
				}
				// The message a person reads names file, line and field.
				prefix := file
				if w.line > 0 {
					prefix += ":" + strconv.Itoa(w.line)
				}
				if w.field != "" {
					prefix += ": " + w.field
				}
				if i < len(lines) && !strings.HasPrefix(lines[i], prefix+": ") {
					t.Errorf("line %d of the error = %q, want prefix %q", i, lines[i], prefix+": ")
				}
			}
		})
	}
}

func TestValidFile(t *testing.T) {
	t.Parallel()
	data, err := os.ReadFile("testdata/valid/minimal.yaml")
	if err != nil {
		t.Fatal(err)
	}
	p, err := ValidateFile("minimal.yaml", data)
	if err != nil {
		t.Fatal(err)
	}
	if p.ID != "test-minimal" || p.Version != 1 || p.Grace != defaultGrace || len(p.Timepoints) != 2 {
		t.Errorf("decoded %+v", p)
	}
	tp := p.Timepoints[1]
	if tp.Offset != (Offset{7, Days}) || tp.Before != 1 || tp.After != 1 || tp.Who != Family || !tp.Remind ||
		strings.Join(tp.Views, ",") != "front,close-up" || tp.Label.In(ZH) != "第 1 周" || tp.Aftercare.In("fr") != "Keep it clean." {
		t.Errorf("week-1 = %+v", tp)
	}
}

// The checks that compare timepoints, on every mix of hour and day offsets.
func TestWindowsApart(t *testing.T) {
	t.Parallel()
	tp := func(n int, u Unit, before, after int) Timepoint {
		return Timepoint{Offset: Offset{n, u}, Before: before, After: after}
	}
	cases := []struct {
		name string
		a, b Timepoint
		want bool
	}{
		{"days touching", tp(1, Days, 0, 0), tp(2, Days, 0, 0), true},
		{"days sharing a day", tp(1, Days, 0, 1), tp(3, Days, 1, 0), false},
		{"hours touching", tp(-1, Hours, 23, 1), tp(0, Hours, 0, 2), true},
		{"hours overlapping", tp(-1, Hours, 23, 2), tp(0, Hours, 0, 2), false},
		// +0h is always due on the procedure's date, so day 1 can open at midnight.
		{"same-day hour then day 1", tp(0, Hours, 0, 2), tp(1, Days, 0, 0), true},
		// +2h can be due on the next date (a 23:30 procedure), which day 1 starts with.
		{"late hour then day 1", tp(2, Hours, 0, 0), tp(1, Days, 0, 0), false},
		{"late hour then day 2", tp(2, Hours, 0, 0), tp(2, Days, 0, 0), true},
		// -1h can be due on the eve; a day -1 window would share that date.
		{"day -1 then -1h", tp(-1, Days, 0, 0), tp(-1, Hours, 0, 1), false},
		{"day -2 then -1h", tp(-2, Days, 0, 0), tp(-1, Hours, 0, 1), true},
		{"day 0 then +24h", tp(0, Days, 0, 0), tp(24, Hours, 0, 0), false},
		{"day 0 then +26h", tp(0, Days, 0, 0), tp(26, Hours, 0, 0), true},
	}
	for _, c := range cases {
		if got := windowsApart(c.a, c.b); got != c.want {
			t.Errorf("%s: windowsApart = %v, want %v", c.name, got, c.want)
		}
	}
}

func TestParseAmount(t *testing.T) {
	t.Parallel()
	for s, want := range map[string]Offset{"7d": {7, Days}, "+7d": {7, Days}, "-1h": {-1, Hours}, "0h": {0, Hours}, "3650d": {3650, Days}} {
		if got, err := parseAmount(s); err != nil || got != want {
			t.Errorf("parseAmount(%q) = %v, %v; want %v", s, got, err, want)
		}
	}
	for _, s := range []string{"", "7", "7 d", "1w", "d", "7D", "1.5d", "3651d", "241h", "--1d", "7dd"} {
		if _, err := parseAmount(s); err == nil {
			t.Errorf("parseAmount(%q) succeeded", s)
		}
	}
}

func TestTooDeep(t *testing.T) {
	t.Parallel()
	deep := "a: " + strings.Repeat("[", 100) + strings.Repeat("]", 100) + "\n"
	if _, err := ValidateFile("deep.yaml", []byte(deep)); err == nil || !strings.Contains(err.Error(), "nested more than") {
		t.Errorf("deep nesting: %v", err)
	}
	big := strings.Repeat("# padding\n", maxFileSize/10+1)
	if _, err := ValidateFile("big.yaml", []byte(big)); err == nil || !strings.Contains(err.Error(), "larger than") {
		t.Errorf("big file: %v", err)
	}
}

// The full example in README.md is a valid protocol, so the documentation cannot drift.
func TestReadmeExample(t *testing.T) {
	t.Parallel()
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(readme), "```yaml\n")
	example, _, ok2 := strings.Cut(rest, "```")
	if !ok || !ok2 {
		t.Fatal("README.md has no yaml example")
	}
	p, err := ValidateFile("README.md example", []byte(example))
	if err != nil {
		t.Fatalf("the README example does not validate:\n%v", err)
	}
	if len(p.Timepoints) != 3 || p.Grace != 3 {
		t.Errorf("example decoded as %+v", p)
	}
}
