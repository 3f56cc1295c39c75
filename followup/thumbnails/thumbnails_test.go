package thumbnails

import (
	"bytes"
	"compress/zlib"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"image"
	"image/jpeg"
	mrand "math/rand/v2"
	"runtime"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/dermfollow/dermfollow/followup"
	"github.com/dermfollow/dermfollow/followup/followuptest"
	"github.com/dermfollow/dermfollow/followup/sweep"
	"github.com/dermfollow/dermfollow/imagestore"
)

// fixture is followuptest's clinic and procedure, with a Thumbnailer on the same clock.
type fixture struct {
	*followuptest.Fixture
	th *Thumbnailer
}

// busy stores a photo of the baseline step in view: this process has just worked on an upload.
func (f *fixture) busy(t *testing.T, view, uploadID string) {
	t.Helper()
	if _, _, err := f.Upload(t, f.Clinician, "baseline", view, uploadID, followuptest.JPEG(t, 7)); err != nil {
		t.Fatal(err)
	}
}

// sweeper is the store's sweeper over the fixture's core, on its clock.
func (f *fixture) sweeper(t *testing.T) *sweep.Sweeper {
	t.Helper()
	sw, err := sweep.New(sweep.Config{Core: f.Core, Pool: f.Pool})
	if err != nil {
		t.Fatal(err)
	}
	return sw
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	f := &fixture{Fixture: followuptest.New(t)}
	var err error
	if f.th, err = New(Config{Core: f.Core, Pool: f.Pool}); err != nil {
		t.Fatal(err)
	}
	return f
}

func TestThumbnailsAndSweep(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	parent := f.Parent(t)
	p, _, err := f.Upload(t, parent, "day-1", "front", "thumbs-abcdefgh", followuptest.JPEG(t, 5))
	if err != nil {
		t.Fatal(err)
	}
	ctx := followuptest.Ctx(t)
	if _, _, err := f.Core.OpenPhoto(ctx, f.Clinician, p.ID, followup.VariantSmall); followup.ErrorCode(err) != followup.EUNAVAILABLE {
		t.Errorf("thumbnail before it is made: %v, want unavailable", err)
	}
	n, err := f.th.Make(ctx, 10)
	if err != nil || n != 1 {
		t.Fatalf("MakeThumbnails = %d, %v", n, err)
	}
	r, got, err := f.Core.OpenPhoto(ctx, f.Clinician, p.ID, followup.VariantSmall)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if _, format, err := image.DecodeConfig(r); err != nil || format != "jpeg" || got.ContentType != "image/jpeg" {
		t.Errorf("thumbnail: %s %v (%s)", format, err, got.ContentType)
	}
	if n := f.Count(t, `select count(*) from audit_events where action = 'photo_viewed' and target_id = $1`, p.ID); n != 1 {
		t.Errorf("photo view audit events = %d, want 1", n)
	}

	// An object without a row (a failed upload's) is swept once older than the grace period.
	orphan := []byte("orphan bytes")
	if err := f.Store.Put(ctx, "photos/ab/orphan", bytes.NewReader(orphan), int64(len(orphan)), "image/jpeg"); err != nil {
		t.Fatal(err)
	}
	if n, err := f.sweeper(t).Orphans(ctx, time.Hour); err != nil || n != 0 {
		t.Errorf("sweep within the grace period = %d, %v; want 0", n, err)
	}
	f.Clock.Set(time.Now().Add(2 * time.Hour))
	if n, err := f.sweeper(t).Orphans(ctx, time.Hour); err != nil || n != 1 {
		t.Errorf("sweep after the grace period = %d, %v; want 1", n, err)
	}
	if _, err := f.Store.Stat(ctx, "photos/ab/orphan"); !errors.Is(err, imagestore.ErrNotExist) {
		t.Error("orphan object survived the sweep")
	}
	if _, _, err := f.Core.OpenPhoto(ctx, f.Clinician, p.ID, followup.VariantOriginal); err != nil {
		t.Errorf("the real photo was swept: %v", err)
	}
	if _, _, err := f.Core.OpenPhoto(ctx, f.Clinician, p.ID, followup.VariantLarge); err != nil {
		t.Errorf("the real photo's thumbnail was swept: %v", err)
	}
}

