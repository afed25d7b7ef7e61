package sessionio

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"

	"github.com/zishang520/socket.io/servers/engine/v3"
)

// Polling connections and their closes.
//
// zishang520/socket.io v3.0.6 answers a long-polling connection's pending
// data request (POST) from whichever goroutine closes the connection
// (transports/polling.go, DoClose writes 429 on it), while the POST's own
// goroutine goes on to write its "ok" (onDataRequest): both write the
// response's one http.Header map. Under -race that is a data race; without
// it, it can be "fatal error: concurrent map writes", which ends the
// process. A client can provoke it: a POST whose session was just deleted
// makes sessionio close the connection during that POST.
//
// sessionio therefore never closes a connection while one of its POSTs is
// in the engine: the handler holds the connection's gate around the
// engine's handling of each POST, and every close sessionio issues takes
// that gate (closeConn). Concurrent POSTs (or GETs) of one connection are
// also handled one at a time, so the engine's "overlap" errors, which close
// the connection from the second request's goroutine, cannot fire while a
// POST is in flight. The POST's body is read before the gate is taken, so
// the engine's handling of a POST never waits for the network and a slow
// client cannot keep the window open.
//
// What remains are the closes the library starts by itself, on its own
// goroutines, while a POST of the same connection is being decoded (a
// window of microseconds, no longer than decoding at most MaxHttpBufferSize
// bytes): its ping timeout, the connect timeout of a client that joined no
// namespace, the end of an upgrade to WebSocket, and io.Close at shutdown.

// errMessageTooLarge refuses a polling POST larger than the engine's
// MaxHttpBufferSize.
var errMessageTooLarge = errors.New("sessionio: message too large")

// connGate serializes the handling of one Engine.IO connection's requests
// with sessionio's closes of it.
type connGate struct {
	data sync.Mutex // a POST in the engine, or a close by sessionio
	poll sync.Mutex // a GET in the engine
	refs int
}

type connGates struct {
	mu      sync.Mutex
	m       map[string]*connGate
	closing map[string]bool
}

// gates are keyed by Engine.IO session ID, unique within the process.
var gates = connGates{m: map[string]*connGate{}, closing: map[string]bool{}}

func (g *connGates) acquire(sid string) *connGate {
	g.mu.Lock()
	defer g.mu.Unlock()
	c := g.m[sid]
	if c == nil {
		c = &connGate{}
		g.m[sid] = c
	}
	c.refs++
	return c
}

func (g *connGates) release(sid string, c *connGate) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if c.refs--; c.refs == 0 {
		delete(g.m, sid)
	}
}

// closeConn closes an Engine.IO connection once none of its POSTs is in the
// engine. It does not wait: it may be called on the goroutine that handles
// such a POST (namespace middleware) or on a socket's task queue. Repeated
// calls while a close is pending are one close.
func closeConn(conn engine.Socket) {
	sid := conn.Id()
	gates.mu.Lock()
	if gates.closing[sid] {
		gates.mu.Unlock()
		return
	}
	gates.closing[sid] = true
	gates.mu.Unlock()
	go func() {
		c := gates.acquire(sid)
		c.data.Lock()
		conn.Close(true)
		c.data.Unlock()
		gates.release(sid, c)
		gates.mu.Lock()
		delete(gates.closing, sid)
		gates.mu.Unlock()
	}()
}

// servePolling hands a request of an existing polling connection (one with
// a sid) to the engine under the connection's gate. A POST's body, at most
// maxBody bytes, is read first; a larger one is refused with 413.
func (m *Manager) servePolling(engineHandler http.Handler, w http.ResponseWriter, r *http.Request, sid string, maxBody int64) {
	c := gates.acquire(sid)
	defer gates.release(sid, c)
	switch r.Method {
	case http.MethodPost:
		if r.Body != nil && r.Body != http.NoBody {
			body, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
			_ = r.Body.Close()
			if int64(len(body)) > maxBody {
				m.report.Refused(CausePayload)
				m.cfg.ErrorHandler(w, r, http.StatusRequestEntityTooLarge, errMessageTooLarge)
				return
			}
			if err != nil {
				m.cfg.ErrorHandler(w, r, http.StatusBadRequest, fmt.Errorf("sessionio: reading a polling request's body: %w", err))
				return
			}
			r.Body = io.NopCloser(bytes.NewReader(body))
			r.ContentLength = int64(len(body))
		}
		c.data.Lock()
		defer c.data.Unlock()
	case http.MethodGet:
		c.poll.Lock()
		defer c.poll.Unlock()
	}
	engineHandler.ServeHTTP(w, r)
}
