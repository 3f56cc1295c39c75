package followup

import (
	"net/netip"
	"testing"
	"time"

	"github.com/google/uuid"
)

func TestClinicWorklistStates(t *testing.T) {
	t.Parallel()
	f := newCoreFixture(t) // 17:00 in Shanghai on the day of a 10:00 procedure
	ctx := testCtx(t)
	wl, err := f.svc.ClinicWorklist(ctx, f.clinician, WorklistFilter{})
	if err != nil {
		t.Fatal(err)
	}
	if wl.Today.String() != "2026-05-04" || wl.Total != 1 || len(wl.Items) != 1 {
		t.Fatalf("worklist = %+v", wl)
	}
	w := wl.Items[0]
	// Baseline and right-after-treatment: both due today, both windows closed without photos.
	if w.Overdue != 2 || w.DueToday != 2 || w.Unreviewed != 0 || w.PatientName != "Lina Zhang" {
		t.Errorf("item = %+v, want 2 overdue, 2 due today, nothing new", w)
	}
	if wl.Counts[WorklistOverdue] != 1 || wl.Counts[WorklistDueToday] != 1 || wl.Counts[WorklistUnreviewed] != 0 {
		t.Errorf("counts = %v", wl.Counts)
	}

	for i, view := range []string{"front", "left-oblique", "right-oblique", "close-up"} {
		if _, _, err := f.upload(t, f.clinician, "baseline", view, "wl-upload-000"+string(rune('0'+i)), testJPEG(t, byte(i))); err != nil {
			t.Fatal(err)
		}
	}
	wl, err = f.svc.ClinicWorklist(ctx, f.clinician, WorklistFilter{State: WorklistUnreviewed})
	if err != nil || len(wl.Items) != 1 {
		t.Fatalf("unreviewed = %+v, %v", wl, err)
	}
	if w := wl.Items[0]; w.Overdue != 1 || w.DueToday != 1 || w.Unreviewed != 4 || w.LastReceived == nil {
		t.Errorf("after the baseline photos: %+v, want 1 overdue, 1 due today, 4 new", w)
	}
	if _, err := f.svc.Assess(ctx, f.clinician, f.proc.ID, NewAssessment{Timepoint: "baseline", Level: "none"}); err != nil {
		t.Fatal(err)
	}
	wl, err = f.svc.ClinicWorklist(ctx, f.clinician, WorklistFilter{State: WorklistUnreviewed})
	if err != nil || len(wl.Items) != 0 || wl.Counts[WorklistUnreviewed] != 0 {
		t.Errorf("after grading: %+v, %v; want nothing new", wl, err)
	}

	if _, err := f.svc.ClinicWorklist(ctx, f.clinician, WorklistFilter{Search: "nobody"}); err != nil {
		t.Error(err)
	}
	if wl, _ := f.svc.ClinicWorklist(ctx, f.clinician, WorklistFilter{Search: "ZHANG"}); wl.Total != 1 {
		t.Errorf("case-insensitive search found %d", wl.Total)
	}
	if wl, _ := f.svc.ClinicWorklist(ctx, f.clinician, WorklistFilter{Search: "_"}); wl.Total != 0 {
		t.Errorf("_ in a search is a wildcard: found %d", wl.Total)
	}
	if _, err := f.svc.ClinicWorklist(ctx, f.clinician, WorklistFilter{State: "bogus"}); ErrorCode(err) != EINVALID {
		t.Errorf("bad state = %v, want EINVALID", err)
	}
}

