package worklist

import (
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/dermfollow/dermfollow/followup"
	"github.com/dermfollow/dermfollow/followup/followuptest"
)

func TestClinicWorklistStates(t *testing.T) {
	t.Parallel()
	f := newFixture(t) // 17:00 in Shanghai on the day of a 10:00 procedure
	ctx := followuptest.Ctx(t)
	wl, err := f.wl.ClinicWorklist(ctx, f.Clinician, Filter{})
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
	if wl.Counts[Overdue] != 1 || wl.Counts[DueToday] != 1 || wl.Counts[Unreviewed] != 0 {
		t.Errorf("counts = %v", wl.Counts)
	}

	for i, view := range []string{"front", "left-oblique", "right-oblique", "close-up"} {
		if _, _, err := f.Upload(t, f.Clinician, "baseline", view, "wl-upload-000"+string(rune('0'+i)), followuptest.JPEG(t, byte(i))); err != nil {
			t.Fatal(err)
		}
	}
	wl, err = f.wl.ClinicWorklist(ctx, f.Clinician, Filter{State: Unreviewed})
	if err != nil || len(wl.Items) != 1 {
		t.Fatalf("unreviewed = %+v, %v", wl, err)
	}
	if w := wl.Items[0]; w.Overdue != 1 || w.DueToday != 1 || w.Unreviewed != 4 || w.LastReceived == nil {
		t.Errorf("after the baseline photos: %+v, want 1 overdue, 1 due today, 4 new", w)
	}
	if _, err := f.Core.Assess(ctx, f.Clinician, f.Proc.ID, followup.NewAssessment{Timepoint: "baseline", Level: "none"}); err != nil {
		t.Fatal(err)
	}
	wl, err = f.wl.ClinicWorklist(ctx, f.Clinician, Filter{State: Unreviewed})
	if err != nil || len(wl.Items) != 0 || wl.Counts[Unreviewed] != 0 {
		t.Errorf("after grading: %+v, %v; want nothing new", wl, err)
	}

	if _, err := f.wl.ClinicWorklist(ctx, f.Clinician, Filter{Search: "nobody"}); err != nil {
		t.Error(err)
	}
	if wl, _ := f.wl.ClinicWorklist(ctx, f.Clinician, Filter{Search: "ZHANG"}); wl.Total != 1 {
		t.Errorf("case-insensitive search found %d", wl.Total)
	}
	if wl, _ := f.wl.ClinicWorklist(ctx, f.Clinician, Filter{Search: "_"}); wl.Total != 0 {
		t.Errorf("_ in a search is a wildcard: found %d", wl.Total)
	}
	if _, err := f.wl.ClinicWorklist(ctx, f.Clinician, Filter{State: "bogus"}); followup.ErrorCode(err) != followup.EINVALID {
		t.Errorf("bad state = %v, want EINVALID", err)
	}
}

func TestClinicWorklistScope(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := followuptest.Ctx(t)
	other := followuptest.Clinic(t, f.Core, "Other "+uuid.NewString()[:8], "Europe/Berlin")
	_, outsider := followuptest.User(t, f.Pool, other.ID, followup.RoleClinician)
	_, researcher := followuptest.User(t, f.Pool, f.Clinic.ID, followup.RoleResearcher)
	_, admin := followuptest.User(t, f.Pool, f.Clinic.ID, followup.RoleAdmin)

	if wl, err := f.wl.ClinicWorklist(ctx, outsider, Filter{}); err != nil || wl.Total != 0 {
		t.Errorf("another clinic's worklist = %+v, %v; want empty", wl, err)
	}
	if _, err := f.wl.ClinicWorklist(ctx, researcher, Filter{}); followup.ErrorCode(err) != followup.EFORBIDDEN {
		t.Errorf("researcher worklist = %v, want EFORBIDDEN", err)
	}
	if wl, err := f.wl.ClinicWorklist(ctx, admin, Filter{}); err != nil || wl.Total != 1 {
		t.Errorf("admin worklist = %+v, %v", wl, err)
	}
	if _, err := f.wl.ClinicWorklist(ctx, followup.Actor{}, Filter{}); followup.ErrorCode(err) != followup.EUNAUTHORIZED {
		t.Errorf("no actor = %v, want EUNAUTHORIZED", err)
	}
}

func TestClinicWorklistReminderFailed(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := followuptest.Ctx(t)
	failed := func() Page {
		t.Helper()
		wl, err := f.wl.ClinicWorklist(ctx, f.Clinician, Filter{State: ReminderFailed})
		if err != nil {
			t.Fatal(err)
		}
		return wl
	}
	if wl := failed(); len(wl.Items) != 0 || wl.Counts[ReminderFailed] != 0 || wl.Total != 1 {
		t.Fatalf("before any failure: %+v", wl)
	}
	created := time.Now()
	insert := func(status, channel string) {
		t.Helper()
		created = created.Add(time.Minute)
		if _, err := f.Pool.Exec(ctx, `insert into reminders (clinic_id, procedure_id, timepoint_key, kind, channel, status,
				last_error, send_after, sent_at, created_at) values ($1, $2, 'baseline', 'manual', $4, $3, 'smtp: connection refused', $5::timestamptz,
				case when $3 = 'sent' then $5::timestamptz end, $5::timestamptz)`,
			f.Clinic.ID, f.Proc.ID, status, channel, created); err != nil {
			t.Fatal(err)
		}
	}
	insert(followup.ReminderSent, "email")
	if wl := failed(); len(wl.Items) != 0 {
		t.Fatalf("a sent reminder flags the procedure: %+v", wl.Items)
	}
	insert(followup.ReminderFailed, "email")
	wl := failed()
	if len(wl.Items) != 1 || !wl.Items[0].ReminderFailed || wl.Counts[ReminderFailed] != 1 || wl.Items[0].ID != f.Proc.ID {
		t.Fatalf("after a failed reminder: %+v", wl)
	}
	// A later send on another channel leaves the email failure flagged; a later email clears it.
	insert(followup.ReminderSent, "webhook")
	if wl := failed(); len(wl.Items) != 1 {
		t.Errorf("a webhook sent after the failed email cleared the flag: %+v", wl.Items)
	}
	insert(followup.ReminderSent, "email")
	if wl := failed(); len(wl.Items) != 0 || wl.Counts[ReminderFailed] != 0 {
		t.Errorf("an email sent after the failed one left the flag: %+v", wl)
	}
	insert(followup.ReminderFailed, "email")
	wl = failed()
	// Another clinic's worklist does not see it.
	other, err := f.Core.CreateClinic(ctx, "Other "+uuid.NewString()[:6], "Europe/Berlin")
	if err != nil {
		t.Fatal(err)
	}
	outsider := followup.Actor{Kind: followup.ActorUser, ID: uuid.New(), ClinicID: other.ID, Role: followup.RoleClinician}
	if wl, err := f.wl.ClinicWorklist(ctx, outsider, Filter{State: ReminderFailed}); err != nil || len(wl.Items) != 0 ||
		wl.Counts[ReminderFailed] != 0 {
		t.Errorf("another clinic's worklist = %+v, %v", wl, err)
	}
}
