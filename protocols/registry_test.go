package protocols

import (
	"errors"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

func TestLoadRegistryShipped(t *testing.T) {
	t.Parallel()
	r := mustRegistry(t, "")
	var ids []string
	for _, p := range r.Protocols() {
		ids = append(ids, p.ID+"@"+strconv.Itoa(p.Version))
	}
	if got, want := strings.Join(ids, " "), "pdl-vascular-laser@1 pws-hemoporfin-pdt@1 surgical-wound@1"; got != want {
		t.Errorf("Protocols() = %s, want %s", got, want)
	}
	var scales []string
	for _, s := range r.Scales() {
		scales = append(scales, s.ID)
	}
	if got, want := strings.Join(scales, " "), "hemoporfin-4 quartile-4 wound-healing-4"; got != want {
		t.Errorf("Scales() = %s, want %s", got, want)
	}
	if _, err := r.Get("pws-hemoporfin-pdt", 2); !errors.Is(err, ErrNotFound) {
		t.Errorf("Get of a missing version: %v, want ErrNotFound", err)
	}
	if _, err := r.Latest("nope"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Latest of a missing id: %v, want ErrNotFound", err)
	}
	if _, err := r.Scale("nope"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Scale of a missing id: %v, want ErrNotFound", err)
	}
}

// A clinic folder adds its own protocols and newer versions; the old version stays reachable so
// procedures enrolled with it keep their schedule.
func TestLoadRegistryClinicDir(t *testing.T) {
	t.Parallel()
	r := mustRegistry(t, filepath.Join("testdata", "clinic"))
	v1, err := r.Get("pws-hemoporfin-pdt", 1)
	if err != nil {
		t.Fatal(err)
	}
	v2, err := r.Get("pws-hemoporfin-pdt", 2)
	if err != nil {
		t.Fatal(err)
	}
	latest := mustProtocol(t, r, "pws-hemoporfin-pdt")
	if latest != v2 || len(v1.Timepoints) != 8 || len(v2.Timepoints) != 9 {
		t.Errorf("latest v%d; v1 has %d timepoints, v2 %d", latest.Version, len(v1.Timepoints), len(v2.Timepoints))
	}
	if v1.Source != "shipped/pws-hemoporfin-pdt.v1.yaml" || v2.Source != filepath.Join("testdata", "clinic", "pws-hemoporfin-pdt.v2.yaml") {
		t.Errorf("sources %q, %q", v1.Source, v2.Source)
	}
	if _, err := r.Latest("clinic-scar-check"); err != nil {
		t.Errorf(".yml file not loaded: %v", err)
	}
	if _, err := r.Latest("test-minimal"); err == nil {
		t.Errorf("a hidden file was loaded")
	}
	if n := len(r.Protocols()); n != 5 {
		t.Errorf("%d protocol versions, want 5", n)
	}
}

func TestLoadRegistryConflict(t *testing.T) {
	t.Parallel()
	dir := filepath.Join("testdata", "clinic-conflict")
	_, err := LoadRegistry(dir)
	var ve *ValidationError
	if !errors.As(err, &ve) {
		t.Fatalf("error %v, want *ValidationError", err)
	}
	// Problems of every file come together, in file order.
	want := []string{
		filepath.Join(dir, "broken.yaml") + `:19: timepoints[0].views[0]: unknown view "font"`,
		filepath.Join(dir, "surgical-wound.yaml") + ":4: version: protocol surgical-wound version 1 is already defined in shipped/surgical-wound.v1.yaml",
	}
	lines := strings.Split(err.Error(), "\n")
	if len(lines) != len(want) {
		t.Fatalf("got %d problems, want %d:\n%v", len(lines), len(want), err)
	}
	for i := range want {
		if !strings.HasPrefix(lines[i], want[i]) {
			t.Errorf("problem %d = %q, want prefix %q", i, lines[i], want[i])
		}
	}
}

func TestLoadRegistryMissingDir(t *testing.T) {
	t.Parallel()
	_, err := LoadRegistry(filepath.Join(t.TempDir(), "missing"))
	if err == nil || !strings.Contains(err.Error(), "protocol dir") {
		t.Errorf("missing dir: %v", err)
	}
	if _, err := LoadRegistry(t.TempDir()); err != nil {
		t.Errorf("empty dir: %v", err)
	}
}
