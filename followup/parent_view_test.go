package followup

import (
	"testing"
)

func TestParentHome(t *testing.T) {
	t.Parallel()
	f := newCoreFixture(t)
	parent := f.parent(t)
	ctx := testCtx(t)
	if _, err := f.svc.SendMessage(ctx, f.clinician, f.proc.ID, NewMessage{Kind: "note", Timepoint: "day-1", Body: "Keep the area cool."}); err != nil {
		t.Fatal(err)
	}
	h, err := f.svc.ParentHome(ctx, parent)
	if err != nil {
		t.Fatal(err)
	}
	if h.FirstName != "Lina" || h.PreferredLanguage != "zh-CN" {
		t.Errorf("first name %q, language %q; want Lina, zh-CN", h.FirstName, h.PreferredLanguage)
	}
	if h.Clinic.Name != f.clinic.Name || h.Clinic.Location == nil || h.Clinic.Location.String() != "Asia/Shanghai" {
		t.Errorf("clinic = %+v", h.Clinic)
	}
	if h.View.ID != f.proc.ID || len(h.View.Timepoints) != len(f.proc.Timepoints) {
		t.Errorf("view of %s with %d timepoints", h.View.ID, len(h.View.Timepoints))
	}
	if len(h.View.Messages) != 1 || h.View.Messages[0].Timepoint != "day-1" {
		t.Errorf("messages = %+v", h.View.Messages)
	}
	if h.View.Assessments != nil {
		t.Errorf("a parent sees assessments: %+v", h.View.Assessments)
	}
	if h.Title.In("en") == "" || h.Aftercare["day-1"].In("zh-CN") == "" || h.Labels["week-8"].In("en") == "" {
		t.Errorf("protocol texts missing: title %q", h.Title.In("en"))
	}
	if !h.Now.Equal(f.clock.Now()) {
		t.Errorf("now = %v, want the service clock", h.Now)
	}

	// Nobody but a parent gets the family's page; a revoked link's actor is refused by
	// ParentActor before it gets here, and a foreign procedure is not found.
	if _, err := f.svc.ParentHome(ctx, f.clinician); ErrorCode(err) != EUNAUTHORIZED {
		t.Errorf("clinician: %v, want unauthorized", err)
	}
	other := parent
	other.Procedure = f.patient.ID // an id that is not its procedure
	if _, err := f.svc.ParentHome(ctx, other); ErrorCode(err) != ENOTFOUND {
		t.Errorf("other procedure: %v, want not found", err)
	}
}
