// Package faultproxy is a TCP proxy on loopback that injects faults
// between a server and one of its dependencies (PostgreSQL, Redis, Kevel)
// while traffic flows: added latency, a bandwidth limit, connections reset,
// the dependency down (connections refused) and half-open connections
// (accepted, then nothing forwarded either way). The load and fault tests
// put one in front of each dependency and change its Fault mid-run.
//
// A fault applies to every chunk forwarded after it is set, on connections
// open at the time and new ones, so a latency spike reaches a pooled
// connection too; Reset and Down cut the connections that are open.
package faultproxy

import (
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// Fault is what the proxy does to the traffic it forwards. The zero value
// forwards everything as it comes.
type Fault struct {
	// Latency delays each chunk, in each direction.
	Latency time.Duration
	// BytesPerSecond limits each direction of each connection (0: no
	// limit).
	BytesPerSecond int
	// HalfOpen keeps connections (and accepts new ones) but forwards
	// nothing in either direction and closes nothing: a peer that went
	// away without a FIN, a partition, a frozen process.
	HalfOpen bool
}

// String describes f for test names and logs.
func (f Fault) String() string {
	switch {
	case f == Fault{}:
		return "none"
	case f.HalfOpen:
		return "half-open"
	}
	s := ""
	if f.Latency > 0 {
		s += fmt.Sprintf("latency %v", f.Latency)
	}
	if f.BytesPerSecond > 0 {
		if s != "" {
			s += ", "
		}
		s += fmt.Sprintf("%d B/s", f.BytesPerSecond)
	}
	return s
}

// Proxy forwards connections accepted on a loopback address to a target.
type Proxy struct {
	target string
	addr   string
	fault  atomic.Pointer[Fault]

	mu       sync.Mutex
	ln       net.Listener // nil while down
	conns    map[*link]struct{}
	closed   bool
	wg       sync.WaitGroup
	accepted atomic.Int64
}

// link is one proxied connection: the client's side and the target's.
type link struct {
	client, server net.Conn
	once           sync.Once
}

// close cuts both sides; reset sends an RST instead of a FIN.
func (l *link) close(reset bool) {
	l.once.Do(func() {
		for _, c := range []net.Conn{l.client, l.server} {
			if tc, ok := c.(*net.TCPConn); ok && reset {
				_ = tc.SetLinger(0)
			}
			_ = c.Close()
		}
	})
}

// Start listens on a free loopback port and forwards to target
// (host:port).
func Start(target string) (*Proxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("faultproxy: %w", err)
	}
	p := &Proxy{target: target, addr: ln.Addr().String(), conns: map[*link]struct{}{}}
	p.fault.Store(&Fault{})
	p.serve(ln)
	return p, nil
}

// Addr is the proxy's address (127.0.0.1:port); it stays the same across
// Down and Up.
func (p *Proxy) Addr() string { return p.addr }

// Accepted counts the connections accepted so far.
func (p *Proxy) Accepted() int64 { return p.accepted.Load() }

// Open counts the connections open now.
func (p *Proxy) Open() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.conns)
}

// Set changes the fault for everything forwarded from now on.
func (p *Proxy) Set(f Fault) { p.fault.Store(&f) }

// Clear removes the fault.
func (p *Proxy) Clear() { p.Set(Fault{}) }

// Reset cuts every open connection with an RST; new connections are
// accepted as before.
func (p *Proxy) Reset() { p.cut(true) }

// Down stops listening (new connections are refused) and resets every
// open connection: the dependency is gone.
func (p *Proxy) Down() {
	p.mu.Lock()
	ln := p.ln
	p.ln = nil
	p.mu.Unlock()
	if ln != nil {
		_ = ln.Close()
	}
	p.cut(true)
}

// Up listens again on the same address after Down.
func (p *Proxy) Up() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return errors.New("faultproxy: closed")
	}
	if p.ln != nil {
		return nil
	}
	var ln net.Listener
	var err error
	// The port was ours a moment ago; a socket in TIME_WAIT does not
	// stop a listener, but give the kernel a few tries.
	for i := 0; i < 50; i++ {
		if ln, err = net.Listen("tcp", p.addr); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		return fmt.Errorf("faultproxy: listen again on %s: %w", p.addr, err)
	}
	p.ln = ln
	p.wg.Add(1)
	go p.accept(ln)
	return nil
}

// Close stops the proxy and cuts every connection.
func (p *Proxy) Close() error {
	p.mu.Lock()
	p.closed = true
	p.mu.Unlock()
	p.Down()
	p.wg.Wait()
	return nil
}

func (p *Proxy) serve(ln net.Listener) {
	p.mu.Lock()
	p.ln = ln
	p.mu.Unlock()
	p.wg.Add(1)
	go p.accept(ln)
}

func (p *Proxy) cut(reset bool) {
	p.mu.Lock()
	links := make([]*link, 0, len(p.conns))
	for l := range p.conns {
		links = append(links, l)
	}
	p.mu.Unlock()
	for _, l := range links {
		l.close(reset)
	}
}

func (p *Proxy) accept(ln net.Listener) {
	defer p.wg.Done()
	for {
		client, err := ln.Accept()
		if err != nil {
			return
		}
		p.accepted.Add(1)
		p.wg.Add(1)
		go p.handle(client)
	}
}

func (p *Proxy) handle(client net.Conn) {
	defer p.wg.Done()
	server, err := net.DialTimeout("tcp", p.target, 5*time.Second)
	if err != nil {
		_ = client.Close()
		return
	}
	l := &link{client: client, server: server}
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		l.close(true)
		return
	}
	p.conns[l] = struct{}{}
	p.mu.Unlock()

	var done sync.WaitGroup
	done.Add(2)
	go func() { defer done.Done(); p.pipe(server, client); l.close(false) }()
	go func() { defer done.Done(); p.pipe(client, server); l.close(false) }()
	done.Wait()
	p.mu.Lock()
	delete(p.conns, l)
	p.mu.Unlock()
}

// pipe copies src to dst chunk by chunk, applying the fault in force when
// each chunk arrives.
func (p *Proxy) pipe(dst io.Writer, src io.Reader) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			if !p.forward(dst, buf[:n]) {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// forward writes chunk to dst under the current fault; false when dst
// failed.
func (p *Proxy) forward(dst io.Writer, chunk []byte) bool {
	for {
		f := *p.fault.Load()
		if !f.HalfOpen {
			break
		}
		// Hold the chunk until the fault changes (or the link is cut,
		// which the next write reports).
		time.Sleep(10 * time.Millisecond)
		if p.isClosed() {
			return false
		}
	}
	f := *p.fault.Load()
	if f.Latency > 0 {
		time.Sleep(f.Latency)
	}
	for len(chunk) > 0 {
		part := chunk
		if f.BytesPerSecond > 0 {
			// At most a tenth of a second's worth at a time.
			limit := max(f.BytesPerSecond/10, 1)
			if len(part) > limit {
				part = part[:limit]
			}
			time.Sleep(time.Duration(len(part)) * time.Second / time.Duration(f.BytesPerSecond))
		}
		if _, err := dst.Write(part); err != nil {
			return false
		}
		chunk = chunk[len(part):]
	}
	return true
}

func (p *Proxy) isClosed() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.closed
}
