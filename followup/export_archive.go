package followup

import (
	"archive/zip"
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/csv"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/dermfollow/dermfollow/imagestore"
)

// The archive: subjects/<pseudonym>/<timepoint>_<view>_d<day>.<ext>, then manifest.csv,
// manifest.json and README.txt. Entries are stored (JPEG does not compress) with a fixed
// timestamp. The archive is streamed to the store as it is written (export_job.go), never held
// whole in memory or on disk. Photos are fetched, checked, sanitized and hashed by a few
// workers ahead of the writer, which appends them strictly in manifest order; what is held
// ahead is bounded in count (exportAhead) and in bytes (exportBudget), so memory stays bounded
// whatever the size of the export and of its photos.

// ExportMethod names the de-identification method and its version, as the archive states it.
const ExportMethod = "dermfollow-deid-v1"

const (
	// exportWorkers fetch and prepare photos at once: enough to keep the store busy and both
	// cores of a small server working while the writer appends and the archive uploads.
	exportWorkers = 3
	// exportAhead bounds how many photos are held ahead of the writer (in flight or ready):
	// enough to smooth out photos of uneven cost; the store takes the archive in parts while
	// the writer goes on (S3: one part fills while the previous one uploads).
	exportAhead = 8
	// exportBudget bounds the bytes of the photos held in memory ahead of the writer, whatever
	// their count. It is made of exportChunk-sized chunks reused from photo to photo, so that
	// reading gigabytes of photos does not make gigabytes of garbage for the collector.
	exportBudget = 32 << 20
	exportChunk  = imagestore.ChunkSize
	// exportInMemory is the largest photo read into memory (every photo within the default
	// upload limit of 30 MiB); a larger one (the limit may have been raised since it was
	// uploaded) is spooled to an unlinked temp file, outside the budget.
	exportInMemory = exportBudget - exportChunk
)

// zipTime is every entry's timestamp: a constant, so no real date is in the archive.
var zipTime = time.Date(1980, 1, 1, 0, 0, 0, 0, time.UTC)

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
	AgeMonths       *int   `json:"age_in_months,omitempty"`
}

var manifestColumns = []string{"file", "subject", "series", "protocol", "protocol_version", "procedure_kind", "body_site",
	"timepoint", "day", "view", "grade_scale", "grade_level", "grade_value", "width", "height", "orientation", "sha256",
	"recognizable_features"}

func (r manifestRow) csv(withAge bool) []string {
	grade := ""
	if r.GradeValue != nil {
		grade = strconv.Itoa(*r.GradeValue)
	}
	out := []string{r.File, r.Subject, r.Series, r.Protocol, strconv.Itoa(r.ProtocolVersion), r.ProcedureKind, r.BodySite,
		r.Timepoint, strconv.Itoa(r.Day), r.View, r.GradeScale, r.GradeLevel, grade, strconv.Itoa(r.Width),
		strconv.Itoa(r.Height), strconv.Itoa(r.Orientation), r.SHA256, strconv.FormatBool(r.Recognizable)}
	if withAge {
		age := ""
		if r.AgeMonths != nil {
			age = strconv.Itoa(*r.AgeMonths)
		}
		out = append(out, age)
	}
	return out
}

// archiveResult describes a finished archive: its size and SHA-256 as written, and counts.
type archiveResult struct {
	size     int64
	sum      []byte
	subjects int
	photos   int
	excluded int
}

// prepared is a photo fetched, sanitized, verified and hashed, ready to append, or why it is
// left out.
type prepared struct {
	spool    *os.File // the photo, when it is not in memory
	clean    *imagestore.Clean
	sum      string // SHA-256 of the clean file, hex
	excluded string // reason, when the photo is left out
	err      error  // the export cannot go on
}

func (p *prepared) close() {
	if p.spool != nil {
		p.spool.Close()
	}
}

// queuedPhoto is one photo handed to a worker, in manifest order; the writer takes them in
// turn and gives its memory back once the photo is in the archive.
type queuedPhoto struct {
	item   exportItem
	done   chan prepared
	mem    *imagestore.ChunkPool
	chunks [][]byte // the photo's bytes, when it is read into memory
}

