package sessionio

import (
	"sync"
	"time"

	"github.com/zishang520/socket.io/servers/socket/v3"
)

// connectBarrierTimeout bounds how long awaitConnected holds a connection's
// reader. The connect task it waits for normally runs within microseconds;
// the bound only matters if the socket's task queue is stuck or was shut
// down before the barrier could join it.
const connectBarrierTimeout = 5 * time.Second

// awaitConnected holds the calling goroutine until the socket's connect has
// completed, the connection has closed, or connectBarrierTimeout passed. It
// is called by the namespace middleware after next(nil), on the goroutine
// that reads the connection (the WebSocket reader, or the polling POST's
// handler: the middleware chain runs synchronously from the CONNECT
// packet's decoding), so that goroutine reads no further packet before the
// socket is registered with its client.
//
// Why: in zishang520/socket.io v3.0.6 the last middleware's next(nil)
// enqueues the connect on the socket's own task queue
// (namespace.Add → socket.Enqueue → namespace._doConnect), which writes
// the CONNECT answer (socket._onconnect) and only then registers the socket
// in client.nsps (client.doConnect's callback). A packet decoded in between
// is not found in client.nsps: "invalid state", and the client is closed.
// Node has the same order but reads nothing while the connect runs. A task
// enqueued after the connect runs after it (the queue is sequential), so
// waiting for it closes the window.
//
// The barrier covers the middlewares after this one as long as they call
// next before returning (they do in tandem). A later middleware that
// refuses the socket shuts its queue down, which may drop the barrier's
// task: the reader then waits for the connection's close or the timeout.
func awaitConnected(s *socket.Socket) {
	conn := s.Conn()
	closed := make(chan struct{})
	var once sync.Once
	onClose := func(...any) { once.Do(func() { close(closed) }) }
	_ = conn.Once("close", onClose)
	defer conn.RemoveListener("close", onClose)
	if conn.ReadyState() == "closed" {
		return
	}
	done := make(chan struct{})
	s.Enqueue(func() { close(done) })
	t := time.NewTimer(connectBarrierTimeout)
	defer t.Stop()
	select {
	case <-done:
	case <-closed:
	case <-t.C:
	}
}
