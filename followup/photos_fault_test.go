package followup

import (
	"bytes"
	"compress/zlib"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"math/rand/v2"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/dermfollow/dermfollow/followup/pgtest"
	"github.com/dermfollow/dermfollow/imagestore"
)

// checkPhotoInvariants asserts the no-data-loss rules: every photo row has its object, and
// after a sweep that takes every pending note, every object has its row. It returns the counts
// it checked.
func checkPhotoInvariants(t *testing.T, svc *Service) (rows, objects int) {
	t.Helper()
	ctx := testCtx(t)
	if _, err := svc.SweepPending(ctx, -time.Hour); err != nil {
		t.Fatal(err)
	}
	r, err := svc.pool.Query(ctx, `select object_key from photos`)
	if err != nil {
		t.Fatal(err)
	}
	keys := map[string]bool{}
	for r.Next() {
		var k string
		r.Scan(&k)
		keys[k] = true
	}
	r.Close()
	for k := range keys {
		if _, err := svc.store.Stat(ctx, k); err != nil {
			t.Errorf("photo row without its object %s: %v", k, err)
		}
	}
	err = svc.store.List(ctx, "photos/", func(o imagestore.ObjectInfo) error {
		objects++
		if !keys[o.Key] {
			t.Errorf("object without a row after the sweep: %s", o.Key)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n := countRows(t, svc, `select count(*) from pending_objects`); n != 0 {
		t.Errorf("%d pending notes left after the sweep", n)
	}
	return len(keys), objects
}

// TestAddPhotoOutlivesItsRequest: the request's context ends (the phone gives up) at each step
// of the write path after the photo was received: the photo is stored and committed anyway,
// whole, and a retry of its upload_id finds it.
func TestAddPhotoOutlivesItsRequest(t *testing.T) {
	t.Parallel()
	for _, step := range []string{hookSanitized, hookStored, hookInserting} {
		t.Run(step, func(t *testing.T) {
			t.Parallel()
			f := newCoreFixture(t)
			ctx, cancel := context.WithCancel(testCtx(t))
			f.svc.testHook = func(s string) {
				if s == step {
					cancel()
				}
			}
			up := PhotoUpload{Timepoint: "baseline", View: "front", UploadID: "gives-up-" + step}
			body := testJPEG(t, 7)
			p, created, err := f.svc.AddPhoto(ctx, f.clinician, f.proc.ID, up, bytes.NewReader(body), int64(len(body)), imagestore.Limits{})
			if err != nil || !created {
				t.Fatalf("AddPhoto with the request ended after %s = %v, %v; want the photo stored", step, created, err)
			}
			f.svc.testHook = nil
			again, created, err := f.upload(t, f.clinician, "baseline", "front", up.UploadID, body)
			if err != nil || created || again.ID != p.ID {
				t.Errorf("retry = %v, %v, %v; want the same photo", again.ID, created, err)
			}
			if rows, objects := checkPhotoInvariants(t, f.svc); rows != 1 || objects != 1 {
				t.Errorf("rows %d, objects %d; want 1 and 1", rows, objects)
			}
		})
	}
}

// TestAddPhotoRequestEndsAtRandom: 48 uploads from 8 clients whose requests end at random
// moments: whatever each one answered, no row lacks its object, no object outlives the sweep
// without a row, every acknowledged photo reads back, and a retry of each upload_id stores it
// exactly once.
func TestAddPhotoRequestEndsAtRandom(t *testing.T) {
	t.Parallel()
	f := newCoreFixture(t)
	type result struct {
		id      string
		photo   Photo
		created bool
		err     error
	}
	results := make([]result, 48)
	var wg sync.WaitGroup
	next := make(chan int)
	for range 8 {
		wg.Go(func() {
			for i := range next {
				ctx, cancel := context.WithTimeout(testCtx(t), time.Duration(rand.IntN(40))*time.Millisecond)
				id := fmt.Sprintf("random-end-%03d", i)
				body := testJPEG(t, byte(i))
				p, created, err := f.svc.AddPhoto(ctx, f.clinician, f.proc.ID, PhotoUpload{Timepoint: "baseline", View: "front", UploadID: id},
					bytes.NewReader(body), int64(len(body)), imagestore.Limits{})
				cancel()
				results[i] = result{id, p, created, err}
			}
		})
	}
	for i := range results {
		next <- i
	}
	close(next)
	wg.Wait()
	acked, failed := 0, 0
	for _, r := range results {
		if r.err == nil {
			acked++
			if _, _, err := f.svc.OpenPhoto(testCtx(t), f.clinician, r.photo.ID, VariantOriginal); err != nil {
				t.Errorf("acknowledged %s does not read back: %v", r.id, err)
			}
			continue
		}
		failed++
		if c := ErrorCode(r.err); c != EUNAVAILABLE {
			t.Errorf("%s failed with %s (%v), want unavailable", r.id, c, r.err)
		}
	}
	rows, objects := checkPhotoInvariants(t, f.svc)
	for i, r := range results {
		p, _, err := f.upload(t, f.clinician, "baseline", "front", r.id, testJPEG(t, byte(i)))
		if err != nil || (r.err == nil && p.ID != r.photo.ID) {
			t.Errorf("retry of %s = %v, %v", r.id, p.ID, err)
		}
	}
	if n := countRows(t, f.svc, `select count(*) from photos`); n != len(results) {
		t.Errorf("%d photos after every retry, want %d (one per upload_id)", n, len(results))
	}
	t.Logf("invariants: %d acknowledged, %d refused as unavailable; %d rows, %d objects, all rows with objects, no object without a row", acked, failed, rows, objects)
}

// TestAddPhotoCommitAnswerLost: the database commits a photo's row and the answer is lost on
// the way back (a network cut, a failover) after the statement ran. The object must not be removed (the row exists),
// and the upload is answered with the photo.
func TestAddPhotoCommitAnswerLost(t *testing.T) {
	t.Parallel()
	proxy := pgtest.NewAnswerProxy(t, pgtest.NewDatabase(t))
	f := newCoreFixture(t, func(c *Config) { c.Pool = pgtest.OpenPool(t, proxy.URL) })
	proxy.LoseAnswerTo("insert into photos")
	p, created, err := f.upload(t, f.clinician, "baseline", "front", "commit-lost-1", testJPEG(t, 3))
	if proxy.Lost() != 1 {
		t.Fatalf("the proxy lost %d answers, want 1", proxy.Lost())
	}
	if err != nil || !created {
		t.Fatalf("AddPhoto whose commit answer was lost = %v, %v; want the committed photo", created, err)
	}
	if _, _, err := f.svc.OpenPhoto(testCtx(t), f.clinician, p.ID, VariantOriginal); err != nil {
		t.Errorf("the committed photo does not read back: %v", err)
	}
	if rows, objects := checkPhotoInvariants(t, f.svc); rows != 1 || objects != 1 {
		t.Errorf("rows %d, objects %d; want 1 and 1", rows, objects)
	}
}

// TestUnavailableSQLStates: connection, resource, shutdown and serialization failures are
// "try again", every other SQLSTATE is ours to fix.
func TestUnavailableSQLStates(t *testing.T) {
	t.Parallel()
	for code, want := range map[string]string{
		"08006": EUNAVAILABLE, "08001": EUNAVAILABLE, "53300": EUNAVAILABLE, "53100": EUNAVAILABLE,
		"57P01": EUNAVAILABLE, "57P02": EUNAVAILABLE, "57P03": EUNAVAILABLE, "40001": EUNAVAILABLE, "40P01": EUNAVAILABLE,
		"23505": EINTERNAL, "22021": EINTERNAL, "42P01": EINTERNAL, "57014": EINTERNAL,
	} {
		if got := ErrorCode(unavailable(&pgconn.PgError{Code: code})); got != want {
			t.Errorf("SQLSTATE %s is %s, want %s", code, got, want)
		}
	}
	if got := ErrorCode(unavailable(errors.New("dial tcp: connection refused"))); got != EUNAVAILABLE {
		t.Errorf("a connection error is %s, want unavailable", got)
	}
}

// insertRawPhoto stores body as a photo's object and writes its row directly, bypassing the
// sanitizer: a file stored before the sanitizer learnt to refuse it, or one it cannot judge.
func (f *coreFixture) insertRawPhoto(t *testing.T, uploadID string, body []byte, withObject bool) Photo {
	t.Helper()
	ctx := testCtx(t)
	key := newObjectKey("photos")
	if withObject {
		if err := f.svc.store.Put(ctx, key, bytes.NewReader(body), int64(len(body)), "image/jpeg"); err != nil {
			t.Fatal(err)
		}
	}
	sum := sha256.Sum256(append(body, uploadID...))
	var id uuid.UUID
	err := f.svc.pool.QueryRow(ctx, `insert into photos (clinic_id, procedure_id, timepoint_key, view, upload_id, object_key,
			content_type, size_bytes, sha256, width, height, received_at, source, uploaded_by)
		values ($1, $2, 'baseline', 'front', $3, $4, 'image/jpeg', $5, $6, 64, 48, $7, 'clinic', $8) returning id`,
		f.clinic.ID, f.proc.ID, uploadID, key, len(body), sum[:], f.clock.Now(), f.clinician.ID).Scan(&id)
	if err != nil {
		t.Fatal(err)
	}
	return Photo{ID: id, objectKey: key}
}

// crafted10k is a small JPEG whose frame header claims 10000x10000 pixels, exactly the pixel
// limit, with a few bytes of scan data: a decoder that believes the header allocates ~150 MB.
func crafted10k(t *testing.T) []byte {
	b := testJPEG(t, 1)
	i := bytes.Index(b, []byte{0xff, 0xc0})
	if i < 0 {
		t.Fatal("no SOF0 in the test JPEG")
	}
	b = bytes.Clone(b)
	b[i+5], b[i+6], b[i+7], b[i+8] = 0x27, 0x10, 0x27, 0x10 // height, width = 10000
	return b
}

// TestThumbnailFailuresDoNotStallTheQueue: photos whose thumbnails cannot be made (bytes that
// claim more pixels than they hold, bytes that are no image, an object gone from the store,
// and the files the sanitizer refuses since: see refusedKinds) are recorded and passed by; the good photo behind them gets its thumbnails in the same run;
// after the last attempt each is unreadable, says so, and keeps its original downloadable.
func TestThumbnailFailuresDoNotStallTheQueue(t *testing.T) {
	t.Parallel()
	f := newCoreFixture(t)
	bad := []Photo{
		f.insertRawPhoto(t, "crafted-10000", crafted10k(t), true),
		f.insertRawPhoto(t, "not-an-image", []byte("this is not an image at all, only text"), true),
		f.insertRawPhoto(t, "object-gone-1", testJPEG(t, 2), false),
	}
	for _, k := range refusedKinds(t) {
		bad = append(bad, f.insertRawPhoto(t, "refused-"+k.name, k.data, true))
	}
	f.clock.Set(f.clock.Now().Add(time.Second)) // the good photo is received after the bad ones
	good, _, err := f.upload(t, f.clinician, "baseline", "close-up", "good-photo-1", testJPEG(t, 9))
	if err != nil {
		t.Fatal(err)
	}
	ctx := testCtx(t)
	if n, err := f.svc.MakeThumbnails(ctx, 10); err != nil || n != 1 {
		t.Fatalf("MakeThumbnails = %d, %v; want the good photo's thumbnails made past the bad ones", n, err)
	}
	if _, _, err := f.svc.OpenPhoto(ctx, f.clinician, good.ID, VariantSmall); err != nil {
		t.Errorf("the good photo's thumbnail: %v", err)
	}
	for attempt := 2; attempt <= thumbnailAttempts; attempt++ {
		if n, err := f.svc.MakeThumbnails(ctx, 10); err != nil || n != 0 {
			t.Fatalf("MakeThumbnails before the backoff = %d, %v; want nothing tried", n, err)
		}
		f.clock.Set(f.clock.Now().Add(time.Duration(attempt) * thumbnailBackoff))
		if _, err := f.svc.MakeThumbnails(ctx, 10); err != nil {
			t.Fatal(err)
		}
	}
	for _, p := range bad {
		var attempts int
		var unreadable bool
		var msg *string
		if err := f.svc.pool.QueryRow(ctx, `select thumbnail_attempts, unreadable_at is not null, thumbnail_error from photos where id = $1`, p.ID).
			Scan(&attempts, &unreadable, &msg); err != nil {
			t.Fatal(err)
		}
		if attempts != thumbnailAttempts || !unreadable || msg == nil || *msg == "" {
			t.Errorf("photo %s: attempts %d, unreadable %v, error %v; want %d attempts, unreadable, an error", p.ID, attempts, unreadable, msg, thumbnailAttempts)
		}
		_, got, err := f.svc.OpenPhoto(ctx, f.clinician, p.ID, VariantSmall)
		if ErrorCode(err) != ENOTFOUND || !strings.Contains(ErrorMessage(err), "original") {
			t.Errorf("thumbnail of an unreadable photo = %v, want not found saying the original can be downloaded", err)
		}
		_ = got
	}
	// The original of an unreadable photo whose object exists is still there.
	if r, got, err := f.svc.OpenPhoto(ctx, f.clinician, bad[0].ID, VariantOriginal); err != nil || got.ThumbnailState != ThumbnailUnreadable {
		t.Errorf("original of an unreadable photo = %v (%s)", err, got.ThumbnailState)
	} else {
		r.Close()
	}
	if n, err := f.svc.MakeThumbnails(ctx, 10); err != nil || n != 0 {
		t.Errorf("MakeThumbnails after giving up = %d, %v; want nothing left", n, err)
	}
}

// TestSweptNoteStopsTheRow: an upload that outlived its deadline can find the sweeper at its
// object: the sweeper holds the note, removes the object and the note; the photo's row must
// then not be written (it would have no object), and the upload answers "try again".
func TestSweptNoteStopsTheRow(t *testing.T) {
	t.Parallel()
	f := newCoreFixture(t)
	ctx := testCtx(t)
	swept := make(chan error, 1)
	f.svc.testHook = func(step string) {
		if step != hookStored {
			return
		}
		locked := make(chan struct{})
		go func() {
			tx, err := f.svc.pool.Begin(ctx)
			if err != nil {
				swept <- err
				close(locked)
				return
			}
			defer tx.Rollback(ctx)
			var key string
			if err := tx.QueryRow(ctx, `select object_key from pending_objects for update`).Scan(&key); err != nil {
				swept <- err
				close(locked)
				return
			}
			close(locked) // the upload's statement now waits for this lock
			time.Sleep(100 * time.Millisecond)
			if err := f.svc.store.Delete(ctx, key); err != nil {
				swept <- err
				return
			}
			if _, err := tx.Exec(ctx, `delete from pending_objects where object_key = $1`, key); err != nil {
				swept <- err
				return
			}
			swept <- tx.Commit(ctx)
		}()
		<-locked
	}
	_, _, err := f.upload(t, f.clinician, "baseline", "front", "swept-under-1", testJPEG(t, 8))
	if err := <-swept; err != nil {
		t.Fatal(err)
	}
	if ErrorCode(err) != EUNAVAILABLE {
		t.Errorf("upload whose note was swept = %v, want unavailable", err)
	}
	if n := countRows(t, f.svc, `select count(*) from photos`); n != 0 {
		t.Errorf("%d photo rows written for a swept object", n)
	}
}

// png16 is a PNG whose header claims w×h pixels of 16-bit RGBA (8 bytes a pixel) over a few
// bytes of image data: decoded, 20000×5000 would be 800 MB.
func png16(w, h uint32) []byte {
	chunk := func(typ string, data []byte) []byte {
		out := binary.BigEndian.AppendUint32(nil, uint32(len(data)))
		out = append(out, typ...)
		out = append(out, data...)
		return binary.BigEndian.AppendUint32(out, crc32.ChecksumIEEE(append([]byte(typ), data...)))
	}
	ihdr := binary.BigEndian.AppendUint32(nil, w)
	ihdr = binary.BigEndian.AppendUint32(ihdr, h)
	ihdr = append(ihdr, 16, 6, 0, 0, 0)
	var z bytes.Buffer
	zw := zlib.NewWriter(&z)
	zw.Write(make([]byte, 4096))
	zw.Close()
	out := []byte("\x89PNG\r\n\x1a\n")
	out = append(out, chunk("IHDR", ihdr)...)
	out = append(out, chunk("IDAT", z.Bytes())...)
	return append(out, chunk("IEND", nil)...)
}

// TestThumbnailsAfterABurstOfCraftedFiles: sixteen files built to exhaust a decoder (a JPEG
// and a 16-bit PNG whose headers claim the pixel limit over a few KB of data) or to fail it
// (see refusedKinds), stored before a normal photo, delay its thumbnails by little more than they take alone, and the decodes
// stay within a stated memory ceiling.
func TestThumbnailsAfterABurstOfCraftedFiles(t *testing.T) {
	t.Parallel()
	f := newCoreFixture(t)
	ctx := testCtx(t)
	// The usual time: one normal photo alone.
	alone, _, err := f.upload(t, f.clinician, "baseline", "front", "alone-photo-1", testJPEG(t, 1))
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if n, err := f.svc.MakeThumbnails(ctx, 1); err != nil || n != 1 {
		t.Fatalf("thumbnails alone = %d, %v", n, err)
	}
	usual := time.Since(start)
	_ = alone
	kinds := append([]troubleFile{{"jpeg-claims-10000x10000", crafted10k(t)}, {"png-16-bit-claims-20000x5000", png16(20000, 5000)}},
		refusedKinds(t)...)
	for i := range 16 {
		k := kinds[i%len(kinds)]
		f.insertRawPhoto(t, fmt.Sprintf("burst-%02d-%s", i, k.name), k.data, true)
	}
	f.clock.Set(f.clock.Now().Add(time.Second))
	normal, _, err := f.upload(t, f.clinician, "baseline", "close-up", "after-burst-1", testJPEG(t, 2))
	if err != nil {
		t.Fatal(err)
	}
	var peak atomic.Uint64
	stop := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		var m runtime.MemStats
		for {
			runtime.ReadMemStats(&m)
			if m.HeapInuse > peak.Load() {
				peak.Store(m.HeapInuse)
			}
			select {
			case <-stop:
				return
			case <-time.After(5 * time.Millisecond):
			}
		}
	}()
	var base runtime.MemStats
	runtime.ReadMemStats(&base)
	start = time.Now()
	n, err := f.svc.MakeThumbnails(ctx, 20)
	took := time.Since(start)
	close(stop)
	<-sampled
	if err != nil || n != 1 {
		t.Fatalf("MakeThumbnails after the burst = %d, %v; want the normal photo's made", n, err)
	}
	if _, _, err := f.svc.OpenPhoto(ctx, f.clinician, normal.ID, VariantSmall); err != nil {
		t.Errorf("the normal photo's thumbnail: %v", err)
	}
	if took > usual+3*time.Second {
		t.Errorf("the normal photo's thumbnail took %v after the burst, %v alone: want at most 3 s more", took, usual)
	}
	const ceiling = 64 << 20
	if grew := int64(peak.Load()) - int64(base.HeapInuse); grew > ceiling {
		t.Errorf("the heap grew by %d MB during the burst, ceiling %d MB", grew>>20, ceiling>>20)
	}
	t.Logf("16 crafted files and a normal photo: %v (a normal photo alone %v), heap grew by at most %.1f MB",
		took, usual, float64(int64(peak.Load())-int64(base.HeapInuse))/(1<<20))
}
