//go:build !linux

package transport

// epollConn is empty: without epoll every connection has a reader goroutine.
type epollConn struct{}

// poll is false: the goroutine reader reads every connection.
func (w *WebSocket) poll() bool { return false }

// unpollLocked has nothing to take out of a poller.
func (w *WebSocket) unpollLocked() bool { return false }

func (w *WebSocket) polledLocked() bool { return false }

func polledConns() int { return 0 }