// TestThumbnailerYieldsToUploads: the thumbnail worker waits while uploads are being worked on,
// starts once they pause, and does not wait at all for a photo that has waited too long.
// Uploads going on are uploads that have just ended (the core notes the start and the end).
func TestThumbnailerYieldsToUploads(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := followuptest.Ctx(t)
	if _, _, err := f.Upload(t, f.Parent(t), "day-1", "front", "yield-abcdefgh", followuptest.JPEG(t, 9)); err != nil {
		t.Fatal(err)
	}
	// The upload just ended: the worker's turn comes thumbnailQuiet later, not before.
	start := time.Now()
	if !f.th.thumbnailTurn(ctx) {
		t.Fatal("no turn")
	}
	if waited := time.Since(start); waited < thumbnailQuiet/2 {
		t.Errorf("the worker started %v after an upload, want about %v", waited, thumbnailQuiet)
	}
	// Quiet now: at once.
	start = time.Now()
	f.th.thumbnailTurn(ctx)
	if waited := time.Since(start); waited > thumbnailQuiet/2 {
		t.Errorf("the worker waited %v with no upload going on", waited)
	}
	// Uploads going on, but the oldest pending photo has waited thumbnailMaxLag: at once.
	f.busy(t, "front", "yield-busy-1")
	f.Clock.Set(f.Clock.Now().Add(thumbnailMaxLag))
	start = time.Now()
	f.th.thumbnailTurn(ctx)
	if waited := time.Since(start); waited > thumbnailQuiet/2 {
		t.Errorf("the worker waited %v for a photo pending for %v", waited, thumbnailMaxLag)
	}
	// Uploads going on and the worker waiting: cancelling ends the wait.
	f.Clock.Set(f.Clock.Now().Add(-thumbnailMaxLag))
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	f.busy(t, "close-up", "yield-busy-2")
	if f.th.thumbnailTurn(cctx) {
		t.Error("a cancelled worker got its turn")
	}
	// The worker itself: it makes the thumbnails once uploads pause.
	wctx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); f.th.Run(wctx, time.Hour) }() // the uploads above left it a wake-up
	deadline := time.Now().Add(10 * time.Second)
	for f.Count(t, `select count(*) from photos where thumbnails_at is null`) != 0 {
		if time.Now().After(deadline) {
			t.Fatal("no thumbnails 10 s after the upload")
		}
		time.Sleep(50 * time.Millisecond)
	}
	stop()
	<-done
}

// TestThumbnailerMeasuresQuality: the thumbnailer stores each photo's quality with it (from
// the decode it makes anyway); a blurred photo is flagged, a sharp one not.
func TestThumbnailerMeasuresQuality(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	sharp := noisyJPEG(t, 512, 384)
	blurred := followuptest.JPEG(t, 3) // a smooth gradient: no detail at all
	ps, _, err := f.Upload(t, f.Clinician, "baseline", "front", "quality-sharp", sharp)
	if err != nil {
		t.Fatal(err)
	}
	pb, _, err := f.Upload(t, f.Clinician, "baseline", "close-up", "quality-blurred", blurred)
	if err != nil {
		t.Fatal(err)
	}
	if ps.Quality != nil {
		t.Errorf("quality before the thumbnails = %+v, want none yet", ps.Quality)
	}
	if n, err := f.th.Make(followuptest.Ctx(t), 5); err != nil || n != 2 {
		t.Fatalf("MakeThumbnails = %d, %v", n, err)
	}
	for _, c := range []struct {
		id      uuid.UUID
		blurred bool
	}{{ps.ID, false}, {pb.ID, true}} {
		_, p, err := f.Core.OpenPhoto(followuptest.Ctx(t), f.Clinician, c.id, followup.VariantOriginal)
		if err != nil {
			t.Fatal(err)
		}
		if p.Quality == nil {
			t.Fatalf("photo %s has no quality after its thumbnails", c.id)
		}
		if got := slices.Contains(p.Quality.Flags, imagestore.QualityBlurry); got != c.blurred || p.Quality.MeanLuminance <= 0 {
			t.Errorf("photo (blurred %v): %+v", c.blurred, *p.Quality)
		}
	}
}

