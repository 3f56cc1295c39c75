package pgtest

import (
	"bytes"
	"io"
	"net"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"
)

// CommitProxy is a TCP proxy in front of PostgreSQL that can lose the answer to a COMMIT:
// armed, it forwards the next COMMIT to the server, lets the server commit, and then breaks the
// client's connection instead of passing the server's answer on, as a network cut or a
// failover at that moment does. The client cannot know whether its transaction committed.
type CommitProxy struct {
	// URL is the database URL to connect through the proxy.
	URL string

	armed atomic.Int32 // COMMIT answers still to lose
	lost  atomic.Int32 // COMMIT answers lost so far
}

// NewCommitProxy starts a proxy in front of the database at dbURL, stopped at cleanup.
func NewCommitProxy(tb testing.TB, dbURL string) *CommitProxy {
	tb.Helper()
	u, err := url.Parse(dbURL)
	if err != nil {
		tb.Fatal(err)
	}
	target := u.Host
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	var conns sync.WaitGroup
	tb.Cleanup(func() { ln.Close(); conns.Wait() })
	u.Host = ln.Addr().String()
	p := &CommitProxy{URL: u.String()}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conns.Go(func() { p.serve(c, target) })
		}
	}()
	return p
}

// LoseNextCommit makes the proxy lose the answer to the next COMMIT any connection sends.
func (p *CommitProxy) LoseNextCommit() { p.armed.Add(1) }

// Lost is how many COMMIT answers the proxy has lost.
func (p *CommitProxy) Lost() int { return int(p.lost.Load()) }

// commitQuery is the protocol message of a simple query "commit": 'Q', its length (4 + 7).
var commitQuery = []byte("Q\x00\x00\x00\x0bcommit\x00")

// take uses up one armed loss, if any is left.
func (p *CommitProxy) take() bool {
	for {
		n := p.armed.Load()
		if n <= 0 {
			return false
		}
		if p.armed.CompareAndSwap(n, n-1) {
			return true
		}
	}
}

func (p *CommitProxy) serve(client net.Conn, target string) {
	defer client.Close()
	server, err := net.Dial("tcp", target)
	if err != nil {
		return
	}
	defer server.Close()
	var drop atomic.Bool // this connection sent a COMMIT whose answer is to be lost
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer client.Close() // the server hung up (a cancel request's answer, a crash): so does the proxy
		buf := make([]byte, 32<<10)
		for {
			n, err := server.Read(buf)
			if n > 0 && drop.Load() {
				// The server has answered the COMMIT: it committed. The client never hears.
				p.lost.Add(1)
				client.Close()
				return
			}
			if n > 0 {
				if _, werr := client.Write(buf[:n]); werr != nil {
					return
				}
			}
			if err != nil {
				return
			}
		}
	}()
	buf := make([]byte, 32<<10)
	for {
		n, err := client.Read(buf)
		if n > 0 {
			// pgx sends a transaction's COMMIT as a simple query of its own.
			if bytes.Contains(buf[:n], commitQuery) && p.take() {
				drop.Store(true)
			}
			if _, werr := server.Write(buf[:n]); werr != nil {
				break
			}
		}
		if err != nil {
			break
		}
	}
	server.Close()
	<-done
	io.Copy(io.Discard, client)
}
