package server

import (
	"bufio"
	"net"
	"net/http"
	"sync"

	"github.com/gorilla/websocket"
)

// websocketUpgrades wraps the Socket.IO handler for the memory of WebSocket
// upgrades: zishang520/socket.io v3.0.6 keeps each connection's HTTP
// context, and with it the ResponseWriter, for the life of the connection;
// after the WebSocket hijack that writer still holds net/http's connection
// with its buffered reader and writer (about 8 KB a socket, unused). The
// writer handed to the engine forgets the real one once hijacked.
//
// Compression needs nothing here: the engine's upgrader accepts
// permessage-deflate only when PerMessageDeflate is set, which tandem never
// does, so no offer is ever accepted, whatever the request's Upgrade header
// looks like (TestWebSocketCompressionCannotBeNegotiated).
func websocketUpgrades(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !websocket.IsWebSocketUpgrade(r) {
			next.ServeHTTP(w, r)
			return
		}
		next.ServeHTTP(&hijackOnce{w: w}, r)
	})
}

// hijackOnce is a ResponseWriter that lets go of the one it wraps once the
// connection is hijacked. After that, Header is a detached map and Write
// answers http.ErrHijacked, as net/http's own writer does.
type hijackOnce struct {
	mu sync.Mutex
	w  http.ResponseWriter // nil once hijacked
	h  http.Header
}

func (h *hijackOnce) writer() http.ResponseWriter {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.w
}

func (h *hijackOnce) Header() http.Header {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.w != nil {
		return h.w.Header()
	}
	if h.h == nil {
		h.h = http.Header{}
	}
	return h.h
}

func (h *hijackOnce) Write(p []byte) (int, error) {
	w := h.writer()
	if w == nil {
		return 0, http.ErrHijacked
	}
	return w.Write(p)
}

func (h *hijackOnce) WriteHeader(code int) {
	if w := h.writer(); w != nil {
		w.WriteHeader(code)
	}
}

func (h *hijackOnce) Flush() {
	if w := h.writer(); w != nil {
		_ = http.NewResponseController(w).Flush()
	}
}

func (h *hijackOnce) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	w := h.writer()
	if w == nil {
		return nil, nil, http.ErrHijacked
	}
	conn, rw, err := http.NewResponseController(w).Hijack()
	if err == nil {
		h.mu.Lock()
		h.w = nil
		h.mu.Unlock()
	}
	return conn, rw, err
}
