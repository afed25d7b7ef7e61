//go:build unix

package transport

import (
	"errors"
	"sync"
	"syscall"
)

// nbWrite is one non-blocking write's state. RawConn.Write takes a func:
// a closure over the state would be allocated for every frame (three
// allocations per recipient of a broadcast), so the state and its bound
// method are pooled instead.
type nbWrite struct {
	p   []byte
	n   int
	err error
	fn  func(fd uintptr) bool // s.write, bound once
}

var nbWrites = sync.Pool{New: func() any {
	s := &nbWrite{}
	s.fn = s.write
	return s
}}

// writeNonBlocking writes what the socket takes now: the descriptor is in
// non-blocking mode (Go's poller), and the callback returns after one pass
// instead of waiting for the socket to become writable.
func writeNonBlocking(rc syscall.RawConn, p []byte) (int, error) {
	s := nbWrites.Get().(*nbWrite)
	s.p, s.n, s.err = p, 0, nil
	err := rc.Write(s.fn)
	n, werr := s.n, s.err
	s.p, s.err = nil, nil
	nbWrites.Put(s)
	if werr != nil {
		return n, werr
	}
	return n, err
}

func (s *nbWrite) write(fd uintptr) bool {
	for s.n < len(s.p) {
		m, e := syscall.Write(int(fd), s.p[s.n:])
		if m > 0 {
			s.n += m
		}
		switch {
		case e == nil && m == 0:
			return true // nothing taken: leave the rest to the goroutine
		case e == nil:
		case errors.Is(e, syscall.EINTR):
		case errors.Is(e, syscall.EAGAIN):
			return true
		default:
			s.err = e
			return true
		}
	}
	return true
}
