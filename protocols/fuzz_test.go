package protocols

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// FuzzValidateFile feeds the loader arbitrary bytes: it must never panic, and it either returns a
// protocol that can be scheduled or a *ValidationError whose every line names the file.
func FuzzValidateFile(f *testing.F) {
	seeds, _ := filepath.Glob("testdata/*/*.y*ml")
	for _, name := range seeds {
		data, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	shipped, _ := fs.Glob(embedded, "shipped/*.yaml")
	for _, name := range shipped {
		data, _ := embedded.ReadFile(name)
		f.Add(data)
	}
	f.Add([]byte("id: [[[{"))
	f.Add([]byte("timepoints:\n  - key: a\n    offset: &x 1d\n    before: *x\n"))
	loc, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		f.Fatal(err)
	}
	performed := time.Date(2025, 3, 29, 23, 30, 0, 0, loc)

	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := ValidateFile("fuzz.yaml", data)
		if err == nil {
			if p == nil {
				t.Fatal("no protocol and no error")
			}
			dues := p.Schedule(performed, loc)
			for i := 1; i < len(dues); i++ {
				if dues[i].Opens.Before(dues[i-1].Closes) {
					t.Fatalf("accepted a protocol with overlapping windows: %+v", dues)
				}
			}
			return
		}
		var ve *ValidationError
		if !errors.As(err, &ve) || len(ve.Problems) == 0 {
			t.Fatalf("error %v (%T), want a *ValidationError with problems", err, err)
		}
		for _, line := range strings.Split(err.Error(), "\n") {
			if !strings.HasPrefix(line, "fuzz.yaml") {
				t.Fatalf("problem line %q does not name the file", line)
			}
		}
	})
}
