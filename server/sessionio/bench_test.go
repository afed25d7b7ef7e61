package sessionio_test

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/zishang520/socket.io/servers/socket/v3"
	"github.com/zishang520/socket.io/v3/pkg/types"

	"github.com/tandem-go/tandem/internal/bench"
	"github.com/tandem-go/tandem/internal/tandemtest"
	"github.com/tandem-go/tandem/server/metrics"
	"github.com/tandem-go/tandem/server/sessionio"
	"github.com/tandem-go/tandem/server/store"
	"github.com/tandem-go/tandem/server/store/memory"
)

// benchServer is a Manager-wired Socket.IO server behind a real HTTP
// listener, with POST /incr changing the session's "count".
type benchServer struct {
	m       *sessionio.Manager
	st      store.Store
	url     string
	handles chan *sessionio.Session
}

func newBenchServer(tb testing.TB, opts *socket.ServerOptions) *benchServer {
	tb.Helper()
	st := memory.New()
	m, err := sessionio.New(sessionio.Config{
		Store:  st,
		Keys:   [][]byte{[]byte(strings.Repeat("k", 32))},
		Logger: tandemtest.Logger(tb),
		// A room of 100 sockets of one session is over the default cap.
		SocketsPerSession: sessionio.Off,
		// tandem's own Reporter, as with ADMIN_ADDR set: what the
		// figures measure is the server with its metrics on.
		Report: metrics.New(metrics.Config{Backend: "memory", Events: []string{"current count"}}),
	})
	if err != nil {
		tb.Fatal(err)
	}
	bs := &benchServer{m: m, st: st, handles: make(chan *sessionio.Session, 1024)}
	io := socket.NewServer(nil, nil)
	e := echo.New()
	h, err := m.Attach(io, opts)
	if err != nil {
		tb.Fatal(err)
	}
	e.Any("/socket.io/*", echo.WrapHandler(h))
	io.On("connection", func(args ...any) {
		bs.handles <- m.FromSocket(args[0].(*socket.Socket))
	})
	e.POST("/incr", func(c echo.Context) error {
		_, err := m.Update(c.Response(), c.Request(), func(v sessionio.Values) error {
			n, _ := v["count"].(int)
			v["count"] = n + 1
			return nil
		}, nil)
		if err != nil {
			return err
		}
		return c.NoContent(http.StatusNoContent)
	})
	srv := httptest.NewServer(e)
	tb.Cleanup(func() {
		srv.Close()
		io.Close(nil)
		_ = m.Close()
	})
	bs.url = srv.URL
	return bs
}

// session creates a session and returns its Cookie header.
func (bs *benchServer) session(tb testing.TB) string {
	tb.Helper()
	c := tandemtest.NewClient(tb, bs.url)
	if status, body, _ := c.Do(http.MethodPost, "/incr"); status != http.StatusNoContent {
		tb.Fatalf("POST /incr: %d %s", status, body)
	}
	return c.Cookie()
}

// dial connects n WebSocket sockets with cookie and returns the session
// handle they share.
func (bs *benchServer) dial(tb testing.TB, cookie string, n int, onEvent func(string, []byte, time.Time)) *sessionio.Session {
	tb.Helper()
	var h *sessionio.Session
	for range n {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		s, err := bench.Dial(ctx, bs.url, "/socket.io/", cookie, onEvent)
		cancel()
		if err != nil {
			tb.Fatalf("Dial: %v", err)
		}
		tb.Cleanup(s.Close)
		select {
		case h = <-bs.handles:
		case <-time.After(10 * time.Second):
			tb.Fatal("no connection handler call")
		}
	}
	return h
}

// BenchmarkRoomEmit measures one event emitted to a session's room of 1, 10
// and 100 WebSocket sockets, until every socket has received it: encode,
// per-recipient write, and the receiving client's read (the client runs in
// this process, so its CPU and allocations are part of the figures).
//
// "deflate=threshold" is tandem's setting (server.go: compression negotiated,
// no message compressed), which takes the library's plain write path;
// "deflate=off" is the library's default, a PreparedMessage per recipient.
func BenchmarkRoomEmit(b *testing.B) {
	for _, deflate := range []string{"off", "threshold"} {
		for _, n := range []int{1, 10, 100} {
			b.Run(fmt.Sprintf("deflate=%s/sockets=%d", deflate, n), func(b *testing.B) {
				opts := socket.DefaultServerOptions()
				if deflate == "threshold" {
					opts.SetPerMessageDeflate(&types.PerMessageDeflate{Threshold: math.MaxInt32})
				}
				benchRoomEmit(b, opts, n)
			})
		}
	}
}

func benchRoomEmit(b *testing.B, opts *socket.ServerOptions, n int) {
	bs := newBenchServer(b, opts)
	var remaining atomic.Int64
	done := make(chan struct{}, 1)
	h := bs.dial(b, bs.session(b), n, func(name string, _ []byte, _ time.Time) {
		if name == "current count" && remaining.Add(-1) == 0 {
			done <- struct{}{}
		}
	})
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		i++
		remaining.Store(int64(n))
		if err := h.Emit("current count", i); err != nil {
			b.Fatal(err)
		}
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			b.Fatalf("emit %d: %d of %d sockets did not receive it", i, remaining.Load(), n)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/delivery")
}

// BenchmarkReload measures the reload every incoming socket packet does
// before its handler runs: a store read, and a decode when the session
// changed since the handle last saw it.
func BenchmarkReload(b *testing.B) {
	bs := newBenchServer(b, nil)
	h := bs.dial(b, bs.session(b), 1, nil)
	ctx := b.Context()
	b.Run("unchanged", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if err := h.Reload(ctx); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("changed", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			b.StopTimer()
			// A change from another node: the store moves on, this handle does not know.
			if _, err := bs.st.Update(ctx, h.Key(), time.Hour, func(d []byte) ([]byte, error) { return d, nil }); err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
			if err := h.Reload(ctx); err != nil {
				b.Fatal(err)
			}
		}
		if got := h.Get("count"); got != 1 {
			b.Fatalf("count = %v after reloads, want 1", got)
		}
	})
}

// BenchmarkUpdate measures a socket's atomic change of its session, the
// path of every session update: the key's lock, the store's
// read-modify-write with a decode and an encode of the values, and the
// handle's refresh. "values=1" holds one int; "values=10" holds nine more
// basic values (strings, ints, a bool, a float, bytes).
func BenchmarkUpdate(b *testing.B) {
	for _, n := range []int{1, 10} {
		b.Run(fmt.Sprintf("values=%d", n), func(b *testing.B) {
			bs := newBenchServer(b, nil)
			h := bs.dial(b, bs.session(b), 1, nil)
			ctx := b.Context()
			if n > 1 {
				if _, err := h.Update(ctx, func(v sessionio.Values) error {
					for k, x := range sessionio.TenValues {
						if k != "count" { // counted from 0 below
							v[k] = x
						}
					}
					return nil
				}, nil); err != nil {
					b.Fatal(err)
				}
			}
			incr := func(v sessionio.Values) error {
				c, _ := v["count"].(int)
				v["count"] = c + 1
				return nil
			}
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				i++
				if _, err := h.Update(ctx, incr, nil); err != nil {
					b.Fatal(err)
				}
			}
			if got := h.Get("count"); got != i+1 {
				b.Fatalf("count = %v after %d updates, want %d", got, i, i+1)
			}
			if got := len(h.Values()); got != n {
				b.Fatalf("%d values, want %d", got, n)
			}
		})
	}
}
