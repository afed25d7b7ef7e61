package server_test

// Issue 6, items 6 and 8: slow clients, connections per client address,
// and the client address behind trusted proxies, against a real server
// over raw TCP (what a hostile client does is below what an HTTP client
// library lets one do).

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/tandem-go/tandem/internal/tandemtest"
	"github.com/tandem-go/tandem/server"
	"github.com/tandem-go/tandem/shared"
)

// limDial opens a raw TCP connection to base's listener from the loopback
// address from (127.0.0.1, 127.0.0.2, ...: distinct client addresses on one
// machine).
func limDial(tb testing.TB, base, from string) net.Conn {
	tb.Helper()
	u, err := url.Parse(base)
	if err != nil {
		tb.Fatal(err)
	}
	d := net.Dialer{Timeout: 5 * time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}}
	c, err := d.Dial("tcp", u.Host)
	if err != nil {
		tb.Fatalf("dial %s from %s: %v", u.Host, from, err)
	}
	tb.Cleanup(func() { _ = c.Close() })
	return c
}

// limGet sends GET path on c and returns the answer's status.
func limGet(tb testing.TB, c net.Conn, path string) int {
	tb.Helper()
	_ = c.SetDeadline(time.Now().Add(secWait))
	if _, err := io.WriteString(c, "GET "+path+" HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"); err != nil {
		tb.Fatalf("write: %v", err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		tb.Fatalf("read the answer to GET %s: %v", path, err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// limClosedWithin reads c until the server closes it and returns how long
// that took, failing if it is still open after within.
func limClosedWithin(tb testing.TB, c net.Conn, within time.Duration) time.Duration {
	tb.Helper()
	start := time.Now()
	_ = c.SetReadDeadline(start.Add(within))
	_, err := io.Copy(io.Discard, c)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		tb.Fatalf("the server still holds the connection after %v", within)
	}
	return time.Since(start)
}

// Item 6: a client that announces a body and never sends it (or sends half
// of it) loses its connection after BODY_READ_TIMEOUT, on the API and on
// Engine.IO's polling POST; long polls and WebSockets that stay quiet for
// longer than that are not cut; everyone else is served meanwhile.
func TestSlowBodyIsCutOff(t *testing.T) {
	t.Parallel()
	const timeout = 300 * time.Millisecond
	srv := tandemtest.Start(t, server.Config{BodyReadTimeout: timeout})

	// Each case has a session of its own: one case's increments must not
	// reach another's long poll.
	pollingSID := func(tb testing.TB, cookie string) string {
		status, body, _ := secPollingHandshake(tb, srv.URL(), secHeader("Cookie", cookie))
		if status != http.StatusOK {
			tb.Fatalf("polling handshake: %d %q", status, body)
		}
		sid := secEngineSID(tb, body)
		secConnectNamespace(tb, srv.URL(), sid, cookie, "")
		return sid
	}
	tests := []struct {
		name  string
		given func(tb testing.TB) string // the bytes the slow client sends
	}{
		{"nok, POST /incr announcing 100 bytes, sending none", func(testing.TB) string {
			return "POST /incr HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 100\r\n\r\n"
		}},
		{"nok, POST /logout sending half its body", func(testing.TB) string {
			return "POST /logout HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 100\r\n\r\n" + strings.Repeat("x", 50)
		}},
		{"nok, a chunked body that never ends", func(testing.TB) string {
			return "POST /incr HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab"
		}},
		{"nok, an Engine.IO polling POST announcing a packet, sending none", func(tb testing.TB) string {
			return "POST " + shared.SocketPath + secEIOQuery + "polling&sid=" + url.QueryEscape(pollingSID(tb, secSession(tb, srv.URL(), 0).Cookie())) + " HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: text/plain\r\nContent-Length: 100\r\n\r\n"
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := limDial(t, srv.URL(), "127.0.0.1")
			if _, err := io.WriteString(c, tt.given(t)); err != nil {
				t.Fatal(err)
			}
			took := limClosedWithin(t, c, 20*timeout+5*time.Second)
			if took < timeout/2 {
				t.Errorf("closed after %v, before the %v the client had", took, timeout)
			}
			if status, body, _ := secDo(t, http.MethodGet, srv.URL()+shared.RouteHealth, nil); status != http.StatusOK {
				t.Errorf("GET /healthz meanwhile: %d %q", status, body)
			}
		})
	}

	t.Run("ok, a body sent on time is read", func(t *testing.T) {
		t.Parallel()
		victim := secSession(t, srv.URL(), 0)
		c := limDial(t, srv.URL(), "127.0.0.1")
		_ = c.SetDeadline(time.Now().Add(secWait))
		sid := pollingSID(t, victim.Cookie())
		packet := `42["no such event"]`
		req := "POST " + shared.SocketPath + secEIOQuery + "polling&sid=" + url.QueryEscape(sid) + " HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: text/plain\r\n" +
			"Cookie: " + victim.Cookie() + "\r\nContent-Length: " + strconv.Itoa(len(packet)) + "\r\n\r\n"
		if _, err := io.WriteString(c, req+packet[:5]); err != nil {
			t.Fatal(err)
		}
		time.Sleep(timeout / 3) // slow, but within the bound
		if _, err := io.WriteString(c, packet[5:]); err != nil {
			t.Fatal(err)
		}
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("polling POST: %v %v", resp, err)
		}
	})

	t.Run("ok, a long poll quiet for longer than the bound is not cut", func(t *testing.T) {
		t.Parallel()
		victim := secSession(t, srv.URL(), 1)
		sid := pollingSID(t, victim.Cookie())
		u := srv.URL() + shared.SocketPath + secEIOQuery + "polling&sid=" + url.QueryEscape(sid)
		type answer struct {
			status int
			body   string
		}
		got := make(chan answer, 1)
		start := time.Now()
		go func() {
			req, _ := http.NewRequest(http.MethodGet, u, nil)
			req.Header.Set("Cookie", victim.Cookie())
			resp, err := (&http.Client{Timeout: 30 * time.Second}).Do(req)
			if err != nil {
				got <- answer{body: err.Error()}
				return
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			got <- answer{resp.StatusCode, string(b)}
		}()
		// The poll must outlast the bound before anything is sent to it:
		// what is measured here is a duration, not a race.
		time.Sleep(4 * timeout)
		select {
		case a := <-got:
			t.Fatalf("the long poll ended after %v with %d %q, before anything was sent", time.Since(start), a.status, a.body)
		default:
		}
		n := victim.Incr()
		a := <-got
		if a.status != http.StatusOK || !strings.Contains(a.body, `["current count",`+strconv.Itoa(n)+`]`) {
			t.Fatalf("the long poll answered %d %q, want current count %d", a.status, a.body, n)
		}
	})

	t.Run("ok, a WebSocket quiet for longer than the bound is not cut", func(t *testing.T) {
		t.Parallel()
		victim := secSession(t, srv.URL(), 1)
		target := "ws" + strings.TrimPrefix(srv.URL(), "http") + shared.SocketPath + secEIOQuery + "websocket"
		conn, _, err := websocket.DefaultDialer.Dial(target, secHeader("Cookie", victim.Cookie()))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		secEngineSID(t, secWSRead(t, conn, "0"))
		secWSSend(t, conn, "40")
		secWSRead(t, conn, "40")
		time.Sleep(4 * timeout) // the duration under test
		secWSSend(t, conn, `421["incr"]`)
		if got := secWSRead(t, conn, "43"); !strings.HasPrefix(got, "431[") {
			t.Fatalf("incr after a quiet spell acked %q", got)
		}
	})
}

// Item 6: one client address holds at most MAX_CONNS_PER_CLIENT
// connections; the next one is answered 429 and closed, the ones it holds
// keep working, another address is not affected, and a slot freed is
// usable again. A trusted proxy is not bounded.
func TestConnectionsPerClientAreBounded(t *testing.T) {
	t.Parallel()
	const max = 3
	srv := tandemtest.Start(t, server.Config{MaxConnsPerClient: max})
	var held []net.Conn
	for range max {
		c := limDial(t, srv.URL(), "127.0.0.1")
		if got := limGet(t, c, shared.RouteHealth); got != http.StatusOK {
			t.Fatalf("connection %d within the bound: GET /healthz %d", len(held)+1, got)
		}
		held = append(held, c)
	}

	over := limDial(t, srv.URL(), "127.0.0.1")
	_ = over.SetDeadline(time.Now().Add(secWait))
	resp, err := http.ReadResponse(bufio.NewReader(over), nil)
	if err != nil {
		t.Fatalf("connection over the bound: %v, want a 429 answer", err)
	}
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusTooManyRequests || !bytes.Contains(body, []byte(`"error"`)) || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("connection over the bound: %d %q, want 429 with a JSON error and Retry-After", resp.StatusCode, body)
	}
	limClosedWithin(t, over, secWait)

	for i, c := range held {
		if got := limGet(t, c, shared.RouteHealth); got != http.StatusOK {
			t.Errorf("held connection %d: GET /healthz %d", i+1, got)
		}
	}
	other := limDial(t, srv.URL(), "127.0.0.2")
	if got := limGet(t, other, shared.RouteHealth); got != http.StatusOK {
		t.Errorf("another address: GET /healthz %d", got)
	}

	_ = held[0].Close()
	deadline := time.Now().Add(secWait)
	for {
		c := limDial(t, srv.URL(), "127.0.0.1")
		_ = c.SetDeadline(time.Now().Add(secWait))
		if _, err := io.WriteString(c, "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"); err == nil {
			if resp, err := http.ReadResponse(bufio.NewReader(c), nil); err == nil && resp.StatusCode == http.StatusOK {
				break
			}
		}
		_ = c.Close()
		if time.Now().After(deadline) {
			t.Fatal("a freed slot was not given back")
		}
		time.Sleep(20 * time.Millisecond)
	}

	t.Run("ok, a trusted proxy is not bounded", func(t *testing.T) {
		t.Parallel()
		proxied := tandemtest.Start(t, server.Config{MaxConnsPerClient: 1, TrustedProxies: []string{"127.0.0.1/32"}})
		for i := range 4 {
			c := limDial(t, proxied.URL(), "127.0.0.1")
			if got := limGet(t, c, shared.RouteHealth); got != http.StatusOK {
				t.Fatalf("proxy connection %d: GET /healthz %d", i+1, got)
			}
		}
	})
}

// Item 8: the bound on session creation, and the logs, name the client by
// one function: the TCP peer, unless it is a trusted proxy, whose
// X-Forwarded-For then names the client; IPv6 clients by their /64. A
// client that writes X-Forwarded-For itself gains nothing.
func TestClientAddressBehindProxies(t *testing.T) {
	t.Parallel()
	start := func(tb testing.TB, trusted []string) (*server.Server, *tandemtest.Buffer) {
		log := &tandemtest.Buffer{}
		srv := tandemtest.Start(tb, server.Config{
			SessionCreateBurst: 2, SessionCreateRate: 0.001, TrustedProxies: trusted,
			Logger: slog.New(slog.NewTextHandler(log, nil)),
		})
		return srv, log
	}
	create := func(tb testing.TB, srv *server.Server, xff string) int {
		tb.Helper()
		status, _, _ := secDo(tb, http.MethodGet, srv.URL()+shared.RouteSession, secHeader("X-Forwarded-For", xff))
		return status
	}

	t.Run("ok, behind a trusted proxy each client has its own bound", func(t *testing.T) {
		t.Parallel()
		srv, log := start(t, []string{"127.0.0.1/32"})
		tests := []struct {
			givenXFF string
			expect   int
		}{
			{"198.51.100.1", http.StatusOK},
			{"198.51.100.1", http.StatusOK},
			{"198.51.100.1", http.StatusTooManyRequests},
			{"198.51.100.2", http.StatusOK},
			{"203.0.113.50, 198.51.100.2", http.StatusOK}, // the left part is the client's own claim
			{"203.0.113.51, 198.51.100.2", http.StatusTooManyRequests},
			{"2001:db8:1:2::1", http.StatusOK},
			{"2001:db8:1:2::ffff", http.StatusOK},
			{"2001:db8:1:2:ffff:ffff:ffff:fffe", http.StatusTooManyRequests}, // the same /64
			{"2001:db8:1:3::1", http.StatusOK},                               // the next /64
		}
		for i, tt := range tests {
			if got := create(t, srv, tt.givenXFF); got != tt.expect {
				t.Errorf("request %d, X-Forwarded-For %q: %d, want %d", i+1, tt.givenXFF, got, tt.expect)
			}
		}
		out := log.String()
		for _, want := range []string{"client=198.51.100.1", "client=198.51.100.2", "client=2001:db8:1:2::/64"} {
			if !strings.Contains(out, want) {
				t.Errorf("the log does not name %s:\n%s", want, out)
			}
		}
	})

	t.Run("nok, X-Forwarded-For from an untrusted peer is ignored", func(t *testing.T) {
		t.Parallel()
		srv, log := start(t, nil)
		for i, xff := range []string{"198.51.100.1", "198.51.100.2", "198.51.100.3"} {
			want := http.StatusOK
			if i == 2 {
				want = http.StatusTooManyRequests
			}
			if got := create(t, srv, xff); got != want {
				t.Errorf("request %d, X-Forwarded-For %q: %d, want %d", i+1, xff, got, want)
			}
		}
		out := log.String()
		if !strings.Contains(out, "client=127.0.0.1") || strings.Contains(out, "198.51.100") {
			t.Errorf("the log should name the peer 127.0.0.1 and no forwarded address:\n%s", out)
		}
	})
}