func (q *queuedPhoto) release() {
	if q.mem != nil {
		q.mem.Give(q.chunks)
		q.mem, q.chunks = nil, nil
	}
}

// chunksFor is how many chunks hold a photo of size bytes and the one byte more that shows
// a changed object; 0 when the photo is spooled instead.
func chunksFor(size int64) int {
	if size > exportInMemory {
		return 0
	}
	return int((size + 1 + exportChunk - 1) / exportChunk)
}

// writeArchive writes the archive of items to w; progress is called after each photo.
func (s *Service) writeArchive(ctx context.Context, job exportJob, items []exportItem, w io.Writer, progress func(done int) error) (res archiveResult, err error) {
	// Subjects in pseudonym order, each series in time order: a layout that reveals nothing of
	// the database's order.
	slices.SortStableFunc(items, func(a, b exportItem) int {
		return cmpAll(strings.Compare(a.row.Subject, b.row.Subject), a.performedAt.Compare(b.performedAt),
			strings.Compare(a.row.Series, b.row.Series), a.position-b.position, strings.Compare(a.row.View, b.row.View),
			a.received.Compare(b.received))
	})
	// Large writes to the pipe: each write is a hand-over to the uploading goroutine.
	bw := bufio.NewWriterSize(w, 256<<10)
	h := sha256.New()
	counter := &countWriter{w: io.MultiWriter(bw, h)}
	zw := zip.NewWriter(counter)

	ctx, cancel := context.WithCancel(ctx)
	queue := make(chan *queuedPhoto, exportAhead)
	go s.feedExport(ctx, items, queue)
	// However this returns, stop the feeder and wait for every worker, closing what they
	// prepared, so that no goroutine outlives the export and every spooled photo is closed.
	defer func() {
		cancel()
		for q := range queue {
			p := <-q.done
			p.close()
			q.release()
		}
	}()
	manifest, err := newManifestSpool(job.ageInMonths)
	if err != nil {
		return res, err
	}
	defer manifest.close()
	used := map[string]bool{}
	subjects := map[string]bool{}
	reasons := map[string]int{}
	done := 0
	for done < len(items) {
		q, ok := <-queue
		if !ok {
			return res, context.Cause(ctx) // the feeder stopped early: ctx ended
		}
		p := <-q.done
		err := s.appendPhoto(zw, manifest, used, q.item, &p)
		p.close()
		q.release()
		if err != nil {
			return res, err
		}
		switch {
		case p.excluded != "":
			reasons[p.excluded]++
			res.excluded++
			s.log.Warn("export: photo left out", "photo", q.item.photoID.String(), "reason", p.excluded)
		default:
			subjects[q.item.row.Subject] = true
			res.photos++
		}
		done++
		if err := progress(done); err != nil {
			return res, err
		}
	}
	res.subjects = len(subjects)
	if err := manifest.writeTo(zw, job, res, reasons); err != nil {
		return res, err
	}
	if _, err := addEntry(zw, "README.txt", strings.NewReader(readme(job, res, reasons))); err != nil {
		return res, err
	}
	if err := zw.Close(); err != nil {
		return res, err
	}
	if err := bw.Flush(); err != nil {
		return res, err
	}
	res.size, res.sum = counter.n, h.Sum(nil)
	return res, nil
}

// appendPhoto adds a prepared photo to the archive and its row to the manifest; a photo left
// out adds nothing.
func (s *Service) appendPhoto(zw *zip.Writer, manifest *manifestSpool, used map[string]bool, it exportItem, p *prepared) error {
	if p.err != nil {
		return p.err
	}
	if p.excluded != "" {
		return nil
	}
	row := it.row
	row.File = uniqueName(used, fmt.Sprintf("subjects/%s/%s_%s_d%d", row.Subject, row.Timepoint, row.View, row.Day), p.clean.Format.Ext())
	if p.clean.Meta.Width > 0 {
		row.Width, row.Height = p.clean.Meta.Width, p.clean.Meta.Height
	}
	if err := copyEntry(zw, row.File, p.clean.NewReader()); err != nil {
		return err
	}
	row.SHA256 = p.sum
	return manifest.add(row)
}

