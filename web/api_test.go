package web

import (
	"bytes"
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/dermfollow/dermfollow/followup"
	"github.com/dermfollow/dermfollow/followup/accounts"
	"github.com/dermfollow/dermfollow/followup/export"
	"github.com/dermfollow/dermfollow/followup/pgtest"
	"github.com/dermfollow/dermfollow/followup/reminders"
	"github.com/dermfollow/dermfollow/followup/sweep"
	"github.com/dermfollow/dermfollow/followup/thumbnails"
	"github.com/dermfollow/dermfollow/imagestore"
	"github.com/dermfollow/dermfollow/imagestore/imagetest"
	"github.com/dermfollow/dermfollow/imagestore/s3test"
	"github.com/dermfollow/dermfollow/protocols"
)

// apiFixture is the whole server over real PostgreSQL and MinIO, reached through real HTTP,
// with two clinics and a user of every role.
type apiFixture struct {
	url   string
	srv   *Server
	svc   *followup.Service
	acc   *accounts.Service
	exp   *export.Service
	pool  *pgxpool.Pool
	store imagestore.Store
	logs  *syncBuffer

	// Bearer tokens: every role of clinic A; a clinician and a researcher of clinic B.
	clinician, admin, researcher, outsider, otherResearcher string
	clinicianActor                                          followup.Actor
	emails                                                  map[string]string // token -> the user's email, to sign in to pages

	// thumbs makes the thumbnails that the server's background work would (cmd runs it).
	thumbs *thumbnails.Thumbnailer
}

type syncBuffer struct {
	mu  chan struct{}
	buf bytes.Buffer
}

func newSyncBuffer() *syncBuffer { return &syncBuffer{mu: make(chan struct{}, 1)} }
func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu <- struct{}{}
	defer func() { <-b.mu }()
	return b.buf.Write(p)
}
func (b *syncBuffer) String() string {
	b.mu <- struct{}{}
	defer func() { <-b.mu }()
	return b.buf.String()
}

// apiOptions adjust newAPIFixture: the store (a fresh MinIO bucket by default) and the server
// secret (none by default).
type apiOptions struct {
	store        imagestore.Store
	secret       []byte
	limits       imagestore.Limits // zero: 4 MiB uploads
	storeTimeout time.Duration     // followup.Config.StoreTimeout
	clientLimits func(*clientLimits)
}

