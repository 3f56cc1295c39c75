package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"mime/multipart"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/dermfollow/dermfollow/followup"
	"github.com/dermfollow/dermfollow/followup/accounts"
	"github.com/dermfollow/dermfollow/followup/pgtest"
	"github.com/dermfollow/dermfollow/imagestore"
	"github.com/dermfollow/dermfollow/imagestore/imagetest"
	"github.com/dermfollow/dermfollow/imagestore/s3test"
	"github.com/dermfollow/dermfollow/protocols"
)

// These tests run the real binary as a process, against the test PostgreSQL and MinIO, so
// that it can be killed (SIGKILL), stopped (SIGTERM) and run twice side by side.

var builtBinary = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "dermfollow-bin-")
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "dermfollow")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("go build: %v\n%s", err, out)
	}
	return bin, nil
})

// deployment is one database and one bucket that server processes share.
type deployment struct {
	env   map[string]string
	db    string
	pool  *pgxpool.Pool
	store *imagestore.S3Store
	svc   *followup.Service // the test's own view, for fixtures and checks
	acc   *accounts.Service
}

func newDeployment(t *testing.T, extra map[string]string) *deployment {
	t.Helper()
	if _, err := builtBinary(); err != nil {
		t.Fatal(err)
	}
	d := &deployment{db: pgtest.NewEmptyDatabase(t)}
	store, cfg := s3test.NewStore(t)
	d.store = store
	d.env = map[string]string{
		"DATABASE_URL": d.db, "DERMFOLLOW_SECRET_KEY": testSecret, "DERMFOLLOW_LOG_FORMAT": "json",
		"DERMFOLLOW_ADDR": "127.0.0.1:0", "DERMFOLLOW_METRICS_ADDR": "off", "DERMFOLLOW_BASE_URL": "http://dermfollow.test",
		"DERMFOLLOW_S3_ENDPOINT": cfg.Endpoint, "DERMFOLLOW_S3_ACCESS_KEY": cfg.AccessKey, "DERMFOLLOW_S3_SECRET_KEY": cfg.SecretKey,
		"DERMFOLLOW_S3_BUCKET": cfg.Bucket, "DERMFOLLOW_S3_TLS": "false",
		// Short deadlines, so that a failed upload's leftovers are swept within the test.
		"DERMFOLLOW_STORE_TIMEOUT": "2s", "DERMFOLLOW_DRAIN_DELAY": "0s", "DERMFOLLOW_SHUTDOWN_TIMEOUT": "20s",
	}
	for k, v := range extra {
		d.env[k] = v
	}
	return d
}

// open connects the test's own service once the first server has migrated the database.
func (d *deployment) open(t *testing.T) {
	t.Helper()
	d.pool = pgtest.OpenPool(t, d.db)
	reg, err := protocols.LoadRegistry("")
	if err != nil {
		t.Fatal(err)
	}
	d.svc, err = followup.New(followup.Config{Pool: d.pool, Store: d.store, Protocols: reg, BaseURL: "http://dermfollow.test",
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	if d.acc, err = accounts.New(accounts.Config{Pool: d.pool}); err != nil {
		t.Fatal(err)
	}
}

// proc is one server process.
type proc struct {
	cmd  *exec.Cmd
	URL  string
	logs *syncBuffer
	done chan struct{}
	err  error
}

var listeningRe = regexp.MustCompile(`"msg":"listening","addr":"([^"]+)"`)

func (d *deployment) start(t *testing.T, extra ...string) *proc {
	t.Helper()
	bin, _ := builtBinary()
	cmd := exec.Command(bin, "serve")
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "TMPDIR=" + t.TempDir()}
	for k, v := range d.env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	cmd.Env = append(cmd.Env, extra...)
	p := &proc{cmd: cmd, logs: &syncBuffer{}, done: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = p.logs, p.logs
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.err = cmd.Wait(); close(p.done) }()
	t.Cleanup(func() { p.kill() })
	deadline := time.Now().Add(2 * time.Minute)
	for time.Now().Before(deadline) {
		if m := listeningRe.FindStringSubmatch(p.logs.String()); m != nil {
			p.URL = "http://" + m[1]
			return p
		}
		select {
		case <-p.done:
			t.Fatalf("server exited before listening: %v\n%s", p.err, p.logs)
		case <-time.After(20 * time.Millisecond):
		}
	}
	t.Fatalf("server did not start listening:\n%s", p.logs)
	return nil
}

// kill ends the process the way a crash does.
func (p *proc) kill() {
	p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
}

// term sends SIGTERM and waits for the process to exit, returning its exit error.
func (p *proc) term(t *testing.T, within time.Duration) error {
	t.Helper()
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
		return p.err
	case <-time.After(within):
		t.Fatalf("server still running %v after SIGTERM:\n%s", within, p.logs)
		return nil
	}
}

