package server_test

import (
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/tandem-go/tandem/internal/tandemtest"
	"github.com/tandem-go/tandem/shared"
)

// Issue 16: python-socketio's client (an independent implementation of
// Socket.IO and Engine.IO, on websocket-client) talks to tandem's own
// WebSocket transport, both from the handshake and after an upgrade from
// polling. With the session cookie a real HTTP client got, it hears the
// count change through POST /incr, through another socket of the session,
// and through its own incr (acked).
func TestPythonSocketIOClient(t *testing.T) {
	t.Parallel()
	tandemtest.NeedPythonSocketIO(t)
	srv := secureServer(t)
	base := srv.URL()
	for _, tt := range []struct {
		name       string
		transports string
		log        string // the Engine.IO client's log says how it connected
	}{
		{"ok, websocket only", "websocket", "Attempting WebSocket connection to ws://"},
		{"ok, polling then upgrade", "polling,websocket", "WebSocket upgrade was successful"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := secSession(t, base, 2)
			py := tandemtest.StartPyClient(t, base, c.Cookie(), tt.transports)
			e := py.Next(30 * time.Second)
			log := strings.Join(e.Log, "\n")
			if e.Event != "connected" || e.Transport != "websocket" {
				t.Fatalf("first line %+v; want connected over websocket", e)
			}
			if !strings.Contains(log, tt.log) {
				t.Fatalf("the client's log lacks %q:\n%s", tt.log, log)
			}
			if polled := strings.Contains(log, "Attempting polling connection"); polled != strings.Contains(tt.transports, "polling") {
				t.Fatalf("polling handshake: %v; transports %q; log:\n%s", polled, tt.transports, log)
			}
			expectCount := func(how string, want int) {
				t.Helper()
				e := py.Next(secWait)
				if e.Event != "count" || e.N != want {
					t.Fatalf("after %s the client heard %+v; want current count %d", how, e, want)
				}
			}

			// The connection is in the session: an HTTP change reaches it.
			if n := c.Incr(); n != 3 {
				t.Fatalf("POST /incr: %d, want 3", n)
			}
			expectCount("POST /incr", 3)

			// A change made on another socket of the session (gorilla's
			// client, raw Socket.IO packets) reaches it.
			other, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(base, "http")+shared.SocketPath+secEIOQuery+"websocket", secHeader("Cookie", c.Cookie()))
			if err != nil {
				t.Fatal(err)
			}
			defer other.Close()
			secWSRead(t, other, "0")
			secWSSend(t, other, "40")
			secWSRead(t, other, "40")
			secWSSend(t, other, `421["incr"]`)
			if got := secWSRead(t, other, "431"); got != "431[4]" {
				t.Fatalf("the other socket's incr acked %q, want 4", got)
			}
			expectCount("another socket's incr", 4)

			// Its own change, acked, and heard by the other socket too.
			py.Command("incr")
			var ack, count *tandemtest.PyEvent
			for ack == nil || count == nil {
				e := py.Next(secWait)
				switch e.Event {
				case "ack":
					ack = &e
				case "count":
					count = &e
				default:
					t.Fatalf("after its incr the client heard %+v", e)
				}
			}
			if len(ack.Args) != 1 || string(ack.Args[0]) != "5" || count.N != 5 {
				t.Fatalf("its incr: ack %s, count %d; want 5 and 5", ack.Args, count.N)
			}
			if got := secWSRead(t, other, `42["current count"`); got != `42["current count",5]` {
				t.Fatalf("the other socket heard %q, want count 5", got)
			}
			if got := secCount(t, base, c.Cookie()); got != 5 {
				t.Fatalf("GET /session: count %d, want 5", got)
			}
			py.Quit(secWait)
		})
	}
}
