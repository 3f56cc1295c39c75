package web

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/dermfollow/dermfollow/followup"
	"github.com/dermfollow/dermfollow/followup/accounts"
	"github.com/dermfollow/dermfollow/followup/pgtest"
	"github.com/dermfollow/dermfollow/imagestore"
	"github.com/dermfollow/dermfollow/imagestore/imagetest"
	"github.com/dermfollow/dermfollow/imagestore/s3test"
	"github.com/dermfollow/dermfollow/migrations"
	"github.com/dermfollow/dermfollow/protocols"
)

// faultRig is the server over a private PostgreSQL and a private MinIO that the test may
// crash and restart.
type faultRig struct {
	url     string
	pg      *pgtest.Cluster
	minio   *s3test.MinIO
	pool    *pgxpool.Pool
	store   *imagestore.S3Store
	svc     *followup.Service
	uploads string // the parent link's upload path
}

func newFaultRig(t *testing.T) *faultRig {
	t.Helper()
	r := &faultRig{pg: pgtest.StartCluster(t), minio: s3test.StartMinIO(t)}
	ctx := context.Background()
	dbURL := r.pg.URL("postgres")
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	if _, err := migrations.Up(ctx, dbURL, log); err != nil {
		t.Fatal(err)
	}
	var err error
	pc, err := pgxpool.ParseConfig(dbURL)
	if err != nil {
		t.Fatal(err)
	}
	followup.ConfigurePool(pc)
	if r.pool, err = pgxpool.NewWithConfig(ctx, pc); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.pool.Close)
	cfg := r.minio.Config("photos")
	cfg.MaxRetries = 2 // fail within a second of an outage rather than ride it out
	if r.store, err = imagestore.NewS3Store(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	reg, _ := protocols.LoadRegistry("")
	// Bursts through one link, far above a family's quotas (tested on their own).
	if r.svc, err = followup.New(followup.Config{Pool: r.pool, Store: r.store, Protocols: reg, Logger: log, BaseURL: "http://x",
		Quota: followup.PhotoQuota{LinkPerMinute: 1000, StepPhotos: 1000}}); err != nil {
		t.Fatal(err)
	}
	acc := newAccounts(t, r.pool, log)
	srv, err := New(Config{Logger: log, DB: r.pool, Store: r.store, Registry: prometheus.NewRegistry(), Service: r.svc, Accounts: acc,
		Reminders: newReminders(t, r.pool, log, "http://x", nil), Export: newExport(t, r.svc, r.pool, log, nil)})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv)
	t.Cleanup(hs.Close)
	r.url = hs.URL

	clinic, err := r.svc.CreateClinic(ctx, "Fault clinic", "UTC")
	if err != nil {
		t.Fatal(err)
	}
	admin := followup.SystemActor(clinic.ID)
	u, err := acc.CreateUser(ctx, admin, accounts.NewUser{ClinicID: clinic.ID, Email: "c@example.org", Role: followup.RoleClinician, Password: "a long test password"})
	if err != nil {
		t.Fatal(err)
	}
	c := followup.Actor{Kind: followup.ActorUser, ID: u.ID, ClinicID: clinic.ID, Role: u.Role}
	p, err := r.svc.CreatePatient(ctx, c, followup.NewPatient{DisplayName: "F", BirthDate: "2024-01-01", GuardianPhone: "+1 555 0100"})
	if err != nil {
		t.Fatal(err)
	}
	e, err := r.svc.Enrol(ctx, c, followup.NewProcedure{PatientID: p.ID.String(), Protocol: "pws-hemoporfin-pdt", BodySite: "face",
		PerformedAt: time.Now().Add(-30 * time.Hour).Format(time.RFC3339)})
	if err != nil {
		t.Fatal(err)
	}
	l, err := r.svc.CreateLink(ctx, c, e.ID, false)
	if err != nil {
		t.Fatal(err)
	}
	r.uploads = linkPath(l.URL) + "/photos"
	return r
}

