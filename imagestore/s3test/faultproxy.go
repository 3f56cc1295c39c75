package s3test

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dermfollow/dermfollow/imagestore"
)

// FaultKind is what the fault proxy does with one request.
type FaultKind int

const (
	// Pass forwards the request to MinIO and its answer back.
	Pass FaultKind = iota
	// SlowDown answers 503 SlowDown before reading the body, as AWS S3 does under load.
	SlowDown
	// InternalError answers 500 InternalError before reading the body (a drive fault).
	InternalError
	// AccessDenied answers 403 AccessDenied before reading the body (a policy, KMS or quota
	// refusal).
	AccessDenied
	// Reset reads Fault.After bytes of the body, then resets the connection (TCP RST).
	Reset
	// Stall waits Fault.Stall (or until the client gives up) before forwarding the request.
	Stall
)

func (k FaultKind) String() string {
	switch k {
	case Pass:
		return "pass"
	case SlowDown:
		return "503-slowdown"
	case InternalError:
		return "500-internal"
	case AccessDenied:
		return "403-access-denied"
	case Reset:
		return "reset-mid-body"
	case Stall:
		return "stall"
	}
	return fmt.Sprintf("fault(%d)", int(k))
}

// Fault is the proxy's answer to one request.
type Fault struct {
	Kind  FaultKind
	After int64         // Reset: body bytes read before the reset
	Stall time.Duration // Stall: how long to wait before forwarding
}

// FaultProxy is an S3-speaking HTTP proxy in front of a real MinIO that can, per request,
// answer an S3 error before reading the body, reset the connection part-way through the body,
// stall, or pass the request through. Requests keep their Host header, so the client's SigV4
// signatures (made for the proxy's address) still verify at MinIO.
type FaultProxy struct {
	// Addr is the proxy's host:port, to be used as an S3 endpoint.
	Addr string

	done chan struct{} // closed at cleanup: ends stalls

	mu       sync.Mutex
	decide   func(*http.Request) Fault
	counts   map[FaultKind]*atomic.Int64
	inFlight atomic.Int64
}

// NewFaultProxy starts a proxy in front of the MinIO at target (host:port) that passes every
// request until told otherwise; it stops at cleanup.
func NewFaultProxy(tb testing.TB, target string) *FaultProxy {
	tb.Helper()
	p := &FaultProxy{counts: map[FaultKind]*atomic.Int64{}, done: make(chan struct{})}
	for k := Pass; k <= Stall; k++ {
		p.counts[k] = new(atomic.Int64)
	}
	up := &url.URL{Scheme: "http", Host: target}
	rp := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(up)
			pr.Out.Host = pr.In.Host // the signature covers the Host the client used
		},
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.inFlight.Add(1)
		defer p.inFlight.Add(-1)
		f := p.fault(r)
		p.counts[f.Kind].Add(1)
		switch f.Kind {
		case SlowDown:
			s3Error(w, r, http.StatusServiceUnavailable, "SlowDown", "Please reduce your request rate.")
		case InternalError:
			s3Error(w, r, http.StatusInternalServerError, "InternalError", "We encountered an internal error, please try again.")
		case AccessDenied:
			s3Error(w, r, http.StatusForbidden, "AccessDenied", "Access Denied.")
		case Reset:
			io.CopyN(io.Discard, r.Body, f.After)
			resetConnection(w)
		case Stall:
			select {
			case <-time.After(f.Stall):
			case <-r.Context().Done():
				return
			case <-p.done:
				return
			}
			rp.ServeHTTP(w, r)
		default:
			rp.ServeHTTP(w, r)
		}
	}))
	tb.Cleanup(func() {
		close(p.done)
		srv.CloseClientConnections()
		srv.Close()
	})
	p.Addr = srv.Listener.Addr().String()
	return p
}

// Set makes decide choose the fault of every request from now on; nil passes all.
func (p *FaultProxy) Set(decide func(*http.Request) Fault) {
	p.mu.Lock()
	p.decide = decide
	p.mu.Unlock()
}

// Always applies f to every request that sends a body (PUT and POST: uploads, multipart
// parts, deletes of many) and passes the others (reads, listings, bucket checks).
func (p *FaultProxy) Always(f Fault) {
	p.Set(func(r *http.Request) Fault {
		if r.Method == http.MethodPut || r.Method == http.MethodPost {
			return f
		}
		return Fault{}
	})
}

// Heal passes every request again.
func (p *FaultProxy) Heal() { p.Set(nil) }

// WaitIdle waits until no request is inside the proxy: a stalled request that its client gave
// up on may still reach the store when its stall ends, and a check of what the store holds
// must come after that.
func (p *FaultProxy) WaitIdle(tb testing.TB) {
	tb.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for p.inFlight.Load() > 0 {
		if time.Now().After(deadline) {
			tb.Fatalf("s3test: %d requests still in the fault proxy after 2 minutes", p.inFlight.Load())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Count is how many requests got the fault kind k.
func (p *FaultProxy) Count(k FaultKind) int64 { return p.counts[k].Load() }

// Config points an S3 configuration at the proxy instead of MinIO.
func (p *FaultProxy) Config(cfg imagestore.S3Config) imagestore.S3Config {
	cfg.Endpoint = p.Addr
	cfg.TLS = false
	return cfg
}

func (p *FaultProxy) fault(r *http.Request) Fault {
	p.mu.Lock()
	decide := p.decide
	p.mu.Unlock()
	if decide == nil {
		return Fault{}
	}
	return decide(r)
}

// s3Error answers an S3 error before reading the body, and then, like a server that drains
// what the client still sends, reads the rest of the body slowly: the client has its answer
// while its transport is still sending the body.
func s3Error(w http.ResponseWriter, r *http.Request, status int, code, msg string) {
	rc := http.NewResponseController(w)
	rc.EnableFullDuplex()
	body := fmt.Sprintf(`<?xml version="1.0" encoding="UTF-8"?><Error><Code>%s</Code><Message>%s</Message><RequestId>faultproxy</RequestId></Error>`, code, msg)
	w.Header().Set("Content-Type", "application/xml")
	w.Header().Set("Content-Length", strconv.Itoa(len(body))) // complete before the body is read
	w.WriteHeader(status)
	io.WriteString(w, body)
	rc.Flush()
	buf := make([]byte, 32<<10)
	for {
		if _, err := r.Body.Read(buf); err != nil {
			return
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// resetConnection drops the client's connection with a TCP RST, as a crashed peer or a
// middlebox does.
func resetConnection(w http.ResponseWriter) {
	conn, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		panic(http.ErrAbortHandler)
	}
	if tc, ok := conn.(*net.TCPConn); ok {
		tc.SetLinger(0)
	}
	conn.Close()
}

// StartMinIOWithoutKMS starts a private MinIO with no KMS: it refuses every encrypted write,
// as a production MinIO set up without KES does.
func StartMinIOWithoutKMS(tb testing.TB) *MinIO {
	tb.Helper()
	return startMinIO(tb, "")
}
