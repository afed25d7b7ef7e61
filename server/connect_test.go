package server_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/zishang520/socket.io/servers/engine/v3"
	"github.com/zishang520/socket.io/servers/socket/v3"

	"github.com/tandem-go/tandem/server"
	"github.com/tandem-go/tandem/shared"
)

// connectWiden is how long the test holds a socket's connect task right
// after it wrote the CONNECT answer, to widen the window in which a packet
// that follows the answer could be read before the socket is registered.
const connectWiden = 20 * time.Millisecond

// widenConnectWindow installs, after sessionio's middleware, a namespace
// middleware that makes every connect pause for connectWiden between
// writing its CONNECT answer and registering the socket with its client.
// The pause runs on the socket's task queue (the engine emits "drain" from
// the goroutine that flushed the packet, which is the queue's connect
// task), never on the goroutine that reads the connection.
func widenConnectWindow(srv *server.Server) {
	server.SocketServer(srv).Use(func(s *socket.Socket, next func(*socket.ExtendedError)) {
		_ = s.Conn().Once("drain", func(...any) { time.Sleep(connectWiden) })
		next(nil)
	})
}

// pollWatch tells the test when a long-polling GET of an Engine.IO session
// is pending on the server (its transport emitted "ready"), so that the
// CONNECT answer is written while the socket's connect task still runs, as
// it is for the official client, whose GET is always pending.
type pollWatch struct {
	mu    sync.Mutex
	conns map[string]*pollSignals
}

type pollSignals struct {
	watched chan struct{} // closed once the transport is watched
	ready   chan struct{}
}

func watchPolls(srv *server.Server) *pollWatch {
	w := &pollWatch{conns: map[string]*pollSignals{}}
	_ = server.SocketServer(srv).Engine().On("connection", func(args ...any) {
		conn, ok := args[0].(engine.Socket)
		if !ok || conn.Transport().Name() != "polling" {
			return
		}
		sig := w.of(conn.Id())
		_ = conn.Transport().On("ready", func(...any) {
			select {
			case sig.ready <- struct{}{}:
			default:
			}
		})
		close(sig.watched)
	})
	return w
}

func (w *pollWatch) of(sid string) *pollSignals {
	w.mu.Lock()
	defer w.mu.Unlock()
	sig := w.conns[sid]
	if sig == nil {
		sig = &pollSignals{watched: make(chan struct{}), ready: make(chan struct{}, 1)}
		w.conns[sid] = sig
	}
	return sig
}

// pendingGET starts a long-polling GET and returns once the server holds
// it.
func (w *pollWatch) pendingGET(tb testing.TB, p *pollConn) chan pollResult {
	tb.Helper()
	sig := w.of(p.sid)
	select {
	case <-sig.watched:
	case <-time.After(secWait):
		tb.Fatal("the Engine.IO connection was never announced")
	}
	ch := p.getAsync()
	select {
	case <-sig.ready:
	case <-time.After(secWait):
		tb.Fatal("the polling GET never became pending")
	}
	return ch
}

// A first event sent the moment the CONNECT answer arrives (what the
// official client does with the events it buffered while connecting), or
// even together with the CONNECT, is handled like any other.
// zishang520/socket.io v3.0.6 writes the CONNECT answer
// (namespace._doConnect, socket._onconnect) before it registers the socket
// with its client, on the socket's task queue, while the next packet is read
// on another goroutine: without sessionio's connect barrier, a packet read in
// between is an "invalid state" and the connection is closed. The test
// widens that window with an injected pause, so each connection below loses
// the race without the barrier.
func TestEventRightAfterConnect(t *testing.T) {
	t.Parallel()
	srv := secureServer(t)
	widenConnectWindow(srv)
	polls := watchPolls(srv)
	victim := secSession(t, srv.URL(), 0)
	cookie := victim.Cookie()
	n := 0
	incrAcked := func(got string) {
		t.Helper()
		n++
		if want := "431[" + strconv.Itoa(n) + "]"; got != want {
			t.Fatalf("incr #%d acked %q, want %q", n, got, want)
		}
	}
	// The official client sends its buffered events right after the CONNECT
	// answer; a hand-written client may even send them with its CONNECT.
	t.Run("websocket/after CONNECT", func(t *testing.T) {
		for range 30 {
			conn := connectRaceWS(t, srv.URL(), cookie)
			secWSSend(t, conn, "40")
			secWSRead(t, conn, "40")
			secWSSend(t, conn, `421["incr"]`)
			incrAcked(secWSRead(t, conn, "43"))
			conn.Close()
		}
	})
	t.Run("websocket/with CONNECT", func(t *testing.T) {
		for range 10 {
			conn := connectRaceWS(t, srv.URL(), cookie)
			secWSSend(t, conn, "40")
			secWSSend(t, conn, `421["incr"]`)
			incrAcked(secWSRead(t, conn, "43"))
			conn.Close()
		}
	})
	t.Run("polling/after CONNECT", func(t *testing.T) {
		for i := range 20 {
			p := connectRacePolling(t, srv.URL(), cookie)
			pending := polls.pendingGET(t, p)
			p.post(t, "40")
			if got := p.await(t, pending); !strings.HasPrefix(got, "40") {
				t.Fatalf("polling connect #%d answered %q, want 40{...}", i, got)
			}
			p.post(t, `421["incr"]`)
			incrAcked(p.getUntil(t, "43"))
			p.post(t, "1")
		}
	})
	t.Run("polling/with CONNECT", func(t *testing.T) {
		for range 10 {
			p := connectRacePolling(t, srv.URL(), cookie)
			p.post(t, "40\x1e"+`421["incr"]`)
			incrAcked(p.getUntil(t, "43"))
			p.post(t, "1")
		}
	})
	if got := secCount(t, srv.URL(), cookie); got != n {
		t.Errorf("count %d after %d acked increments", got, n)
	}
}

