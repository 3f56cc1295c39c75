package export

import (
	"archive/zip"
	"bytes"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"strconv"
	"strings"

	"github.com/dermfollow/dermfollow/imagestore"
)

// manifestRow is one photo of the archive. Nothing in it identifies the patient beyond the
// photo: a keyed pseudonym, day offsets and controlled vocabularies only.
type manifestRow struct {
	File            string `json:"file"`
	Subject         string `json:"subject"`
	Series          string `json:"series"` // the procedure: a subject may have several
	Protocol        string `json:"protocol"`
	ProtocolVersion int    `json:"protocol_version"`
	ProcedureKind   string `json:"procedure_kind"`
	BodySite        string `json:"body_site"`
	Timepoint       string `json:"timepoint"`
	Day             int    `json:"day"`
	View            string `json:"view"`
	GradeScale      string `json:"grade_scale"`
	GradeLevel      string `json:"grade_level"`
	GradeValue      *int   `json:"grade_value"`
	Width           int    `json:"width"`
	Height          int    `json:"height"`
	Orientation     int    `json:"orientation"`
	SHA256          string `json:"sha256"`
	Recognizable    bool   `json:"recognizable_features"`
	// Unscheduled: a photo the family sent outside the schedule (a concern), with no
	// timepoint, view or grade.
	Unscheduled bool `json:"unscheduled"`
	// The capture quality the thumbnailer measured (imagestore.Quality); null (CSV: empty)
	// where it is not known yet.
	Sharpness         *float64 `json:"sharpness"`
	MeanLuminance     *float64 `json:"mean_luminance"`
	ClippedHighlights *float64 `json:"clipped_highlights"`
	ClippedShadows    *float64 `json:"clipped_shadows"`
	Flags             []string `json:"flags"` // CSV: separated by ";"
	AgeMonths         *int     `json:"age_in_months,omitempty"`
}

// setQuality fills the quality columns from a photo's measures (nil: not measured yet).
func (r *manifestRow) setQuality(q *imagestore.Quality) {
	if q == nil {
		return
	}
	r.Sharpness, r.MeanLuminance = &q.Sharpness, &q.MeanLuminance
	r.ClippedHighlights, r.ClippedShadows = &q.ClippedHighlights, &q.ClippedShadows
	r.Flags = q.Flags
	if r.Flags == nil {
		r.Flags = []string{}
	}
}

var manifestColumns = []string{"file", "subject", "series", "protocol", "protocol_version", "procedure_kind", "body_site",
	"timepoint", "day", "view", "grade_scale", "grade_level", "grade_value", "width", "height", "orientation", "sha256",
	"recognizable_features", "unscheduled", "sharpness", "mean_luminance", "clipped_highlights", "clipped_shadows", "flags"}

func (r manifestRow) csv(withAge bool) []string {
	grade := ""
	if r.GradeValue != nil {
		grade = strconv.Itoa(*r.GradeValue)
	}
	out := []string{r.File, r.Subject, r.Series, r.Protocol, strconv.Itoa(r.ProtocolVersion), r.ProcedureKind, r.BodySite,
		r.Timepoint, strconv.Itoa(r.Day), r.View, r.GradeScale, r.GradeLevel, grade, strconv.Itoa(r.Width),
		strconv.Itoa(r.Height), strconv.Itoa(r.Orientation), r.SHA256, strconv.FormatBool(r.Recognizable),
		strconv.FormatBool(r.Unscheduled), measure(r.Sharpness), measure(r.MeanLuminance), measure(r.ClippedHighlights),
		measure(r.ClippedShadows), strings.Join(r.Flags, ";")}
	if withAge {
		age := ""
		if r.AgeMonths != nil {
			age = strconv.Itoa(*r.AgeMonths)
		}
		out = append(out, age)
	}
	return out
}

// measure is a quality measure's CSV cell: empty when unknown, else as JSON writes it.
func measure(v *float64) string {
	if v == nil {
		return ""
	}
	return strconv.FormatFloat(*v, 'g', -1, 64)
}

// manifestSpool collects the manifest rows in temp files (CSV, and JSON objects one per line)
// so that a large export does not hold its manifest in memory.
type manifestSpool struct {
	withAge   bool
	csvFile   *os.File
	csv       *csv.Writer
	jsonFile  *os.File
	jsonCount int
}

func newManifestSpool(withAge bool) (*manifestSpool, error) {
	m := &manifestSpool{withAge: withAge}
	var err error
	if m.csvFile, err = os.CreateTemp("", "dermfollow-export-manifest-*"); err != nil {
		return nil, err
	}
	os.Remove(m.csvFile.Name())
	if m.jsonFile, err = os.CreateTemp("", "dermfollow-export-manifest-*"); err != nil {
		m.csvFile.Close()
		return nil, err
	}
	os.Remove(m.jsonFile.Name())
	m.csv = csv.NewWriter(m.csvFile)
	header := slices.Clone(manifestColumns)
	if withAge {
		header = append(header, "age_in_months")
	}
	return m, m.csv.Write(header)
}

func (m *manifestSpool) close() {
	m.csvFile.Close()
	m.jsonFile.Close()
}

