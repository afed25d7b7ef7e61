package transport

import (
	"io"
	"testing"
)

// UseGoroutineReader makes the connections opened during the test use the
// goroutine reader (on) or the system's reader (off).
func UseGoroutineReader(tb testing.TB, on bool) {
	tb.Helper()
	was := goroutineReader.Load()
	goroutineReader.Store(on)
	tb.Cleanup(func() { goroutineReader.Store(was) })
}

// Polled reports whether w is read through epoll.
func Polled(w *WebSocket) bool {
	w.wmu.Lock()
	defer w.wmu.Unlock()
	return w.polledLocked()
}

// PolledConns is the number of connections registered with epoll.
func PolledConns() int { return polledConns() }

// NewParkingReader is a Reader that asks ready before each frame, as the
// epoll reader does, and returns ErrNoFrame when it says no.
func NewParkingReader(r io.Reader, limit int64, ready func() bool) *Reader {
	rd := NewReader(r, limit)
	rd.ready = ready
	return rd
}

// ErrNoFrame is what a parking Reader's Next returns when ready says no.
var ErrNoFrame = errNoFrame

// Release is what the epoll reader does when it parks.
func (r *Reader) Release() { r.release() }
