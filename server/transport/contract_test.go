package transport_test

import (
	"os"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/zishang520/socket.io/servers/engine/v3/transports"

	"github.com/tandem-go/tandem/server/transport"
)

// The transports rely on zishang520/socket.io v3.0.6 in ways it does not
// document: the engine's socket flushes on its transport's "drain" (Send's
// callbacks run on it) and closes on "close"; a transport's reader starts
// only with the read permission, and the engine reads ctx.Websocket only
// before it (WebSocket drops it then); Polling's Prototype makes the
// library's Close reach our DoClose. An upgrade of the library must fail
// here first: re-read those places and change the pin.
func TestEngineContractPinnedToV306(t *testing.T) {
	want := map[string]string{
		"github.com/zishang520/socket.io/servers/engine/v3": "v3.0.6",
		"github.com/zishang520/socket.io/v3":                "v3.0.6",
	}
	mod, err := os.ReadFile("../../go.mod")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(mod), "\n") {
		f := strings.Fields(line)
		if len(f) >= 2 {
			if f[0] == "replace" || f[0] == "=>" {
				t.Fatalf("go.mod replaces a module: %q", line)
			}
			if v, ok := want[f[0]]; ok {
				if f[1] != v {
					t.Fatalf("%s is %s; the transports were checked against %s", f[0], f[1], v)
				}
				delete(want, f[0])
			}
		}
	}
	if len(want) != 0 {
		t.Fatalf("not required in go.mod: %v", want)
	}

	url, conns := engineServer(t, transport.WebSocketBuilder{})
	c := dial(t, url)
	s := <-conns
	if _, ok := s.Transport().(*transport.WebSocket); !ok {
		t.Fatalf("the connection's transport is %T", s.Transport())
	}
	sent := make(chan struct{})
	s.Send(strings.NewReader("x"), nil, func(transports.Transport) { close(sent) })
	select {
	case <-sent: // the callback runs on "drain"
	case <-time.After(10 * time.Second):
		t.Fatal("Send's callback did not run: the engine no longer flushes on \"drain\"")
	}
	// The reader started (read permission given): a message reaches the engine.
	got := make(chan struct{})
	_ = s.Once("message", func(...any) { close(got) })
	_ = c.WriteMessage(websocket.TextMessage, []byte("4hi"))
	select {
	case <-got:
	case <-time.After(10 * time.Second):
		t.Fatal("no message: the reader did not start")
	}
	closed := make(chan string, 1)
	_ = s.Once("close", func(args ...any) { r, _ := args[0].(string); closed <- r })
	_ = c.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(4000, ""), time.Now().Add(time.Second))
	select {
	case r := <-closed:
		if r != "transport close" {
			t.Fatalf("socket closed with %q; want \"transport close\"", r)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the engine's socket did not close on the transport's \"close\"")
	}
	// The close code is echoed.
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	for {
		_, _, err := c.ReadMessage()
		if err == nil {
			continue
		}
		if !websocket.IsCloseError(err, 4000) {
			t.Fatalf("client read %v; want the close 4000 echoed", err)
		}
		break
	}
}
