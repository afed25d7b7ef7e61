package sessionio

import (
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/zishang520/socket.io/servers/socket/v3"

	"github.com/tandem-go/tandem/server/store/memory"
)

// barrierServer serves a Manager-wired Socket.IO server and returns its
// WebSocket URL and the sockets it connects.
func barrierServer(b *testing.B) (string, chan *socket.Socket) {
	b.Helper()
	m, err := New(Config{Store: memory.New(), Keys: [][]byte{[]byte(strings.Repeat("k", 32))}, CreateBurst: 1 << 30, CreateGlobalRate: Off})
	if err != nil {
		b.Fatal(err)
	}
	io := socket.NewServer(nil, nil)
	h, err := m.Attach(io, nil)
	if err != nil {
		b.Fatal(err)
	}
	srv := httptest.NewServer(h)
	conns := make(chan *socket.Socket, 1)
	_ = io.On("connection", func(args ...any) {
		select {
		case conns <- args[0].(*socket.Socket):
		default:
		}
	})
	b.Cleanup(func() {
		srv.Close()
		io.Close(nil)
		_ = m.Close()
	})
	return "ws" + strings.TrimPrefix(srv.URL, "http") + "/socket.io/?EIO=4&transport=websocket", conns
}

// wsConnect opens a WebSocket and connects the main namespace.
func wsConnect(b *testing.B, url string) *websocket.Conn {
	conn, _, err := websocket.DefaultDialer.Dial(url, nil)
	if err != nil {
		b.Fatal(err)
	}
	_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, msg, err := conn.ReadMessage(); err != nil || !strings.HasPrefix(string(msg), "0") {
		b.Fatalf("open: %q %v", msg, err)
	}
	if err := conn.WriteMessage(websocket.TextMessage, []byte("40")); err != nil {
		b.Fatal(err)
	}
	if _, msg, err := conn.ReadMessage(); err != nil || !strings.HasPrefix(string(msg), "40") {
		b.Fatalf("connect: %q %v", msg, err)
	}
	return conn
}

// BenchmarkConnectBarrier measures the work awaitConnected adds to each
// connect: a close listener, a task on the socket's (idle) queue, a timer
// and the wake-up, on a connected socket. What it waits for, the connect
// task, runs anyway.
func BenchmarkConnectBarrier(b *testing.B) {
	url, conns := barrierServer(b)
	conn := wsConnect(b, url)
	defer conn.Close()
	s := <-conns
	b.ReportAllocs()
	for b.Loop() {
		awaitConnected(s)
	}
}

// BenchmarkWebSocketConnect is a whole connect as a client sees it:
// WebSocket handshake, Engine.IO open, namespace CONNECT and its answer.
func BenchmarkWebSocketConnect(b *testing.B) {
	url, _ := barrierServer(b)
	for b.Loop() {
		wsConnect(b, url).Close()
	}
}
