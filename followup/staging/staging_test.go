package staging

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/dermfollow/dermfollow/followup"
	"github.com/dermfollow/dermfollow/followup/followuptest"
	"github.com/dermfollow/dermfollow/followup/sweep"
	"github.com/dermfollow/dermfollow/imagestore"
	"github.com/dermfollow/dermfollow/imagestore/imagetest"
	"github.com/dermfollow/dermfollow/imagestore/s3test"
)

// fixture is a family's link on followuptest's procedure, with the core on a real S3 bucket.
type fixture struct {
	*followuptest.Fixture
	s3     *imagestore.S3Store
	client *minio.Client
	bucket string
	family followup.Actor
	// sweeper is the store's, which removes the segments of expired uploads.
	sweeper *sweep.Sweeper
	// keysSeen are staging keys the test made parts for, asked for even after their rows go.
	keysSeen []string
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	store, cfg := s3test.NewStore(t)
	f := &fixture{Fixture: followuptest.New(t, func(c *followup.Config) { c.Store = store }), s3: store, bucket: cfg.Bucket}
	var err error
	f.client, err = minio.New(cfg.Endpoint, &minio.Options{Creds: credentials.NewStaticV4(cfg.AccessKey, cfg.SecretKey, "")})
	if err != nil {
		t.Fatal(err)
	}
	f.family = f.Parent(t)
	if f.sweeper, err = sweep.New(sweep.Config{Core: f.Core, Pool: f.Pool}); err != nil {
		t.Fatal(err)
	}
	return f
}

