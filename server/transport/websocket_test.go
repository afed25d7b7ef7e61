package transport_test

import (
	"fmt"
	"log"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/zishang520/socket.io/servers/engine/v3"
	"github.com/zishang520/socket.io/servers/engine/v3/config"

	"github.com/tandem-go/tandem/internal/tandemtest"
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
// bytes wait for it, and the rest of the server does not notice: the
// goroutine that sends to it never blocks, and another client, sent to on
// that same goroutine between the slow client's sends, gets every delivery
// in order and within a bound while the slow client's bytes pile up, and
// after it is gone.
func TestWebSocketSlowClientIsDisconnected(t *testing.T) {
	const (
		maxPending = 256 << 10
		every      = 10              // slow sends between two sends to the other client
		bound      = 5 * time.Second // one delivery to the other client, on a loaded machine
	)
	url, conns := engineServer(t, transport.WebSocketBuilder{MaxPending: maxPending})
	dial(t, url) // never reads again
	slow := <-conns
	closed := make(chan struct{})
	_ = slow.Once("close", func(...any) { close(closed) })
	other := dial(t, url)
	fast := <-conns
	fastClosed := make(chan struct{})
	_ = fast.Once("close", func(...any) { close(fastClosed) })

	// The other client reads on its own goroutine and notes when each
	// numbered message arrives.
	type arrival struct {
		n  int
		at time.Time
	}
	arrivals := make(chan arrival, 4096)
	go func() {
		defer close(arrivals)
		for {
			_ = other.SetReadDeadline(time.Now().Add(30 * time.Second))
			_, msg, err := other.ReadMessage()
			if err != nil {
				return
			}
			var n int
			if _, err := fmt.Sscanf(string(msg), "4fast %d", &n); err == nil {
				arrivals <- arrival{n, time.Now()}
			}
		}
	}()
	var sentAt []time.Time
	sendFast := func() {
		sentAt = append(sentAt, time.Now())
		fast.Send(strings.NewReader(fmt.Sprintf("fast %d", len(sentAt)-1)), nil, nil)
	}

	chunk := strings.Repeat("x", 16<<10)
	start := time.Now()
	sends := 0
fill:
	for ; sends < 10_000; sends++ {
		select {
		case <-closed:
			break fill
		default:
		}
		slow.Send(strings.NewReader(chunk), nil, nil)
		if sends%every == 0 {
			sendFast()
		}
	}
	filling := time.Since(start)
	select {
	case <-closed:
	case <-time.After(10 * time.Second):
		t.Fatalf("the slow client was not disconnected after %d sends of %d bytes", sends, len(chunk))
	}
	if filling > bound {
		t.Errorf("%d sends to the slow client took %v", sends, filling)
	}
	during := len(sentAt)
	for range 3 {
		sendFast()
	}

	// A send that blocked on the slow client would delay the next send to
	// the other client, not its delivery: measure the wait between two
	// deliveries (from the start, and from the sends after the slow client
	// is gone).
	var worst time.Duration
	prev := start
	for want := range sentAt {
		if want == during {
			prev = sentAt[during]
		}
		select {
		case a, ok := <-arrivals:
			if !ok {
				t.Fatalf("the other client's connection ended after %d of %d deliveries", want, len(sentAt))
			}
			if a.n != want {
				t.Fatalf("the other client got delivery %d; want %d", a.n, want)
			}
			if d := a.at.Sub(prev); d > worst {
				worst = d
			}
			prev = a.at
		case <-time.After(bound):
			t.Fatalf("the other client got %d of %d deliveries; none more within %v", want, len(sentAt), bound)
		}
	}
	if worst > bound {
		t.Errorf("the other client waited %v between two deliveries; want at most %v", worst, bound)
	}
	select {
	case <-fastClosed:
		t.Fatal("the other client's transport closed")
	default:
	}
	t.Logf("slow client disconnected after %d sends (%d MiB) in %v; the other client got %d deliveries meanwhile and 3 after, at most %v apart",
		sends, sends*len(chunk)>>20, filling, during, worst)
}

// The engine hands every new transport its handshake's request; for a
// WebSocket that request's connection is hijacked, and nothing may be
// written on it (net/http logs each such write).
func TestWebSocketHandshakeWritesNothingOnTheHijackedRequest(t *testing.T) {
	opts := config.DefaultServerOptions()
	transport.Register(opts, transport.WebSocketBuilder{})
	srv := engine.NewServer(opts)
	conns := make(chan engine.Socket, 16)
	_ = srv.On("connection", func(args ...any) { conns <- args[0].(engine.Socket) })
	var logged tandemtest.Buffer
	ts := httptest.NewUnstartedServer(srv)
	ts.Config.ErrorLog = log.New(&logged, "", 0)
	ts.Start()
	t.Cleanup(func() { ts.Close(); srv.Close() })
	url := "ws" + strings.TrimPrefix(ts.URL, "http") + "/engine.io/?EIO=4&transport=websocket"
	for range 5 {
		c := dial(t, url)
		s := <-conns
		// A round trip after the handshake: the handler has returned. The
		// listener is there before the message can arrive.
		got := make(chan string, 1)
		_ = s.Once("message", func(args ...any) { got <- fmt.Sprint(args[0]) })
		if err := c.WriteMessage(websocket.TextMessage, []byte("4hello")); err != nil {
			t.Fatal(err)
		}
		select {
		case <-got:
		case <-time.After(10 * time.Second):
			t.Fatal("no message")
		}
	}
	if s := logged.String(); strings.Contains(s, "hijacked") {
		t.Fatalf("the handshake wrote on its hijacked connection:\n%s", s)
	}
}