// noisyJPEG is a w×h photo of random pixels: all detail.
func noisyJPEG(t *testing.T, w, h int) []byte {
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	rng := mrand.New(mrand.NewPCG(1, 1))
	for i := range img.Pix {
		img.Pix[i] = byte(rng.IntN(256))
		if i%4 == 3 {
			img.Pix[i] = 255
		}
	}
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, img, &jpeg.Options{Quality: 90}); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// insertRawPhoto stores body as a photo's object and writes its row directly, bypassing the
// sanitizer: a file stored before the sanitizer learnt to refuse it, or one it cannot judge.
func (f *fixture) insertRawPhoto(t *testing.T, uploadID string, body []byte, withObject bool) followup.Photo {
	t.Helper()
	ctx := followuptest.Ctx(t)
	key := followup.NewObjectKey("photos")
	if withObject {
		if err := f.Store.Put(ctx, key, bytes.NewReader(body), int64(len(body)), "image/jpeg"); err != nil {
			t.Fatal(err)
		}
	}
	sum := sha256.Sum256(append(body, uploadID...))
	var id uuid.UUID
	err := f.Pool.QueryRow(ctx, `insert into photos (clinic_id, procedure_id, timepoint_key, view, upload_id, object_key,
			content_type, size_bytes, sha256, width, height, received_at, source, uploaded_by)
		values ($1, $2, 'baseline', 'front', $3, $4, 'image/jpeg', $5, $6, 64, 48, $7, 'clinic', $8) returning id`,
		f.Clinic.ID, f.Proc.ID, uploadID, key, len(body), sum[:], f.Clock.Now(), f.Clinician.ID).Scan(&id)
	if err != nil {
		t.Fatal(err)
	}
	return followup.Photo{ID: id}
}

