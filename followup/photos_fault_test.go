package followup

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
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
	sweepEveryNote(t, svc)
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

// sweepEveryNote does to every pending note what package sweep's Pending does to the notes
// past their grace (that package, which imports this one, tests it): the object goes, then
// the note.
func sweepEveryNote(t *testing.T, svc *Service) {
	t.Helper()
	ctx := testCtx(t)
	rows, err := svc.pool.Query(ctx, `select object_key from pending_objects`)
	if err != nil {
		t.Fatal(err)
	}
	keys, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range keys {
		if err := svc.store.Delete(ctx, k); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := svc.pool.Exec(ctx, `delete from pending_objects where object_key = any($1)`, keys); err != nil {
		t.Fatal(err)
	}
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
