package web

import (
	"bytes"
	"context"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dermfollow/dermfollow/imagestore"
	"github.com/dermfollow/dermfollow/imagestore/imagetest"
	"github.com/dermfollow/dermfollow/imagestore/s3test"
)

// photo4MB is a phone-sized JPEG of about 4 MB (noise compresses badly), made once.
var photo4MB = sync.OnceValue(func() []byte {
	img := image.NewRGBA(image.Rect(0, 0, 2400, 1500))
	r := rand.New(rand.NewPCG(4, 4))
	for y := range 1500 {
		for x := range 2400 {
			img.Set(x, y, color.RGBA{byte(r.IntN(256)), byte(r.IntN(256)), byte(x ^ y), 255})
		}
	}
	var buf bytes.Buffer
	jpeg.Encode(&buf, img, &jpeg.Options{Quality: 95})
	return buf.Bytes()
})

// TestStoreRefusingEncryptedWrites: SSE on (the default), a MinIO
// without a KMS, 16 concurrent 4 MB parent uploads. Every one is answered 503 with a retry
// message, the process lives (a panic in a transport goroutine would end this test binary),
// nothing is stored, and /readyz says why.
func TestStoreRefusingEncryptedWrites(t *testing.T) {
	t.Parallel()
	m := s3test.StartMinIOWithoutKMS(t)
	ctx := context.Background()
	store, err := imagestore.NewS3Store(ctx, m.Config("sse-without-kms"))
	if err != nil {
		t.Fatal(err)
	}
	f := newAPIFixture(t, func(o *apiOptions) { o.store, o.limits = store, imagestore.Limits{MaxBytes: 8 << 20} })
	e := f.enrol(t)
	body := photo4MB()
	if len(body) < 3<<20 {
		t.Fatalf("test photo is %d bytes, want about 4 MB", len(body))
	}
	var wg sync.WaitGroup
	codes := make([]int, 16)
	messages := make([]string, 16)
	for i := range codes {
		wg.Go(func() {
			code, out := f.upload(t, linkPath(e.LinkURL)+"/photos", "", map[string]string{"timepoint": "day-1", "view": "front",
				"upload_id": fmt.Sprintf("no-kms-%02d", i)}, body)
			codes[i] = code
			if e, ok := out["error"].(map[string]any); ok {
				messages[i], _ = e["message"].(string)
			}
		})
	}
	wg.Wait()
	for i, c := range codes {
		if c != http.StatusServiceUnavailable || !strings.Contains(messages[i], "try again") {
			t.Errorf("upload %d = %d %q, want 503 with a retry message", i, c, messages[i])
		}
	}
	if n := f.count(t, `select count(*) from photos`); n != 0 {
		t.Errorf("%d photo rows, want none", n)
	}
	if _, err := newSweeper(t, f.svc, f.pool).Pending(ctx, -time.Hour); err != nil {
		t.Fatal(err)
	}
	if n := f.count(t, `select count(*) from pending_objects`); n != 0 {
		t.Errorf("%d pending notes after the sweep, want none", n)
	}
	if n := f.objects(t); n != 0 {
		t.Errorf("%d objects stored, want none", n)
	}
	var ready readiness
	if code := f.call(t, "GET", "/readyz", "", nil, &ready); code != 503 || ready.Checks["store"] != "refuses encrypted writes" || ready.Checks["database"] != "ok" {
		t.Errorf("/readyz = %d %+v, want 503 with the store refusing encrypted writes", code, ready)
	}
	logs := f.logs.String()
	if strings.Contains(logs, "panic") {
		t.Errorf("the log has a panic:\n%s", logs)
	}
	if n := strings.Count(logs, "MINIO_KMS_SECRET_KEY"); n != 1 {
		t.Errorf("the log names the fix %d times, want once:\n%.3000s", n, logs)
	}
}

