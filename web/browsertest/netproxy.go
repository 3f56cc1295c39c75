package browsertest

import (
	"context"
	"net"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// NetProxy is a phone's network between the browser and the server, for tests: a TCP proxy
// that limits the upstream bandwidth (what the phone sends), counts the upstream bytes, and on
// command drops the link (every connection cut, new ones refused for a while) or stalls it
// (the connections open stay open and carry nothing more, as when a phone's link dies without
// a word; new ones work).
//
//	p := browsertest.NewNetProxy(t, serverURL)
//	p.SetRate(36 << 10)                 // 36 KB/s up
//	chromedp.Navigate(p.URL() + "/p/")  // the browser talks through it
//	p.WaitUpstream(ctx, n); p.Down(5 * time.Second)
//
// A cut resets the browser's side (it sees the connection fail at once) and half-closes the
// server's, so that the server reads every byte the proxy had forwarded, as it would have
// received them before the phone's link went.
type NetProxy struct {
	ln      net.Listener
	backend string

	mu        sync.Mutex
	rate      int64     // bytes per second upstream; 0: unlimited
	next      time.Time // when the limiter lets the next byte through
	downUntil time.Time
	conns     map[*proxyConn]struct{}

	up      atomic.Int64
	accepts atomic.Int64
	changed chan struct{} // closed and replaced whenever up grows
	chMu    sync.Mutex
}

type proxyConn struct {
	client, server *net.TCPConn
	stalled        chan struct{}
	stallOnce      sync.Once
	closed         chan struct{}
	closeOnce      sync.Once
}

// NewNetProxy starts a proxy to the server at backendURL (http://host:port) for the test's life.
func NewNetProxy(tb testing.TB, backendURL string) *NetProxy {
	tb.Helper()
	u, err := url.Parse(backendURL)
	if err != nil {
		tb.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	p := &NetProxy{ln: ln, backend: u.Host, conns: map[*proxyConn]struct{}{}, changed: make(chan struct{})}
	go p.accept()
	tb.Cleanup(func() {
		ln.Close()
		p.cut()
	})
	return p
}

// URL is the address the browser uses.
func (p *NetProxy) URL() string { return "http://" + p.ln.Addr().String() }

// SetRate limits the upstream bandwidth of every connection together to bytesPerSecond (0:
// unlimited).
func (p *NetProxy) SetRate(bytesPerSecond int) {
	p.mu.Lock()
	p.rate = int64(bytesPerSecond)
	p.mu.Unlock()
}

// Upstream is how many bytes the proxy has forwarded from the browser to the server.
func (p *NetProxy) Upstream() int64 { return p.up.Load() }

// Connections is how many connections the browser has opened through the proxy.
func (p *NetProxy) Connections() int64 { return p.accepts.Load() }

// WaitUpstream waits until at least n bytes have gone upstream, or ctx ends.
func (p *NetProxy) WaitUpstream(ctx context.Context, n int64) error {
	for {
		p.chMu.Lock()
		ch := p.changed
		p.chMu.Unlock()
		if p.up.Load() >= n {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-ch:
		}
	}
}

// Down drops the link for d: every connection is cut now, and new ones are refused until d
// has passed.
func (p *NetProxy) Down(d time.Duration) {
	p.mu.Lock()
	p.downUntil = time.Now().Add(d)
	p.mu.Unlock()
	p.cut()
}

// Up ends a Down early: new connections go through again.
func (p *NetProxy) Up() {
	p.mu.Lock()
	p.downUntil = time.Time{}
	p.mu.Unlock()
}

// Cut cuts every open connection; new ones go through.
func (p *NetProxy) Cut() { p.cut() }

// Stall freezes every open connection: nothing more goes either way on them until they are
// closed. New connections work.
func (p *NetProxy) Stall() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for c := range p.conns {
		c.stallOnce.Do(func() { close(c.stalled) })
	}
}

func (p *NetProxy) cut() {
	p.mu.Lock()
	conns := make([]*proxyConn, 0, len(p.conns))
	for c := range p.conns {
		conns = append(conns, c)
	}
	p.mu.Unlock()
	for _, c := range conns {
		c.cut()
	}
}

func (c *proxyConn) cut() {
	c.closeOnce.Do(func() {
		close(c.closed)
		c.client.SetLinger(0) // a reset: the browser sees the failure at once
		c.client.Close()
		c.server.CloseWrite() // the server reads what was forwarded, then the end
	})
}

func (p *NetProxy) accept() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		go p.serve(c.(*net.TCPConn))
	}
}