// family is a clinic with a clinician's API token and a procedure whose family step day-4 is
// open, with a parent link.
type family struct {
	clinic           followup.Clinic
	token, linkToken string
	procedure        uuid.UUID
}

func (d *deployment) newFamily(t *testing.T, zone, guardianEmail string) family {
	t.Helper()
	ctx := context.Background()
	clinic, err := d.svc.CreateClinic(ctx, "Process clinic "+uuid.NewString()[:6], zone)
	if err != nil {
		t.Fatal(err)
	}
	email := "clinician-" + uuid.NewString()[:8] + "@example.org"
	u, err := d.acc.CreateUser(ctx, followup.SystemActor(clinic.ID), accounts.NewUser{ClinicID: clinic.ID, Email: email, Role: followup.RoleClinician, Password: "a long test password"})
	if err != nil {
		t.Fatal(err)
	}
	token, err := d.acc.CreateToken(ctx, followup.SystemActor(clinic.ID), email)
	if err != nil {
		t.Fatal(err)
	}
	a := followup.Actor{Kind: followup.ActorUser, ID: u.ID, ClinicID: clinic.ID, Role: u.Role}
	pt, err := d.svc.CreatePatient(ctx, a, followup.NewPatient{DisplayName: "Process Patient", BirthDate: "2024-01-01",
		GuardianEmail: guardianEmail, GuardianPhone: "+1 555 0100"})
	if err != nil {
		t.Fatal(err)
	}
	e, err := d.svc.Enrol(ctx, a, followup.NewProcedure{PatientID: pt.ID.String(), Protocol: "pws-hemoporfin-pdt", BodySite: "face",
		PerformedAt: time.Now().Add(-4 * 24 * time.Hour).Format(time.RFC3339)})
	if err != nil {
		t.Fatal(err)
	}
	l, err := d.svc.CreateLink(ctx, a, e.ID, false)
	if err != nil {
		t.Fatal(err)
	}
	return family{clinic: clinic, token: token, linkToken: l.URL[strings.LastIndex(l.URL, "/")+1:], procedure: e.ID}
}

// sent is one upload and what the server answered.
type sent struct {
	f        family
	uploadID string
	status   int
	id, sum  string
	err      error
}

// upload sends one photo through the family's link to base.
func upload(client *http.Client, base string, f family, uploadID string, photo []byte) sent {
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	mw.WriteField("timepoint", "day-4")
	mw.WriteField("view", "front")
	mw.WriteField("upload_id", uploadID)
	fw, _ := mw.CreateFormFile("file", "IMG.JPG")
	fw.Write(photo)
	mw.Close()
	res := sent{f: f, uploadID: uploadID}
	req, _ := http.NewRequest("POST", base+"/p/"+f.linkToken+"/photos", &body)
	req.Header.Set("Content-Type", mw.FormDataContentType())
	resp, err := client.Do(req)
	if err != nil {
		res.err = err
		return res
	}
	defer resp.Body.Close()
	res.status = resp.StatusCode
	var p struct{ ID, SHA256 string }
	json.NewDecoder(resp.Body).Decode(&p)
	res.id, res.sum = p.ID, p.SHA256
	return res
}

// photoFor is a distinct, ordinary photo per index.
func photoFor(i int) []byte { return imagetest.PhoneJPEG(640, 480, byte(i), 1) }

