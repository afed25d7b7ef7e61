package server_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/tandem-go/tandem/internal/tandemtest"
	"github.com/tandem-go/tandem/server"
)

// The server sets PerMessageDeflate for the engine's cheaper write path,
// but never lets a client negotiate compression: gorilla/websocket would
// apply MAX_SOCKET_PAYLOAD to the compressed size only.
func TestWebSocketCompressionIsNeverNegotiated(t *testing.T) {
	t.Parallel()
	srv := tandemtest.Start(t, server.Config{})
	c := tandemtest.NewClient(t, srv.URL())
	c.Incr()
	d := websocket.Dialer{EnableCompression: true, HandshakeTimeout: 10 * time.Second}
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	url := "ws" + strings.TrimPrefix(srv.URL(), "http") + "/socket.io/?EIO=4&transport=websocket"
	conn, resp, err := d.DialContext(ctx, url, http.Header{"Cookie": {c.Cookie()}})
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	defer conn.Close()
	if ext := resp.Header.Get("Sec-WebSocket-Extensions"); ext != "" {
		t.Fatalf("the server negotiated %q; want no extension", ext)
	}
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, msg, err := conn.ReadMessage(); err != nil || !strings.HasPrefix(string(msg), "0{") {
		t.Fatalf("open packet: %q, %v", msg, err)
	}
}
