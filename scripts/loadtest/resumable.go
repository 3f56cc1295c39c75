package main

import (
	"bytes"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Resumable uploads: the family page's tus path (POST /p/uploads, a first piece of
// 256 KiB that the server checks, then the rest in one PATCH, as the page sends on a fast
// link) against the one-request upload of the same bytes (POST /p/photos), one photo at a time
// as a phone sends them, alternating, through a local proxy that limits the upstream to a
// fast phone link. Reported: the resumable path's throughput as a ratio to the one-request
// upload's, and its bytes on the wire as a ratio to the one-request upload's.

type resumableResult struct {
	Pairs        int       `json:"pairs"`
	FileBytes    int64     `json:"file_bytes"`
	RateMBs      float64   `json:"rate_mbs"`
	SingleMBs    []float64 `json:"single_mbs"`
	TusMBs       []float64 `json:"tus_mbs"`
	SingleWire   []int64   `json:"single_wire_bytes"`
	TusWire      []int64   `json:"tus_wire_bytes"`
	Errors       []string  `json:"errors,omitempty"`
	FailedSingle int       `json:"failed_single"`
	FailedTus    int       `json:"failed_tus"`
}

func cmdResumable(args []string) error {
	fs := flag.NewFlagSet("resumable", flag.ExitOnError)
	link := fs.String("link", "", "the parent link (http://127.0.0.1:P/p/TOKEN)")
	file := fs.String("file", "", "the photo")
	pairs := fs.Int("n", 10, "uploads of each kind (a link takes 30 a minute)")
	rate := fs.Int("rate", 12_500_000, "upstream bytes per second of the link (0: unlimited)")
	out := fs.String("out", "", "result file")
	fs.Parse(args)
	u, err := url.Parse(*link)
	if err != nil || u.Scheme != "http" {
		return fmt.Errorf("-link %q: want an http:// URL", redactToken(*link))
	}
	if err := loopbackOnly(u.Host); err != nil {
		return err
	}
	photo, err := os.ReadFile(*file)
	if err != nil {
		return err
	}
	px, err := startRateProxy(u.Host, int64(*rate))
	if err != nil {
		return err
	}
	defer px.close()
	base := "http://" + px.addr()
	jar, _ := cookiejar.New(nil)
	client := &http.Client{Jar: jar, Timeout: 2 * time.Minute,
		Transport:     &http.Transport{DisableCompression: true, Proxy: nil, MaxIdleConnsPerHost: 2},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	csrf, err := openFamily(client, base, u.Path)
	if err != nil {
		return err
	}
	r := resumableResult{Pairs: *pairs, FileBytes: int64(len(photo)), RateMBs: float64(*rate) / mb}
	runID := strconv.FormatInt(time.Now().UnixNano(), 36)
	views := []string{"front", "left-oblique", "right-oblique"}
	for i := range *pairs {
		for _, tus := range []bool{i%2 == 1, i%2 == 0} { // alternate which goes first
			id := fmt.Sprintf("resumable-%s-%d-%t", runID, i, tus)
			view := views[i%len(views)]
			before := px.up.Load()
			start := time.Now()
			var err error
			if tus {
				err = tusUpload(client, base, csrf, view, id, photo)
			} else {
				err = singleUpload(client, base, csrf, view, id, photo)
			}
			secs := time.Since(start).Seconds()
			wire := px.up.Load() - before
			switch {
			case err != nil && tus:
				r.FailedTus++
				r.Errors = append(r.Errors, "resumable: "+redactToken(err.Error()))
			case err != nil:
				r.FailedSingle++
				r.Errors = append(r.Errors, "one request: "+redactToken(err.Error()))
			case tus:
				r.TusMBs, r.TusWire = append(r.TusMBs, float64(len(photo))/mb/secs), append(r.TusWire, wire)
			default:
				r.SingleMBs, r.SingleWire = append(r.SingleMBs, float64(len(photo))/mb/secs), append(r.SingleWire, wire)
			}
		}
	}
	fmt.Fprintf(os.Stderr, "loadtest resumable: one request %.1f MB/s, resumable %.1f MB/s (medians of %d), %d failed\n",
		median(r.SingleMBs), median(r.TusMBs), *pairs, r.FailedSingle+r.FailedTus)
	return writeJSON(*out, r)
}

var csrfAttr = regexp.MustCompile(`data-csrf="([^"]+)"`)

// openFamily follows the link into a family session and returns the page's form token.
func openFamily(client *http.Client, base, linkPath string) (string, error) {
	resp, err := client.Get(base + linkPath)
	if err != nil {
		return "", errors.New(redactToken(err.Error()))
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther {
		return "", fmt.Errorf("opening the link: %d", resp.StatusCode)
	}
	resp, err = client.Get(base + "/p/")
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	page, _ := io.ReadAll(resp.Body)
	m := csrfAttr.FindSubmatch(page)
	if m == nil {
		return "", errors.New("the family's page has no form token")
	}
	return string(m[1]), nil
}

// singleUpload is the page's one-request upload: POST /p/photos, multipart.
func singleUpload(client *http.Client, base, csrf, view, id string, photo []byte) error {
	body, ctype, length := multipartBody("day-1", view, id, photo)
	req, _ := http.NewRequest(http.MethodPost, base+"/p/photos", body)
	req.Header.Set("Content-Type", ctype)
	req.Header.Set("Accept", "application/json")
	req.Header.Set("X-CSRF-Token", csrf)
	req.ContentLength = length
	return expect(client, req, http.StatusCreated)
}

// tusUpload is the page's resumable upload on a fast link: create, a first piece of 256 KiB,
// the rest.
func tusUpload(client *http.Client, base, csrf, view, id string, photo []byte) error {
	meta := []string{}
	for _, kv := range [][2]string{{"timepoint", "day-1"}, {"view", view}, {"upload_id", id}} {
		meta = append(meta, kv[0]+" "+base64.StdEncoding.EncodeToString([]byte(kv[1])))
	}
	req, _ := http.NewRequest(http.MethodPost, base+"/p/uploads", nil)
	tusHeaders(req, csrf)
	req.Header.Set("Upload-Length", strconv.Itoa(len(photo)))
	req.Header.Set("Upload-Metadata", strings.Join(meta, ","))
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	loc := resp.Header.Get("Location")
	if resp.StatusCode != http.StatusCreated || !strings.HasPrefix(loc, "/p/uploads/") {
		return fmt.Errorf("create: %d", resp.StatusCode)
	}
	first := min(256<<10, len(photo))
	for _, piece := range [][2]int{{0, first}, {first, len(photo)}} {
		if piece[0] == piece[1] {
			continue
		}
		req, _ := http.NewRequest(http.MethodPatch, base+loc, bytes.NewReader(photo[piece[0]:piece[1]]))
		tusHeaders(req, csrf)
		req.Header.Set("Content-Type", "application/offset+octet-stream")
		req.Header.Set("Upload-Offset", strconv.Itoa(piece[0]))
		want := http.StatusNoContent
		if piece[1] == len(photo) {
			want = http.StatusOK
		}
		if err := expect(client, req, want); err != nil {
			return err
		}
	}
	return nil
}

func tusHeaders(req *http.Request, csrf string) {
	req.Header.Set("Tus-Resumable", "1.0.0")
	req.Header.Set("X-CSRF-Token", csrf)
}

func expect(client *http.Client, req *http.Request, status int) error {
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	if resp.StatusCode != status {
		return fmt.Errorf("%s: %d %s", req.Method, resp.StatusCode, bytes.TrimSpace(msg))
	}
	return nil
}

// rateProxy is the phone's link: TCP to the server, the upstream limited and counted.
type rateProxy struct {
	ln   net.Listener
	rate int64
	mu   sync.Mutex
	next time.Time
	up   atomic.Int64
}

func startRateProxy(backend string, rate int64) (*rateProxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &rateProxy{ln: ln, rate: rate}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go p.serve(c, backend)
		}
	}()
	return p, nil
}

func (p *rateProxy) addr() string { return p.ln.Addr().String() }
func (p *rateProxy) close()       { p.ln.Close() }

func (p *rateProxy) serve(client net.Conn, backend string) {
	defer client.Close()
	server, err := net.Dial("tcp", backend)
	if err != nil {
		return
	}
	defer server.Close()
	go func() { io.Copy(client, server); client.Close() }()
	buf := make([]byte, 64<<10)
	chunk := 64 << 10
	if p.rate > 0 {
		chunk = int(min(64<<10, max(4<<10, p.rate/100)))
	}
	for {
		n, err := client.Read(buf[:chunk])
		if n > 0 {
			p.limit(n)
			if _, werr := server.Write(buf[:n]); werr != nil {
				return
			}
			p.up.Add(int64(n))
		}
		if err != nil {
			server.(*net.TCPConn).CloseWrite()
			return
		}
	}
}

func (p *rateProxy) limit(n int) {
	if p.rate <= 0 {
		return
	}
	p.mu.Lock()
	now := time.Now()
	if p.next.Before(now) {
		p.next = now
	}
	p.next = p.next.Add(time.Duration(int64(n) * int64(time.Second) / p.rate))
	until := p.next
	p.mu.Unlock()
	time.Sleep(time.Until(until))
}

// resumable is the section of the report.
func (rp *report) resumable() {
	const name = "Resumable upload, fast link"
	var r resumableResult
	if err := readJSON(filepath.Join(rp.dir, "resumable.json"), &r); err != nil {
		rp.fail(name, err.Error())
		return
	}
	single, tus := median(r.SingleMBs), median(r.TusMBs)
	x := ratio(tus, single)
	var sw, tw float64
	for _, b := range r.SingleWire {
		sw += float64(b)
	}
	for _, b := range r.TusWire {
		tw += float64(b)
	}
	wire := ratio(tw/float64(max(1, len(r.TusWire))), float64(r.FileBytes))
	singleWire := ratio(sw/float64(max(1, len(r.SingleWire))), float64(r.FileBytes))
	res := verdict(x >= targetResumableRatio)
	errNote := ""
	if r.FailedSingle+r.FailedTus > 0 || len(r.TusMBs) == 0 || len(r.SingleMBs) == 0 {
		rp.errors++
		res = "ERROR"
		errNote = fmt.Sprintf("\n**Errors**: %d one-request and %d resumable uploads failed: %s\n", r.FailedSingle, r.FailedTus,
			strings.Join(r.Errors, "; "))
	}
	rp.rows = append(rp.rows, row{name, fmt.Sprintf("%.1f MB/s", tus), fmt.Sprintf("%.1f MB/s", single), fmt.Sprintf("%.2fx", x),
		fmt.Sprintf(">= %.1fx", targetResumableRatio), res})
	rp.sections = append(rp.sections, fmt.Sprintf(resumableText, r.Pairs, float64(r.FileBytes)/mb, r.RateMBs, r.RateMBs*8,
		tus, single, x, wire, singleWire, res, errNote))
}

const resumableText = `## Resumable uploads on a fast link (issue 26)

%d photos of %.1f MB sent each way by one client, one at a time as a phone sends them, alternating, through a
local proxy that limits the upstream to %.1f MB/s (%.0f Mbit/s, a fast phone link): the family page's resumable
path (tus: create, a first piece of 256 KiB that the server checks before the rest, then the rest in one PATCH,
the last answered with the photo) against its one-request upload of the same bytes (` + "`POST /p/photos`" + `).
Throughput is the photo's bytes over the time from the first request to the photo's answer, median of each.
Bytes on the wire are what went up through the proxy (headers, the form's or the protocol's, included).
Target: the resumable path at least 0.9x the one-request upload's throughput.

| figure | value |
|---|---|
| resumable | **%.1f MB/s** |
| one request (baseline) | %.1f MB/s |
| ratio | **%.2fx** |
| bytes on the wire, resumable | %.4fx the photo |
| bytes on the wire, one request | %.4fx the photo |

Result: **%s**.
%s`
