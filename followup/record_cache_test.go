package followup

import (
	"reflect"
	"sync"
	"testing"

	"github.com/google/uuid"
)

// Each change, through the service or straight in SQL, makes the next record read what the
// database holds. Before each change the kept rows are marked with a message that the
// database does not have: a change that left the revision alone would leave the mark in the
// next record, and the comparison with a read that keeps nothing would fail.
func TestRecordCacheSeesEveryChange(t *testing.T) {
	t.Parallel()
	f := newCoreFixture(t)
	ctx := testCtx(t)
	// What a service that keeps nothing reads is what the database holds.
	truth, err := New(Config{Pool: f.svc.pool, Store: f.svc.store, Protocols: f.svc.Protocols(), Now: f.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	mark := Message{ID: uuid.New(), Kind: "note", Body: "kept, not in the database"}
	markKept := func(step string) {
		t.Helper()
		r, ok := f.svc.records.c.load(f.proc.ID, maxCachedRecords)
		if !ok {
			t.Fatalf("%s: nothing kept", step)
		}
		r = r.copy()
		r.messages = append(r.messages, mark)
		f.svc.records.c.store(f.proc.ID, r, maxCachedRecords)
	}
	check := func(step string, wantMark bool) {
		t.Helper()
		got, err := f.svc.ProcedureRecord(ctx, f.clinician, f.proc.ID)
		if err != nil {
			t.Fatalf("%s: %v", step, err)
		}
		truth.records = recordCache{}
		want, err := truth.ProcedureRecord(ctx, f.clinician, f.proc.ID)
		if err != nil {
			t.Fatalf("%s: %v", step, err)
		}
		if wantMark {
			want.Messages = append(want.Messages, mark)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s: the record differs from the database's\n got %+v\nwant %+v", step, got, want)
		}
	}
	check("first read", false)
	markKept("unchanged")
	check("unchanged: the kept rows are used", true)

	v, err := f.svc.ProcedureView(ctx, f.clinician, f.proc.ID)
	if err != nil {
		t.Fatal(err)
	}
	tp, view := v.Timepoints[0].Key, v.Timepoints[0].Views[0]
	var photo Photo
	var link ParentLink
	exec := func(sql string) func() error {
		return func() error {
			_, err := f.svc.pool.Exec(ctx, sql, f.proc.ID)
			return err
		}
	}
	for _, step := range []struct {
		name    string
		counted bool // the change is to a row the revision counts, not to the procedure, patient or clinic
		change  func() error
	}{
		{"photo uploaded", true, func() (err error) {
			photo, _, err = f.upload(t, f.clinician, tp, view, uuid.NewString(), testJPEG(t, 1))
			return err
		}},
		// What package thumbnails writes when it has made a photo's thumbnails (its own test
		// reads the record after it: TestThumbnailsReachTheRecord).
		{"thumbnails made (SQL)", true, exec(`update photos set thumbnails_at = now(), thumbnail_error = null, thumbnail_retry_at = null,
			quality = '{"sharpness": 120, "mean_luminance": 0.5, "flags": []}' where procedure_id = $1`)},
		{"graded", true, func() error {
			_, err := f.svc.Assess(ctx, f.clinician, f.proc.ID, NewAssessment{Timepoint: tp, Level: "none", Note: "baseline"})
			return err
		}},
		{"retake requested", true, func() error {
			_, err := f.svc.SendMessage(ctx, f.clinician, f.proc.ID, NewMessage{Kind: "retake", PhotoID: photo.ID.String(), Body: "blurred"})
			return err
		}},
		{"link created", true, func() (err error) {
			link, err = f.svc.CreateLink(ctx, f.clinician, f.proc.ID, false)
			return err
		}},
		{"link revoked", true, func() error { return f.svc.RevokeLink(ctx, f.clinician, link.ID) }},
		{"reminder queued (SQL)", true, exec(`insert into reminders (clinic_id, procedure_id, timepoint_key, kind, channel, send_after)
			select clinic_id, procedure_id, key, 'manual', 'email', now() from procedures join timepoints on procedure_id = id
			where id = $1 order by position limit 1`)},
		{"reminder sent (SQL)", true, exec(`update reminders set status = 'sent', sent_at = now(), attempts = 1 where procedure_id = $1`)},
		{"photo withdrawn (SQL)", true, exec(`update photos set status = 'withdrawn', status_changed_at = now() where procedure_id = $1`)},
		{"message deleted (SQL)", true, exec(`delete from messages where procedure_id = $1`)},
		{"reminders switched off (SQL)", false, exec(`update procedures set reminders_enabled = false where id = $1`)},
		{"procedure closed", false, func() error { return f.svc.SetStatus(ctx, f.clinician, f.proc.ID, StatusClosed) }},
		{"patient renamed (SQL)", false, exec(`update patients set display_name = 'Renamed' where id = (select patient_id from procedures where id = $1)`)},
		{"clinic moved (SQL)", false, exec(`update clinics set time_zone = 'Europe/Paris' where id = (select clinic_id from procedures where id = $1)`)},
	} {
		if step.counted {
			markKept(step.name)
		}
		if err := step.change(); err != nil {
			t.Fatalf("%s: %v", step.name, err)
		}
		check(step.name, false)
	}
}

// The kept rows of a procedure never reach another clinic: its read is not found first.
func TestRecordCacheKeepsScope(t *testing.T) {
	t.Parallel()
	f := newCoreFixture(t)
	ctx := testCtx(t)
	other := mustClinic(t, f.svc, "Other "+uuid.NewString()[:8], "")
	_, stranger := mustUser(t, f.svc, other.ID, RoleClinician)
	if _, err := f.svc.ProcedureRecord(ctx, f.clinician, f.proc.ID); err != nil {
		t.Fatal(err)
	}
	if _, ok := f.svc.records.c.load(f.proc.ID, maxCachedRecords); !ok {
		t.Fatal("nothing kept")
	}
	if _, err := f.svc.ProcedureRecord(ctx, stranger, f.proc.ID); ErrorCode(err) != ENOTFOUND {
		t.Errorf("another clinic's record with the rows kept = %v, want ENOTFOUND", err)
	}
	// A caller's changes to its record stay in it.
	v, err := f.svc.ProcedureView(ctx, f.clinician, f.proc.ID)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := f.upload(t, f.clinician, v.Timepoints[0].Key, v.Timepoints[0].Views[0], uuid.NewString(), testJPEG(t, 1)); err != nil {
		t.Fatal(err)
	}
	r, err := f.svc.ProcedureRecord(ctx, f.clinician, f.proc.ID)
	if err != nil || len(r.Photos) != 1 {
		t.Fatalf("record = %d photos, %v", len(r.Photos), err)
	}
	want := r.Photos[0].View
	r.Photos[0].View = "changed"
	again, err := f.svc.ProcedureRecord(ctx, f.clinician, f.proc.ID)
	if err != nil || again.Photos[0].View != want {
		t.Errorf("record after a caller changed its copy: %+v, %v", again.Photos, err)
	}
}

// Revoking a link while a new link replaces the old ones: the revocation locks the link first,
// the new link the procedure first; the triggers that version the procedure's rows must not
// make them wait on each other (as bumping a count in the procedure's row did).
func TestRevokeLinkWhileRotating(t *testing.T) {
	t.Parallel()
	f := newCoreFixture(t)
	ctx := testCtx(t)
	for round := range 40 {
		l, err := f.svc.CreateLink(ctx, f.clinician, f.proc.ID, true)
		if err != nil {
			t.Fatal(err)
		}
		if round%2 == 1 {
			// As for a procedure enrolled before versions existed: the revocation's trigger
			// adds the procedure's first version row.
			if _, err := f.svc.pool.Exec(ctx, `delete from procedure_row_versions where procedure_id = $1`, f.proc.ID); err != nil {
				t.Fatal(err)
			}
		}
		var revoke, rotate error
		var wg sync.WaitGroup
		wg.Go(func() { revoke = f.svc.RevokeLink(ctx, f.clinician, l.ID) })
		wg.Go(func() { _, rotate = f.svc.CreateLink(ctx, f.clinician, f.proc.ID, true) })
		wg.Wait()
		if revoke != nil || rotate != nil {
			t.Fatalf("round %d: revoke: %v; new link: %v", round, revoke, rotate)
		}
	}
}