type uploadResult struct {
	uploadID string
	body     []byte
	status   int
	id, sum  string
}

func (r *faultRig) post(t *testing.T, uploadID string, body []byte) uploadResult {
	t.Helper()
	form, contentType := photoForm(map[string]string{"timepoint": "day-1", "view": "front", "upload_id": uploadID}, body)
	client := &http.Client{Timeout: 2 * time.Minute}
	resp, err := client.Post(r.url+r.uploads, contentType, form)
	res := uploadResult{uploadID: uploadID, body: body}
	if err != nil {
		t.Errorf("upload %s: %v (the server must answer, not drop the request)", uploadID, err)
		return res
	}
	defer resp.Body.Close()
	res.status = resp.StatusCode
	var p struct {
		ID, SHA256 string
		Error      struct{ Code, Message string }
	}
	json.NewDecoder(resp.Body).Decode(&p)
	if resp.StatusCode >= 400 && resp.StatusCode < 500 {
		t.Logf("upload %s: %d %s: %s", uploadID, resp.StatusCode, p.Error.Code, p.Error.Message)
	}
	res.id, res.sum = p.ID, p.SHA256
	return res
}

// burst sends n distinct uploads from 4 clients; after the first few, outage runs.
func (r *faultRig) burst(t *testing.T, prefix string, n int, outage func()) []uploadResult {
	t.Helper()
	results := make([]uploadResult, n)
	next := make(chan int)
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for i := range next {
				results[i] = r.post(t, fmt.Sprintf("%s-%04d", prefix, i), imagetest.JPEG(320, 240, byte(i)))
			}
		})
	}
	for i := range n {
		if i == n/4 {
			outage()
		}
		next <- i
	}
	close(next)
	wg.Wait()
	return results
}

// faultSummary counts what check found, for the test's summary line.
type faultSummary struct {
	acked, readBack, refused, rows, objects, storedOnRetry, duplicates int
}

func (s faultSummary) String() string {
	return fmt.Sprintf("invariants: %d acknowledged and %d of them read back whole; %d refused with 503, none with a row; "+
		"no object without a row after the sweep; %d stored on retry, once each; then %d rows and %d objects, every row with its object; %d upload_ids stored twice",
		s.acked, s.readBack, s.refused, s.storedOnRetry, s.rows, s.objects, s.duplicates)
}