// feedExport hands the items, in order, to at most exportWorkers workers at a time and queues
// them for the writer, holding at most exportAhead of them and exportBudget bytes of photos
// ahead of it. Items take their memory in order and the writer gives it back in order, so the
// photo the writer waits for has always got its memory. When ctx ends it stops; it closes
// queue when it is done, after which every queued item's result is (or will be) sent.
func (s *Service) feedExport(ctx context.Context, items []exportItem, queue chan<- *queuedPhoto) {
	defer close(queue)
	mem := imagestore.NewChunkPool(exportBudget)
	workers := make(chan struct{}, exportWorkers)
	for _, it := range items {
		chunks, err := mem.Take(ctx, chunksFor(it.size))
		if err != nil {
			return
		}
		q := &queuedPhoto{item: it, done: make(chan prepared, 1), mem: mem, chunks: chunks}
		select {
		case queue <- q:
		case <-ctx.Done():
			return
		}
		select {
		case workers <- struct{}{}:
		case <-ctx.Done():
			q.done <- prepared{err: context.Cause(ctx)}
			return
		}
		go func() {
			defer func() { <-workers }()
			q.done <- s.preparePhoto(ctx, it, chunks)
		}()
	}
}

func cmpAll(cs ...int) int {
	for _, c := range cs {
		if c != 0 {
			return c
		}
	}
	return 0
}

// uniqueName returns base+ext, or base_2+ext, base_3+ext... for a second photo of the same
// timepoint, view and day.
func uniqueName(used map[string]bool, base, ext string) string {
	name := base + ext
	for n := 2; used[name]; n++ {
		name = fmt.Sprintf("%s_%d%s", base, n, ext)
	}
	used[name] = true
	return name
}

