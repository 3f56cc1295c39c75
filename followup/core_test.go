package followup

import (
	"bytes"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/dermfollow/dermfollow/imagestore"
	"github.com/dermfollow/dermfollow/imagestore/imagetest"
	"github.com/dermfollow/dermfollow/protocols"
)

// testClock is a settable clock for schedules, links and the sweeper.
type testClock struct{ t atomic.Pointer[time.Time] }

func newTestClock(t time.Time) *testClock { c := &testClock{}; c.Set(t); return c }
func (c *testClock) Now() time.Time       { return *c.t.Load() }
func (c *testClock) Set(t time.Time)      { c.t.Store(&t) }

// coreFixture is a clinic in Shanghai with a clinician and a patient enrolled in the PWS
// protocol, on a service whose clock the test controls.
type coreFixture struct {
	svc       *Service
	store     *imagestore.LocalStore
	clock     *testClock
	clinic    Clinic
	clinician Actor
	patient   Patient
	proc      Enrolment
}

func newCoreFixture(t *testing.T, opts ...func(*Config)) *coreFixture {
	t.Helper()
	clock := newTestClock(time.Date(2026, 5, 4, 9, 0, 0, 0, time.UTC))
	svc := newTestService(t, append([]func(*Config){func(c *Config) { c.Now, c.BaseURL = clock.Now, "https://followup.example" }}, opts...)...)
	f := &coreFixture{svc: svc, store: svc.Store().(*imagestore.LocalStore), clock: clock}
	var err error
	f.clinic = mustClinic(t, svc, "Clinic "+uuid.NewString()[:8], "Asia/Shanghai")
	_, f.clinician = mustUser(t, svc, f.clinic.ID, RoleClinician)
	ctx := testCtx(t)
	f.patient, err = svc.CreatePatient(ctx, f.clinician, NewPatient{DisplayName: "Lina Zhang", BirthDate: "2025-06-01",
		GuardianEmail: "parent@example.org", PreferredLanguage: "zh-CN", ResearchConsent: true})
	if err != nil {
		t.Fatal(err)
	}
	f.proc, err = svc.Enrol(ctx, f.clinician, NewProcedure{PatientID: f.patient.ID.String(), Protocol: "pws-hemoporfin-pdt",
		BodySite: "face", PerformedAt: "2026-05-04T10:00:00+08:00"})
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func testJPEG(t testing.TB, seed byte) []byte {
	t.Helper()
	return imagetest.JPEG(64, 48, seed)
}

func (f *coreFixture) upload(t *testing.T, a Actor, tp, view, uploadID string, body []byte) (Photo, bool, error) {
	t.Helper()
	return f.svc.AddPhoto(testCtx(t), a, f.proc.ID, PhotoUpload{Timepoint: tp, View: view, UploadID: uploadID},
		bytes.NewReader(body), int64(len(body)), imagestore.Limits{})
}

func (f *coreFixture) parent(t *testing.T) Actor {
	t.Helper()
	l, err := f.svc.CreateLink(testCtx(t), f.clinician, f.proc.ID, false)
	if err != nil {
		t.Fatal(err)
	}
	a, err := f.svc.ResolveLink(testCtx(t), l.URL[len("https://followup.example/p/"):])
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func countObjects(t *testing.T, s imagestore.Store, prefix string) int {
	t.Helper()
	n := 0
	if err := s.List(testCtx(t), prefix, func(imagestore.ObjectInfo) error { n++; return nil }); err != nil {
		t.Fatal(err)
	}
	return n
}

func countRows(t *testing.T, s *Service, sql string, args ...any) int {
	t.Helper()
	var n int
	if err := s.pool.QueryRow(testCtx(t), sql, args...).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func TestEnrolMaterialisesSchedule(t *testing.T) {
	t.Parallel()
	f := newCoreFixture(t)
	keys := []string{}
	for _, tp := range f.proc.Timepoints {
		keys = append(keys, tp.Key)
	}
	if len(keys) != 8 || keys[0] != "baseline" {
		t.Fatalf("PWS timepoints = %v, want 8 starting with baseline", keys)
	}
	// Performed 10:00 in Shanghai on 4 May; day 1 is due on 5 May local.
	v, err := f.svc.ProcedureView(testCtx(t), f.clinician, f.proc.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(v.Timepoints) != 8 || v.Protocol != "pws-hemoporfin-pdt" || v.ProtocolVersion != 1 {
		t.Fatalf("view = %+v", v.Procedure)
	}
	for i, tp := range v.Timepoints {
		if tp.Key != f.proc.Timepoints[i].Key || tp.DueOn != f.proc.Timepoints[i].DueOn || tp.WindowEnd != f.proc.Timepoints[i].WindowEnd {
			t.Errorf("stored timepoint %d = %+v, computed %+v", i, tp, f.proc.Timepoints[i])
		}
	}
	day1 := v.Timepoints[2]
	if day1.DueOn.String() != "2026-05-05" {
		t.Errorf("day-1 due on %s, want 2026-05-05 (Shanghai calendar)", day1.DueOn)
	}
	// The clock is before the procedure: every family step is upcoming.
	if day1.State != protocols.StateUpcoming {
		t.Errorf("day-1 state before the procedure = %s", day1.State)
	}
	// A month later with no photos, day 1 is missed.
	f.clock.Set(time.Date(2026, 6, 4, 9, 0, 0, 0, time.UTC))
	v, _ = f.svc.ProcedureView(testCtx(t), f.clinician, f.proc.ID)
	if v.Timepoints[2].State != protocols.StateMissed {
		t.Errorf("day-1 state a month later = %s, want missed", v.Timepoints[2].State)
	}
	if n := countRows(t, f.svc, `select count(*) from audit_events where action = 'procedure_enrolled' and target_id = $1`, f.proc.ID); n != 1 {
		t.Errorf("enrolment audit events = %d", n)
	}
}

func TestEnrolBadInput(t *testing.T) {
	t.Parallel()
	f := newCoreFixture(t)
	good := NewProcedure{PatientID: f.patient.ID.String(), Protocol: "pws-hemoporfin-pdt", BodySite: "face", PerformedAt: "2026-05-04T10:00:00+08:00"}
	for name, mutate := range map[string]func(*NewProcedure){
		"unknown protocol": func(p *NewProcedure) { p.Protocol = "nope" },
		"wrong kind":       func(p *NewProcedure) { p.Kind = "pulsed-dye-laser" },
		"bad site":         func(p *NewProcedure) { p.BodySite = "elbow-ish" },
		"bad time":         func(p *NewProcedure) { p.PerformedAt = "yesterday" },
		"far future":       func(p *NewProcedure) { p.PerformedAt = "2031-01-01T00:00:00Z" },
		"bad patient":      func(p *NewProcedure) { p.PatientID = "42" },
		"bad version":      func(p *NewProcedure) { p.ProtocolVersion = 99 },
	} {
		in := good
		mutate(&in)
		if _, err := f.svc.Enrol(testCtx(t), f.clinician, in); ErrorCode(err) != EINVALID {
			t.Errorf("%s: %v, want invalid", name, err)
		}
	}
	in := good
	in.PatientID = uuid.NewString()
	if _, err := f.svc.Enrol(testCtx(t), f.clinician, in); ErrorCode(err) != ENOTFOUND {
		t.Errorf("unknown patient: %v, want not found", err)
	}
}

func TestPatientBadInput(t *testing.T) {
	t.Parallel()
	f := newCoreFixture(t)
	good := NewPatient{DisplayName: "A B", BirthDate: "2024-01-02", GuardianPhone: "+86 138 0000 0000", PreferredLanguage: "en"}
	for name, mutate := range map[string]func(*NewPatient){
		"no name":      func(p *NewPatient) { p.DisplayName = "  " },
		"bad birth":    func(p *NewPatient) { p.BirthDate = "02/01/2024" },
		"future birth": func(p *NewPatient) { p.BirthDate = "2030-01-01" },
		"bad email":    func(p *NewPatient) { p.GuardianEmail = "not an email" },
		"bad phone":    func(p *NewPatient) { p.GuardianPhone = "call me" },
		"no contact":   func(p *NewPatient) { p.GuardianPhone = "" },
		"bad language": func(p *NewPatient) { p.PreferredLanguage = "fr" },
		"mrn too long": func(p *NewPatient) { p.MRN = string(bytes.Repeat([]byte("9"), 65)) },
	} {
		in := good
		mutate(&in)
		if _, err := f.svc.CreatePatient(testCtx(t), f.clinician, in); ErrorCode(err) != EINVALID {
			t.Errorf("%s: %v, want invalid", name, err)
		}
	}
	in := good
	in.MRN = "MRN-1"
	if _, err := f.svc.CreatePatient(testCtx(t), f.clinician, in); err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.CreatePatient(testCtx(t), f.clinician, in); ErrorCode(err) != ECONFLICT {
		t.Errorf("duplicate MRN: %v, want conflict", err)
	}
}

// Another clinic's ids answer not found; a researcher reads no identified data; a parent sees
// only its own procedure.
func TestScoping(t *testing.T) {
	t.Parallel()
	f := newCoreFixture(t)
	parent := f.parent(t)
	photo, _, err := f.upload(t, parent, "day-1", "front", "upload-scope-1", testJPEG(t, 1))
	if err != nil {
		t.Fatal(err)
	}
	other := mustClinic(t, f.svc, "Other "+uuid.NewString()[:8], "UTC")
	_, outsider := mustUser(t, f.svc, other.ID, RoleClinician)
	_, outsideAdmin := mustUser(t, f.svc, other.ID, RoleAdmin)
	_, researcher := mustUser(t, f.svc, f.clinic.ID, RoleResearcher)
	ctx := testCtx(t)

	for _, a := range []Actor{outsider, outsideAdmin} {
		if _, err := f.svc.Patient(ctx, a, f.patient.ID); ErrorCode(err) != ENOTFOUND {
			t.Errorf("other clinic reads patient: %v", err)
		}
		if _, err := f.svc.ProcedureView(ctx, a, f.proc.ID); ErrorCode(err) != ENOTFOUND {
			t.Errorf("other clinic reads procedure: %v", err)
		}
		if _, _, err := f.svc.OpenPhoto(ctx, a, photo.ID, VariantOriginal); ErrorCode(err) != ENOTFOUND {
			t.Errorf("other clinic opens photo: %v", err)
		}
		if _, err := f.svc.CreateLink(ctx, a, f.proc.ID, false); ErrorCode(err) != ENOTFOUND {
			t.Errorf("other clinic makes a link: %v", err)
		}
		if _, err := f.svc.Assess(ctx, a, f.proc.ID, NewAssessment{Timepoint: "day-1", Level: "good"}); ErrorCode(err) != ENOTFOUND {
			t.Errorf("other clinic assesses: %v", err)
		}
		if _, err := f.svc.Links(ctx, a, f.proc.ID); ErrorCode(err) != ENOTFOUND {
			t.Errorf("other clinic lists links: %v", err)
		}
		if err := f.svc.SetStatus(ctx, a, f.proc.ID, StatusClosed); ErrorCode(err) != ENOTFOUND {
			t.Errorf("other clinic closes: %v", err)
		}
		if _, _, err := f.upload(t, a, "day-1", "front", "upload-scope-2", testJPEG(t, 2)); ErrorCode(err) != ENOTFOUND {
			t.Errorf("other clinic uploads: %v", err)
		}
	}
	if _, err := f.svc.ProcedureView(ctx, researcher, f.proc.ID); ErrorCode(err) != EFORBIDDEN {
		t.Errorf("researcher reads procedure: %v", err)
	}
	if _, _, err := f.svc.OpenPhoto(ctx, researcher, photo.ID, VariantOriginal); ErrorCode(err) != EFORBIDDEN {
		t.Errorf("researcher opens photo: %v", err)
	}
	// The parent of another procedure of the same clinic sees nothing of this one.
	second, err := f.svc.Enrol(ctx, f.clinician, NewProcedure{PatientID: f.patient.ID.String(), Protocol: "pdl-vascular-laser",
		BodySite: "neck", PerformedAt: "2026-05-04T10:00:00+08:00"})
	if err != nil {
		t.Fatal(err)
	}
	l, err := f.svc.CreateLink(ctx, f.clinician, second.ID, false)
	if err != nil {
		t.Fatal(err)
	}
	otherParent, err := f.svc.ResolveLink(ctx, l.URL[len("https://followup.example/p/"):])
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.ProcedureView(ctx, otherParent, f.proc.ID); ErrorCode(err) != ENOTFOUND {
		t.Errorf("another procedure's parent reads this one: %v", err)
	}
	if _, _, err := f.svc.OpenPhoto(ctx, otherParent, photo.ID, VariantSmall); ErrorCode(err) != ENOTFOUND {
		t.Errorf("another procedure's parent opens a photo: %v", err)
	}
	if _, _, err := f.svc.OpenPhoto(ctx, parent, photo.ID, VariantOriginal); ErrorCode(err) != ENOTFOUND {
		t.Errorf("a parent opens an original: %v", err)
	}
}

func TestLinks(t *testing.T) {
	t.Parallel()
	f := newCoreFixture(t)
	ctx := testCtx(t)
	l, err := f.svc.CreateLink(ctx, f.clinician, f.proc.ID, false)
	if err != nil {
		t.Fatal(err)
	}
	token := l.URL[len("https://followup.example/p/"):]
	if len(token) != 43 {
		t.Fatalf("token %q is not 32 bytes of base64url", token)
	}
	if n := countRows(t, f.svc, `select count(*) from parent_links where token_hash = sha256($1::bytea)`, []byte(token)); n != 1 {
		t.Errorf("stored token hash rows = %d, want 1", n)
	}
	if n := countRows(t, f.svc, `select count(*) from audit_events where detail::text like '%' || $1 || '%'`, token); n != 0 {
		t.Error("the token appears in the audit log")
	}
	// Expiry follows the protocol's end plus the grace period.
	last := f.proc.Timepoints[len(f.proc.Timepoints)-1]
	if !l.ExpiresAt.Equal(last.graceEnds.Add(LinkGrace)) {
		t.Errorf("expires %s, want %s", l.ExpiresAt, last.graceEnds.Add(LinkGrace))
	}
	if _, err := f.svc.ResolveLink(ctx, token); err != nil {
		t.Fatal(err)
	}
	lastChar := "A"
	if token[42] == 'A' {
		lastChar = "B"
	}
	for _, bad := range []string{"", "short", token[:42] + lastChar, token + "x"} {
		if _, err := f.svc.ResolveLink(ctx, bad); ErrorCode(err) != ENOTFOUND {
			t.Errorf("ResolveLink(%q): %v", bad, err)
		}
	}
	// Rotation revokes the old link.
	l2, err := f.svc.CreateLink(ctx, f.clinician, f.proc.ID, true)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.ResolveLink(ctx, token); ErrorCode(err) != ENOTFOUND {
		t.Errorf("rotated-out link still opens: %v", err)
	}
	token2 := l2.URL[len("https://followup.example/p/"):]
	if err := f.svc.RevokeLink(ctx, f.clinician, l2.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.ResolveLink(ctx, token2); ErrorCode(err) != ENOTFOUND {
		t.Errorf("revoked link still opens: %v", err)
	}
	// Expired links do not open.
	l3, _ := f.svc.CreateLink(ctx, f.clinician, f.proc.ID, false)
	f.clock.Set(l3.ExpiresAt.Add(time.Second))
	if _, err := f.svc.ResolveLink(ctx, l3.URL[len("https://followup.example/p/"):]); ErrorCode(err) != ENOTFOUND {
		t.Errorf("expired link still opens: %v", err)
	}
	links, err := f.svc.Links(ctx, f.clinician, f.proc.ID)
	if err != nil || len(links) != 3 {
		t.Errorf("Links = %d, %v", len(links), err)
	}
}

func TestAddPhotoIdempotent(t *testing.T) {
	t.Parallel()
	f := newCoreFixture(t)
	parent := f.parent(t)
	body := testJPEG(t, 3)
	p1, created, err := f.upload(t, parent, "day-1", "front", "retry-abcdefgh", body)
	if err != nil || !created {
		t.Fatalf("first upload: %v, created %v", err, created)
	}
	p2, created, err := f.upload(t, parent, "day-1", "front", "retry-abcdefgh", body)
	if err != nil || created || p2.ID != p1.ID {
		t.Fatalf("retry: %v, created %v, id %s vs %s", err, created, p2.ID, p1.ID)
	}
	// Many tries of one upload at once: one row, one object.
	var wg sync.WaitGroup
	ids := make(chan uuid.UUID, 8)
	for range 8 {
		wg.Go(func() {
			p, _, err := f.upload(t, parent, "day-1", "left-oblique", "burst-abcdefgh", body)
			if err != nil {
				t.Error(err)
				return
			}
			ids <- p.ID
		})
	}
	wg.Wait()
	close(ids)
	var first uuid.UUID
	for id := range ids {
		if first == uuid.Nil {
			first = id
		} else if id != first {
			t.Errorf("concurrent tries returned different photos %s and %s", first, id)
		}
	}
	if n := countRows(t, f.svc, `select count(*) from photos where procedure_id = $1`, f.proc.ID); n != 2 {
		t.Errorf("photo rows = %d, want 2", n)
	}
	if n := countObjects(t, f.store, "photos/"); n != 2 {
		t.Errorf("photo objects = %d, want 2 (no duplicates left behind)", n)
	}
	// A second photo for the same step and view is kept too, newest first.
	f.clock.Set(f.clock.Now().Add(time.Minute))
	p3, created, err := f.upload(t, parent, "day-1", "front", "second-abcdefgh", testJPEG(t, 9))
	if err != nil || !created {
		t.Fatal(err)
	}
	v, _ := f.svc.ProcedureView(testCtx(t), f.clinician, f.proc.ID)
	var fronts []uuid.UUID
	for _, p := range v.Photos {
		if p.Timepoint == "day-1" && p.View == "front" {
			fronts = append(fronts, p.ID)
		}
	}
	if len(fronts) != 2 || fronts[0] != p3.ID {
		t.Errorf("day-1 front photos = %v, want the newest (%s) first of two", fronts, p3.ID)
	}
	if n := countRows(t, f.svc, `select count(*) from audit_events where action = 'photo_uploaded' and actor_kind = 'parent'`); n != 3 {
		t.Errorf("upload audit events = %d, want 3", n)
	}
}

func TestAddPhotoRefusals(t *testing.T) {
	t.Parallel()
	f := newCoreFixture(t)
	parent := f.parent(t)
	body := testJPEG(t, 4)
	for name, tc := range map[string]struct {
		tp, view, id string
		body         []byte
		code         string
	}{
		"unknown timepoint": {"day-99", "front", "refuse-aaaaaaa1", body, EINVALID},
		"unknown view":      {"day-1", "back", "refuse-aaaaaaa2", body, EINVALID},
		"clinic's step":     {"baseline", "front", "refuse-aaaaaaa7", body, EINVALID},
		"bad upload id":     {"day-1", "front", "x", body, EINVALID},
		"heic":              {"day-1", "front", "refuse-aaaaaaa3", append([]byte("\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic"), make([]byte, 64)...), ""},
		"truncated":         {"day-1", "front", "refuse-aaaaaaa4", body[:len(body)/2], ""},
		"not an image":      {"day-1", "front", "refuse-aaaaaaa5", []byte("hello, this is text and not a photo at all"), ""},
	} {
		_, _, err := f.upload(t, parent, tc.tp, tc.view, tc.id, tc.body)
		var re *imagestore.RejectError
		switch {
		case err == nil:
			t.Errorf("%s: accepted", name)
		case tc.code != "" && ErrorCode(err) != tc.code:
			t.Errorf("%s: %v, want %s", name, err, tc.code)
		case tc.code == "" && !errors.As(err, &re):
			t.Errorf("%s: %v, want a sanitizer refusal", name, err)
		}
	}
	if err := f.svc.SetStatus(testCtx(t), f.clinician, f.proc.ID, StatusWithdrawn); err != nil {
		t.Fatal(err)
	}
	if _, _, err := f.upload(t, parent, "day-1", "front", "refuse-aaaaaaa6", body); ErrorCode(err) != ECONFLICT {
		t.Errorf("upload to a withdrawn procedure: %v, want conflict", err)
	}
	if n := countRows(t, f.svc, `select count(*) from photos`); n != 0 {
		t.Errorf("refused uploads left %d rows", n)
	}
	if n := countObjects(t, f.store, ""); n != 0 {
		t.Errorf("refused uploads left %d objects", n)
	}
}

func TestAssessAndMessage(t *testing.T) {
	t.Parallel()
	f := newCoreFixture(t)
	ctx := testCtx(t)
	proto, _ := f.svc.protocols.Get("pws-hemoporfin-pdt", 1)
	scale, _ := f.svc.protocols.Scale(proto.Scale)
	level := scale.Levels[2].Key
	a, err := f.svc.Assess(ctx, f.clinician, f.proc.ID, NewAssessment{Timepoint: "week-8", Level: level, Note: "clear fading"})
	if err != nil {
		t.Fatal(err)
	}
	if a.Scale != scale.ID || a.Level != level {
		t.Errorf("assessment = %+v", a)
	}
	if _, err := f.svc.Assess(ctx, f.clinician, f.proc.ID, NewAssessment{Timepoint: "week-8", Level: "superb"}); ErrorCode(err) != EINVALID {
		t.Errorf("unknown level: %v", err)
	}
	if _, err := f.svc.Assess(ctx, f.clinician, f.proc.ID, NewAssessment{Timepoint: "week-99", Level: level}); ErrorCode(err) != EINVALID {
		t.Errorf("unknown timepoint: %v", err)
	}
	parent := f.parent(t)
	p, _, err := f.upload(t, parent, "day-4", "front", "retake-abcdefgh", testJPEG(t, 6))
	if err != nil {
		t.Fatal(err)
	}
	m, err := f.svc.SendMessage(ctx, f.clinician, f.proc.ID, NewMessage{Kind: "retake", PhotoID: p.ID.String(), Body: "Too dark, please retake near a window."})
	if err != nil || m.Timepoint != "day-4" {
		t.Fatalf("retake = %+v, %v", m, err)
	}
	if _, err := f.svc.SendMessage(ctx, f.clinician, f.proc.ID, NewMessage{Kind: "retake", Body: "x"}); ErrorCode(err) != EINVALID {
		t.Errorf("retake without a photo: %v", err)
	}
	if _, err := f.svc.SendMessage(ctx, f.clinician, f.proc.ID, NewMessage{Kind: "shout", Body: "x"}); ErrorCode(err) != EINVALID {
		t.Errorf("unknown kind: %v", err)
	}
	// The family sees the retake request but not the grades.
	v, err := f.svc.ProcedureView(ctx, parent, f.proc.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(v.Messages) != 1 || len(v.Assessments) != 0 {
		t.Errorf("parent view: %d messages, %d assessments; want 1 and 0", len(v.Messages), len(v.Assessments))
	}
	v, _ = f.svc.ProcedureView(ctx, f.clinician, f.proc.ID)
	if len(v.Assessments) != 1 {
		t.Errorf("clinician view: %d assessments, want 1", len(v.Assessments))
	}
}

// A concern photo is graded by its id, with no step; a scheduled photo, another procedure's
// photo, a withdrawn one or a step and a photo at once are refused; a retake request of a
// concern photo names no step.
func TestAssessConcernPhoto(t *testing.T) {
	t.Parallel()
	f := newCoreFixture(t)
	ctx := testCtx(t)
	parent := f.parent(t)
	body := testJPEG(t, 9)
	concern, _, err := f.svc.AddPhoto(ctx, parent, f.proc.ID, PhotoUpload{Kind: PhotoConcern, UploadID: "concern-grade-1"},
		bytes.NewReader(body), int64(len(body)), imagestore.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	sched, _, err := f.upload(t, parent, "day-4", "front", "sched-grade-1", testJPEG(t, 10))
	if err != nil {
		t.Fatal(err)
	}
	a, err := f.svc.Assess(ctx, f.clinician, f.proc.ID, NewAssessment{PhotoID: concern.ID.String(), Level: "none", Note: "a blister"})
	if err != nil || a.PhotoID == nil || *a.PhotoID != concern.ID || a.Timepoint != "" {
		t.Fatalf("grade of the concern photo = %+v, %v", a, err)
	}
	v, err := f.svc.ProcedureView(ctx, f.clinician, f.proc.ID)
	if err != nil || len(v.Assessments) != 1 || v.Assessments[0].PhotoID == nil || *v.Assessments[0].PhotoID != concern.ID {
		t.Fatalf("view's assessments = %+v, %v", v.Assessments, err)
	}
	other, err := f.svc.Enrol(ctx, f.clinician, NewProcedure{PatientID: f.patient.ID.String(), Protocol: "pws-hemoporfin-pdt",
		BodySite: "neck", PerformedAt: "2026-05-04T10:00:00+08:00"})
	if err != nil {
		t.Fatal(err)
	}
	for name, in := range map[string]NewAssessment{
		"scheduled photo":   {PhotoID: sched.ID.String(), Level: "none"},
		"unknown photo":     {PhotoID: uuid.NewString(), Level: "none"},
		"not an id":         {PhotoID: "photo-1", Level: "none"},
		"step and photo":    {Timepoint: "day-4", PhotoID: concern.ID.String(), Level: "none"},
		"neither":           {Level: "none"},
		"unknown level too": {PhotoID: concern.ID.String(), Level: "superb"},
	} {
		if _, err := f.svc.Assess(ctx, f.clinician, f.proc.ID, in); ErrorCode(err) != EINVALID {
			t.Errorf("%s: %v, want invalid", name, err)
		}
	}
	if _, err := f.svc.Assess(ctx, f.clinician, other.ID, NewAssessment{PhotoID: concern.ID.String(), Level: "none"}); ErrorCode(err) != EINVALID {
		t.Errorf("another procedure's photo: %v, want invalid", err)
	}
	if _, err := f.svc.WithdrawPhoto(ctx, f.clinician, f.proc.ID, concern.ID, "sent by mistake"); err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.Assess(ctx, f.clinician, f.proc.ID, NewAssessment{PhotoID: concern.ID.String(), Level: "none"}); ErrorCode(err) != EINVALID {
		t.Errorf("withdrawn photo: %v, want invalid", err)
	}
	m, err := f.svc.SendMessage(ctx, f.clinician, f.proc.ID, NewMessage{Kind: "retake", PhotoID: concern.ID.String(), Body: "Closer, please."})
	if err != nil || m.Timepoint != "" {
		t.Errorf("retake of a concern photo = %+v, %v", m, err)
	}
}

// A row that does not scan is a bug, answered as an internal error, not as "try again later".
func TestScanErrorIsInternal(t *testing.T) {
	t.Parallel()
	f := newCoreFixture(t)
	b := &pgx.Batch{}
	var ids []uuid.UUID
	queueRows(b, &ids, pgx.RowTo[uuid.UUID], `select 'not an id'::text`)
	err := f.svc.sendBatch(testCtx(t), b)
	if !errors.As(err, new(pgx.ScanArgError)) || ErrorCode(err) != EINTERNAL {
		t.Errorf("scan error = %v (code %q), want the scan error as internal", err, ErrorCode(err))
	}
}