// check asserts the no-data-loss rules after a burst and returns the failed uploads, with the
// counts of what it checked. A failure must be a 503 (try again), never another server error:
// a restarting PostgreSQL answered 500 once.
func (r *faultRig) check(t *testing.T, results []uploadResult) ([]uploadResult, faultSummary) {
	t.Helper()
	ctx := context.Background()
	var failed []uploadResult
	var sum faultSummary
	for _, res := range results {
		switch {
		case res.status == http.StatusCreated:
			sum.acked++
			var key string
			if err := r.pool.QueryRow(ctx, `select object_key from photos where id = $1`, res.id).Scan(&key); err != nil {
				t.Errorf("acknowledged upload %s has no row: %v", res.uploadID, err)
				continue
			}
			obj, _, err := r.store.Open(ctx, key)
			if err != nil {
				t.Errorf("acknowledged upload %s has no object: %v", res.uploadID, err)
				continue
			}
			h := sha256.New()
			io.Copy(h, obj)
			obj.Close()
			if hex.EncodeToString(h.Sum(nil)) != res.sum {
				t.Errorf("acknowledged upload %s reads back with another SHA-256", res.uploadID)
				continue
			}
			sum.readBack++
		case res.status == http.StatusServiceUnavailable:
			sum.refused++
			var n int
			r.pool.QueryRow(ctx, `select count(*) from photos where upload_id = $1`, res.uploadID).Scan(&n)
			if n != 0 {
				t.Errorf("failed upload %s (%d) left a row", res.uploadID, res.status)
			}
			failed = append(failed, res)
		default:
			t.Errorf("upload %s answered %d: neither stored nor 503 (try again)", res.uploadID, res.status)
		}
	}
	// The sweepers leave no object without a row (grace 0: nothing is in flight now): the
	// pending notes of failed uploads, then the full reconciliation.
	sw := newSweeper(t, r.svc, r.pool)
	if _, err := sw.Pending(ctx, -time.Minute); err != nil {
		t.Fatal(err)
	}
	if _, err := sw.Orphans(ctx, -time.Minute); err != nil {
		t.Fatal(err)
	}
	err := r.store.List(ctx, "photos/", func(o imagestore.ObjectInfo) error {
		var n int
		r.pool.QueryRow(ctx, `select count(*) from photos where object_key = $1`, o.Key).Scan(&n)
		if n != 1 {
			t.Errorf("object %s has no row after the sweep", o.Key)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// Each failed upload, retried with its upload_id, is stored exactly once.
	for _, res := range failed {
		again := r.post(t, res.uploadID, res.body)
		twice := r.post(t, res.uploadID, res.body)
		if again.status != http.StatusCreated || twice.status != http.StatusOK || twice.id != again.id {
			t.Errorf("retry of %s = %d then %d (%s, %s); want 201 then 200 with the same photo", res.uploadID, again.status, twice.status, again.id, twice.id)
			continue
		}
		sum.storedOnRetry++
	}
	keys, err := r.pool.Query(ctx, `select object_key from photos`)
	if err != nil {
		t.Fatal(err)
	}
	for keys.Next() {
		var k string
		keys.Scan(&k)
		sum.rows++
		if _, err := r.store.Stat(ctx, k); err != nil {
			t.Errorf("photo row without its object %s: %v", k, err)
		}
	}
	keys.Close()
	if err := r.store.List(ctx, "photos/", func(imagestore.ObjectInfo) error { sum.objects++; return nil }); err != nil {
		t.Fatal(err)
	}
	if sum.objects != sum.rows {
		t.Errorf("%d objects for %d photo rows after the retries", sum.objects, sum.rows)
	}
	r.pool.QueryRow(ctx, `select count(*) from (select 1 from photos group by procedure_id, upload_id having count(*) > 1) d`).Scan(&sum.duplicates)
	if sum.duplicates != 0 {
		t.Errorf("%d upload_ids stored twice", sum.duplicates)
	}
	if sum.rows != len(results) {
		t.Errorf("%d photo rows after every retry, want %d (one per upload_id)", sum.rows, len(results))
	}
	return failed, sum
}

func TestFaultStoreDown(t *testing.T) {
	t.Parallel()
	r := newFaultRig(t)
	restarted := make(chan struct{})
	results := r.burst(t, "miniodown", 32, func() {
		r.minio.Stop(t)
		go func() {
			defer close(restarted)
			time.Sleep(2 * time.Second)
			r.minio.Start(t)
		}()
	})
	<-restarted
	failed, sum := r.check(t, results)
	if len(failed) == 0 {
		t.Error("no upload failed while MinIO was down: the outage was not exercised")
	}
	t.Logf("%d of %d uploads failed during the MinIO outage and were retried; %v", len(failed), len(results), sum)
}

func TestFaultDatabaseDown(t *testing.T) {
	t.Parallel()
	r := newFaultRig(t)
	restarted := make(chan struct{})
	results := r.burst(t, "pgdown", 32, func() {
		r.pg.Stop(t)
		go func() {
			defer close(restarted)
			time.Sleep(2 * time.Second)
			r.pg.Start(t)
		}()
	})
	<-restarted
	// Wait for the pool to reach the database again before checking.
	deadline := time.Now().Add(30 * time.Second)
	for r.pool.Ping(context.Background()) != nil && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	failed, sum := r.check(t, results)
	if len(failed) == 0 {
		t.Error("no upload failed while PostgreSQL was down: the outage was not exercised")
	}
	t.Logf("%d of %d uploads failed during the PostgreSQL outage and were retried; %v", len(failed), len(results), sum)
}