func (m *manifestSpool) add(r manifestRow) error {
	if err := m.csv.Write(r.csv(m.withAge)); err != nil {
		return err
	}
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	if m.jsonCount > 0 {
		b = append([]byte(",\n"), b...)
	}
	m.jsonCount++
	_, err = m.jsonFile.Write(b)
	return err
}

// writeTo appends manifest.csv and manifest.json to the archive.
func (m *manifestSpool) writeTo(zw *zip.Writer, job exportJob, res archiveResult, reasons map[string]int) error {
	m.csv.Flush()
	if err := m.csv.Error(); err != nil {
		return err
	}
	if _, err := m.csvFile.Seek(0, 0); err != nil {
		return err
	}
	if _, err := addEntry(zw, "manifest.csv", m.csvFile); err != nil {
		return err
	}
	head, err := json.Marshal(map[string]any{
		"method": Method, "protocol": job.protocol, "views": job.views, "include_unscheduled": job.unscheduled, "subjects": res.subjects,
		"photos": res.photos, "excluded": res.excluded, "excluded_reasons": reasons,
		"consent_rule": "patients with research consent recorded when the export ran",
		"day_zero":     "the day of the procedure in the clinic's time zone",
	})
	if err != nil {
		return err
	}
	if _, err := m.jsonFile.Seek(0, 0); err != nil {
		return err
	}
	// {"...header fields...", "rows": [ spooled rows ]}
	r := io.MultiReader(bytes.NewReader(head[:len(head)-1]), strings.NewReader(`,"rows":[`+"\n"), m.jsonFile,
		strings.NewReader("\n]}\n"))
	_, err = addEntry(zw, "manifest.json", r)
	return err
}

func readme(job exportJob, res archiveResult, reasons map[string]int) string {
	var b strings.Builder
	fmt.Fprintf(&b, `Dermfollow research export
==========================

Protocol: %s
Views: %s
Unscheduled photos: %s
Subjects: %d
Photos: %d
Photos left out: %d`, job.protocol, strings.Join(job.views, ", "), unscheduledNote(job.unscheduled), res.subjects, res.photos, res.excluded)
	if res.excluded > 0 {
		var parts []string
		for _, k := range slices.Sorted(maps.Keys(reasons)) {
			parts = append(parts, fmt.Sprintf("%s: %d", k, reasons[k]))
		}
		fmt.Fprintf(&b, " (%s)", strings.Join(parts, ", "))
	}
	fmt.Fprintf(&b, `

De-identification method: %s

Who is included
  Only patients whose research consent was recorded when this export ran (not when it was
  requested). Withdrawn photos and withdrawn procedures are not included.

What was removed
  Names, birth dates, medical record numbers, guardian contact data, free-text notes (of
  assessments and messages), clinician names, original file names, upload and capture times,
  and every calendar date. Photos were passed through the sanitizer again on the way out: all
  metadata outside a small allowlist (EXIF other than orientation, GPS, XMP, IPTC, comments,
  embedded thumbnails, trailers such as motion-photo video) is removed, losslessly, and the
  result was checked by an independent verifier. A photo that failed either was left out and
  is counted above; no photo is included half-clean.

What replaces it
  subject: a keyed pseudonym (HMAC-SHA256 of the clinic and patient ids under a server-side
  key that is never exported; truncated to 64 bits). The same patient has the same subject
  in every export of this clinic made with the same server key, so series can be joined;
  the pseudonym cannot be reversed or recomputed without the key.
  series: the same for the procedure (a subject may have several).
  day: whole days from the procedure (day 0 is the day of the procedure in the clinic's time
  zone), from the capture time where the phone recorded a plausible one, else the upload.
  age_in_months (only if asked for): age in whole months on the day of the procedure.

Files
  subjects/<subject>/<timepoint>_<view>_d<day>.<ext>   (a second photo of the same
  timepoint and view has a suffix _2, _3, ...)
  subjects/<subject>/unscheduled_d<day>.<ext>   (only when asked for: photos the family sent
  outside the schedule, about a concern; what they wrote with them is not exported)
  manifest.csv, manifest.json: one row per photo: file, subject, series, protocol and
  version, procedure kind, body site, timepoint, day, view, grade (scale, level and value of
  the latest assessment of that timepoint), width, height, orientation (EXIF value, 1 =
  upright: how to turn the image for display, as recorded at upload; JPEG and PNG files
  carry it too, WebP files do not), SHA-256 of the file in this archive,
  recognizable_features, unscheduled (true: a photo outside the schedule, with no timepoint,
  view or grade), and the capture quality measured at upload where known (empty or null
  otherwise): sharpness (variance of the Laplacian of the luminance at 512 px on the long
  side), mean_luminance (0-1), clipped_highlights and clipped_shadows (shares 0-1) and flags
  (blurry, dark, overexposed; separated by ";" in the CSV).

CAVEAT: photos can identify a person by themselves. Photos of the face, neck and scalp
(recognizable_features = true) show recognisable features and remain identifiable; treat the
whole archive as personal data under your ethics approval and data-protection agreement, and
never publish recognisable photos without the family's specific consent.
`, Method)
	return b.String()
}

func unscheduledNote(included bool) string {
	if included {
		return "included (unscheduled = true in the manifest)"
	}
	return "not included"
}
