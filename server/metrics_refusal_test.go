package server_test

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/tandem-go/tandem/internal/tandemtest"
	"github.com/tandem-go/tandem/server"
	"github.com/tandem-go/tandem/shared"
)

// Issue 18: a Socket.IO message over MAX_SOCKET_PAYLOAD, over polling
// (the connection gate's 413) and over WebSocket (close 1009), is counted
// under tandem_refusals_total{cause="payload"}, and a request body that
// does not arrive within BODY_READ_TIMEOUT under cause="body_timeout".
func TestMetricsCountPayloadAndBodyTimeoutRefusals(t *testing.T) {
	t.Parallel()
	srv := tandemtest.Start(t, server.Config{
		AdminAddr:        "127.0.0.1:0",
		MaxSocketPayload: 1024,
		BodyReadTimeout:  200 * time.Millisecond,
	})
	base := srv.URL() + shared.SocketPath + "?EIO=4&transport="

	// Polling: a handshake, then a POST over the limit.
	resp, err := http.Get(base + "polling")
	if err != nil {
		t.Fatal(err)
	}
	open, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	_, rest, ok := strings.Cut(string(open), `"sid":"`)
	sid, _, _ := strings.Cut(rest, `"`)
	if !ok || sid == "" {
		t.Fatalf("polling handshake: %d %q", resp.StatusCode, open)
	}
	req, _ := http.NewRequest(http.MethodPost, base+"polling&sid="+sid, strings.NewReader("4"+strings.Repeat("x", 2000)))
	req.Header.Set("Content-Type", "text/plain;charset=UTF-8")
	for _, c := range resp.Cookies() {
		req.AddCookie(c)
	}
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Fatalf("polling POST over the limit: %d, want 413", resp.StatusCode)
	}

	// WebSocket: a message over the limit is closed with 1009.
	ws, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(base, "http")+"websocket", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	if _, _, err := ws.ReadMessage(); err != nil { // OPEN
		t.Fatal(err)
	}
	if err := ws.WriteMessage(websocket.TextMessage, []byte("4"+strings.Repeat("x", 2000))); err != nil {
		t.Fatal(err)
	}
	_ = ws.SetReadDeadline(time.Now().Add(10 * time.Second))
	for {
		_, _, err := ws.ReadMessage()
		if err == nil {
			continue
		}
		if !websocket.IsCloseError(err, websocket.CloseMessageTooBig) {
			t.Fatalf("WebSocket message over the limit: %v, want close 1009", err)
		}
		break
	}

	// A body announced and never sent.
	c, err := net.Dial("tcp", strings.TrimPrefix(srv.URL(), "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := io.WriteString(c, "POST "+shared.RouteLogin+" HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 40\r\n\r\n{"); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if resp, err := http.ReadResponse(bufio.NewReader(c), nil); err == nil {
		resp.Body.Close()
	}

	fams, _ := scrape(t, srv.AdminURL())
	if got, _ := sample(fams, "tandem_refusals_total", "cause", "payload"); got != 2 {
		t.Errorf("tandem_refusals_total{payload} = %v, want 2 (polling and WebSocket)", got)
	}
	if got, _ := sample(fams, "tandem_refusals_total", "cause", "body_timeout"); got != 1 {
		t.Errorf("tandem_refusals_total{body_timeout} = %v, want 1", got)
	}
}

// A request body over the API's 64 KB limit is answered 413 and counted
// under tandem_refusals_total{cause="payload"}: a Content-Length over it
// (refused before the handler), on POST /incr and POST /login, and a
// chunked body that grows past it while POST /login reads it.
func TestMetricsCountBodyLimitRefusals(t *testing.T) {
	t.Parallel()
	srv := tandemtest.Start(t, server.Config{AdminAddr: "127.0.0.1:0"})
	big := `{"user":"` + strings.Repeat("a", 70<<10) + `"}`
	post := func(path, body string, chunked bool) (int, string) {
		t.Helper()
		req, err := http.NewRequest(http.MethodPost, srv.URL()+path, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		if chunked {
			req.ContentLength = -1 // unknown: sent chunked
		}
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	for _, tt := range []struct {
		name    string
		path    string
		chunked bool
	}{
		{"Content-Length, POST /incr", shared.RouteIncr, false},
		{"Content-Length, POST /login", shared.RouteLogin, false},
		{"chunked, POST /login", shared.RouteLogin, true},
	} {
		if status, body := post(tt.path, big, tt.chunked); status != http.StatusRequestEntityTooLarge {
			t.Fatalf("%s: %d %s; want 413", tt.name, status, body)
		}
	}
	// Within the limit, the same route answers.
	if status, body := post(shared.RouteLogin, `{"user":"ada"}`, false); status != http.StatusOK {
		t.Fatalf("POST /login within the limit: %d %s", status, body)
	}
	fams, _ := scrape(t, srv.AdminURL())
	if got, _ := sample(fams, "tandem_refusals_total", "cause", "payload"); got != 3 {
		t.Errorf("tandem_refusals_total{payload} = %v, want 3", got)
	}
}