func connectRaceWS(tb testing.TB, base, cookie string) *websocket.Conn {
	tb.Helper()
	target := "ws" + strings.TrimPrefix(base, "http") + shared.SocketPath + secEIOQuery + "websocket"
	conn, resp, err := websocket.DefaultDialer.Dial(target, secHeader("Cookie", cookie))
	if err != nil {
		tb.Fatalf("dial: %v (%v)", err, secRespStatus(resp))
	}
	secEngineSID(tb, secWSRead(tb, conn, "0"))
	return conn
}

// pollConn is an Engine.IO long-polling session driven by hand.
type pollConn struct {
	sid    string
	url    string
	cookie string
	client *http.Client
}

func connectRacePolling(tb testing.TB, base, cookie string) *pollConn {
	tb.Helper()
	p, err := pollOpen(base, cookie)
	if err != nil {
		tb.Fatal(err)
	}
	return p
}

// pollOpen opens an Engine.IO session over long-polling.
func pollOpen(base, cookie string) (*pollConn, error) {
	p := &pollConn{
		url:    base + shared.SocketPath + secEIOQuery + "polling",
		cookie: cookie,
		client: &http.Client{Timeout: 10 * time.Second},
	}
	status, body, err := p.do(http.MethodGet, "")
	if err != nil || status != http.StatusOK || !strings.HasPrefix(body, "0") {
		return nil, fmt.Errorf("polling handshake: %d %q %v", status, body, err)
	}
	var open struct {
		SID string `json:"sid"`
	}
	if err := json.Unmarshal([]byte(body[1:]), &open); err != nil || open.SID == "" {
		return nil, fmt.Errorf("not an Engine.IO open packet: %q", body)
	}
	p.sid = open.SID
	p.url += "&sid=" + url.QueryEscape(open.SID)
	return p, nil
}

func (p *pollConn) do(method, body string) (int, string, error) {
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, p.url, r)
	if err != nil {
		return 0, "", err
	}
	req.Header = secHeader("Cookie", p.cookie, "Content-Type", "text/plain;charset=UTF-8")
	resp, err := p.client.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

func (p *pollConn) post(tb testing.TB, payload string) {
	tb.Helper()
	if err := p.postErr(payload); err != nil {
		tb.Fatal(err)
	}
}

func (p *pollConn) postErr(payload string) error {
	status, body, err := p.do(http.MethodPost, payload)
	if err != nil || status != http.StatusOK || body != "ok" {
		return fmt.Errorf("POST %q: %d %q %v", payload, status, body, err)
	}
	return nil
}

type pollResult struct {
	body string
	err  error
}

// getAsync starts a long-polling GET; await returns its answer.
func (p *pollConn) getAsync() chan pollResult {
	ch := make(chan pollResult, 1)
	go func() {
		status, body, err := p.do(http.MethodGet, "")
		if err == nil && status != http.StatusOK {
			err = fmt.Errorf("status %d %q", status, body)
		}
		ch <- pollResult{body, err}
	}()
	return ch
}

func (p *pollConn) await(tb testing.TB, ch chan pollResult) string {
	tb.Helper()
	r := <-ch
	if r.err != nil {
		tb.Fatalf("polling GET: %v", r.err)
	}
	return r.body
}

// getUntil polls until a packet starting with prefix arrives and returns
// it, answering pings; a close packet ("1") fails the test.
func (p *pollConn) getUntil(tb testing.TB, prefix string) string {
	tb.Helper()
	var seen []string
	for range 20 {
		body := p.await(tb, p.getAsync())
		for _, pkt := range strings.Split(body, "\x1e") {
			seen = append(seen, pkt)
			switch {
			case strings.HasPrefix(pkt, prefix):
				return pkt
			case pkt == "2":
				p.post(tb, "3")
			case pkt == "1":
				tb.Fatalf("the server closed the connection; saw %q", seen)
			}
		}
	}
	tb.Fatalf("no %q after 20 polls; saw %q", prefix, seen)
	return ""
}
