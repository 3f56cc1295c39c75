package export

import (
	"bytes"
	"encoding/json"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/dermfollow/dermfollow/followup"
	"github.com/dermfollow/dermfollow/followup/conversation"
	"github.com/dermfollow/dermfollow/followup/thumbnails"
	"github.com/dermfollow/dermfollow/imagestore"
	"github.com/dermfollow/dermfollow/imagestore/imagetest"
)

// concernStudy is one consenting patient with two scheduled photos whose quality the
// thumbnailer measured, and a family message with a concern photo sent after (not measured
// yet). The message's text is a secret of the study.
func concernStudy(t *testing.T) (*exportStudy, uuid.UUID, string) {
	t.Helper()
	ctx := testCtx(t)
	s := newExportStudy(t, nil)
	_, proc := s.enrolPatient(t, "Lina Zhang", "MRN-7781", "2025-06-01", true, "2026-04-20", 2)
	th, err := thumbnails.New(thumbnails.Config{Core: s.svc.core, Pool: s.svc.pool})
	if err != nil {
		t.Fatal(err)
	}
	if n, err := th.Make(ctx, 10); err != nil || n != 2 {
		t.Fatalf("thumbnails made: %d, %v", n, err)
	}
	s.clock.Set(time.Date(2026, 4, 22, 4, 0, 0, 0, time.UTC)) // day 2, noon in Shanghai
	l, err := s.svc.core.CreateLink(ctx, s.clinician, proc.ID, false)
	if err != nil {
		t.Fatal(err)
	}
	parent, err := s.svc.core.ResolveLink(ctx, strings.TrimPrefix(l.URL, "https://followup.example/p/"))
	if err != nil {
		t.Fatal(err)
	}
	body := imagetest.PhoneJPEG(96, 64, 42, 1)
	photo, _, err := s.svc.core.AddPhoto(ctx, parent, proc.ID, followup.PhotoUpload{Kind: followup.PhotoConcern, UploadID: "concern-photo-1"},
		bytes.NewReader(body), int64(len(body)), imagestore.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	conv, err := conversation.New(conversation.Config{Pool: s.pool, Now: s.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	const text = "MESSAGE-SECRET a blister came up on her cheek"
	if _, _, err := conv.Post(ctx, parent, conversation.Post{Body: text, PhotoIDs: []uuid.UUID{photo.ID}}); err != nil {
		t.Fatal(err)
	}
	s.secrets = append(s.secrets, "MESSAGE-SECRET", "blister", photo.ID.String())
	s.clock.Set(time.Date(2026, 5, 6, 9, 0, 0, 0, time.UTC))
	return s, photo.ID, text
}

// mustHoldNoSecret fails if the archive's bytes hold any of the study's secrets.
func (s *exportStudy) mustHoldNoSecret(t *testing.T, b []byte) {
	t.Helper()
	for _, secret := range s.secrets {
		if secret != "" && bytes.Contains(b, []byte(secret)) {
			t.Errorf("the archive contains %q", secret)
		}
	}
}

// manifestJSON is manifest.json's header and rows.
type manifestJSON struct {
	IncludeUnscheduled bool             `json:"include_unscheduled"`
	Rows               []map[string]any `json:"rows"`
}

func readManifestJSON(t *testing.T, a archiveContents) manifestJSON {
	t.Helper()
	var mj manifestJSON
	if err := json.Unmarshal(a.files["manifest.json"], &mj); err != nil {
		t.Fatalf("manifest.json: %v", err)
	}
	return mj
}

// An export holds the scheduled photos only, unless the researcher asks for the unscheduled
// ones: then the concern photo is in it, marked unscheduled, with no timepoint, view or grade,
// and nothing of the message it came with.
func TestExportUnscheduledPhotosOnlyWhenAsked(t *testing.T) {
	t.Parallel()
	s, _, _ := concernStudy(t)
	ctx := testCtx(t)

	e, b := s.runExport(t, s.svc, studyExport)
	s.mustHoldNoSecret(t, b)
	a := readArchive(t, b)
	if e.IncludeUnscheduled || len(a.manifest) != 2 || e.Photos != 2 {
		t.Fatalf("the default export has %d rows (%+v), want the 2 scheduled photos", len(a.manifest), e)
	}
	for _, row := range a.manifest {
		if row["unscheduled"] != "false" || row["timepoint"] == "" {
			t.Errorf("a default export's row %v", row)
		}
	}
	if mj := readManifestJSON(t, a); mj.IncludeUnscheduled || len(mj.Rows) != 2 {
		t.Errorf("manifest.json = %s", a.files["manifest.json"])
	}
	if !strings.Contains(string(a.files["README.txt"]), "Unscheduled photos: not included") {
		t.Errorf("README.txt does not say the unscheduled photos are left out:\n%s", a.files["README.txt"])
	}

	in := studyExport
	in.IncludeUnscheduled = true
	e, b = s.runExport(t, s.svc, in)
	s.mustHoldNoSecret(t, b)
	if got, err := s.svc.Get(ctx, s.researcher, e.ID); err != nil || !got.IncludeUnscheduled {
		t.Fatalf("the export does not record the choice: %+v, %v", got, err)
	}
	a = readArchive(t, b)
	if len(a.manifest) != 3 || e.Photos != 3 {
		t.Fatalf("with unscheduled photos the export has %d rows, want 3", len(a.manifest))
	}
	last := a.manifest[2] // after the series' scheduled photos
	subject := a.manifest[0]["subject"]
	if last["unscheduled"] != "true" || last["timepoint"] != "" || last["view"] != "" || last["grade_level"] != "" ||
		last["day"] != "2" || last["file"] != "subjects/"+subject+"/unscheduled_d2.jpg" || last["subject"] != subject {
		t.Errorf("the concern photo's row %v", last)
	}
	if _, ok := a.files[last["file"]]; !ok {
		t.Errorf("the archive has no %s", last["file"])
	}
	for _, row := range a.manifest[:2] {
		if row["unscheduled"] != "false" {
			t.Errorf("a scheduled photo's row %v", row)
		}
	}
	mj := readManifestJSON(t, a)
	if !mj.IncludeUnscheduled || len(mj.Rows) != 3 || mj.Rows[2]["unscheduled"] != true || mj.Rows[0]["unscheduled"] != false {
		t.Errorf("manifest.json = %s", a.files["manifest.json"])
	}
	if !strings.Contains(string(a.files["README.txt"]), "Unscheduled photos: included") {
		t.Errorf("README.txt does not say the unscheduled photos are in:\n%s", a.files["README.txt"])
	}
}

// The manifest carries each photo's capture quality where the thumbnailer measured it (the
// same values as the photo's record), and empty cells (null in JSON) where it has not yet.
func TestExportManifestQualityColumns(t *testing.T) {
	t.Parallel()
	s, concern, _ := concernStudy(t)
	ctx := testCtx(t)
	in := studyExport
	in.IncludeUnscheduled = true
	_, b := s.runExport(t, s.svc, in)
	a := readArchive(t, b)
	mj := readManifestJSON(t, a)
	if len(a.manifest) != 3 || len(mj.Rows) != 3 {
		t.Fatalf("manifest has %d rows (JSON %d), want 3", len(a.manifest), len(mj.Rows))
	}
	// The measures the thumbnailer stored, in upload order: the series' order here (baseline,
	// then day 1).
	rows, err := s.pool.Query(ctx, `select quality from photos where kind = 'scheduled' and clinic_id = $1 order by received_at`, s.clinic.ID)
	if err != nil {
		t.Fatal(err)
	}
	var stored []imagestore.Quality
	for rows.Next() {
		var q imagestore.Quality
		if err := rows.Scan(&q); err != nil {
			t.Fatal(err)
		}
		stored = append(stored, q)
	}
	if rows.Err() != nil || len(stored) != 2 {
		t.Fatalf("stored measures %v, %v", stored, rows.Err())
	}
	for i, q := range stored {
		row, js := a.manifest[i], mj.Rows[i]
		if q.Sharpness <= 0 {
			t.Fatalf("the thumbnailer measured no sharpness: %+v", q)
		}
		for col, want := range map[string]float64{"sharpness": q.Sharpness, "mean_luminance": q.MeanLuminance,
			"clipped_highlights": q.ClippedHighlights, "clipped_shadows": q.ClippedShadows} {
			if got, err := strconv.ParseFloat(row[col], 64); err != nil || got != want {
				t.Errorf("row %d: CSV %s = %q, want %v", i, col, row[col], want)
			}
			if js[col] != want {
				t.Errorf("row %d: JSON %s = %v, want %v", i, col, js[col], want)
			}
		}
		if row["flags"] != strings.Join(q.Flags, ";") {
			t.Errorf("row %d: flags %q, want %v", i, row["flags"], q.Flags)
		}
		if flags, ok := js["flags"].([]any); !ok || len(flags) != len(q.Flags) {
			t.Errorf("row %d: JSON flags %v, want %v", i, js["flags"], q.Flags)
		}
	}
	// The concern photo has no thumbnails yet: unknown, not zero.
	var measured bool
	if err := s.pool.QueryRow(ctx, `select quality is not null from photos where id = $1`, concern).Scan(&measured); err != nil || measured {
		t.Fatalf("the concern photo was measured (%v, %v): the test needs one that was not", measured, err)
	}
	row, js := a.manifest[2], mj.Rows[2]
	for _, col := range []string{"sharpness", "mean_luminance", "clipped_highlights", "clipped_shadows", "flags"} {
		if v, ok := row[col]; !ok || v != "" {
			t.Errorf("unmeasured photo: CSV %s = %q (present %v), want an empty cell", col, v, ok)
		}
		if v, ok := js[col]; !ok || v != nil {
			t.Errorf("unmeasured photo: JSON %s = %v (present %v), want null", col, v, ok)
		}
	}
}
