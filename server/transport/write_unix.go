//go:build unix

package transport

import (
	"errors"
	"syscall"
)

// writeNonBlocking writes what the socket takes now: the descriptor is in
// non-blocking mode (Go's poller), and the callback returns after one pass
// instead of waiting for the socket to become writable.
func writeNonBlocking(rc syscall.RawConn, p []byte) (int, error) {
	var n int
	var werr error
	err := rc.Write(func(fd uintptr) bool {
		for n < len(p) {
			m, e := syscall.Write(int(fd), p[n:])
			if m > 0 {
				n += m
			}
			switch {
			case e == nil && m == 0:
				return true // nothing taken: leave the rest to the goroutine
			case e == nil:
			case errors.Is(e, syscall.EINTR):
			case errors.Is(e, syscall.EAGAIN):
				return true
			default:
				werr = e
				return true
			}
		}
		return true
	})
	if werr != nil {
		return n, werr
	}
	return n, err
}
