package pgtest

import (
	"bytes"
	"encoding/binary"
	"io"
	"net"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"
)

// AnswerProxy is a TCP proxy in front of PostgreSQL that can lose the answer to a statement:
// armed with a piece of a statement's text, it forwards that statement to the server, lets
// the server run it (and commit it, for a statement of its own or a COMMIT), and then breaks
// the client's connection instead of passing the server's answer on, as a network cut or a
// failover at that moment does. The client cannot know whether its write committed.
type AnswerProxy struct {
	// URL is the database URL to connect through the proxy.
	URL string

	mu      sync.Mutex
	pattern []byte // the statement text to lose the answer to, when armed
	lost    atomic.Int32
}

// NewAnswerProxy starts a proxy in front of the database at dbURL, stopped at cleanup.
func NewAnswerProxy(tb testing.TB, dbURL string) *AnswerProxy {
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
	p := &AnswerProxy{URL: u.String()}
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

// LoseAnswerTo makes the proxy lose the server's answer to the next statement whose text
// holds pattern (a statement is sent with its text the first time a connection runs it).
func (p *AnswerProxy) LoseAnswerTo(pattern string) {
	p.mu.Lock()
	p.pattern = []byte(pattern)
	p.mu.Unlock()
}

// Lost is how many answers the proxy has lost.
func (p *AnswerProxy) Lost() int { return int(p.lost.Load()) }

// take reports whether data holds the armed pattern, and disarms it if so.
func (p *AnswerProxy) take(data []byte) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.pattern == nil || !bytes.Contains(data, p.pattern) {
		return false
	}
	p.pattern = nil
	return true
}

func (p *AnswerProxy) serve(client net.Conn, target string) {
	defer client.Close()
	server, err := net.Dial("tcp", target)
	if err != nil {
		return
	}
	defer server.Close()
	var drop atomic.Bool // this connection ran the statement whose answer is to be lost
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer client.Close() // the server hung up (a cancel request's answer, a crash): so does the proxy
		p.relayAnswers(server, client, &drop)
	}()
	buf := make([]byte, 32<<10)
	for {
		n, err := client.Read(buf)
		if n > 0 {
			if p.take(buf[:n]) {
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

// relayAnswers passes the server's messages to the client, one protocol message at a time
// (a type byte and a length); once drop is set, the first CommandComplete, which says the
// statement ran, is not passed on: the connection is broken there.
func (p *AnswerProxy) relayAnswers(server, client net.Conn, drop *atomic.Bool) {
	var head [5]byte
	started := false
	for {
		if !started {
			// The first answer may be a one-byte SSL refusal ('N'), sent without a length.
			if _, err := io.ReadFull(server, head[:1]); err != nil {
				return
			}
			started = true
			if head[0] == 'N' || head[0] == 'S' {
				if _, err := client.Write(head[:1]); err != nil {
					return
				}
				continue
			}
			if _, err := io.ReadFull(server, head[1:]); err != nil {
				return
			}
		} else if _, err := io.ReadFull(server, head[:]); err != nil {
			return
		}
		n := int(binary.BigEndian.Uint32(head[1:])) - 4
		if n < 0 {
			return
		}
		msg := make([]byte, 5+n)
		copy(msg, head[:])
		if _, err := io.ReadFull(server, msg[5:]); err != nil {
			return
		}
		if head[0] == 'C' && drop.Load() {
			p.lost.Add(1)
			return // the statement ran; its answer never arrives
		}
		if _, err := client.Write(msg); err != nil {
			return
		}
	}
}