// staging is the staged uploads over the fixture's core, with cfg's bounds.
func (f *fixture) staging(t *testing.T, cfg Config) *Service {
	t.Helper()
	cfg.Core, cfg.Pool = f.Core, f.Pool
	st, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func session() []byte { b := uuid.New(); return b[:] }

// staged lists what the bucket holds under the staging prefix: objects and multipart uploads.
func (f *fixture) staged(t *testing.T) []string {
	t.Helper()
	var out []string
	if err := f.s3.List(followuptest.Ctx(t), Prefix, func(o imagestore.ObjectInfo) error {
		out = append(out, "object "+o.Key)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	// MinIO lists multipart uploads by whole key only, so every key noted is asked for, as
	// the sweeper's abort does.
	keys, err := f.Pool.Query(followuptest.Ctx(t), `select object_key from resumable_segments
		union select object_key from pending_objects where object_key like 'staging/%'`)
	if err != nil {
		t.Fatal(err)
	}
	names, err := pgx.CollectRows(keys, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, k := range append(names, f.keysSeen...) {
		if seen[k] {
			continue
		}
		seen[k] = true
		for u := range f.client.ListIncompleteUploads(followuptest.Ctx(t), f.bucket, k, false) {
			if u.Err == nil && u.Key == k {
				out = append(out, "incomplete upload of "+u.Key)
			}
		}
	}
	return out
}

// stage writes body to upload u in pieces of n bytes under a fresh lease.
func stage(t *testing.T, st *Service, u Upload, body []byte, n int) {
	t.Helper()
	ctx := followuptest.Ctx(t)
	tok := uuid.New()
	if ok, _, err := st.Lock(ctx, u.ID, tok); err != nil || !ok {
		t.Fatalf("lock = %v, %v", ok, err)
	}
	defer st.Unlock(ctx, u.ID, tok)
	for off := int(u.Offset); off < len(body); off += n {
		end := min(off+n, len(body))
		if err := st.StageSegment(ctx, u.ID, tok, int64(off), bytes.NewReader(body[off:end]), int64(end-off)); err != nil {
			t.Fatalf("stage %d-%d: %v", off, end, err)
		}
	}
}

// A photo staged in pieces reads back whole, goes through AddPhoto, and once it is stored
// nothing of it is left under the staging prefix; only the session that made the upload finds
// it.
func TestStagedUploadRoundTrip(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	st := f.staging(t, Config{})
	ctx := followuptest.Ctx(t)
	photo := imagetest.PhoneJPEG(320, 240, 3, 6)
	sess := session()
	up := followup.PhotoUpload{Timepoint: "day-1", View: "front", UploadID: "staged-round-trip"}
	u, err := st.CreateStaged(ctx, f.family, sess, up, int64(len(photo)), imagestore.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if d := time.Until(u.ExpiresAt); d < 5*time.Hour || d > 7*time.Hour {
		t.Errorf("expires in %v, want the stated six hours", d)
	}
	stage(t, st, u, photo, 1000)
	if got, err := st.Staged(ctx, f.family, sess, u.ID); err != nil || !got.Complete() {
		t.Fatalf("staged = %+v, %v; want complete", got, err)
	}
	other := session()
	if _, err := st.Staged(ctx, f.family, other, u.ID); followup.ErrorCode(err) != followup.ENOTFOUND {
		t.Errorf("another session's view = %v, want not found", err)
	}
	if _, err := st.Staged(ctx, f.Parent(t), sess, u.ID); followup.ErrorCode(err) != followup.ENOTFOUND {
		t.Errorf("another link's view = %v, want not found", err)
	}
	rc, err := st.OpenStaged(ctx, u.ID, u.Size)
	if err != nil {
		t.Fatal(err)
	}
	back, err := io.ReadAll(rc)
	rc.Close()
	if err != nil || !bytes.Equal(back, photo) {
		t.Fatalf("read back %d bytes (%v), want the %d sent", len(back), err, len(photo))
	}
	if n := len(f.staged(t)); n != (len(photo)+999)/1000 {
		t.Errorf("%d staged objects, want one per piece", n)
	}
	p, created, err := f.Core.AddPhoto(ctx, f.family, f.Proc.ID, up, bytes.NewReader(back), int64(len(back)), imagestore.Limits{})
	if err != nil || !created {
		t.Fatalf("AddPhoto = %v, %v", created, err)
	}
	if err := st.Stored(ctx, u.ID, p.ID); err != nil {
		t.Fatal(err)
	}
	if left := f.staged(t); len(left) > 0 {
		t.Errorf("staging left after the photo was stored: %v", left)
	}
	var notes int
	f.Pool.QueryRow(ctx, `select count(*) from pending_objects where object_key like 'staging/%'`).Scan(&notes)
	if notes != 0 {
		t.Errorf("%d pending notes of staging left", notes)
	}
	if got, err := st.Staged(ctx, f.family, sess, u.ID); err != nil || got.PhotoID == nil || *got.PhotoID != p.ID {
		t.Errorf("after storing: %+v, %v; want the photo", got, err)
	}

	// A new upload of the same upload_id is created complete, with the stored photo.
	again, err := st.CreateStaged(ctx, f.family, session(), up, int64(len(photo)), imagestore.Limits{})
	if err != nil || again.PhotoID == nil || *again.PhotoID != p.ID || !again.Complete() {
		t.Errorf("a new upload of a stored upload_id = %+v, %v", again, err)
	}
}

// The creation checks what a one-request upload checks before reading its body.
func TestStagedUploadCreationChecks(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	st := f.staging(t, Config{MaxOpenPerLink: 2})
	ctx := followuptest.Ctx(t)
	ok := followup.PhotoUpload{Timepoint: "day-1", View: "front", UploadID: "creation-checks"}
	for _, tc := range []struct {
		name string
		up   followup.PhotoUpload
		size int64
		a    followup.Actor
		want string
	}{
		{"unknown step", followup.PhotoUpload{Timepoint: "day-99", View: "front", UploadID: "creation-a1"}, 100, f.family, followup.EINVALID},
		{"unknown view", followup.PhotoUpload{Timepoint: "day-1", View: "back", UploadID: "creation-a2"}, 100, f.family, followup.EINVALID},
		{"clinic's step", followup.PhotoUpload{Timepoint: "baseline", View: "front", UploadID: "creation-a3"}, 100, f.family, followup.EINVALID},
		{"bad upload_id", followup.PhotoUpload{Timepoint: "day-1", View: "front", UploadID: "x"}, 100, f.family, followup.EINVALID},
		{"empty", ok, 0, f.family, followup.EINVALID},
		{"clinician", ok, 100, f.Clinician, followup.EFORBIDDEN},
	} {
		if _, err := st.CreateStaged(ctx, tc.a, session(), tc.up, tc.size, imagestore.Limits{}); followup.ErrorCode(err) != tc.want {
			t.Errorf("%s: %v, want %s", tc.name, err, tc.want)
		}
	}
	var re *imagestore.RejectError
	if _, err := st.CreateStaged(ctx, f.family, session(), ok, 5<<20, imagestore.Limits{MaxBytes: 4 << 20}); !errors.As(err, &re) || re.Reason != imagestore.ReasonTooLarge {
		t.Errorf("over the limit: %v, want too large", err)
	}
	// The cap on open uploads per link.
	for i := range 2 {
		up := ok
		up.UploadID += "-" + string(rune('a'+i))
		if _, err := st.CreateStaged(ctx, f.family, session(), up, 100, imagestore.Limits{}); err != nil {
			t.Fatal(err)
		}
	}
	up := ok
	up.UploadID += "-c"
	if _, err := st.CreateStaged(ctx, f.family, session(), up, 100, imagestore.Limits{}); followup.ErrorCode(err) != followup.ETOOMANY {
		t.Errorf("a third open upload on a link capped at two: %v, want too many", err)
	}
	if _, err := st.CreateStaged(ctx, f.Parent(t), session(), up, 100, imagestore.Limits{}); err != nil {
		t.Errorf("another link is not capped by this one's uploads: %v", err)
	}
	total := f.staging(t, Config{MaxOpen: 3})
	up.UploadID += "-d"
	if _, err := total.CreateStaged(ctx, f.Parent(t), session(), up, 100, imagestore.Limits{}); followup.ErrorCode(err) != followup.ETOOMANY {
		t.Errorf("an upload over the cap for the whole service: %v, want too many", err)
	}
}

// One writer at a time: a writer whose lease ran out and was taken over cannot add a segment,
// and what it tried to store is removed.
func TestStagedLeaseFencesStaleWriters(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	st := f.staging(t, Config{Lease: time.Second})
	ctx := followuptest.Ctx(t)
	body := bytes.Repeat([]byte("x"), 3000)
	u, err := st.CreateStaged(ctx, f.family, session(), followup.PhotoUpload{Timepoint: "day-1", View: "front", UploadID: "lease-fence"}, 3000, imagestore.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	a, b := uuid.New(), uuid.New()
	if ok, _, _ := st.Lock(ctx, u.ID, a); !ok {
		t.Fatal("first lock refused")
	}
	if ok, exists, _ := st.Lock(ctx, u.ID, b); ok || !exists {
		t.Fatalf("a second holder got the lease while it ran (%v, %v)", ok, exists)
	}
	if err := st.RequestUnlock(ctx, u.ID); err != nil {
		t.Fatal(err)
	}
	if held, release, err := st.Renew(ctx, u.ID, a); !held || !release || err != nil {
		t.Errorf("renew after a request = %v, %v, %v; want held and asked to release", held, release, err)
	}
	if err := st.StageSegment(ctx, u.ID, a, 0, bytes.NewReader(body[:1000]), 1000); err != nil {
		t.Fatal(err)
	}
	// a stops renewing; once its lease has run out b takes over.
	deadline := time.Now().Add(10 * time.Second)
	for {
		ok, _, err := st.Lock(ctx, u.ID, b)
		if err != nil {
			t.Fatal(err)
		}
		if ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the lapsed lease was never free")
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err := st.StageSegment(ctx, u.ID, a, 1000, bytes.NewReader(body[1000:2000]), 1000); !errors.Is(err, ErrLeaseLost) {
		t.Errorf("the stale writer's segment = %v, want ErrLeaseLost", err)
	}
	if held, _, _ := st.Renew(ctx, u.ID, a); held {
		t.Error("the stale writer still holds the lease")
	}
	if err := st.StageSegment(ctx, u.ID, b, 0, bytes.NewReader(body[:1000]), 1000); !errors.Is(err, ErrLeaseLost) {
		t.Errorf("a segment at a stale offset = %v, want ErrLeaseLost", err)
	}
	if err := st.StageSegment(ctx, u.ID, b, 1000, bytes.NewReader(body[1000:]), 2000); err != nil {
		t.Fatal(err)
	}
	if n := len(f.staged(t)); n != 2 {
		t.Errorf("%d staged objects, want the two committed ones: %v", n, f.staged(t))
	}
	rc, err := st.OpenStaged(ctx, u.ID, 3000)
	if err != nil {
		t.Fatal(err)
	}
	back, _ := io.ReadAll(rc)
	rc.Close()
	if !bytes.Equal(back, body) {
		t.Errorf("read back %d bytes that differ from the ones sent", len(back))
	}
	if err := st.Terminate(ctx, u.ID); err != nil {
		t.Fatal(err)
	}
	if left := f.staged(t); len(left) > 0 {
		t.Errorf("terminated upload left %v", left)
	}
}

// failAfter gives n bytes of r, then fails, as a client that vanished mid-segment.
type failAfter struct {
	r io.Reader
	n int
}

func (f *failAfter) Read(p []byte) (int, error) {
	if f.n <= 0 {
		return 0, errors.New("the client vanished")
	}
	p = p[:min(len(p), f.n)]
	n, err := f.r.Read(p)
	f.n -= n
	return n, err
}

// An abandoned upload is gone at its expiry: the pending sweeper removes its staged segments,
// a segment whose write died half-way and the multipart parts a killed server left of one.
func TestExpiredStagedUploadIsSwept(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	st := f.staging(t, Config{Expiry: 3 * time.Second})
	ctx := followuptest.Ctx(t)
	photo := imagetest.PhoneJPEG(320, 240, 5, 1)
	sess := session()
	u, err := st.CreateStaged(ctx, f.family, sess, followup.PhotoUpload{Timepoint: "day-1", View: "front", UploadID: "abandoned-1"}, int64(len(photo)), imagestore.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	stage(t, st, u, photo[:len(photo)/2], len(photo)/4)
	tok := uuid.New()
	st.Lock(ctx, u.ID, tok)
	half := int64(len(photo) / 2)
	if err := st.StageSegment(ctx, u.ID, tok, half, &failAfter{r: bytes.NewReader(photo[half:]), n: 100}, int64(len(photo))-half); err == nil {
		t.Fatal("a segment whose reader failed was staged")
	}
	// The parts a server killed during a multipart write of that segment would leave.
	var dead string
	if err := f.Pool.QueryRow(ctx, `select object_key from resumable_segments where upload = $1 and not stored`, u.ID).Scan(&dead); err != nil {
		t.Fatal(err)
	}
	core := minio.Core{Client: f.client}
	f.keysSeen = append(f.keysSeen, dead)
	uploadID, err := core.NewMultipartUpload(ctx, f.bucket, dead, minio.PutObjectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	part := bytes.Repeat([]byte{1}, 5<<20)
	if _, err := core.PutObjectPart(ctx, f.bucket, dead, uploadID, 1, bytes.NewReader(part), int64(len(part)), minio.PutObjectPartOptions{}); err != nil {
		t.Fatal(err)
	}
	before := f.staged(t)
	if len(before) != 3 || !strings.Contains(strings.Join(before, " "), "incomplete upload of "+dead) {
		t.Fatalf("before the expiry: %v, want two segments and the dead one's parts", before)
	}

	// Not yet expired: the sweeper leaves it alone.
	if _, err := f.sweeper.Pending(ctx, f.Core.PendingGrace()); err != nil {
		t.Fatal(err)
	}
	if got := f.staged(t); len(got) != 3 {
		t.Errorf("swept before the expiry: %v left", got)
	}
	// Wait for the expiry (the database's clock decides), then sweep.
	for {
		var expired bool
		if err := f.Pool.QueryRow(ctx, `select expires_at < now() from resumable_uploads where id = $1`, u.ID).Scan(&expired); err != nil {
			t.Fatal(err)
		}
		if expired {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if _, err := st.Staged(ctx, f.family, sess, u.ID); followup.ErrorCode(err) != followup.ENOTFOUND {
		t.Errorf("an expired upload = %v, want not found", err)
	}
	if _, err := f.sweeper.Pending(ctx, f.Core.PendingGrace()); err != nil {
		t.Fatal(err)
	}
	if left := f.staged(t); len(left) > 0 {
		t.Errorf("after the expiry and a sweep: %v left", left)
	}
}

// A concern photo (outside the schedule) goes through staging like a scheduled one: the
// upload keeps its kind, and the photo it becomes is a concern photo with no step.
func TestStagedConcernUpload(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	st := f.staging(t, Config{})
	ctx := followuptest.Ctx(t)
	photo := imagetest.PhoneJPEG(320, 240, 3, 7)
	sess := session()
	up := followup.PhotoUpload{Kind: followup.PhotoConcern, UploadID: "staged-concern-1"}
	u, err := st.CreateStaged(ctx, f.family, sess, up, int64(len(photo)), imagestore.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	stage(t, st, u, photo, 4096)
	got, err := st.Staged(ctx, f.family, sess, u.ID)
	if err != nil || got.Photo != up || !got.Complete() {
		t.Fatalf("staged = %+v, %v; want the concern upload, complete", got, err)
	}
	p, _, err := f.Core.AddPhoto(ctx, f.family, f.Proc.ID, got.Photo, bytes.NewReader(photo), int64(len(photo)), imagestore.Limits{})
	if err != nil || p.Kind != followup.PhotoConcern || p.Timepoint != "" || p.View != "" {
		t.Fatalf("photo = %+v, %v; want a concern photo without a step", p, err)
	}
	if _, err := st.CreateStaged(ctx, f.family, sess, followup.PhotoUpload{Kind: followup.PhotoConcern, Timepoint: "day-1", View: "front",
		UploadID: "staged-concern-2"}, 100, imagestore.Limits{}); followup.ErrorCode(err) != followup.EINVALID {
		t.Errorf("a concern upload naming a step = %v, want invalid", err)
	}
	// A scheduled upload read back keeps its kind too.
	sched, err := st.CreateStaged(ctx, f.family, sess, followup.PhotoUpload{Timepoint: "day-1", View: "front", UploadID: "staged-sched-1"}, 100, imagestore.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if got, err := st.Staged(ctx, f.family, sess, sched.ID); err != nil || got.Photo.Kind != followup.PhotoScheduled {
		t.Errorf("scheduled upload read back = %+v, %v", got.Photo, err)
	}
}