// TestStoreFaultsOnEveryPath puts the fault proxy between the server and MinIO and, for each
// fault, sends parent uploads and clinic uploads at once, makes thumbnails and runs an export:
// every upload is answered 503 (retryable) or 201, nothing is left without its row or its
// object after the sweep, a thumbnail that failed on the store counts against no photo, a
// failed export leaves nothing in the bucket, and once the proxy heals every path works.
func TestStoreFaultsOnEveryPath(t *testing.T) {
	t.Parallel()
	_, cfg := s3test.NewStore(t)
	proxy := s3test.NewFaultProxy(t, cfg.Endpoint)
	pcfg := proxy.Config(cfg)
	pcfg.MaxRetries = 1
	store, err := imagestore.NewS3Store(context.Background(), pcfg)
	if err != nil {
		t.Fatal(err)
	}
	f := newExportFixture(t, store, func(o *apiOptions) { o.storeTimeout = 2 * time.Second })
	e := f.enrol(t)
	clinicPath := "/api/v1/procedures/" + e.ProcedureID + "/photos"
	faults := []s3test.Fault{{Kind: s3test.SlowDown}, {Kind: s3test.InternalError}, {Kind: s3test.AccessDenied},
		{Kind: s3test.Reset, After: 4 << 10}, {Kind: s3test.Stall, Stall: 5 * time.Second}}
	total := map[int]int{}
	for _, fault := range faults {
		// A photo waiting for its thumbnails when the store turns bad.
		code, pending := f.upload(t, clinicPath, f.clinician, map[string]string{"timepoint": "baseline", "view": "front",
			"upload_id": "before-" + fault.Kind.String()}, imagetest.JPEG(320, 240, 1))
		if code != 201 {
			t.Fatalf("upload before %s = %d", fault.Kind, code)
		}
		proxy.Always(fault)

		codes := f.uploadBurst(t, e, clinicPath, fault.Kind.String())
		for _, c := range codes {
			total[c]++
			if c != http.StatusServiceUnavailable && c != http.StatusCreated {
				t.Errorf("%s: an upload answered %d, want 503 or 201", fault.Kind, c)
			}
		}
		if _, err := f.thumbs.Make(context.Background(), 5); err == nil {
			t.Errorf("%s: thumbnails were stored through a failing store", fault.Kind)
		}
		if n := f.count(t, `select thumbnail_attempts from photos where id = $1`, pending["id"]); n != 0 {
			t.Errorf("%s: the store's failure counted %d attempts against the photo", fault.Kind, n)
		}
		var ex struct{ ID, Status, Error string }
		if code := f.call(t, "POST", "/api/v1/exports", f.researcher, exportBody, &ex); code != 202 {
			t.Fatalf("start export = %d", code)
		}
		f.exp.RunOnce(context.Background())
		f.call(t, "GET", "/api/v1/exports/"+ex.ID, f.researcher, nil, &ex)
		switch {
		case fault.Kind == s3test.Stall && ex.Status == "done":
			// A stall shorter than the export's patience is only slowness.
		case ex.Status != "failed" || !strings.Contains(ex.Error, "start the export again"):
			t.Errorf("%s: export = %+v, want failed with a message to start again", fault.Kind, ex)
		}

		proxy.Heal()
		proxy.WaitIdle(t)
		if proxy.Count(fault.Kind) == 0 {
			t.Errorf("the proxy applied no %s fault", fault.Kind)
		}
		f.checkStored(t, fault.Kind.String())
		if code, _ := f.upload(t, clinicPath, f.clinician, map[string]string{"timepoint": "baseline", "view": "front",
			"upload_id": "after-" + fault.Kind.String()}, imagetest.JPEG(320, 240, 2)); code != 201 {
			t.Errorf("upload after %s healed = %d", fault.Kind, code)
		}
		if n, err := f.thumbs.Make(context.Background(), 10); err != nil || n == 0 {
			t.Errorf("thumbnails after %s healed = %d, %v", fault.Kind, n, err)
		}
		f.start(t, f.researcher) // an export after the fault: done
	}
	t.Logf("answers under faults: %v", total)
}

// uploadBurst sends 8 parent and 8 clinic uploads at once and returns their statuses.
func (f *apiFixture) uploadBurst(t *testing.T, e enrolled, clinicPath, tag string) []int {
	t.Helper()
	codes := make([]int, 16)
	var wg sync.WaitGroup
	for i := range codes {
		wg.Go(func() {
			path, token := linkPath(e.LinkURL)+"/photos", ""
			tp := "day-1"
			if i%2 == 1 {
				path, token, tp = clinicPath, f.clinician, "baseline"
			}
			codes[i], _ = f.upload(t, path, token, map[string]string{"timepoint": tp, "view": "front",
				"upload_id": fmt.Sprintf("%s-%02d", tag, i)}, imagetest.JPEG(320, 240, byte(i)))
		})
	}
	wg.Wait()
	return codes
}

// checkStored asserts that every photo row has its object and, after a sweep that takes every
// pending note, every object has its row.
func (f *apiFixture) checkStored(t *testing.T, when string) {
	t.Helper()
	ctx := context.Background()
	if _, err := newSweeper(t, f.svc, f.pool).Pending(ctx, -time.Hour); err != nil {
		t.Fatalf("%s: sweep: %v", when, err)
	}
	rows, err := f.pool.Query(ctx, `select object_key from photos`)
	if err != nil {
		t.Fatal(err)
	}
	keys := map[string]bool{}
	for rows.Next() {
		var k string
		rows.Scan(&k)
		keys[k] = true
	}
	rows.Close()
	for k := range keys {
		if _, err := f.store.Stat(ctx, k); err != nil {
			t.Errorf("%s: a photo row without its object: %v", when, err)
		}
	}
	f.store.List(ctx, "", func(o imagestore.ObjectInfo) error {
		if strings.HasPrefix(o.Key, "photos/") && !keys[o.Key] {
			t.Errorf("%s: object %s has no row after the sweep", when, o.Key)
		}
		if strings.HasPrefix(o.Key, "exports/") && f.count(t, `select count(*) from exports where object_key = $1 and status = 'done'`, o.Key) != 1 ||
			strings.HasPrefix(o.Key, imagestore.ProbePrefix) {
			t.Errorf("%s: object %s left in the bucket", when, o.Key)
		}
		return nil
	})
}
