// Package balancer is a small HTTP load balancer for trying and testing several Dermfollow
// servers behind one address: it sends each request to the next server whose /readyz
// answered 200 at its last check (every 100 ms), as a production load balancer with a
// readiness check does, and keeps each request's Host.
//
//	b := balancer.New("http://127.0.0.1:8081", "http://127.0.0.1:8082")
//	defer b.Close()
//	http.ListenAndServe(":8080", b)
package balancer

import (
	"net/http"
	"net/http/httputil"
	"net/url"
	"sync"
	"sync/atomic"
	"time"
)

// Balancer is an http.Handler over a fixed number of backend slots.
type Balancer struct {
	mu       sync.Mutex
	backends []*backend
	next     int
	served   []atomic.Int64
	stop     chan struct{}
}

type backend struct {
	url   *url.URL
	ready atomic.Bool
	proxy *httputil.ReverseProxy
}

// New starts checking the servers at urls, one slot each.
func New(urls ...string) *Balancer {
	b := &Balancer{backends: make([]*backend, len(urls)), served: make([]atomic.Int64, len(urls)), stop: make(chan struct{})}
	for i, u := range urls {
		b.Set(i, u)
	}
	go b.check()
	return b
}

// Close stops the readiness checks.
func (b *Balancer) Close() { close(b.stop) }

// Set points slot i at a (restarted) server; it takes requests once its /readyz says so.
func (b *Balancer) Set(i int, raw string) {
	u, err := url.Parse(raw)
	if err != nil {
		panic(err)
	}
	be := &backend{url: u, proxy: &httputil.ReverseProxy{Rewrite: func(pr *httputil.ProxyRequest) {
		pr.SetURL(u)
		pr.Out.Host = pr.In.Host
	}}}
	b.mu.Lock()
	b.backends[i] = be
	b.mu.Unlock()
}

// Served is how many requests slot i has been sent.
func (b *Balancer) Served(i int) int64 { return b.served[i].Load() }

// Ready is how many slots answered ready at their last check.
func (b *Balancer) Ready() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	n := 0
	for _, be := range b.backends {
		if be.ready.Load() {
			n++
		}
	}
	return n
}

func (b *Balancer) check() {
	client := &http.Client{Timeout: time.Second}
	for {
		b.mu.Lock()
		list := append([]*backend(nil), b.backends...)
		b.mu.Unlock()
		for _, be := range list {
			resp, err := client.Get(be.url.String() + "/readyz")
			be.ready.Store(err == nil && resp.StatusCode == http.StatusOK)
			if err == nil {
				resp.Body.Close()
			}
		}
		select {
		case <-b.stop:
			return
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func (b *Balancer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b.mu.Lock()
	var be *backend
	slot := -1
	for k := range len(b.backends) {
		i := (b.next + k) % len(b.backends)
		if b.backends[i].ready.Load() {
			be, slot, b.next = b.backends[i], i, i+1
			break
		}
	}
	b.mu.Unlock()
	if be == nil {
		http.Error(w, "no server is ready", http.StatusServiceUnavailable)
		return
	}
	b.served[slot].Add(1)
	be.proxy.ServeHTTP(w, r)
}
