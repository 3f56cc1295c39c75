package web

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/dermfollow/dermfollow/followup"
	"github.com/dermfollow/dermfollow/imagestore"
	"github.com/dermfollow/dermfollow/imagestore/imagetest"
)

// The clinic's pages show instants in the clinic's zone (the fixture's is Asia/Shanghai, UTC+8),
// never in the server's: a grade's time and a link's creation on the timeline, a photo's arrival
// on the comparison and in the photo choices.
func TestClinicPagesShowTimesInTheClinicsZone(t *testing.T) {
	t.Parallel()
	f := newClinicFixture(t)
	ctx := clinicCtx(t)
	proc := uuid.MustParse(f.procedureID)
	grade, err := f.svc.Assess(ctx, f.clinicianActor, proc, followup.NewAssessment{Timepoint: "baseline", Level: "none"})
	if err != nil {
		t.Fatal(err)
	}
	link, err := f.svc.CreateLink(ctx, f.clinicianActor, proc, false)
	if err != nil {
		t.Fatal(err)
	}
	second := f.addPhoto(t, "after-treatment", "front", 5)
	var received time.Time
	if err := f.srv.cfg.Pool.QueryRow(ctx, `select received_at from photos where id = $1`, f.photoID).Scan(&received); err != nil {
		t.Fatal(err)
	}
	sh, err := time.LoadLocation("Asia/Shanghai")
	if err != nil {
		t.Fatal(err)
	}
	local := func(at time.Time) string { return at.In(sh).Format("2006-01-02 15:04") }
	utc := func(at time.Time) string { return at.UTC().Format("2006-01-02 15:04") }

	b := f.client(t)
	b.mustLogin(f.clinician)
	pr := "/procedures/" + f.procedureID
	tl := b.get(pr)
	if tl.status != 200 {
		t.Fatalf("timeline = %d", tl.status)
	}
	for what, at := range map[string]time.Time{"the grade's time": grade.CreatedAt, "the link's creation": link.CreatedAt} {
		if !strings.Contains(tl.body, local(at)) || strings.Contains(tl.body, utc(at)) {
			t.Errorf("timeline: %s is not shown as %s (Shanghai) but as %s (UTC): %v", what, local(at), utc(at), strings.Contains(tl.body, utc(at)))
		}
	}
	if want := "valid until " + link.ExpiresAt.In(sh).Format("2006-01-02"); !strings.Contains(tl.body, want) {
		t.Errorf("timeline lacks %q", want)
	}
	cmp := b.get(pr + "/compare?a=" + f.photoID + "&b=" + second)
	if cmp.status != 200 {
		t.Fatalf("compare = %d", cmp.status)
	}
	if !strings.Contains(cmp.body, "received "+local(received)) || strings.Contains(cmp.body, "received "+utc(received)) {
		t.Errorf("compare: the photo's arrival is not shown as %s (Shanghai)", local(received))
	}
}

// A procedure's date is its day in the clinic's zone: one done at 07:00 in Shanghai is 23:00
// the day before in UTC, and the worklist, the patient page and the timeline's heading say the
// Shanghai day.
func TestClinicPagesShowProcedureDatesInTheClinicsZone(t *testing.T) {
	t.Parallel()
	f := newClinicFixture(t)
	sh, err := time.LoadLocation("Asia/Shanghai")
	if err != nil {
		t.Fatal(err)
	}
	y, m, d := time.Now().In(sh).AddDate(0, 0, -2).Date()
	performed := time.Date(y, m, d, 7, 0, 0, 0, sh)
	e, err := f.svc.Enrol(clinicCtx(t), f.clinicianActor, followup.NewProcedure{PatientID: f.patientID, Protocol: "pws-hemoporfin-pdt",
		BodySite: "back", PerformedAt: performed.Format(time.RFC3339)})
	if err != nil {
		t.Fatal(err)
	}
	want, wrong := performed.Format("2006-01-02"), performed.UTC().Format("2006-01-02")
	b := f.client(t)
	b.mustLogin(f.clinician)
	for _, path := range []string{"/", "/patients/" + f.patientID, "/procedures/" + e.ID.String()} {
		r := b.get(path)
		if r.status != 200 {
			t.Fatalf("%s = %d", path, r.status)
		}
		if !strings.Contains(r.body, want) || strings.Contains(r.body, wrong) {
			t.Errorf("%s: the procedure's date is not %s (its day in Shanghai); shows %s (UTC's): %v", path, want, wrong, strings.Contains(r.body, wrong))
		}
	}
}

// A capture time is an instant, shown in the clinic's zone, where the camera recorded its UTC
// offset; where it did not, it is the camera's own clock, shown as it recorded it. The API says
// which (captured_at_has_offset).
func TestComparisonShowsCaptureTimeAsTheCameraMeantIt(t *testing.T) {
	t.Parallel()
	f := newClinicFixture(t)
	ctx := clinicCtx(t)
	proc := uuid.MustParse(f.procedureID)
	add := func(timepoint, offset string, seed byte) string {
		img := imagetest.PhoneJPEGTaken(320, 240, seed, 1, "2026:05:04 10:30:00", offset)
		p, _, err := f.svc.AddPhoto(ctx, f.clinicianActor, proc, followup.PhotoUpload{Timepoint: timepoint, View: "front",
			UploadID: "test-" + uuid.NewString()[:12]}, bytes.NewReader(img), int64(len(img)), imagestore.Limits{})
		if err != nil {
			t.Fatal(err)
		}
		return p.ID.String()
	}
	// 10:30 at UTC-5 is 23:30 in Shanghai; 10:30 with no offset is 10:30 on the camera's clock.
	withOffset, without := add("after-treatment", "-05:00", 7), add("baseline", "", 8)
	b := f.client(t)
	b.mustLogin(f.clinician)
	cmp := b.get("/procedures/" + f.procedureID + "/compare?a=" + withOffset + "&b=" + without)
	if cmp.status != 200 {
		t.Fatalf("compare = %d", cmp.status)
	}
	for _, want := range []string{"taken 2026-05-04 23:30", "taken 2026-05-04 10:30"} {
		if !strings.Contains(cmp.body, want) {
			t.Errorf("compare lacks %q", want)
		}
	}
	var rec struct {
		Photos []struct {
			ID     string `json:"id"`
			Offset bool   `json:"captured_at_has_offset"`
		} `json:"photos"`
	}
	r := b.get("/api/v1/procedures/" + f.procedureID)
	if err := json.Unmarshal([]byte(r.body), &rec); r.status != 200 || err != nil {
		t.Fatalf("procedure = %d, %v", r.status, err)
	}
	got := map[string]bool{}
	for _, p := range rec.Photos {
		got[p.ID] = p.Offset
	}
	if off, ok := got[withOffset]; !ok || !off {
		t.Errorf("the photo with an offset: captured_at_has_offset %v (listed %v)", off, ok)
	}
	if off, ok := got[without]; !ok || off {
		t.Errorf("the photo without: captured_at_has_offset %v (listed %v)", off, ok)
	}
}