// checkDeployment asserts the no-data-loss rules over everything the processes answered:
// every 201 reads back with the bytes it was acknowledged with; every upload_id sent again
// gives one photo, the same one the 201 named; and, once the sweeper has run, no object lacks
// a row and no pending note is left.
func (d *deployment) checkDeployment(t *testing.T, base string, results []sent) {
	t.Helper()
	acked, retried := 0, 0
	client := &http.Client{Timeout: time.Minute}
	for _, r := range results {
		if r.status == http.StatusCreated {
			acked++
			req, _ := http.NewRequest("GET", base+"/api/v1/photos/"+r.id+"/original", nil)
			req.Header.Set("Authorization", "Bearer "+r.f.token)
			resp, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			h := sha256.New()
			io.Copy(h, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 || hex.EncodeToString(h.Sum(nil)) != r.sum {
				t.Errorf("acknowledged %s reads back %d with other bytes", r.uploadID, resp.StatusCode)
			}
		}
	}
	for _, r := range results {
		i := 0
		fmt.Sscanf(r.uploadID[strings.LastIndex(r.uploadID, "-")+1:], "%d", &i)
		again := upload(client, base, r.f, r.uploadID, photoFor(i))
		if again.status != 200 && again.status != 201 || r.status == 201 && (again.status != 200 || again.id != r.id) {
			t.Errorf("retry of %s (first %d) = %d %s, want the same photo", r.uploadID, r.status, again.status, again.id)
		}
		if again.status == 201 {
			retried++
		}
	}
	var dup int
	d.pool.QueryRow(context.Background(), `select count(*) from (select upload_id from photos group by procedure_id, upload_id having count(*) > 1) x`).Scan(&dup)
	if dup != 0 {
		t.Errorf("%d upload_ids stored twice", dup)
	}
	// The servers sweep what failed uploads left once no upload can be in flight.
	deadline := time.Now().Add(90 * time.Second)
	for {
		var notes, rows int
		d.pool.QueryRow(context.Background(), `select count(*) from pending_objects`).Scan(&notes)
		d.pool.QueryRow(context.Background(), `select count(*) from photos`).Scan(&rows)
		objects := 0
		d.store.List(context.Background(), "photos/", func(imagestore.ObjectInfo) error { objects++; return nil })
		if notes == 0 && objects == rows {
			t.Logf("invariants: %d uploads, %d acknowledged, %d stored on retry, %d rows, %d objects, no duplicate, no orphan, no pending note",
				len(results), acked, retried, rows, objects)
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 90 s: %d pending notes, %d objects for %d rows", notes, objects, rows)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// TestProcessKilledMidBurst: SIGKILL in the middle of 32 uploads from 4 clients (two
// families, within their links' quotas), then a new process: nothing acknowledged is lost,
// every upload_id gives one photo, orphans are swept.
func TestProcessKilledMidBurst(t *testing.T) {
	t.Parallel()
	d := newDeployment(t, nil)
	first := d.start(t)
	d.open(t)
	families := []family{d.newFamily(t, "UTC", ""), d.newFamily(t, "UTC", "")}
	results := make([]sent, 32)
	var acked atomic.Int32
	killNow := make(chan struct{})
	next := make(chan int)
	var wg sync.WaitGroup
	client := &http.Client{Timeout: time.Minute}
	for range 4 {
		wg.Go(func() {
			for i := range next {
				results[i] = upload(client, first.URL, families[i%2], fmt.Sprintf("killed-%03d", i), photoFor(i))
				if results[i].status == 201 && acked.Add(1) == 8 {
					close(killNow) // the eighth acknowledgement: kill in the middle of the burst
				}
			}
		})
	}
	go func() {
		select {
		case <-killNow:
			first.kill()
		case <-first.done:
		}
	}()
	for i := range results {
		next <- i
	}
	close(next)
	wg.Wait()
	<-first.done
	failed := 0
	for _, r := range results {
		if r.status != 201 {
			failed++
		}
	}
	if failed == 0 {
		t.Fatal("no upload failed: the kill did not land in the burst")
	}
	// What the kill left for the new process's sweep (said, not asserted: where the kill lands
	// in each upload is up to the scheduler).
	var notes int
	d.pool.QueryRow(context.Background(), `select count(*) from pending_objects`).Scan(&notes)
	t.Logf("the kill left %d of 32 uploads without a 201 and %d pending notes for the sweep", failed, notes)
	second := d.start(t)
	d.checkDeployment(t, second.URL, results)
}

// TestProcessTermFinishesUploads: SIGTERM while uploads are on their way: the server drains
// (/readyz 503), lets them finish (each 201) and exits cleanly within the shutdown timeout.
func TestProcessTermFinishesUploads(t *testing.T) {
	t.Parallel()
	d := newDeployment(t, map[string]string{"DERMFOLLOW_DRAIN_DELAY": "1s"})
	srv := d.start(t)
	d.open(t)
	f := d.newFamily(t, "UTC", "")
	results := make([]sent, 8)
	var wg sync.WaitGroup
	started := make(chan struct{}, len(results))
	for i := range results {
		wg.Go(func() {
			results[i] = slowUpload(srv.URL, f, fmt.Sprintf("termed-%03d", i), photoFor(i), started)
		})
	}
	for range results {
		<-started
	}
	srv.cmd.Process.Signal(syscall.SIGTERM)
	// While draining, /readyz says so and the server still serves.
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(srv.logs.String(), `"msg":"draining"`) && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if resp, err := http.Get(srv.URL + "/readyz"); err != nil || resp.StatusCode != 503 {
		t.Errorf("/readyz while draining = %v %v, want 503", resp, err)
	} else {
		resp.Body.Close()
	}
	wg.Wait()
	select {
	case <-srv.done:
	case <-time.After(30 * time.Second):
		t.Fatal("the server did not exit within its shutdown timeout")
	}
	if srv.err != nil {
		t.Errorf("exit after SIGTERM: %v\n%s", srv.err, srv.logs)
	}
	for _, r := range results {
		if r.status != 201 {
			t.Errorf("upload %s in flight at SIGTERM = %d %v, want 201", r.uploadID, r.status, r.err)
		}
	}
}

// slowUpload sends an upload whose body takes about two seconds to arrive.
func slowUpload(base string, f family, uploadID string, photo []byte, started chan<- struct{}) sent {
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	mw.WriteField("timepoint", "day-4")
	mw.WriteField("view", "front")
	mw.WriteField("upload_id", uploadID)
	fw, _ := mw.CreateFormFile("file", "IMG.JPG")
	fw.Write(photo)
	mw.Close()
	pr, pw := io.Pipe()
	go func() {
		raw := body.Bytes()
		step := len(raw)/20 + 1
		for i := 0; i < len(raw); i += step {
			pw.Write(raw[i:min(i+step, len(raw))])
			if i == 0 {
				started <- struct{}{}
			}
			time.Sleep(100 * time.Millisecond)
		}
		pw.Close()
	}()
	req, _ := http.NewRequest("POST", base+"/p/"+f.linkToken+"/photos", pr)
	req.Header.Set("Content-Type", mw.FormDataContentType())
	req.ContentLength = int64(body.Len())
	res := sent{f: f, uploadID: uploadID}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		res.err = err
		return res
	}
	defer resp.Body.Close()
	res.status = resp.StatusCode
	return res
}

// TestStalledClientsHoldBoundedResources: forty clients that send 4 MB of a photo quickly
// and then nothing (a slow-body attack through three links from one address): the server
// takes no more than its slots per client (the rest hear 429 before their bodies are read),
// holds the taken ones in at most its upload memory budget plus temp files, and cuts them
// once their minimum rate's slack is spent, giving memory, files and connections back.
func TestStalledClientsHoldBoundedResources(t *testing.T) {
	t.Parallel()
	d := newDeployment(t, nil)
	srv := d.start(t)
	d.open(t)
	pid := srv.cmd.Process.Pid
	idle := rssKB(t, pid)
	families := []family{d.newFamily(t, "UTC", ""), d.newFamily(t, "UTC", ""), d.newFamily(t, "UTC", "")}
	head := bytes.Repeat([]byte{0xff}, 4<<20)
	var mu sync.Mutex
	codes := map[int]int{}
	var wg sync.WaitGroup
	conns := make(chan net.Conn, 40)
	for i := range 40 {
		wg.Go(func() {
			c, err := net.Dial("tcp", strings.TrimPrefix(srv.URL, "http://"))
			if err != nil {
				t.Error(err)
				return
			}
			conns <- c
			boundary := "stalled"
			pre := fmt.Sprintf("--%s\r\nContent-Disposition: form-data; name=\"timepoint\"\r\n\r\nday-4\r\n--%s\r\nContent-Disposition: form-data; name=\"view\"\r\n\r\nfront\r\n"+
				"--%s\r\nContent-Disposition: form-data; name=\"upload_id\"\r\n\r\nstalled-%03d\r\n--%s\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.jpg\"\r\n\r\n",
				boundary, boundary, boundary, i, boundary)
			fmt.Fprintf(c, "POST /p/%s/photos HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary=%s\r\nContent-Length: %d\r\n\r\n%s",
				families[i%3].linkToken, boundary, len(pre)+20<<20, pre)
			c.Write(head)
			c.SetReadDeadline(time.Now().Add(90 * time.Second))
			line, _ := bufio.NewReader(c).ReadString('\n')
			code := 0
			fmt.Sscanf(line, "HTTP/1.1 %d", &code)
			mu.Lock()
			codes[code]++
			mu.Unlock()
		})
	}
	// While they stall: what the server holds.
	time.Sleep(3 * time.Second)
	peakRSS, held, files := rssKB(t, pid), 0, 0
	entries, _ := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	for _, e := range entries {
		p := fmt.Sprintf("/proc/%d/fd/%s", pid, e.Name())
		if target, _ := os.Readlink(p); strings.Contains(target, "dermfollow-upload") && strings.HasSuffix(target, "(deleted)") {
			if st, err := os.Stat(p); err == nil {
				held += int(st.Size())
				files++
			}
		}
	}
	wg.Wait()
	close(conns)
	for c := range conns {
		c.Close()
	}
	mu.Lock()
	defer mu.Unlock()
	if codes[429] < 40-32 {
		t.Errorf("answers: %v; want at least 8 refused (429) before their bodies: 32 uploads per client address", codes)
	}
	grew := (peakRSS - idle) << 10
	if grew > 120<<20 {
		t.Errorf("RSS grew by %d MB with 40 stalled clients, ceiling 120 MB (the 64 MiB upload budget and buffers)", grew>>20)
	}
	if held > 32*(4<<20)+(1<<20) {
		t.Errorf("%d MB of temp files held, ceiling 128 MB (32 slots of 4 MB)", held>>20)
	}
	// The slack spent, every stalled upload was cut: no temp file is left.
	deadline := time.Now().Add(60 * time.Second)
	for {
		left := 0
		entries, _ := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
		for _, e := range entries {
			if target, _ := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", pid, e.Name())); strings.Contains(target, "dermfollow-upload") {
				left++
			}
		}
		if left == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d upload temp files still open 60 s after the clients stalled", left)
		}
		time.Sleep(500 * time.Millisecond)
	}
	t.Logf("40 stalled clients: answers %v; RSS grew by %d MB (idle %d MB); %d temp files, %d MB held; all cut after the slack",
		codes, grew>>20, idle>>10, files, held>>20)
}

// rssKB is a process's resident set, in KiB.
func rssKB(t *testing.T, pid int) int {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			n := 0
			fmt.Sscanf(strings.TrimSpace(v), "%d", &n)
			return n
		}
	}
	t.Fatal("no VmRSS")
	return 0
}