// crafted10k is a small JPEG whose frame header claims 10000x10000 pixels, exactly the pixel
// limit, with a few bytes of scan data: a decoder that believes the header allocates ~150 MB.
func crafted10k(t *testing.T) []byte {
	b := followuptest.JPEG(t, 1)
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
	f := newFixture(t)
	bad := []followup.Photo{
		f.insertRawPhoto(t, "crafted-10000", crafted10k(t), true),
		f.insertRawPhoto(t, "not-an-image", []byte("this is not an image at all, only text"), true),
		f.insertRawPhoto(t, "object-gone-1", followuptest.JPEG(t, 2), false),
	}
	for _, k := range refusedKinds(t) {
		bad = append(bad, f.insertRawPhoto(t, "refused-"+k.name, k.data, true))
	}
	f.Clock.Set(f.Clock.Now().Add(time.Second)) // the good photo is received after the bad ones
	good, _, err := f.Upload(t, f.Clinician, "baseline", "close-up", "good-photo-1", followuptest.JPEG(t, 9))
	if err != nil {
		t.Fatal(err)
	}
	ctx := followuptest.Ctx(t)
	if n, err := f.th.Make(ctx, 10); err != nil || n != 1 {
		t.Fatalf("MakeThumbnails = %d, %v; want the good photo's thumbnails made past the bad ones", n, err)
	}
	if _, _, err := f.Core.OpenPhoto(ctx, f.Clinician, good.ID, followup.VariantSmall); err != nil {
		t.Errorf("the good photo's thumbnail: %v", err)
	}
	for attempt := 2; attempt <= thumbnailAttempts; attempt++ {
		if n, err := f.th.Make(ctx, 10); err != nil || n != 0 {
			t.Fatalf("MakeThumbnails before the backoff = %d, %v; want nothing tried", n, err)
		}
		f.Clock.Set(f.Clock.Now().Add(time.Duration(attempt) * thumbnailBackoff))
		if _, err := f.th.Make(ctx, 10); err != nil {
			t.Fatal(err)
		}
	}
	for _, p := range bad {
		var attempts int
		var unreadable bool
		var msg *string
		if err := f.Pool.QueryRow(ctx, `select thumbnail_attempts, unreadable_at is not null, thumbnail_error from photos where id = $1`, p.ID).
			Scan(&attempts, &unreadable, &msg); err != nil {
			t.Fatal(err)
		}
		if attempts != thumbnailAttempts || !unreadable || msg == nil || *msg == "" {
			t.Errorf("photo %s: attempts %d, unreadable %v, error %v; want %d attempts, unreadable, an error", p.ID, attempts, unreadable, msg, thumbnailAttempts)
		}
		_, got, err := f.Core.OpenPhoto(ctx, f.Clinician, p.ID, followup.VariantSmall)
		if followup.ErrorCode(err) != followup.ENOTFOUND || !strings.Contains(followup.ErrorMessage(err), "original") {
			t.Errorf("thumbnail of an unreadable photo = %v, want not found saying the original can be downloaded", err)
		}
		_ = got
	}
	// The original of an unreadable photo whose object exists is still there.
	if r, got, err := f.Core.OpenPhoto(ctx, f.Clinician, bad[0].ID, followup.VariantOriginal); err != nil || got.ThumbnailState != followup.ThumbnailUnreadable {
		t.Errorf("original of an unreadable photo = %v (%s)", err, got.ThumbnailState)
	} else {
		r.Close()
	}
	if n, err := f.th.Make(ctx, 10); err != nil || n != 0 {
		t.Errorf("MakeThumbnails after giving up = %d, %v; want nothing left", n, err)
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
	f := newFixture(t)
	ctx := followuptest.Ctx(t)
	// The usual time: one normal photo alone.
	alone, _, err := f.Upload(t, f.Clinician, "baseline", "front", "alone-photo-1", followuptest.JPEG(t, 1))
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if n, err := f.th.Make(ctx, 1); err != nil || n != 1 {
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
	f.Clock.Set(f.Clock.Now().Add(time.Second))
	normal, _, err := f.Upload(t, f.Clinician, "baseline", "close-up", "after-burst-1", followuptest.JPEG(t, 2))
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
	n, err := f.th.Make(ctx, 20)
	took := time.Since(start)
	close(stop)
	<-sampled
	if err != nil || n != 1 {
		t.Fatalf("MakeThumbnails after the burst = %d, %v; want the normal photo's made", n, err)
	}
	if _, _, err := f.Core.OpenPhoto(ctx, f.Clinician, normal.ID, followup.VariantSmall); err != nil {
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

// TestThumbnailsReachTheRecord: the procedure's record, kept by the core between reads (its
// record cache), shows the thumbnails and the quality once they are made.
func TestThumbnailsReachTheRecord(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := followuptest.Ctx(t)
	p, _, err := f.Upload(t, f.Clinician, "baseline", "front", "record-abcdefgh", followuptest.JPEG(t, 4))
	if err != nil {
		t.Fatal(err)
	}
	photoIn := func() followup.Photo {
		t.Helper()
		r, err := f.Core.ProcedureRecord(ctx, f.Clinician, f.Proc.ID)
		if err != nil {
			t.Fatal(err)
		}
		for _, got := range r.Photos {
			if got.ID == p.ID {
				return got
			}
		}
		t.Fatalf("photo %s not in the record", p.ID)
		return followup.Photo{}
	}
	if got := photoIn(); got.ThumbnailState != followup.ThumbnailPending || got.Quality != nil {
		t.Fatalf("before the thumbnails: %s, quality %v", got.ThumbnailState, got.Quality)
	}
	if n, err := f.th.Make(ctx, 10); err != nil || n != 1 {
		t.Fatalf("Make = %d, %v", n, err)
	}
	if got := photoIn(); got.ThumbnailState != followup.ThumbnailReady || got.Quality == nil {
		t.Errorf("after the thumbnails: %s, quality %v; want ready, with the quality", got.ThumbnailState, got.Quality)
	}
}