func TestClinicWorklistScope(t *testing.T) {
	t.Parallel()
	f := newCoreFixture(t)
	ctx := testCtx(t)
	other := mustClinic(t, f.svc, "Other "+uuid.NewString()[:8], "Europe/Berlin")
	_, outsider := mustUser(t, f.svc, other.ID, RoleClinician)
	_, researcher := mustUser(t, f.svc, f.clinic.ID, RoleResearcher)
	_, admin := mustUser(t, f.svc, f.clinic.ID, RoleAdmin)

	if wl, err := f.svc.ClinicWorklist(ctx, outsider, WorklistFilter{}); err != nil || wl.Total != 0 {
		t.Errorf("another clinic's worklist = %+v, %v; want empty", wl, err)
	}
	if ps, err := f.svc.ListProcedures(ctx, outsider, ProcedureFilter{PatientID: f.patient.ID}); err != nil || len(ps) != 0 {
		t.Errorf("another clinic's patient's procedures = %v, %v; want none", ps, err)
	}
	if _, err := f.svc.ClinicWorklist(ctx, researcher, WorklistFilter{}); ErrorCode(err) != EFORBIDDEN {
		t.Errorf("researcher worklist = %v, want EFORBIDDEN", err)
	}
	if _, err := f.svc.ListProcedures(ctx, researcher, ProcedureFilter{PatientID: f.patient.ID}); ErrorCode(err) != EFORBIDDEN {
		t.Errorf("researcher patient procedures = %v, want EFORBIDDEN", err)
	}
	if wl, err := f.svc.ClinicWorklist(ctx, admin, WorklistFilter{}); err != nil || wl.Total != 1 {
		t.Errorf("admin worklist = %+v, %v", wl, err)
	}
	if ps, err := f.svc.ListProcedures(ctx, f.clinician, ProcedureFilter{PatientID: f.patient.ID}); err != nil || len(ps) != 1 || ps[0].ID != f.proc.ID {
		t.Errorf("patient procedures = %v, %v", ps, err)
	}
	if _, err := f.svc.ClinicWorklist(ctx, Actor{}, WorklistFilter{}); ErrorCode(err) != EUNAUTHORIZED {
		t.Errorf("no actor = %v, want EUNAUTHORIZED", err)
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

func TestClinicWorklistReminderFailed(t *testing.T) {
	t.Parallel()
	f := newCoreFixture(t)
	ctx := testCtx(t)
	failed := func() Worklist {
		t.Helper()
		wl, err := f.svc.ClinicWorklist(ctx, f.clinician, WorklistFilter{State: WorklistReminderFailed})
		if err != nil {
			t.Fatal(err)
		}
		return wl
	}
	if wl := failed(); len(wl.Items) != 0 || wl.Counts[WorklistReminderFailed] != 0 || wl.Total != 1 {
		t.Fatalf("before any failure: %+v", wl)
	}
	created := time.Now()
	insert := func(status, channel string) {
		t.Helper()
		created = created.Add(time.Minute)
		if _, err := f.svc.pool.Exec(ctx, `insert into reminders (clinic_id, procedure_id, timepoint_key, kind, channel, status,
				last_error, send_after, sent_at, created_at) values ($1, $2, 'baseline', 'manual', $4, $3, 'smtp: connection refused', $5::timestamptz,
				case when $3 = 'sent' then $5::timestamptz end, $5::timestamptz)`,
			f.clinic.ID, f.proc.ID, status, channel, created); err != nil {
			t.Fatal(err)
		}
	}
	insert(ReminderSent, "email")
	if wl := failed(); len(wl.Items) != 0 {
		t.Fatalf("a sent reminder flags the procedure: %+v", wl.Items)
	}
	insert(ReminderFailed, "email")
	wl := failed()
	if len(wl.Items) != 1 || !wl.Items[0].ReminderFailed || wl.Counts[WorklistReminderFailed] != 1 || wl.Items[0].ID != f.proc.ID {
		t.Fatalf("after a failed reminder: %+v", wl)
	}
	// A later send on another channel leaves the email failure flagged; a later email clears it.
	insert(ReminderSent, "webhook")
	if wl := failed(); len(wl.Items) != 1 {
		t.Errorf("a webhook sent after the failed email cleared the flag: %+v", wl.Items)
	}
	insert(ReminderSent, "email")
	if wl := failed(); len(wl.Items) != 0 || wl.Counts[WorklistReminderFailed] != 0 {
		t.Errorf("an email sent after the failed one left the flag: %+v", wl)
	}
	insert(ReminderFailed, "email")
	wl = failed()
	// Another clinic's worklist does not see it.
	other, err := f.svc.CreateClinic(ctx, "Other "+uuid.NewString()[:6], "Europe/Berlin")
	if err != nil {
		t.Fatal(err)
	}
	outsider := Actor{Kind: ActorUser, ID: uuid.New(), ClinicID: other.ID, Role: RoleClinician}
	if wl, err := f.svc.ClinicWorklist(ctx, outsider, WorklistFilter{State: WorklistReminderFailed}); err != nil || len(wl.Items) != 0 ||
		wl.Counts[WorklistReminderFailed] != 0 {
		t.Errorf("another clinic's worklist = %+v, %v", wl, err)
	}
}
