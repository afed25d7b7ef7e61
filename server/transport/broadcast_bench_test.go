package transport_test

import (
	"io"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/zishang520/socket.io/servers/socket/v3"

	"github.com/tandem-go/tandem/server/transport"
)

// BenchmarkBroadcast emits one room event to 1000 WebSocket sockets of one
// in-process server, through the library's adapter and through the
// pre-framed one. The clients read and discard without allocating, so
// allocs/op are the server's.
//
//	go test -run '^$' -bench Broadcast -benchmem ./server/transport/
func BenchmarkBroadcast(b *testing.B) {
	for _, c := range []struct {
		name    string
		adapter func() socket.AdapterConstructor
	}{
		{"library", func() socket.AdapterConstructor { return &socket.AdapterBuilder{} }},
		{"preframed", func() socket.AdapterConstructor { return &transport.BroadcastBuilder{} }},
	} {
		b.Run(c.name, func(b *testing.B) {
			srv := newSIOServerOn(b, c.adapter(), func(*socket.Socket) []socket.Room { return []socket.Room{"room"} })
			const sockets = 1000
			url := "ws" + strings.TrimPrefix(srv.URL, "http") + "/socket.io/?EIO=4&transport=websocket"
			for range sockets {
				connectDiscarding(b, url)
				srv.next(b)
			}
			payload := map[string]any{"count": 12345}
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				srv.IO.To("room").Emit("current count", payload)
			}
			b.StopTimer()
			if srv.B != nil {
				pre, lib := srv.B.Deliveries()
				if lib != 0 || pre == 0 {
					b.Fatalf("deliveries %d pre-framed, %d through the library", pre, lib)
				}
			}
		})
	}
}

// connectDiscarding opens a Socket.IO connection over WebSocket and reads
// everything the server sends after the connect into io.Discard.
func connectDiscarding(tb testing.TB, url string) {
	tb.Helper()
	c, _, err := websocket.DefaultDialer.Dial(url, nil)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { c.Close() })
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, msg, err := c.ReadMessage(); err != nil || !strings.HasPrefix(string(msg), "0{") {
		tb.Fatalf("open %q, %v", msg, err)
	}
	if err := c.WriteMessage(websocket.TextMessage, []byte("40")); err != nil {
		tb.Fatal(err)
	}
	if _, msg, err := c.ReadMessage(); err != nil || !strings.HasPrefix(string(msg), "40{") {
		tb.Fatalf("connect %q, %v", msg, err)
	}
	_ = c.SetReadDeadline(time.Time{})
	go func() { _, _ = io.Copy(io.Discard, c.NetConn()) }()
}
