package transport_test

import (
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/zishang520/socket.io/servers/engine/v3"
	"github.com/zishang520/socket.io/servers/engine/v3/config"

	"github.com/tandem-go/tandem/server/transport"
)

// engineServer is a bare Engine.IO server on the package's transports,
// with every connection's socket sent to conns.
func engineServer(tb testing.TB, b transport.WebSocketBuilder) (string, chan engine.Socket) {
	tb.Helper()
	return engineServerWith(tb, config.DefaultServerOptions(), b)
}

// engineServerWith is engineServer with the engine's options opts.
func engineServerWith(tb testing.TB, opts config.ServerOptionsInterface, b transport.WebSocketBuilder) (string, chan engine.Socket) {
	tb.Helper()
	transport.Register(opts, b)
	srv := engine.NewServer(opts)
	conns := make(chan engine.Socket, 16)
	_ = srv.On("connection", func(args ...any) { conns <- args[0].(engine.Socket) })
	ts := httptest.NewServer(srv)
	tb.Cleanup(func() { ts.Close(); srv.Close() })
	return "ws" + strings.TrimPrefix(ts.URL, "http") + "/engine.io/?EIO=4&transport=websocket", conns
}

func dial(tb testing.TB, url string) *websocket.Conn {
	tb.Helper()
	c, _, err := websocket.DefaultDialer.Dial(url, nil)
	if err != nil {
		tb.Fatalf("dial: %v", err)
	}
	tb.Cleanup(func() { c.Close() })
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, msg, err := c.ReadMessage(); err != nil || !strings.HasPrefix(string(msg), "0{") {
		tb.Fatalf("open packet %q, %v", msg, err)
	}
	return c
}

// gorilla/websocket's client talks to the transport: messages both ways, a
// fragmented one, a ping answered with its pong, and its close code echoed.
func TestWebSocketWithGorillaClient(t *testing.T) {
	url, conns := engineServer(t, transport.WebSocketBuilder{})
	c := dial(t, url)
	s := <-conns
	got := make(chan string, 4)
	_ = s.On("message", func(args ...any) {
		var b strings.Builder
		if r, ok := args[0].(interface{ String() string }); ok {
			b.WriteString(r.String())
		}
		got <- b.String()
	})
	if err := c.WriteMessage(websocket.TextMessage, []byte("4hello")); err != nil {
		t.Fatal(err)
	}
	if m := <-got; m != "hello" {
		t.Fatalf("server got %q", m)
	}
	w, _ := c.NextWriter(websocket.TextMessage)
	for _, part := range []string{"4frag", "mented"} {
		_, _ = w.Write([]byte(part))
	}
	_ = w.Close()
	if m := <-got; m != "fragmented" {
		t.Fatalf("server got %q", m)
	}
	s.Send(strings.NewReader("back"), nil, nil)
	if _, msg, err := c.ReadMessage(); err != nil || string(msg) != "4back" {
		t.Fatalf("client got %q, %v", msg, err)
	}
	pong := make(chan string, 1)
	c.SetPongHandler(func(data string) error { pong <- data; return nil })
	_ = c.WriteControl(websocket.PingMessage, []byte("p1"), time.Now().Add(time.Second))
	go func() { _, _, _ = c.ReadMessage() }()
	select {
	case p := <-pong:
		if p != "p1" {
			t.Fatalf("pong %q", p)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no pong")
	}
}

// A client that reads nothing is disconnected once more than MaxPending
// bytes wait for it; the server's sends never block, and another client
// carries on.
func TestWebSocketSlowClientIsDisconnected(t *testing.T) {
	url, conns := engineServer(t, transport.WebSocketBuilder{MaxPending: 256 << 10})
	dial(t, url) // never reads again
	slow := <-conns
	closed := make(chan struct{})
	_ = slow.Once("close", func(...any) { close(closed) })
	other := dial(t, url)
	fast := <-conns

	chunk := strings.Repeat("x", 16<<10)
	start := time.Now()
	for i := 0; i < 10_000; i++ {
		select {
		case <-closed:
			i = 10_000
			continue
		default:
		}
		slow.Send(strings.NewReader(chunk), nil, nil)
	}
	select {
	case <-closed:
	case <-time.After(10 * time.Second):
		t.Fatal("the slow client was not disconnected")
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("sending to the slow client took %v", d)
	}
	fast.Send(strings.NewReader("still here"), nil, nil)
	if _, msg, err := other.ReadMessage(); err != nil || string(msg) != "4still here" {
		t.Fatalf("the other client got %q, %v", msg, err)
	}
}