// addEntry stores r as an uncompressed entry with the fixed timestamp and returns its SHA-256.
func addEntry(zw *zip.Writer, name string, r io.Reader) (string, error) {
	h := sha256.New()
	if err := copyEntry(zw, name, io.TeeReader(r, h)); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// copyEntry stores r as an uncompressed entry with the fixed timestamp.
func copyEntry(zw *zip.Writer, name string, r io.Reader) error {
	w, err := zw.CreateHeader(&zip.FileHeader{Name: name, Method: zip.Store, Modified: zipTime})
	if err != nil {
		return err
	}
	_, err = io.Copy(w, r)
	return err
}

// preparePhoto reads a stored photo (into chunks, the memory reserved for it, or else into a
// temp file), checks it is the photo that was stored, sanitizes it again, verifies and hashes
// the result. A photo that is missing, changed or fails the sanitizer or the verifier is left
// out (excluded); a store that cannot be reached stops the export, so that no photo is
// silently missing for a passing reason.
func (s *Service) preparePhoto(ctx context.Context, it exportItem, chunks [][]byte) (p prepared) {
	if err := ctx.Err(); err != nil {
		return prepared{err: err}
	}
	r, _, err := s.store.Open(ctx, it.objectKey)
	if errors.Is(err, imagestore.ErrNotExist) {
		return prepared{excluded: "missing"}
	}
	if err != nil {
		return prepared{err: &Error{Code: EUNAVAILABLE, Message: "the photo store is unavailable", Err: err}}
	}
	defer r.Close()
	var src io.ReaderAt
	var spool *os.File
	defer func() {
		if p.clean == nil && spool != nil {
			spool.Close()
		}
	}()
	h := sha256.New()
	var n int64
	// One byte more than the row says: a larger object is a changed one, never read whole.
	body := io.LimitReader(r, it.size+1)
	if int64(len(chunks))*exportChunk > it.size {
		f := imagestore.NewChunks(chunks)
		n, err = f.ReadFrom(io.TeeReader(body, h))
		src = f
	} else {
		if spool, err = os.CreateTemp("", "dermfollow-export-photo-*"); err != nil {
			return prepared{err: err}
		}
		os.Remove(spool.Name())
		n, err = io.Copy(io.MultiWriter(spool, h), body)
		src = spool
	}
	if errors.Is(err, imagestore.ErrNotExist) {
		return prepared{excluded: "missing"}
	}
	if err != nil {
		return prepared{err: &Error{Code: EUNAVAILABLE, Message: "the photo store is unavailable", Err: err}}
	}
	if n != it.size || !bytes.Equal(h.Sum(nil), it.sha256) {
		return prepared{excluded: "changed"}
	}
	lim := imagestore.DefaultLimits()
	lim.MaxBytes = max(lim.MaxBytes, n) // the upload limit may have been raised since
	clean, err := imagestore.Sanitize(src, n, lim)
	if err != nil {
		var re *imagestore.RejectError
		if errors.As(err, &re) && re.Reason == imagestore.ReasonUnclean {
			return prepared{excluded: "verifier"}
		}
		if errors.As(err, &re) {
			return prepared{excluded: "sanitizer"}
		}
		return prepared{err: err}
	}
	// Sanitize has run imagestore.Verify, the independent verifier, over exactly the bytes
	// clean.NewReader gives (src is ours alone and does not change), and refused them
	// (ReasonUnclean, left out above) if anything outside the allowlist remained.
	// The manifest's SHA-256 is taken here, by the worker, to spare the writer a pass. A
	// stored photo was sanitized on upload, so the sanitizer usually gives its bytes back
	// unchanged: then it is the SHA-256 just checked, and a comparison (far cheaper than a
	// hash) stands in for a second hash.
	if clean.Size() == n {
		same, err := sameBytes(clean.NewReader(), io.NewSectionReader(src, 0, n))
		if err != nil {
			return prepared{err: err}
		}
		if same {
			return prepared{spool: spool, clean: clean, sum: hex.EncodeToString(it.sha256)}
		}
	}
	sum := sha256.New()
	if _, err := io.Copy(sum, clean.NewReader()); err != nil {
		return prepared{err: err}
	}
	return prepared{spool: spool, clean: clean, sum: hex.EncodeToString(sum.Sum(nil))}
}

// sameBytes reports whether a and b give the same bytes.
func sameBytes(a, b io.Reader) (bool, error) {
	var bufA, bufB [32 << 10]byte
	for {
		na, errA := io.ReadFull(a, bufA[:])
		nb, errB := io.ReadFull(b, bufB[:])
		endA := errA == io.EOF || errA == io.ErrUnexpectedEOF
		endB := errB == io.EOF || errB == io.ErrUnexpectedEOF
		switch {
		case errA != nil && !endA:
			return false, errA
		case errB != nil && !endB:
			return false, errB
		case na != nb || !bytes.Equal(bufA[:na], bufB[:nb]):
			return false, nil
		case endA || endB:
			return endA == endB, nil
		}
	}
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
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
		"method": ExportMethod, "protocol": job.protocol, "views": job.views, "subjects": res.subjects,
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
Subjects: %d
Photos: %d
Photos left out: %d`, job.protocol, strings.Join(job.views, ", "), res.subjects, res.photos, res.excluded)
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
  manifest.csv, manifest.json: one row per photo: file, subject, series, protocol and
  version, procedure kind, body site, timepoint, day, view, grade (scale, level and value of
  the latest assessment of that timepoint), width, height, orientation (EXIF value, 1 =
  upright: how to turn the image for display, as recorded at upload; JPEG and PNG files
  carry it too, WebP files do not), SHA-256 of the file in this archive,
  recognizable_features.

CAVEAT: photos can identify a person by themselves. Photos of the face, neck and scalp
(recognizable_features = true) show recognisable features and remain identifiable; treat the
whole archive as personal data under your ethics approval and data-protection agreement, and
never publish recognisable photos without the family's specific consent.
`, ExportMethod)
	return b.String()
}
