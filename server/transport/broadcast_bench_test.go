package transport_test

import (
	"context"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	sioredis "github.com/zishang520/socket.io/adapters/redis/v3"
	"github.com/zishang520/socket.io/adapters/redis/v3/adapter"
	"github.com/zishang520/socket.io/servers/socket/v3"

	"github.com/tandem-go/tandem/internal/tandemtest"
	"github.com/tandem-go/tandem/server/transport"
)

// BenchmarkBroadcast emits one room event to 1000 WebSocket sockets of one
// in-process server, through the library's adapter and through the
// pre-framed one; then the same as a local emit (tandem's) over the Redis
// adapter (a real redis-server), bare and wrapped. The clients read and
// discard without allocating, so allocs/op are the server's.
//
//	go test -run '^$' -bench Broadcast -benchmem ./server/transport/
func BenchmarkBroadcast(b *testing.B) {
	parent := b
	var rds *tandemtest.Redis
	redisAdapter := func(b *testing.B) socket.AdapterConstructor {
		if rds == nil {
			rds = tandemtest.StartRedis(parent) // for every sub-benchmark
		}
		ctx, cancel := context.WithCancel(context.Background())
		pub, sub := rds.Client(0), rds.Client(0)
		b.Cleanup(func() { cancel(); _ = pub.Close(); _ = sub.Close() })
		opts := adapter.DefaultRedisAdapterOptions()
		opts.SetKey("bench:socket.io")
		return &adapter.RedisAdapterBuilder{Redis: sioredis.NewRedisClientWithSub(ctx, pub, sub), Opts: opts}
	}
	for _, c := range []struct {
		name    string
		adapter func(*testing.B) socket.AdapterConstructor
	}{
		{"library", func(*testing.B) socket.AdapterConstructor { return &socket.AdapterBuilder{} }},
		{"preframed", func(*testing.B) socket.AdapterConstructor { return &transport.BroadcastBuilder{} }},
		{"redis-local-library", redisAdapter},
		{"redis-local-preframed", func(b *testing.B) socket.AdapterConstructor {
			return &transport.BroadcastBuilder{Inner: redisAdapter(b)}
		}},
	} {
		b.Run(c.name, func(b *testing.B) {
			srv := newSIOServerOn(b, c.adapter(b), func(*socket.Socket) []socket.Room { return []socket.Room{"room"} })
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
				srv.IO.Local().To("room").Emit("current count", payload)
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
