package web

import (
	"net"
	"syscall"
	"testing"
)

// A connection under LimitConns still gives its descriptor (SyscallConn),
// which server/transport needs for non-blocking writes and for its epoll
// reader: without it every WebSocket of the real server had a reader
// goroutine and wrote through a goroutine.
func TestLimitedConnGivesItsDescriptor(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	lim := LimitConns(ln, 10, func(net.Addr) (string, bool) { return "a", false }, nil)
	defer lim.Close()
	go func() {
		if c, err := net.Dial("tcp", ln.Addr().String()); err == nil {
			defer c.Close()
			_, _ = c.Read(make([]byte, 1))
		}
	}()
	c, err := lim.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, ok := c.(*limitedConn); !ok {
		t.Fatalf("accepted a %T; want the counted *limitedConn", c)
	}
	sc, ok := c.(syscall.Conn)
	if !ok {
		t.Fatalf("%T is not a syscall.Conn", c)
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		t.Fatalf("SyscallConn: %v", err)
	}
	var fd uintptr
	if err := rc.Control(func(d uintptr) { fd = d }); err != nil || fd == 0 {
		t.Fatalf("Control: fd %d, %v", fd, err)
	}
}
