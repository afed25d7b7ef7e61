package server

import (
	"bufio"
	"net"
	"net/http"
	"sync"

	"github.com/gorilla/websocket"
)

// websocketUpgrades wraps the Socket.IO handler for two things that
// zishang520/socket.io v3.0.6 gets wrong on WebSocket upgrade requests:
//
//   - Memory. The engine keeps each connection's HTTP context, and with it
//     the ResponseWriter, for the life of the connection; after the
//     WebSocket hijack that writer still holds net/http's connection with its
//     buffered reader and writer (about 8 KB a socket, unused). The writer
//     handed to the engine forgets the real one once hijacked.
//   - Compression. server.go sets PerMessageDeflate (see uncompressed), which
//     makes the engine's upgrader accept permessage-deflate. gorilla/websocket
//     v1.5.3 applies the read limit (MAX_SOCKET_PAYLOAD) to the compressed
//     bytes, so a client could send a few kilobytes that inflate to
//     gigabytes. Dropping the client's offer keeps every connection
//     uncompressed: the engine still takes its plain write path, and a
//     compressed frame is a protocol error. The offer is dropped from every
//     request, whatever its Upgrade header says: the engine and gorilla read
//     Upgrade as a token list over every header line ("websocket, h2c", or
//     two lines), so no test of that header here could match theirs
//     exactly, and a request that is no upgrade has no use for the offer.
//     gorilla reads the offer under the canonical header name only, which
//     is the one net/http files every spelling of it under.
func websocketUpgrades(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.Header.Del("Sec-WebSocket-Extensions")
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
