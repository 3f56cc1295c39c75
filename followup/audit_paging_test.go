package followup

import (
	"slices"
	"testing"

	"github.com/google/uuid"
)

// A patient's audit log pages by cursor, newest first, through every event exactly once.
func TestPatientAuditPages(t *testing.T) {
	t.Parallel()
	f := newCoreFixture(t)
	ctx := testCtx(t)
	_, admin := mustUser(t, f.svc, f.clinic.ID, RoleAdmin)
	photo, _, err := f.upload(t, f.clinician, "baseline", "front", "audit-page-01", testJPEG(t, 3))
	if err != nil {
		t.Fatal(err)
	}
	// Views of the photo, some in one statement (the same at), like a busy timeline.
	if _, err := f.svc.pool.Exec(ctx, `insert into audit_events (clinic_id, actor_kind, actor_id, action, target_kind, target_id)
		select $1, 'user', $2, 'photo_viewed', 'photo', $3 from generate_series(1, 9)`, f.clinic.ID, f.clinician.ID, photo.ID); err != nil {
		t.Fatal(err)
	}
	all, err := f.svc.PatientAuditPage(ctx, admin, f.patient.ID, "", 0)
	if err != nil || all.Next != "" {
		t.Fatalf("one page of everything: %v, next %q", err, all.Next)
	}
	if len(all.Entries) < 12 {
		t.Fatalf("%d events, want the fixture's and the 9 views", len(all.Entries))
	}
	var got []AuditEntry
	cursor := ""
	for pages := 0; ; pages++ {
		if pages > len(all.Entries) {
			t.Fatal("the pages never end")
		}
		p, err := f.svc.PatientAuditPage(ctx, admin, f.patient.ID, cursor, 4)
		if err != nil {
			t.Fatal(err)
		}
		if len(p.Entries) > 4 || (p.Next != "" && len(p.Entries) != 4) {
			t.Fatalf("a page of %d, next %q", len(p.Entries), p.Next)
		}
		got = append(got, p.Entries...)
		if p.Next == "" {
			break
		}
		cursor = p.Next
	}
	if !slices.EqualFunc(got, all.Entries, func(a, b AuditEntry) bool {
		return a.At.Equal(b.At) && a.Action == b.Action && *a.TargetID == *b.TargetID
	}) || len(got) != len(all.Entries) {
		t.Fatalf("paged %d events, want %d in the same order", len(got), len(all.Entries))
	}
	if _, err := f.svc.PatientAuditPage(ctx, admin, f.patient.ID, "junk", 4); ErrorCode(err) != EINVALID {
		t.Errorf("a bad cursor = %v, want EINVALID", err)
	}
	other := mustClinic(t, f.svc, "Other "+uuid.NewString()[:8], "")
	_, otherAdmin := mustUser(t, f.svc, other.ID, RoleAdmin)
	if _, err := f.svc.PatientAuditPage(ctx, otherAdmin, f.patient.ID, cursor, 4); ErrorCode(err) != ENOTFOUND {
		t.Errorf("another clinic's admin = %v, want ENOTFOUND", err)
	}
}
