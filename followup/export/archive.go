package export

import (
	"archive/zip"
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/dermfollow/dermfollow/imagestore"
)

// The archive: subjects/<pseudonym>/<timepoint>_<view>_d<day>.<ext>, then manifest.csv,
// manifest.json and README.txt. Entries are stored (JPEG does not compress) with a fixed
// timestamp. The archive is streamed to the store as it is written (job.go), never held
// whole in memory or on disk. Photos are fetched, checked, sanitized and hashed by a few
// workers ahead of the writer, which appends them strictly in manifest order; what is held
// ahead is bounded in count (exportAhead) and in bytes (exportBudget), so memory stays bounded
// whatever the size of the export and of its photos.

// Method names the de-identification method and its version, as the archive states it.
const Method = "dermfollow-deid-v1"

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
	// Subjects in pseudonym order, each series in time order, its unscheduled photos after
	// its scheduled ones: a layout that reveals nothing of the database's order.
	slices.SortStableFunc(items, func(a, b exportItem) int {
		return cmpAll(strings.Compare(a.row.Subject, b.row.Subject), a.performedAt.Compare(b.performedAt),
			strings.Compare(a.row.Series, b.row.Series), boolOrder(a.row.Unscheduled, b.row.Unscheduled), a.position-b.position, strings.Compare(a.row.View, b.row.View),
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
	name := fmt.Sprintf("subjects/%s/%s_%s_d%d", row.Subject, row.Timepoint, row.View, row.Day)
	if row.Unscheduled {
		name = fmt.Sprintf("subjects/%s/unscheduled_d%d", row.Subject, row.Day)
	}
	row.File = uniqueName(used, name, p.clean.Format.Ext())
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

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// boolOrder orders false before true.
func boolOrder(a, b bool) int {
	switch {
	case a == b:
		return 0
	case a:
		return 1
	}
	return -1
}
