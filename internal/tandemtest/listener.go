package tandemtest

import (
	"errors"
	"net"
	"sync"
	"testing"
	"time"
)

// Port holds a TCP port on 127.0.0.1 for the whole test, for a server that
// must stop and come back on the same address (its clients reconnect to
// it). Each server gets the port through Listener; closing that listener
// (as http.Server.Shutdown does) ends its Accept without giving the port
// up, so no other test can take it in between, as it could with a port
// that was free a moment ago.
type Port struct {
	ln   *net.TCPListener
	mu   sync.Mutex
	prev *heldListener
}

// HoldPort listens on 127.0.0.1:0 until the end of the test.
func HoldPort(tb testing.TB) *Port {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = ln.Close() })
	return &Port{ln: ln.(*net.TCPListener)}
}

// Addr is the held address.
func (p *Port) Addr() string { return p.ln.Addr().String() }

// Listener returns a listener on the held port for the next server, once
// the previous one's listener is closed and its last Accept returned (so
// it cannot take a connection meant for the next).
func (p *Port) Listener() net.Listener {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.prev != nil {
		p.prev.closeAndWait()
	}
	_ = p.ln.SetDeadline(time.Time{})
	p.prev = &heldListener{TCPListener: p.ln}
	return p.prev
}

var errHeldClosed = errors.New("tandemtest: listener closed (the port stays held)")

type heldListener struct {
	*net.TCPListener
	mu        sync.Mutex
	closed    bool
	accepting sync.WaitGroup
}

func (l *heldListener) Accept() (net.Conn, error) {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil, errHeldClosed
	}
	l.accepting.Add(1)
	l.mu.Unlock()
	defer l.accepting.Done()
	return l.TCPListener.Accept()
}

// Close ends the pending and later Accepts of this listener (a deadline in
// the past) but keeps the port.
func (l *heldListener) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.closed = true
	_ = l.TCPListener.SetDeadline(time.Unix(1, 0))
	return nil
}

func (l *heldListener) closeAndWait() {
	_ = l.Close()
	l.accepting.Wait()
}
