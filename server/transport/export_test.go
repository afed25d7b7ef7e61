package transport

import "testing"

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
