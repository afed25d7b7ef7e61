package server_test

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/zishang520/socket.io/servers/engine/v3"

	"github.com/tandem-go/tandem/internal/tandemtest"
	"github.com/tandem-go/tandem/server"
	"github.com/tandem-go/tandem/shared"
)

// engineCloses reports each Engine.IO connection's close on the returned
// channel. Its listener runs after the server's own (registered first), so
// a slot is already free when the close is reported.
func engineCloses(tb testing.TB, srv *server.Server) <-chan struct{} {
	tb.Helper()
	closed := make(chan struct{}, 1024)
	_ = server.SocketServer(srv).Engine().On("connection", func(args ...any) {
		conn := args[0].(engine.Socket)
		_ = conn.Once("close", func(...any) { closed <- struct{}{} })
	})
	return closed
}

func waitCloses(tb testing.TB, closed <-chan struct{}, n int) {
	tb.Helper()
	timeout := time.After(10 * time.Second)
	for i := range n {
		select {
		case <-closed:
		case <-timeout:
			tb.Fatalf("%d of %d Engine.IO connections closed within 10 s", i, n)
		}
	}
}

// Issue 13, item 4: one cookie over two keep-alive connections opened
// 80,001 Engine.IO connections without ever sending CONNECT. Now one client
// address has at most ENGINE_CONNS_PER_CLIENT of them: the handshakes past
// the cap get 429 (JSON, Retry-After, no cookie), on both transports, and
// the slots come back as the connections close; other clients' sockets and
// the HTTP API are not affected.
func TestEngineConnsPerClientCap(t *testing.T) {
	t.Parallel()
	const limit = 8
	srv := tandemtest.Start(t, server.Config{EngineConnsPerClient: limit})
	closed := engineCloses(t, srv)
	base := srv.URL()
	by := newMatrixBystander(t, base) // one connection of the client address
	cookie := secSession(t, base, 0).Cookie()
	// Two keep-alive connections carry every handshake, as in the attack.
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxConnsPerHost: 2, MaxIdleConnsPerHost: 2}}
	t.Cleanup(client.CloseIdleConnections)
	do := func(method, query, body string) (int, string, http.Header) {
		t.Helper()
		req, err := http.NewRequest(method, base+shared.SocketPath+secEIOQuery+query, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Cookie", cookie)
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b), resp.Header
	}
	expectRefused := func(status int, body string, hdr http.Header) {
		t.Helper()
		secExpectJSONError(t, "handshake past the cap", status, body, hdr, http.StatusTooManyRequests)
		var e shared.ErrorBody
		_ = json.Unmarshal([]byte(body), &e)
		if !strings.Contains(e.Error, "too many connections") {
			t.Errorf("error %q does not say too many connections", e.Error)
		}
		if hdr.Get("Retry-After") == "" {
			t.Error("no Retry-After")
		}
		if sc := hdr.Values("Set-Cookie"); len(sc) != 0 {
			t.Errorf("a refused handshake set a cookie: %q", sc)
		}
	}
	fill := func() []string {
		t.Helper()
		var sids []string
		for range limit - 1 { // the bystander holds one
			status, body, _ := do(http.MethodGet, "polling", "")
			if status != http.StatusOK {
				t.Fatalf("handshake %d within the cap: %d %q", len(sids)+1, status, body)
			}
			sids = append(sids, secEngineSID(t, body))
		}
		return sids
	}

	sids := fill()
	for range 200 {
		expectRefused(do(http.MethodGet, "polling", ""))
	}
	conn, resp, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(base, "http")+shared.SocketPath+secEIOQuery+"websocket", secHeader("Cookie", cookie))
	if err == nil {
		conn.Close()
		t.Fatal("a WebSocket handshake past the cap was upgraded")
	}
	if resp == nil || resp.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("WebSocket past the cap: %v (%v), want 429", err, secRespStatus(resp))
	}
	by.check(t)

	// Closed by the client (the close packet): every slot comes back.
	for _, sid := range sids {
		if status, body, _ := do(http.MethodPost, "polling&sid="+sid, "1"); status != http.StatusOK {
			t.Fatalf("close packet: %d %q", status, body)
		}
	}
	waitCloses(t, closed, len(sids))
	sids = fill()
	expectRefused(do(http.MethodGet, "polling", ""))
	for _, sid := range sids {
		do(http.MethodPost, "polling&sid="+sid, "1")
	}
	waitCloses(t, closed, len(sids))

	// WebSockets, closed by dropping the TCP connection.
	var conns []*websocket.Conn
	for range limit - 1 {
		c, resp, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(base, "http")+shared.SocketPath+secEIOQuery+"websocket", secHeader("Cookie", cookie))
		if err != nil {
			t.Fatalf("WebSocket within the cap: %v (%v)", err, secRespStatus(resp))
		}
		conns = append(conns, c)
	}
	expectRefused(do(http.MethodGet, "polling", ""))
	for _, c := range conns {
		c.Close()
	}
	waitCloses(t, closed, len(conns))
	sids = fill()
	by.check(t)
}

// A connection that joins no namespace is closed after the connect
// timeout (10 s; the library's default is 45 s), which frees its slot: its
// long poll gets the close packet.
func TestConnectTimeoutClosesIdleConnections(t *testing.T) {
	t.Parallel()
	srv := tandemtest.Start(t, server.Config{})
	closed := engineCloses(t, srv)
	start := time.Now()
	status, body, _ := secPollingHandshake(t, srv.URL(), nil)
	if status != http.StatusOK {
		t.Fatalf("handshake: %d %q", status, body)
	}
	sid := secEngineSID(t, body)
	req, _ := http.NewRequest(http.MethodGet, srv.URL()+shared.SocketPath+secEIOQuery+"polling&sid="+sid, nil)
	resp, err := (&http.Client{Timeout: 20 * time.Second}).Do(req)
	if err != nil {
		t.Fatalf("long poll: %v", err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(b) != "1" {
		t.Fatalf("the long poll answered %q after %v, want the close packet", b, time.Since(start).Round(time.Millisecond))
	}
	if d := time.Since(start); d < 9*time.Second || d > 15*time.Second {
		t.Errorf("closed after %v, want about 10 s", d.Round(time.Millisecond))
	}
	waitCloses(t, closed, 1)
}