func (p *NetProxy) serve(client *net.TCPConn) {
	p.accepts.Add(1)
	p.mu.Lock()
	down := time.Now().Before(p.downUntil)
	p.mu.Unlock()
	if down {
		client.SetLinger(0)
		client.Close()
		return
	}
	sc, err := net.Dial("tcp", p.backend)
	if err != nil {
		client.SetLinger(0)
		client.Close()
		return
	}
	server := sc.(*net.TCPConn)
	// A small window towards the browser, so that what it has sent is close to what the proxy
	// forwarded, as on a slow link.
	client.SetReadBuffer(32 << 10)
	c := &proxyConn{client: client, server: server, stalled: make(chan struct{}), closed: make(chan struct{})}
	p.mu.Lock()
	p.conns[c] = struct{}{}
	p.mu.Unlock()
	defer func() {
		p.mu.Lock()
		delete(p.conns, c)
		p.mu.Unlock()
		c.closeOnce.Do(func() { close(c.closed) })
		client.Close()
		server.Close()
	}()
	done := make(chan struct{})
	go func() { // downstream, at full speed
		defer close(done)
		buf := make([]byte, 32<<10)
		for {
			n, err := server.Read(buf)
			if n > 0 && !c.wait() {
				continue // cut or stalled: drain the server, forward nothing
			}
			if n > 0 {
				if _, werr := client.Write(buf[:n]); werr != nil {
					c.drain(server, buf)
					return
				}
			}
			if err != nil {
				client.CloseWrite()
				return
			}
		}
	}()
	buf := make([]byte, 64<<10)
	for {
		n, err := client.Read(buf[:p.readSize()])
		if n > 0 {
			if !c.wait() {
				break
			}
			p.limit(n)
			if !c.wait() {
				break
			}
			if _, werr := server.Write(buf[:n]); werr != nil {
				break
			}
			p.up.Add(int64(n))
			p.chMu.Lock()
			close(p.changed)
			p.changed = make(chan struct{})
			p.chMu.Unlock()
		}
		if err != nil {
			break
		}
	}
	server.CloseWrite()
	<-done
}

// wait blocks while the connection is stalled, and reports false once it is cut or closed.
func (c *proxyConn) wait() bool {
	select {
	case <-c.closed:
		return false
	default:
	}
	select {
	case <-c.stalled:
		<-c.closed
		return false
	default:
		return true
	}
}

func (c *proxyConn) drain(server *net.TCPConn, buf []byte) {
	for {
		if _, err := server.Read(buf); err != nil {
			return
		}
	}
}

// readSize reads about a twentieth of a second's bytes at a time, so that the rate is smooth.
func (p *NetProxy) readSize() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.rate <= 0 {
		return 64 << 10
	}
	return int(min(64<<10, max(1<<10, p.rate/20)))
}

// limit waits until n more bytes fit the upstream rate.
func (p *NetProxy) limit(n int) {
	p.mu.Lock()
	if p.rate <= 0 {
		p.mu.Unlock()
		return
	}
	now := time.Now()
	if p.next.Before(now) {
		p.next = now
	}
	p.next = p.next.Add(time.Duration(int64(n) * int64(time.Second) / p.rate))
	until := p.next
	p.mu.Unlock()
	time.Sleep(time.Until(until))
}
