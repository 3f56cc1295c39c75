package export

import (
	"testing"
)

// exportItems places each photo at its timepoint's position in the schedule and gives it the
// latest grade of its timepoint; for a protocol version the registry no longer has, the
// positions come from the procedure's own schedule, with the same result.
func TestExportItemsPositionsAndGrades(t *testing.T) {
	t.Parallel()
	s := newExportStudy(t, nil)
	_, e := s.enrolPatient(t, "Lina Zhang", "MRN-7781", "2025-06-01", true, "2026-04-20", 4)
	key, _ := s.svc.exportKey()
	ctx := testCtx(t)
	clinic, _ := s.svc.core.Clinic(ctx, s.clinic.ID)
	job := exportJob{clinic: s.clinic.ID, protocol: "pws-hemoporfin-pdt", views: []string{"front", "left-oblique"}}
	read := func() map[string][2]any {
		t.Helper()
		items, err := s.svc.exportItems(ctx, job, clinic.Location, key)
		if err != nil {
			t.Fatal(err)
		}
		if len(items) != 4 {
			t.Fatalf("%d items, want the 4 photos", len(items))
		}
		out := map[string][2]any{}
		for _, it := range items {
			out[it.row.Timepoint+"/"+it.row.View] = [2]any{it.position, it.row.GradeLevel}
		}
		return out
	}
	want := map[string][2]any{}
	for i, tp := range e.Timepoints {
		level := ""
		if tp.Key == "day-1" {
			level = "improved" // the later of the two grades
		}
		want[tp.Key+"/front"], want[tp.Key+"/left-oblique"] = [2]any{i, level}, [2]any{i, level}
	}
	check := func(got map[string][2]any, when string) {
		t.Helper()
		for slot, g := range got {
			if g != want[slot] {
				t.Errorf("%s: %s = position %v grade %q, want %v %q", when, slot, g[0], g[1], want[slot][0], want[slot][1])
			}
		}
	}
	check(read(), "installed version")
	if _, err := s.pool.Exec(ctx, `update procedures set protocol_version = 99 where id = $1`, e.ID); err != nil {
		t.Fatal(err)
	}
	check(read(), "version no longer installed")
}