func newAPIFixture(t *testing.T, opts ...func(*apiOptions)) *apiFixture {
	t.Helper()
	var o apiOptions
	for _, fn := range opts {
		fn(&o)
	}
	if o.store == nil {
		o.store, _ = s3test.NewStore(t)
	}
	pool := pgtest.NewPool(t)
	reg, err := protocols.LoadRegistry("")
	if err != nil {
		t.Fatal(err)
	}
	logs := newSyncBuffer()
	log := slog.New(slog.NewJSONHandler(logs, nil))
	svc, err := followup.New(followup.Config{Pool: pool, Store: o.store, Protocols: reg, Logger: log, SecretKey: o.secret,
		StoreTimeout: o.storeTimeout})
	if err != nil {
		t.Fatal(err)
	}
	acc := newAccounts(t, pool, log)
	exp := newExport(t, svc, pool, log, o.secret)
	srv, err := New(Config{Logger: log, DB: pool, Store: o.store, Registry: prometheus.NewRegistry(), Service: svc, Accounts: acc,
		Reminders: newReminders(t, pool, log, "", o.secret), Export: exp, Limits: cmp.Or(o.limits, imagestore.Limits{MaxBytes: 4 << 20}), SecretKey: o.secret, StoreProbeInterval: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if o.clientLimits != nil {
		o.clientLimits(&srv.clientLimits)
	}
	hs := httptest.NewServer(srv)
	t.Cleanup(hs.Close)
	f := &apiFixture{url: hs.URL, srv: srv, svc: svc, acc: acc, exp: exp, thumbs: newThumbnailer(t, svc, pool, log), pool: pool, store: o.store,
		logs: logs, emails: map[string]string{}}
	ctx := context.Background()
	a, err := svc.CreateClinic(ctx, "Clinic A "+uuid.NewString()[:6], "Asia/Shanghai")
	if err != nil {
		t.Fatal(err)
	}
	b, err := svc.CreateClinic(ctx, "Clinic B "+uuid.NewString()[:6], "Europe/Berlin")
	if err != nil {
		t.Fatal(err)
	}
	mk := func(clinic followup.Clinic, role string) string {
		email := role + "-" + uuid.NewString()[:8] + "@example.org"
		if _, err := acc.CreateUser(ctx, followup.SystemActor(clinic.ID), accounts.NewUser{ClinicID: clinic.ID, Email: email, Role: role, Password: "a long test password"}); err != nil {
			t.Fatal(err)
		}
		tok, err := acc.CreateToken(ctx, followup.SystemActor(clinic.ID), email)
		if err != nil {
			t.Fatal(err)
		}
		f.emails[tok] = email
		return tok
	}
	relaxClinics(t, pool, a, b)
	f.clinician, f.admin, f.researcher = mk(a, followup.RoleClinician), mk(a, followup.RoleAdmin), mk(a, followup.RoleResearcher)
	f.outsider, f.otherResearcher = mk(b, followup.RoleClinician), mk(b, followup.RoleResearcher)
	for tok, clinic := range map[string]followup.Clinic{f.admin: a, f.researcher: a, f.otherResearcher: b} {
		giveSecondFactor(t, acc, clinic, f.emails[tok])
	}
	f.clinicianActor, err = acc.AuthenticateToken(ctx, f.clinician, netip.Addr{})
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// call sends a JSON request (body nil for none) and decodes the JSON answer into out.
func (f *apiFixture) call(t *testing.T, method, path, token string, body any, out any) int {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, f.url+path, rd)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if out != nil && len(raw) > 0 {
		if err := json.Unmarshal(raw, out); err != nil {
			t.Fatalf("%s %s: %d %q is not JSON: %v", method, path, resp.StatusCode, raw, err)
		}
	}
	return resp.StatusCode
}

type enrolled struct {
	PatientID, ProcedureID, LinkURL string
}

// enrol creates a patient, a PWS procedure and a parent link through the API.
func (f *apiFixture) enrol(t *testing.T) enrolled {
	t.Helper()
	var p struct{ ID string }
	if code := f.call(t, "POST", "/api/v1/patients", f.clinician, map[string]any{
		"display_name": "Xiaoming Wang", "birth_date": "2025-03-02", "mrn": "MRN-" + uuid.NewString()[:6],
		"guardian_email": "guardian@example.org", "guardian_phone": "+86 139 1234 5678", "preferred_language": "zh-CN",
		"research_consent": true}, &p); code != 201 {
		t.Fatalf("create patient = %d", code)
	}
	var e struct {
		ID         string
		Timepoints []struct {
			Key, DueOn, WindowStart, WindowEnd, State string
			Views                                     []string
		}
	}
	if code := f.call(t, "POST", "/api/v1/procedures", f.clinician, map[string]any{
		"patient_id": p.ID, "protocol": "pws-hemoporfin-pdt", "kind": "hemoporfin-pdt", "body_site": "face",
		"performed_at": time.Now().Add(-36 * time.Hour).Format(time.RFC3339)}, &e); code != 201 {
		t.Fatalf("enrol = %d", code)
	}
	var l struct {
		URL       string `json:"url"`
		ExpiresAt string `json:"expires_at"`
	}
	if code := f.call(t, "POST", "/api/v1/procedures/"+e.ID+"/parent-links", f.clinician, nil, &l); code != 201 || l.URL == "" {
		t.Fatalf("create link = %d %+v", code, l)
	}
	return enrolled{PatientID: p.ID, ProcedureID: e.ID, LinkURL: l.URL}
}

// photoForm is an upload's multipart body as clients send it: the fields timepoint, view and
// upload_id (those present in fields), then the file (none when nil).
func photoForm(fields map[string]string, file []byte) (body *bytes.Buffer, contentType string) {
	body = &bytes.Buffer{}
	mw := multipart.NewWriter(body)
	for _, k := range []string{"timepoint", "view", "upload_id", "kind"} {
		if v, ok := fields[k]; ok {
			mw.WriteField(k, v)
		}
	}
	if file != nil {
		fw, _ := mw.CreateFormFile("file", "IMG_0001.JPG")
		fw.Write(file)
	}
	mw.Close()
	return body, mw.FormDataContentType()
}

// upload posts a multipart photo to path.
func (f *apiFixture) upload(t *testing.T, path, token string, fields map[string]string, file []byte) (int, map[string]any) {
	t.Helper()
	body, contentType := photoForm(fields, file)
	req, _ := http.NewRequest("POST", f.url+path, body)
	req.Header.Set("Content-Type", contentType)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out
}

func linkPath(linkURL string) string { return linkURL[strings.Index(linkURL, "/p/"):] }

func (f *apiFixture) count(t *testing.T, sql string, args ...any) int {
	t.Helper()
	var n int
	if err := f.pool.QueryRow(context.Background(), sql, args...).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func (f *apiFixture) objects(t *testing.T) int {
	t.Helper()
	n := 0
	f.store.List(context.Background(), "photos/", func(imagestore.ObjectInfo) error { n++; return nil })
	return n
}

// The end-to-end path: enrol, link, upload a phone JPEG through the link, find the
// stored object clean straight in MinIO, grade it, read it all back.
func TestAPIEndToEnd(t *testing.T) {
	t.Parallel()
	f := newAPIFixture(t)
	e := f.enrol(t)
	phone := imagetest.PhoneJPEG(640, 480, 7, 6)
	code, photo := f.upload(t, linkPath(e.LinkURL)+"/photos", "", map[string]string{"timepoint": "day-1", "view": "front", "upload_id": "e2e-upload-0001"}, phone)
	if code != 201 {
		t.Fatalf("parent upload = %d %v", code, photo)
	}
	photoID := photo["id"].(string)

	// Straight from MinIO: clean by the verifier and by exiftool, and none of the markers.
	var key string
	f.pool.QueryRow(context.Background(), `select object_key from photos where id = $1`, photoID).Scan(&key)
	r, info, err := f.store.Open(context.Background(), key)
	if err != nil {
		t.Fatal(err)
	}
	stored, _ := io.ReadAll(r)
	r.Close()
	if _, err := imagestore.Verify(bytes.NewReader(stored), info.Size); err != nil {
		t.Errorf("stored object fails the verifier: %v", err)
	}
	for _, marker := range []string{imagetest.SerialMarker, imagetest.OwnerMarker, imagetest.XMPMarker, "ftypmp42", "2026:05:04"} {
		if bytes.Contains(stored, []byte(marker)) {
			t.Errorf("stored object still holds %q", marker)
		}
	}
	imagetest.ExiftoolFindsNoMetadata(t, stored)
	if s3, ok := f.store.(*imagestore.S3Store); ok {
		if enc, err := s3.Encrypted(context.Background(), key); err != nil || !enc {
			t.Errorf("stored photo encrypted at rest = %v, %v", enc, err)
		}
	}

	// Retrying the same upload returns the same photo.
	code, again := f.upload(t, linkPath(e.LinkURL)+"/photos", "", map[string]string{"timepoint": "day-1", "view": "front", "upload_id": "e2e-upload-0001"}, phone)
	if code != 200 || again["id"] != photoID {
		t.Errorf("retry = %d %v, want 200 with the same id", code, again["id"])
	}

	var a map[string]any
	if code := f.call(t, "POST", "/api/v1/procedures/"+e.ProcedureID+"/assessments", f.clinician, map[string]string{"timepoint": "day-1", "level": "improved", "note": "early"}, &a); code != 201 {
		t.Errorf("assess = %d %v", code, a)
	}
	var v struct {
		Timepoints []struct {
			Key, State string
			Missing    []string `json:"missing_views"`
		}
		Photos      []struct{ ID, SHA256 string }
		Assessments []struct{ Level string }
	}
	if code := f.call(t, "GET", "/api/v1/procedures/"+e.ProcedureID, f.clinician, nil, &v); code != 200 {
		t.Fatalf("get procedure = %d", code)
	}
	if len(v.Photos) != 1 || v.Photos[0].ID != photoID || len(v.Assessments) != 1 || v.Assessments[0].Level != "improved" {
		t.Errorf("procedure view = %+v", v)
	}
	for _, tp := range v.Timepoints {
		if tp.Key == "day-1" && (tp.State != "open" && tp.State != "overdue" || len(tp.Missing) != 2) {
			t.Errorf("day-1 = %+v, want open or overdue with the two oblique views missing", tp)
		}
	}
	// The original through the API is the stored object.
	req, _ := http.NewRequest("GET", f.url+"/api/v1/photos/"+photoID+"/original", nil)
	req.Header.Set("Authorization", "Bearer "+f.clinician)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	sum := sha256.Sum256(got)
	if resp.StatusCode != 200 || hex.EncodeToString(sum[:]) != v.Photos[0].SHA256 || !bytes.Equal(got, stored) {
		t.Errorf("GET original = %d, %d bytes; want the stored object", resp.StatusCode, len(got))
	}
	if resp.Header.Get("Cache-Control") != "private, max-age=300" || resp.Header.Get("Referrer-Policy") != "no-referrer" {
		t.Errorf("photo headers: %v", resp.Header)
	}
	if n, err := f.thumbs.Make(context.Background(), 5); err != nil || n != 1 {
		t.Fatalf("thumbnails = %d, %v", n, err)
	}
	req, _ = http.NewRequest("GET", f.url+"/api/v1/photos/"+photoID+"/thumbnail", nil)
	req.Header.Set("Authorization", "Bearer "+f.clinician)
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "image/jpeg" {
		t.Errorf("thumbnail = %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	token := e.LinkURL[strings.LastIndex(e.LinkURL, "/")+1:]
	if strings.Contains(f.logs.String(), token) || strings.Contains(f.logs.String(), f.clinician) {
		t.Error("a parent token or bearer token appears in the logs")
	}
}

// Every bad upload gets its documented status and a message, and leaves no row or object.
func TestUploadBadInput(t *testing.T) {
	t.Parallel()
	f := newAPIFixture(t)
	e := f.enrol(t)
	path := linkPath(e.LinkURL) + "/photos"
	ok := map[string]string{"timepoint": "day-1", "view": "front", "upload_id": "bad-input-0001"}
	jpeg := imagetest.JPEG(64, 48, 1)
	with := func(k, v string) map[string]string {
		m := map[string]string{}
		for a, b := range ok {
			m[a] = b
		}
		m[k] = v
		return m
	}
	for _, tc := range []struct {
		name   string
		fields map[string]string
		file   []byte
		status int
		code   string
	}{
		{"truncated", ok, jpeg[:len(jpeg)/2], 422, "bad_image"},
		{"zero bytes", ok, []byte{}, 400, "invalid"},
		{"no file", ok, nil, 400, "invalid"},
		{"over the limit", ok, append(append([]byte{}, jpeg...), make([]byte, 5<<20)...), 413, "too_large"},
		{"heic", ok, imagetest.HEIC(), 415, "heic"},
		{"text file", ok, []byte("just some text, not a photo, of any kind at all"), 415, "unsupported_format"},
		{"unknown timepoint", with("timepoint", "day-99"), jpeg, 422, "invalid"},
		{"unknown view", with("view", "back"), jpeg, 422, "invalid"},
		{"bad upload id", with("upload_id", "x"), jpeg, 422, "invalid"},
		{"missing view", map[string]string{"timepoint": "day-1", "upload_id": "bad-input-0002"}, jpeg, 400, "invalid"},
	} {
		code, body := f.upload(t, path, "", tc.fields, tc.file)
		errObj, _ := body["error"].(map[string]any)
		if code != tc.status || errObj == nil || errObj["code"] != tc.code || errObj["message"] == "" {
			t.Errorf("%s: %d %v, want %d %s with a message", tc.name, code, body, tc.status, tc.code)
		}
	}
	if n := f.count(t, `select count(*) from photos`); n != 0 {
		t.Errorf("bad uploads left %d rows", n)
	}
	if n := f.objects(t); n != 0 {
		t.Errorf("bad uploads left %d objects", n)
	}

	// Not multipart, and a multipart body with 1000 parts.
	resp, err := http.Post(f.url+path, "application/json", strings.NewReader(`{"file":"x"}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 400 {
		t.Errorf("JSON body = %d, want 400", resp.StatusCode)
	}
	var many bytes.Buffer
	mw := multipart.NewWriter(&many)
	for i := range 1000 {
		mw.WriteField(fmt.Sprintf("f%d", i), "x")
	}
	mw.Close()
	resp, err = http.Post(f.url+path, mw.FormDataContentType(), &many)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 400 {
		t.Errorf("1000 parts = %d, want 400", resp.StatusCode)
	}

	// Valid photos with junk are accepted and stored clean.
	for name, file := range map[string][]byte{"png with text": imagetest.PNGWithText(64, 48, 2), "jpeg with trailer": imagetest.WithTrailer(jpeg)} {
		code, body := f.upload(t, path, "", with("upload_id", "valid-"+strings.ReplaceAll(name, " ", "-")), file)
		if code != 201 {
			t.Errorf("%s = %d %v, want 201", name, code, body)
			continue
		}
		var key string
		f.pool.QueryRow(context.Background(), `select object_key from photos where id = $1`, body["id"]).Scan(&key)
		r, _, err := f.store.Open(context.Background(), key)
		if err != nil {
			t.Fatal(err)
		}
		stored, _ := io.ReadAll(r)
		r.Close()
		if bytes.Contains(stored, []byte(imagetest.TextMarker)) || bytes.Contains(stored, []byte("ftypmp42")) {
			t.Errorf("%s stored with its junk", name)
		}
	}

	// Unknown and revoked links: 404, then rate-limited.
	code, _ := f.upload(t, "/p/"+strings.Repeat("A", 43)+"/photos", "", ok, jpeg)
	if code != 404 {
		t.Errorf("unknown link = %d, want 404", code)
	}
}

// newAccounts returns the accounts service over pool, as cmd builds it.
func newAccounts(t testing.TB, pool *pgxpool.Pool, log *slog.Logger) *accounts.Service {
	t.Helper()
	return newAccountsAt(t, pool, log, nil)
}

// newAccountsAt is newAccounts on the clock now (nil: the wall clock).
func newAccountsAt(t testing.TB, pool *pgxpool.Pool, log *slog.Logger, now func() time.Time) *accounts.Service {
	t.Helper()
	return newAccountsWith(t, accounts.Config{Pool: pool, Logger: log, SecretKey: testAccountsKey, Now: now})
}

// newAccountsWith is the accounts service of cfg.
func newAccountsWith(t testing.TB, cfg accounts.Config) *accounts.Service {
	t.Helper()
	acc, err := accounts.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return acc
}

// newReminders returns the reminders over pool, as cmd builds them beside the core (with its
// base URL and secret key).
func newReminders(t testing.TB, pool *pgxpool.Pool, log *slog.Logger, baseURL string, secret []byte) *reminders.Service {
	t.Helper()
	rem, err := reminders.New(reminders.Config{Pool: pool, Logger: log, BaseURL: baseURL, SecretKey: secret})
	if err != nil {
		t.Fatal(err)
	}
	return rem
}

// newExport returns the research export over core and pool, as cmd builds it (with the
// server's secret key).
func newExport(t testing.TB, core *followup.Service, pool *pgxpool.Pool, log *slog.Logger, secret []byte) *export.Service {
	t.Helper()
	exp, err := export.New(export.Config{Core: core, Pool: pool, Logger: log, SecretKey: secret})
	if err != nil {
		t.Fatal(err)
	}
	return exp
}

// newSweeper returns the store's sweeper over core and pool, as cmd builds it.
func newSweeper(t testing.TB, core *followup.Service, pool *pgxpool.Pool) *sweep.Sweeper {
	t.Helper()
	sw, err := sweep.New(sweep.Config{Core: core, Pool: pool})
	if err != nil {
		t.Fatal(err)
	}
	return sw
}

// newThumbnailer returns the thumbnailer over core and pool, as cmd builds it.
func newThumbnailer(t testing.TB, core *followup.Service, pool *pgxpool.Pool, log *slog.Logger) *thumbnails.Thumbnailer {
	t.Helper()
	th, err := thumbnails.New(thumbnails.Config{Core: core, Pool: pool, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	return th
}