// TestHeaderSlowlorisIsCut: connections that send their headers a byte at a time, or stop
// half-way, are cut at the header deadline (10 s), while honest requests keep being answered
// at once.
func TestHeaderSlowlorisIsCut(t *testing.T) {
	t.Parallel()
	d := newDeployment(t, nil)
	srv := d.start(t)
	addr := strings.TrimPrefix(srv.URL, "http://")
	start := time.Now()
	var cut sync.WaitGroup
	var mu sync.Mutex
	var longest time.Duration
	for range 50 {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		io.WriteString(c, "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ")
		cut.Go(func() {
			c.SetReadDeadline(time.Now().Add(60 * time.Second))
			io.Copy(io.Discard, c) // returns when the server closes the connection
			mu.Lock()
			longest = max(longest, time.Since(start))
			mu.Unlock()
		})
	}
	for range 5 {
		t0 := time.Now()
		resp, err := http.Get(srv.URL + "/healthz")
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("an honest request beside 50 slow ones = %v %v", resp, err)
		}
		resp.Body.Close()
		if took := time.Since(t0); took > 2*time.Second {
			t.Errorf("an honest request took %v beside 50 slow ones", took)
		}
		time.Sleep(time.Second)
	}
	cut.Wait()
	if longest > 20*time.Second {
		t.Errorf("slow-header connections held for %v, want cut at about 10 s", longest)
	}
	t.Logf("50 slow-header connections cut after at most %v", longest.Round(100*time.Millisecond))
}
