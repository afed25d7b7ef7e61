package server_test

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/tandem-go/tandem/internal/tandemtest"
	"github.com/tandem-go/tandem/server"
	"github.com/tandem-go/tandem/server/sessionio"
)

// An idle WebSocket socket holds no reader goroutine on Linux: the
// transport waits for its bytes with epoll (server/transport). What stays
// is the library's ping timer, one goroutine per socket. The clients are
// gorilla/websocket connections that read nothing once connected, so they
// hold no goroutine of their own in this process.
func TestIdleWebSocketsHoldAboutOneGoroutineEach(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("the epoll reader is Linux's; elsewhere each socket has a reader goroutine")
	}
	if os.Getenv("TANDEM_WS_READER") == "goroutine" {
		t.Skip("TANDEM_WS_READER=goroutine: each socket has a reader goroutine (this test fails with it)")
	}
	const sockets = 500
	srv := tandemtest.Start(t, server.Config{
		MaxConnsPerClient:    sockets + 100,
		SocketsPerSession:    sessionio.Off,
		SocketsPerClient:     sessionio.Off,
		EngineConnsPerClient: sessionio.Off,
	})
	c := tandemtest.NewClient(t, srv.URL())
	c.Incr()
	hdr := http.Header{"Cookie": {c.Cookie()}}
	url := "ws" + strings.TrimPrefix(srv.URL(), "http") + "/socket.io/?EIO=4&transport=websocket"
	connect := func() (*websocket.Conn, error) {
		ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
		defer cancel()
		conn, _, err := websocket.DefaultDialer.DialContext(ctx, url, hdr)
		if err != nil {
			return nil, err
		}
		_ = conn.SetReadDeadline(time.Now().Add(20 * time.Second))
		if _, msg, err := conn.ReadMessage(); err != nil || !strings.HasPrefix(string(msg), "0{") {
			conn.Close()
			return nil, fmt.Errorf("open packet %q: %v", msg, err)
		}
		if err := conn.WriteMessage(websocket.TextMessage, []byte("40")); err != nil {
			conn.Close()
			return nil, err
		}
		for {
			_, msg, err := conn.ReadMessage()
			if err != nil {
				conn.Close()
				return nil, err
			}
			if strings.HasPrefix(string(msg), "40") {
				return conn, nil
			}
		}
	}
	// One socket first, so that what the first connection starts once
	// (the HTTP server's, the engine's) is in the baseline.
	first, err := connect()
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	defer first.Close()
	base := runtime.NumGoroutine()

	conns := make([]*websocket.Conn, sockets)
	var wg sync.WaitGroup
	errs := make(chan error, sockets)
	next := make(chan int)
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				conn, err := connect()
				if err != nil {
					errs <- err
					continue
				}
				conns[i] = conn
			}
		}()
	}
	for i := range sockets {
		next <- i
	}
	close(next)
	wg.Wait()
	t.Cleanup(func() {
		for _, conn := range conns {
			if conn != nil {
				conn.Close()
			}
		}
	})
	select {
	case err := <-errs:
		t.Fatalf("connect: %v", err)
	default:
	}
	// At most one goroutine per socket, plus a few for the server's own
	// comings and goings; the reader goroutine of each would double it.
	limit := base + sockets + 50
	n := waitGoroutines(limit, 20*time.Second)
	perSocket := float64(n-base) / sockets
	t.Logf("%d goroutines with %d idle sockets more than with one: %.2f per socket", n-base, sockets, perSocket)
	if n > limit {
		t.Fatalf("%d goroutines with %d idle sockets, %d before them: %.2f per socket; want at most 1 (+50 in all)", n, sockets, base, perSocket)
	}
}

// waitGoroutines waits up to d for the process to have at most limit
// goroutines (those of finished handshakes end a little after them) and
// returns the last count.
func waitGoroutines(limit int, d time.Duration) int {
	deadline := time.Now().Add(d)
	for {
		n := runtime.NumGoroutine()
		if n <= limit || time.Now().After(deadline) {
			return n
		}
		time.Sleep(50 * time.Millisecond) // polls a count; the bound is the check
	}
}

// The same with the official socket.io client (Node.js): its idle
// WebSocket sockets hold about one goroutine each in the server, after an
// upgrade from long-polling too.
func TestIdleOfficialClientSocketsHoldAboutOneGoroutineEach(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("the epoll reader is Linux's; elsewhere each socket has a reader goroutine")
	}
	if os.Getenv("TANDEM_WS_READER") == "goroutine" {
		t.Skip("TANDEM_WS_READER=goroutine: each socket has a reader goroutine (this test fails with it)")
	}
	drv := tandemtest.NewDriver(t)
	const sockets = 100
	srv := tandemtest.Start(t, server.Config{
		MaxConnsPerClient:    4*sockets + 100,
		SocketsPerSession:    sessionio.Off,
		SocketsPerClient:     sessionio.Off,
		EngineConnsPerClient: sessionio.Off,
	})
	c := tandemtest.NewClient(t, srv.URL())
	c.Incr()
	drv.Dial(srv.URL(), tandemtest.Options{Cookie: c.Cookie()})
	base := runtime.NumGoroutine()
	for i := range sockets {
		tr := tandemtest.WebSocket
		if i%2 == 1 {
			tr = tandemtest.Both // long-polling, then the upgrade
		}
		s := drv.Dial(srv.URL(), tandemtest.Options{Cookie: c.Cookie(), Transport: tr})
		if tr == tandemtest.Both {
			// Upgraded to WebSocket (the driver's "transport" event may
			// come before it listens: the client's state is asked).
			for deadline := time.Now().Add(10 * time.Second); s.State().Transport != "websocket"; {
				if time.Now().After(deadline) {
					t.Fatalf("socket %d did not upgrade to WebSocket", i)
				}
				time.Sleep(20 * time.Millisecond) // polls the client's state
			}
		}
	}
	limit := base + sockets + 50
	n := waitGoroutines(limit, 20*time.Second)
	perSocket := float64(n-base) / sockets
	t.Logf("%d goroutines with %d idle sockets more than with one: %.2f per socket", n-base, sockets, perSocket)
	if n > limit {
		t.Fatalf("%d goroutines with %d idle sockets, %d before them: %.2f per socket; want at most 1 (+50 in all)", n, sockets, base, perSocket)
	}
}
