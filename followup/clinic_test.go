package followup

import (
	"net/netip"
	"testing"

	"github.com/google/uuid"
)

func TestListProceduresScope(t *testing.T) {
	t.Parallel()
	f := newCoreFixture(t)
	ctx := testCtx(t)
	other := mustClinic(t, f.svc, "Other "+uuid.NewString()[:8], "Europe/Berlin")
	_, outsider := mustUser(t, f.svc, other.ID, RoleClinician)
	_, researcher := mustUser(t, f.svc, f.clinic.ID, RoleResearcher)
	if ps, err := f.svc.ListProcedures(ctx, outsider, ProcedureFilter{PatientID: f.patient.ID}); err != nil || len(ps) != 0 {
		t.Errorf("another clinic's patient's procedures = %v, %v; want none", ps, err)
	}
	if _, err := f.svc.ListProcedures(ctx, researcher, ProcedureFilter{PatientID: f.patient.ID}); ErrorCode(err) != EFORBIDDEN {
		t.Errorf("researcher patient procedures = %v, want EFORBIDDEN", err)
	}
	if ps, err := f.svc.ListProcedures(ctx, f.clinician, ProcedureFilter{PatientID: f.patient.ID}); err != nil || len(ps) != 1 || ps[0].ID != f.proc.ID {
		t.Errorf("patient procedures = %v, %v", ps, err)
	}
}

func TestClinicPatientAudit(t *testing.T) {
	t.Parallel()
	f := newCoreFixture(t)
	ctx := testCtx(t)
	_, admin := mustUser(t, f.svc, f.clinic.ID, RoleAdmin)
	other := mustClinic(t, f.svc, "Other "+uuid.NewString()[:8], "")
	_, otherAdmin := mustUser(t, f.svc, other.ID, RoleAdmin)
	photo, _, err := f.upload(t, f.clinician, "baseline", "front", "audit-upload-1", testJPEG(t, 1))
	if err != nil {
		t.Fatal(err)
	}
	f.clinician.Addr = netip.MustParseAddr("198.51.100.4")
	if _, err := f.svc.Assess(ctx, f.clinician, f.proc.ID, NewAssessment{Timepoint: "baseline", Level: "none"}); err != nil {
		t.Fatal(err)
	}
	entries, err := f.svc.PatientAudit(ctx, admin, f.patient.ID)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, e := range entries {
		seen[e.Action] = true
		if e.Action == AuditAssessment && (e.ClientAddr == nil || e.ClientAddr.String() != "198.51.100.4" || e.ActorEmail == "") {
			t.Errorf("assessment event = %+v", e)
		}
		if e.Action == AuditPhotoUploaded && (e.TargetID == nil || *e.TargetID != photo.ID) {
			t.Errorf("upload event = %+v", e)
		}
	}
	for _, want := range []string{AuditPatientCreated, AuditProcedureEnrolled, AuditPhotoUploaded, AuditAssessment} {
		if !seen[want] {
			t.Errorf("no %s event in %v", want, seen)
		}
	}
	if len(entries) > 1 && entries[0].At.Before(entries[len(entries)-1].At) {
		t.Error("not newest first")
	}
	if _, err := f.svc.PatientAudit(ctx, otherAdmin, f.patient.ID); ErrorCode(err) != ENOTFOUND {
		t.Errorf("another clinic's admin = %v, want ENOTFOUND", err)
	}
	if _, err := f.svc.PatientAudit(ctx, f.clinician, f.patient.ID); ErrorCode(err) != EFORBIDDEN {
		t.Errorf("clinician = %v, want EFORBIDDEN", err)
	}
	if _, err := f.svc.PatientAudit(ctx, Actor{}, f.patient.ID); ErrorCode(err) != EUNAUTHORIZED {
		t.Errorf("no actor = %v, want EUNAUTHORIZED", err)
	}
}
