package server_test

// Security defaults (issue 2, points 9, 10 and 11, and the bound on session
// creation), checked against a real server over real HTTP, raw WebSockets
// and the official socket.io JavaScript client.

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/tandem-go/tandem/internal/tandemtest"
	"github.com/tandem-go/tandem/server"
	"github.com/tandem-go/tandem/server/store/memory"
	"github.com/tandem-go/tandem/shared"
)

const (
	secEvilOrigin = "http://evil.example"
	secSPAOrigin  = "http://localhost:4200"
	secWait       = 5 * time.Second
	secQuiet      = 300 * time.Millisecond
	secEIOQuery   = "?EIO=4&transport="
)

// secureServer starts a server whose allowlist holds secSPAOrigin.
func secureServer(tb testing.TB) *server.Server {
	tb.Helper()
	return tandemtest.Start(tb, server.Config{CORSOrigins: []string{secSPAOrigin}})
}

// secDo sends one request without a cookie jar (the Cookie header, if any,
// is exactly the one given) and returns the status, body and headers.
func secDo(tb testing.TB, method, rawURL string, hdr http.Header) (int, string, http.Header) {
	tb.Helper()
	req, err := http.NewRequest(method, rawURL, nil)
	if err != nil {
		tb.Fatal(err)
	}
	for k, v := range hdr {
		req.Header[k] = v
	}
	c := &http.Client{Timeout: 10 * time.Second}
	resp, err := c.Do(req)
	if err != nil {
		tb.Fatalf("%s %s: %v", method, rawURL, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), resp.Header
}

// secHeader builds an http.Header from name, value pairs; empty values are
// left out.
func secHeader(kv ...string) http.Header {
	h := http.Header{}
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] != "" {
			h.Add(kv[i], kv[i+1])
		}
	}
	return h
}

// secPollingHandshake opens an Engine.IO session over long-polling by hand.
func secPollingHandshake(tb testing.TB, base string, hdr http.Header) (int, string, http.Header) {
	tb.Helper()
	return secDo(tb, http.MethodGet, base+shared.SocketPath+secEIOQuery+"polling", hdr)
}

// secEngineSID reads the sid of an Engine.IO open packet: 0{"sid":"..."}.
func secEngineSID(tb testing.TB, body string) string {
	tb.Helper()
	var open struct {
		SID string `json:"sid"`
	}
	if !strings.HasPrefix(body, "0") || json.Unmarshal([]byte(body[1:]), &open) != nil || open.SID == "" {
		tb.Fatalf("not an Engine.IO open packet: %q", body)
	}
	return open.SID
}

// secExpectJSONError checks a {"error": "..."} answer with the given status.
func secExpectJSONError(tb testing.TB, what string, status int, body string, hdr http.Header, want int) {
	tb.Helper()
	if status != want {
		tb.Fatalf("%s: status %d %q, want %d", what, status, body, want)
	}
	if ct := hdr.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		tb.Errorf("%s: Content-Type %q, want application/json", what, ct)
	}
	var e shared.ErrorBody
	if err := json.Unmarshal([]byte(body), &e); err != nil || e.Error == "" {
		tb.Errorf("%s: body %q is not a JSON error", what, body)
	}
}

// secCount reads GET /session with the given cookie header.
func secCount(tb testing.TB, base, cookie string) int {
	tb.Helper()
	status, body, _ := secDo(tb, http.MethodGet, base+shared.RouteSession, secHeader("Cookie", cookie))
	if status != http.StatusOK {
		tb.Fatalf("GET /session: %d %q", status, body)
	}
	var info shared.SessionInfo
	if err := json.Unmarshal([]byte(body), &info); err != nil {
		tb.Fatalf("GET /session: %q: %v", body, err)
	}
	return info.Count
}

// secSession makes a session with count n and returns its client.
func secSession(tb testing.TB, base string, n int) *tandemtest.Client {
	tb.Helper()
	c := tandemtest.NewClient(tb, base)
	c.Do(http.MethodGet, shared.RouteSession)
	for range n {
		c.Incr()
	}
	if c.Cookie() == "" {
		tb.Fatal("GET /session set no cookie")
	}
	return c
}

// secExpectRefused waits until s reports connect_error and fails if it
// connects first.
func secExpectRefused(tb testing.TB, s *tandemtest.Socket) tandemtest.Event {
	tb.Helper()
	deadline := time.Now().Add(secWait)
	for time.Now().Before(deadline) {
		e, ok := s.Next(time.Until(deadline))
		if !ok {
			break
		}
		switch e.Name {
		case "connect":
			tb.Fatalf("socket connected; want connect_error (saw %v)", s.Seen())
		case "connect_error":
			return e
		}
	}
	tb.Fatalf("no connect_error within %v; saw %v", secWait, s.Seen())
	return tandemtest.Event{}
}

// secExpectConnected checks that s saw no disconnect and still says it is
// connected.
func secExpectConnected(tb testing.TB, s *tandemtest.Socket) {
	tb.Helper()
	for _, e := range s.Seen() {
		if e.Name == "disconnect" {
			tb.Fatalf("socket was disconnected: %v", s.Seen())
		}
	}
	if !s.State().Connected {
		tb.Fatalf("socket is not connected: %v", s.Seen())
	}
}

// secIncrAndHear increments through s and checks that the ack and the
// current count s then hears carry the same new value.
func secIncrAndHear(tb testing.TB, s *tandemtest.Socket) int {
	tb.Helper()
	n := s.Incr()
	for {
		if got := s.Count(secWait); got == n {
			return n
		} else if got > n {
			tb.Fatalf("current count %d after incr acked %d", got, n)
		}
	}
}

// Point 9: every Engine.IO handshake from an origin outside the allowlist
// is refused with 403; the allowlist, the server's own origin and requests
// without an Origin pass, with CORS headers (credentials) for the
// allowlisted origin.
func TestPollingHandshakeOrigin(t *testing.T) {
	t.Parallel()
	srv := secureServer(t)
	tests := []struct {
		name        string
		givenHeader []string
		expect      int
		expectCORS  string // Access-Control-Allow-Origin, "" for none
	}{
		{name: "ok, no Origin", expect: http.StatusOK},
		{name: "ok, same origin", givenHeader: []string{"Origin", srv.URL()}, expect: http.StatusOK, expectCORS: srv.URL()},
		{name: "ok, allowlisted origin", givenHeader: []string{"Origin", secSPAOrigin}, expect: http.StatusOK, expectCORS: secSPAOrigin},
		{name: "ok, Sec-Fetch-Site same-origin", givenHeader: []string{"Sec-Fetch-Site", "same-origin"}, expect: http.StatusOK},
		{name: "nok, foreign origin", givenHeader: []string{"Origin", secEvilOrigin}, expect: http.StatusForbidden},
		{name: "nok, foreign origin with an allowlisted prefix", givenHeader: []string{"Origin", secSPAOrigin + ".evil.example"}, expect: http.StatusForbidden},
		{name: "nok, allowlisted host on another port", givenHeader: []string{"Origin", "http://localhost:4201"}, expect: http.StatusForbidden},
		{name: "nok, opaque origin null", givenHeader: []string{"Origin", "null"}, expect: http.StatusForbidden},
		{name: "nok, Sec-Fetch-Site cross-site without Origin", givenHeader: []string{"Sec-Fetch-Site", "cross-site"}, expect: http.StatusForbidden},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			status, body, hdr := secPollingHandshake(t, srv.URL(), secHeader(tt.givenHeader...))
			if tt.expect != http.StatusOK {
				secExpectJSONError(t, "polling handshake", status, body, hdr, tt.expect)
				if sc := hdr.Get("Set-Cookie"); sc != "" {
					t.Errorf("a refused handshake set a cookie: %q", sc)
				}
			} else {
				if status != http.StatusOK {
					t.Fatalf("polling handshake: %d %q, want 200", status, body)
				}
				secEngineSID(t, body)
				if !strings.Contains(hdr.Get("Set-Cookie"), "tandem.sid=") {
					t.Errorf("handshake without a session set no session cookie: %q", hdr.Get("Set-Cookie"))
				}
			}
			if got := hdr.Get("Access-Control-Allow-Origin"); got != tt.expectCORS {
				t.Errorf("Access-Control-Allow-Origin %q, want %q", got, tt.expectCORS)
			}
			if got := hdr.Get("Access-Control-Allow-Credentials"); tt.expectCORS != "" && got != "true" {
				t.Errorf("Access-Control-Allow-Credentials %q, want true", got)
			}
		})
	}
}

// Point 9, with the official client: a page on another site cannot open a
// socket with the user's cookie, over either transport; the allowlist and
// the server's own origin can.
func TestSocketOriginWithOfficialClient(t *testing.T) {
	t.Parallel()
	srv := secureServer(t)
	driver := tandemtest.NewDriver(t) // one Node.js for every case: starting it costs more than a case
	victim := secSession(t, srv.URL(), 2)
	tests := []struct {
		name        string
		givenOrigin string
		expectOK    bool
	}{
		{"ok, no Origin", "", true},
		{"ok, same origin", srv.URL(), true},
		{"ok, allowlisted origin", secSPAOrigin, true},
		{"nok, foreign origin with a valid session cookie", secEvilOrigin, false},
	}
	t.Run("sockets", func(t *testing.T) {
		for _, tt := range tests {
			for _, tr := range []tandemtest.Transport{tandemtest.WebSocket, tandemtest.Polling} {
				t.Run(tt.name+", "+string(tr), func(t *testing.T) {
					t.Parallel()
					node := driver.For(t)
					s := node.Open(srv.URL(), tandemtest.Options{Cookie: victim.Cookie(), Origin: tt.givenOrigin, Transport: tr})
					if !tt.expectOK {
						secExpectRefused(t, s)
						if e, ok := s.Next(secQuiet); ok && e.Name == "connect" {
							t.Fatalf("socket connected after its connect_error: %v", s.Seen())
						}
						return
					}
					s.Wait("connect", secWait)
					if got := s.State().Transport; got != string(tr) {
						t.Errorf("transport %q, want %q", got, tr)
					}
				})
			}
		}
	})
	if got := secCount(t, srv.URL(), victim.Cookie()); got != 2 {
		t.Errorf("victim's count %d after the refused sockets, want 2", got)
	}
}

// Point 9, the upgrade: an Engine.IO session opened over polling cannot be
// upgraded to a WebSocket from a foreign origin (CORS does not cover
// WebSockets; the Origin check must).
func TestWebSocketUpgradeOrigin(t *testing.T) {
	t.Parallel()
	srv := secureServer(t)
	wsBase := "ws" + strings.TrimPrefix(srv.URL(), "http") + shared.SocketPath + secEIOQuery + "websocket"

	tests := []struct {
		name            string
		givenHandshake  string // Origin of the polling handshake
		givenUpgrade    string // Origin of the WebSocket upgrade
		givenDirect     bool   // no polling first: a WebSocket handshake
		expectSwitching bool
	}{
		{name: "ok, direct WebSocket handshake from an allowlisted origin", givenUpgrade: secSPAOrigin, givenDirect: true, expectSwitching: true},
		{name: "nok, direct WebSocket handshake from a foreign origin", givenUpgrade: secEvilOrigin, givenDirect: true},
		{name: "ok, upgrade without Origin", expectSwitching: true},
		{name: "ok, upgrade from the same origin", givenHandshake: srv.URL(), givenUpgrade: srv.URL(), expectSwitching: true},
		{name: "ok, upgrade from an allowlisted origin", givenHandshake: secSPAOrigin, givenUpgrade: secSPAOrigin, expectSwitching: true},
		{name: "nok, upgrade from a foreign origin", givenUpgrade: secEvilOrigin},
		{name: "nok, upgrade from a foreign origin after an allowlisted handshake", givenHandshake: secSPAOrigin, givenUpgrade: secEvilOrigin},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			victim := secSession(t, srv.URL(), 1)
			target := wsBase
			if !tt.givenDirect {
				status, body, _ := secPollingHandshake(t, srv.URL(), secHeader("Cookie", victim.Cookie(), "Origin", tt.givenHandshake))
				if status != http.StatusOK {
					t.Fatalf("polling handshake: %d %q", status, body)
				}
				sid := secEngineSID(t, body)
				// Connect the main namespace, as the client does before upgrading.
				secConnectNamespace(t, srv.URL(), sid, victim.Cookie(), tt.givenHandshake)
				target += "&sid=" + url.QueryEscape(sid)
			}

			before := secCount(t, srv.URL(), victim.Cookie())
			conn, resp, err := websocket.DefaultDialer.Dial(target, secHeader("Cookie", victim.Cookie(), "Origin", tt.givenUpgrade))
			if !tt.expectSwitching {
				if err == nil {
					conn.Close()
					t.Fatal("WebSocket upgrade from a foreign origin succeeded")
				}
				if !errors.Is(err, websocket.ErrBadHandshake) || resp == nil || resp.StatusCode != http.StatusForbidden {
					t.Fatalf("upgrade refused with %v (response %v), want 403", err, secRespStatus(resp))
				}
				if got := secCount(t, srv.URL(), victim.Cookie()); got != before {
					t.Errorf("count %d after the refused upgrade, want %d", got, before)
				}
				return
			}
			if err != nil {
				t.Fatalf("upgrade: %v (response %v)", err, secRespStatus(resp))
			}
			defer conn.Close()
			// Finish the upgrade and increment over it: the positive control
			// that proves the refusals are the Origin check's doing.
			if tt.givenDirect {
				secEngineSID(t, secWSRead(t, conn, "0"))
				secWSSend(t, conn, "40")
				secWSRead(t, conn, "40")
			} else {
				secWSSend(t, conn, "2probe")
				if got := secWSRead(t, conn, "3"); got != "3probe" {
					t.Fatalf("probe answered %q", got)
				}
				secWSSend(t, conn, "5")
			}
			secWSSend(t, conn, `421["incr"]`)
			want := "431[" + strconv.Itoa(before+1) + "]"
			if got := secWSRead(t, conn, "43"); got != want {
				t.Fatalf("incr over the upgraded WebSocket acked %q, want %q", got, want)
			}
		})
	}
}

// Point 9, the rest of a polling session: a page on another site that
// learned a polling sid can neither send packets into it nor read what the
// server sends to it.
func TestPollingRequestsOrigin(t *testing.T) {
	t.Parallel()
	srv := secureServer(t)
	tests := []struct {
		name         string
		givenMethod  string
		givenOrigin  string
		expectStatus int
	}{
		{"ok, POST from the allowlisted origin", http.MethodPost, secSPAOrigin, http.StatusOK},
		{"ok, POST without Origin", http.MethodPost, "", http.StatusOK},
		{"nok, POST from a foreign origin", http.MethodPost, secEvilOrigin, http.StatusForbidden},
		{"nok, GET from a foreign origin", http.MethodGet, secEvilOrigin, http.StatusForbidden},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			victim := secSession(t, srv.URL(), 1)
			status, body, _ := secPollingHandshake(t, srv.URL(), secHeader("Cookie", victim.Cookie(), "Origin", secSPAOrigin))
			if status != http.StatusOK {
				t.Fatalf("polling handshake: %d %q", status, body)
			}
			sid := secEngineSID(t, body)
			secConnectNamespace(t, srv.URL(), sid, victim.Cookie(), secSPAOrigin)

			u := srv.URL() + shared.SocketPath + secEIOQuery + "polling&sid=" + url.QueryEscape(sid)
			req, err := http.NewRequest(tt.givenMethod, u, nil)
			if err != nil {
				t.Fatal(err)
			}
			if tt.givenMethod == http.MethodPost {
				req.Body = io.NopCloser(strings.NewReader(`42["incr"]`))
				req.Header.Set("Content-Type", "text/plain;charset=UTF-8")
			}
			for k, v := range secHeader("Cookie", victim.Cookie(), "Origin", tt.givenOrigin) {
				req.Header[k] = v
			}
			resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tt.expectStatus {
				t.Fatalf("%s with sid: %d %q, want %d", tt.givenMethod, resp.StatusCode, b, tt.expectStatus)
			}
			want := 1
			if tt.expectStatus == http.StatusOK {
				want = 2
			} else {
				secExpectJSONError(t, tt.givenMethod+" with sid", resp.StatusCode, string(b), resp.Header, tt.expectStatus)
				time.Sleep(secQuiet) // an accepted packet is handled after its answer
			}
			deadline := time.Now().Add(secWait)
			for secCount(t, srv.URL(), victim.Cookie()) != want && time.Now().Before(deadline) {
				time.Sleep(10 * time.Millisecond)
			}
			if got := secCount(t, srv.URL(), victim.Cookie()); got != want {
				t.Errorf("count %d, want %d", got, want)
			}
		})
	}
}

// secConnectNamespace sends the Socket.IO CONNECT of the main namespace over
// a polling Engine.IO session and waits for its answer.
func secConnectNamespace(tb testing.TB, base, sid, cookie, origin string) {
	tb.Helper()
	u := base + shared.SocketPath + secEIOQuery + "polling&sid=" + url.QueryEscape(sid)
	req, err := http.NewRequest(http.MethodPost, u, strings.NewReader("40"))
	if err != nil {
		tb.Fatal(err)
	}
	req.Header = secHeader("Cookie", cookie, "Origin", origin, "Content-Type", "text/plain;charset=UTF-8")
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		tb.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		tb.Fatalf("POST 40: %d %q", resp.StatusCode, b)
	}
	status, body, _ := secDo(tb, http.MethodGet, u, secHeader("Cookie", cookie, "Origin", origin))
	if status != http.StatusOK || !strings.HasPrefix(body, "40") {
		tb.Fatalf("namespace connect answered %d %q, want 40{...}", status, body)
	}
}

func secWSSend(tb testing.TB, c *websocket.Conn, msg string) {
	tb.Helper()
	if err := c.WriteMessage(websocket.TextMessage, []byte(msg)); err != nil {
		tb.Fatalf("WebSocket write %q: %v", msg, err)
	}
}

// secWSRead returns the next text message starting with prefix, answering
// the server's pings on the way.
func secWSRead(tb testing.TB, c *websocket.Conn, prefix string) string {
	tb.Helper()
	_ = c.SetReadDeadline(time.Now().Add(secWait))
	var seen []string
	for {
		_, b, err := c.ReadMessage()
		if err != nil {
			tb.Fatalf("WebSocket read (waiting for %q, after %v): %v", prefix, seen, err)
		}
		msg := string(b)
		seen = append(seen, msg)
		if msg == "2" {
			secWSSend(tb, c, "3")
			continue
		}
		if strings.HasPrefix(msg, prefix) {
			return msg
		}
	}
}

func secRespStatus(resp *http.Response) any {
	if resp == nil {
		return nil
	}
	return resp.Status
}

// Point 9: "*" (or any wildcard) with credentials is refused when the
// server is built, naming CORS_ORIGINS.
func TestWildcardOriginsRefusedAtStart(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		given    []string
		expectOK bool
	}{
		{"ok, a listed origin", []string{secSPAOrigin}, true},
		{"ok, several origins", []string{secSPAOrigin, "https://app.example.com"}, true},
		{"nok, star", []string{"*"}, false},
		{"nok, star among others", []string{secSPAOrigin, "*"}, false},
		{"nok, wildcard subdomain", []string{"http://*.x"}, false},
		{"nok, no scheme", []string{"localhost:4200"}, false},
		{"nok, a path", []string{"http://localhost:4200/app"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv, err := server.New(server.Config{
				Addr:           "127.0.0.1:0",
				Store:          "memory",
				SessionSecrets: []string{strings.Repeat("k", 32)},
				DataDir:        t.TempDir(),
				CORSOrigins:    tt.given,
				Logger:         tandemtest.Logger(t),
			})
			if tt.expectOK {
				if err != nil {
					t.Fatalf("server.New: %v", err)
				}
				_ = srv.Close(t.Context())
				return
			}
			if err == nil {
				_ = srv.Close(t.Context())
				t.Fatalf("server.New accepted CORS_ORIGINS %q", tt.given)
			}
			var ce *server.ConfigError
			if !errors.As(err, &ce) || ce.Var != "CORS_ORIGINS" {
				t.Fatalf("server.New: %v (%T), want a *server.ConfigError for CORS_ORIGINS", err, err)
			}
		})
	}
}

// Point 10: POST /incr and POST /logout from outside the allowlist are
// refused with 403 before anything changes: the count stays, the session
// and its sockets live on. The allowlist and the server's own origin pass,
// with CORS credentials headers for the allowlisted origin.
func TestCrossOriginPOSTs(t *testing.T) {
	t.Parallel()
	srv := secureServer(t)
	// One Node.js for every case (starting it costs more than a case); nil
	// without Node.js, when only the HTTP checks run.
	driver := tandemtest.OptionalDriver(t)
	tests := []struct {
		name         string
		givenPath    string
		givenHeader  []string
		expectStatus int
		expectCORS   string // Access-Control-Allow-Origin, "" for none
		expectDelta  int    // change of the count
		expectEnded  bool   // the session is gone and its socket told so
	}{
		{name: "nok, incr from a foreign origin", givenPath: shared.RouteIncr, givenHeader: []string{"Origin", secEvilOrigin}, expectStatus: http.StatusForbidden},
		{name: "nok, logout from a foreign origin", givenPath: shared.RouteLogout, givenHeader: []string{"Origin", secEvilOrigin}, expectStatus: http.StatusForbidden},
		{name: "nok, incr with Sec-Fetch-Site cross-site and no Origin", givenPath: shared.RouteIncr, givenHeader: []string{"Sec-Fetch-Site", "cross-site"}, expectStatus: http.StatusForbidden},
		{name: "nok, logout with Sec-Fetch-Site cross-site and no Origin", givenPath: shared.RouteLogout, givenHeader: []string{"Sec-Fetch-Site", "cross-site"}, expectStatus: http.StatusForbidden},
		{name: "nok, incr from a foreign origin with Sec-Fetch-Site cross-site", givenPath: shared.RouteIncr, givenHeader: []string{"Origin", secEvilOrigin, "Sec-Fetch-Site", "cross-site"}, expectStatus: http.StatusForbidden},
		{name: "nok, incr from a same-site but foreign origin", givenPath: shared.RouteIncr, givenHeader: []string{"Origin", "http://other.localhost:4200", "Sec-Fetch-Site", "same-site"}, expectStatus: http.StatusForbidden},
		{name: "nok, incr from the allowlisted host on another port", givenPath: shared.RouteIncr, givenHeader: []string{"Origin", "http://localhost:4201"}, expectStatus: http.StatusForbidden},
		{name: "nok, logout from an opaque origin", givenPath: shared.RouteLogout, givenHeader: []string{"Origin", "null"}, expectStatus: http.StatusForbidden},
		{name: "ok, incr from the allowlisted origin", givenPath: shared.RouteIncr, givenHeader: []string{"Origin", secSPAOrigin, "Sec-Fetch-Site", "same-site"}, expectStatus: http.StatusOK, expectCORS: secSPAOrigin, expectDelta: 1},
		{name: "ok, incr from the same origin", givenPath: shared.RouteIncr, givenHeader: []string{"Origin", srv.URL(), "Sec-Fetch-Site", "same-origin"}, expectStatus: http.StatusOK, expectDelta: 1},
		{name: "ok, incr with Sec-Fetch-Site same-origin only", givenPath: shared.RouteIncr, givenHeader: []string{"Sec-Fetch-Site", "same-origin"}, expectStatus: http.StatusOK, expectDelta: 1},
		{name: "ok, incr without Origin (not a browser)", givenPath: shared.RouteIncr, expectStatus: http.StatusOK, expectDelta: 1},
		{name: "ok, logout from the allowlisted origin", givenPath: shared.RouteLogout, givenHeader: []string{"Origin", secSPAOrigin}, expectStatus: http.StatusNoContent, expectCORS: secSPAOrigin, expectEnded: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			victim := secSession(t, srv.URL(), 2)
			var tab *tandemtest.Socket // the session's tab, when there is Node.js
			if driver != nil {
				tab = driver.For(t).Dial(srv.URL(), tandemtest.Options{Cookie: victim.Cookie()})
			}

			hdr := secHeader(append([]string{"Cookie", victim.Cookie()}, tt.givenHeader...)...)
			status, body, rh := secDo(t, http.MethodPost, srv.URL()+tt.givenPath, hdr)
			if status != tt.expectStatus {
				t.Fatalf("POST %s: %d %q, want %d", tt.givenPath, status, body, tt.expectStatus)
			}
			if status == http.StatusForbidden {
				secExpectJSONError(t, "POST "+tt.givenPath, status, body, rh, http.StatusForbidden)
				if sc := rh.Get("Set-Cookie"); sc != "" {
					t.Errorf("a refused POST set a cookie: %q", sc)
				}
			}
			if got := rh.Get("Access-Control-Allow-Origin"); got != tt.expectCORS {
				t.Errorf("Access-Control-Allow-Origin %q, want %q", got, tt.expectCORS)
			}
			if got := rh.Get("Access-Control-Allow-Credentials"); tt.expectCORS != "" && got != "true" {
				t.Errorf("Access-Control-Allow-Credentials %q, want true", got)
			}

			if tt.expectEnded {
				if tab != nil {
					var ended shared.SessionEnded
					tab.Wait(shared.EventSessionEnded, secWait).Arg(t, 0, &ended)
					tab.Wait("disconnect", secWait)
				}
				if got := secCount(t, srv.URL(), victim.Cookie()); got != 0 {
					t.Errorf("count %d with the logged-out cookie, want 0 (a new session)", got)
				}
				return
			}
			want := 2 + tt.expectDelta
			if got := secCount(t, srv.URL(), victim.Cookie()); got != want {
				t.Errorf("count %d after the POST, want %d", got, want)
			}
			if tab == nil {
				return
			}
			if tt.expectDelta > 0 {
				if got := tab.Count(secWait); got != want {
					t.Errorf("the socket heard current count %d, want %d", got, want)
				}
			}
			// The session and its socket live on: the socket's own incr
			// still goes through, and it heard nothing else.
			secExpectConnected(t, tab)
			if got := secIncrAndHear(t, tab); got != want+1 {
				t.Errorf("socket incr acked %d, want %d", got, want+1)
			}
			for _, e := range tab.Seen() {
				if e.Name == shared.EventSessionEnded || e.Name == "disconnect" {
					t.Errorf("the socket saw %v", e)
				}
			}
		})
	}
}

// Point 10, preflights: an allowlisted origin learns that it may POST with
// credentials; any other origin learns nothing.
func TestCrossOriginPreflight(t *testing.T) {
	t.Parallel()
	srv := secureServer(t)
	tests := []struct {
		name        string
		givenPath   string
		givenOrigin string
		expectCORS  bool
	}{
		{"ok, incr from the allowlisted origin", shared.RouteIncr, secSPAOrigin, true},
		{"ok, logout from the allowlisted origin", shared.RouteLogout, secSPAOrigin, true},
		{"nok, incr from a foreign origin", shared.RouteIncr, secEvilOrigin, false},
		{"nok, logout from a foreign origin", shared.RouteLogout, secEvilOrigin, false},
		{"nok, incr from the allowlisted host on another port", shared.RouteIncr, "http://localhost:4201", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			status, body, hdr := secDo(t, http.MethodOptions, srv.URL()+tt.givenPath, secHeader(
				"Origin", tt.givenOrigin,
				"Access-Control-Request-Method", http.MethodPost,
				"Sec-Fetch-Site", "cross-site",
			))
			if status >= 500 {
				t.Fatalf("preflight: %d %q", status, body)
			}
			if sc := hdr.Get("Set-Cookie"); sc != "" {
				t.Errorf("a preflight set a cookie: %q", sc)
			}
			acao := hdr.Get("Access-Control-Allow-Origin")
			if !tt.expectCORS {
				if acao != "" {
					t.Errorf("Access-Control-Allow-Origin %q for a foreign origin, want none", acao)
				}
				return
			}
			if status != http.StatusNoContent && status != http.StatusOK {
				t.Errorf("preflight status %d, want 204 or 200", status)
			}
			if acao != tt.givenOrigin {
				t.Errorf("Access-Control-Allow-Origin %q, want %q", acao, tt.givenOrigin)
			}
			if got := hdr.Get("Access-Control-Allow-Credentials"); got != "true" {
				t.Errorf("Access-Control-Allow-Credentials %q, want true", got)
			}
			if got := hdr.Get("Access-Control-Allow-Methods"); !strings.Contains(got, http.MethodPost) {
				t.Errorf("Access-Control-Allow-Methods %q does not allow POST", got)
			}
		})
	}
}

// secCookieValue returns the value of the session cookie in a Cookie header.
func secCookieValue(tb testing.TB, header string) string {
	tb.Helper()
	for _, part := range strings.Split(header, ";") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(part), "tandem.sid="); ok {
			return v
		}
	}
	tb.Fatalf("no tandem.sid in %q", header)
	return ""
}

// secNodeHeader spells a header value so that Node.js, which writes header
// strings as Latin-1, sends exactly the bytes of v (UTF-8 included).
func secNodeHeader(v string) string {
	r := make([]rune, len(v))
	for i := range len(v) {
		r[i] = rune(v[i])
	}
	return string(r)
}

// secFlip changes the character at i into another one of the base64url
// alphabet.
func secFlip(s string, i int) string {
	c := byte('A')
	if s[i] == 'A' {
		c = 'B'
	}
	return s[:i] + string(c) + s[i+1:]
}

// Point 11: a cookie that is tampered, truncated, signed with another key,
// empty, garbage, or repeated is no session: /incr answers 1 with a fresh
// cookie, /session 200, a socket connects into a fresh session, never a
// 5xx, and the session it imitates is untouched.
func TestBadCookiesAreNoSession(t *testing.T) {
	t.Parallel()
	srv := secureServer(t)
	driver := tandemtest.OptionalDriver(t) // nil without Node.js: the HTTP checks still run
	other := tandemtest.Start(t, server.Config{SessionSecrets: []string{strings.Repeat("o", 32)}})
	unknown := secCookieValue(t, secSession(t, other.URL(), 1).Cookie())
	const idLen = 43 // the ID's part of the cookie value, before the dot

	tests := []struct {
		name        string
		given       func(valid string) string // the Cookie header, from a valid cookie value
		expectFresh bool                      // no session: a fresh one at 1; else the valid one's
	}{
		{"nok, one character of the MAC flipped", func(v string) string { return "tandem.sid=" + secFlip(v, len(v)-5) }, true},
		{"nok, last character of the MAC flipped", func(v string) string { return "tandem.sid=" + secFlip(v, len(v)-1) }, true},
		{"nok, one character of the ID flipped", func(v string) string { return "tandem.sid=" + secFlip(v, 3) }, true},
		{"nok, truncated by one", func(v string) string { return "tandem.sid=" + v[:len(v)-1] }, true},
		{"nok, the ID without its MAC", func(v string) string { return "tandem.sid=" + v[:idLen] }, true},
		{"nok, the ID and the dot", func(v string) string { return "tandem.sid=" + v[:idLen+1] }, true},
		{"nok, MAC and ID swapped", func(v string) string { return "tandem.sid=" + v[idLen+1:] + "." + v[:idLen] }, true},
		{"nok, signed with another key", func(string) string { return "tandem.sid=" + unknown }, true},
		{"nok, empty", func(string) string { return "tandem.sid=" }, true},
		{"nok, name only", func(string) string { return "tandem.sid" }, true},
		{"nok, garbage", func(string) string { return "tandem.sid=!!not*a(cookie)$$" }, true},
		{"nok, non-ASCII", func(string) string { return "tandem.sid=çà-et-là-☃-" + strings.Repeat("é", 30) }, true},
		{"nok, 4 KB", func(string) string { return "tandem.sid=" + strings.Repeat("A", 4096) }, true},
		{"nok, valid value followed by 4 KB", func(v string) string { return "tandem.sid=" + v + strings.Repeat("A", 4096) }, true},
		{"nok, quoted garbage", func(string) string { return `tandem.sid="a.b"` }, true},
		{"nok, duplicated name, both bad", func(v string) string {
			return "tandem.sid=" + secFlip(v, len(v)-5) + "; tandem.sid=" + unknown
		}, true},
		{"nok, duplicated name, 50 times", func(v string) string {
			return strings.Repeat("tandem.sid="+secFlip(v, 10)+"; ", 50) + "x=y"
		}, true},
		{"ok, duplicated name, a bad one before the valid one", func(v string) string {
			return "tandem.sid=" + secFlip(v, len(v)-5) + "; tandem.sid=" + v
		}, false},
		{"ok, the valid cookie among others", func(v string) string { return "a=b; tandem.sid=" + v + "; c=d" }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			victim := secSession(t, srv.URL(), 3)
			valid := secCookieValue(t, victim.Cookie())
			given := tt.given(valid)

			want := "1"
			if !tt.expectFresh {
				want = "4"
			}
			status, body, hdr := secDo(t, http.MethodPost, srv.URL()+shared.RouteIncr, secHeader("Cookie", given))
			if status != http.StatusOK || body != want {
				t.Fatalf("POST /incr: %d %q, want 200 %q", status, body, want)
			}
			fresh := (&http.Response{Header: hdr}).Cookies()
			if tt.expectFresh {
				if len(fresh) != 1 || fresh[0].Name != "tandem.sid" || fresh[0].Value == valid || fresh[0].Value == "" || strings.Contains(given, fresh[0].Value) {
					t.Fatalf("POST /incr set cookies %v, want one fresh tandem.sid", fresh)
				}
				if got := secCount(t, srv.URL(), "tandem.sid="+fresh[0].Value); got != 1 {
					t.Errorf("the fresh cookie's count is %d, want 1", got)
				}
			} else if len(fresh) != 0 {
				t.Errorf("POST /incr with a valid cookie set cookies %v", fresh)
			}

			status, body, _ = secDo(t, http.MethodGet, srv.URL()+shared.RouteSession, secHeader("Cookie", given))
			if status != http.StatusOK {
				t.Fatalf("GET /session: %d %q, want 200", status, body)
			}
			if tt.expectFresh {
				// Nothing to end: the imitated session survives a logout.
				status, body, _ = secDo(t, http.MethodPost, srv.URL()+shared.RouteLogout, secHeader("Cookie", given))
				if status != http.StatusNoContent {
					t.Fatalf("POST /logout: %d %q, want 204", status, body)
				}
			}

			if driver == nil {
				return // the socket checks need Node.js
			}
			node := driver.For(t)
			for _, tr := range []tandemtest.Transport{tandemtest.WebSocket, tandemtest.Polling} {
				s := node.Dial(srv.URL(), tandemtest.Options{Cookie: secNodeHeader(given), Transport: tr})
				n := s.Incr()
				if tt.expectFresh && n != 1 {
					t.Errorf("%s socket with the bad cookie: incr acked %d, want 1 (a fresh session)", tr, n)
				}
				s.Close()
			}
			if got := secCount(t, srv.URL(), victim.Cookie()); tt.expectFresh && got != 3 {
				t.Errorf("the imitated session's count is %d, want 3", got)
			}
		})
	}
}

// secBystanders are sockets that must not notice what another client does:
// a sibling in the same session as the culprit and a socket of another
// session.
type secBystanders struct {
	base          string
	same, other   *tandemtest.Socket
	sameC, otherC *tandemtest.Client
}

func secNewBystanders(tb testing.TB, node *tandemtest.Driver, base string, same *tandemtest.Client) *secBystanders {
	tb.Helper()
	other := secSession(tb, base, 0)
	return &secBystanders{
		base:   base,
		same:   node.Dial(base, tandemtest.Options{Cookie: same.Cookie(), Transport: tandemtest.WebSocket}),
		other:  node.Dial(base, tandemtest.Options{Cookie: other.Cookie(), Transport: tandemtest.Polling}),
		sameC:  same,
		otherC: other,
	}
}

// expectUnaffected checks that both bystanders are still connected, still
// get their incr acked and hear current count, and that the server still
// serves HTTP.
func (b *secBystanders) expectUnaffected(tb testing.TB) {
	tb.Helper()
	for _, s := range []*tandemtest.Socket{b.same, b.other} {
		secExpectConnected(tb, s)
	}
	same := secIncrAndHear(tb, b.same)
	other := secIncrAndHear(tb, b.other)
	if got := secCount(tb, b.base, b.sameC.Cookie()); got != same {
		tb.Errorf("GET /session of the culprit's session: %d, want %d", got, same)
	}
	if got := secCount(tb, b.base, b.otherC.Cookie()); got != other {
		tb.Errorf("GET /session of the other session: %d, want %d", got, other)
	}
	if status, body, _ := secDo(tb, http.MethodGet, b.base+shared.RouteHealth, nil); status != http.StatusOK {
		tb.Errorf("GET /healthz: %d %q", status, body)
	}
	if got := b.otherC.Incr(); got != other+1 {
		tb.Errorf("POST /incr of the other session: %d, want %d", got, other+1)
	}
}

// secExpectDropped waits for s to lose its connection; a socket that
// reconnects on its own would hide it, so s must not.
func secExpectDropped(tb testing.TB, s *tandemtest.Socket) {
	tb.Helper()
	e := s.Wait("disconnect", secWait)
	var reason string
	e.Arg(tb, 0, &reason)
	if reason == "io client disconnect" {
		tb.Fatalf("the client disconnected itself: %v", s.Seen())
	}
}

// Point 11 and DESIGN's Limits: a message over MaxSocketPayload (1 MB by
// default) costs its sender its connection, over WebSocket and over
// polling, and nothing else: the event is not handled, the sender's
// session and every other client carry on. A message under the limit goes
// through, so the limit is what drops the big one.
func TestOversizedSocketPayload(t *testing.T) {
	t.Parallel()
	srv := secureServer(t)
	driver := tandemtest.NewDriver(t) // one Node.js for every case: starting it costs more than a case
	tests := []struct {
		name             string
		givenSize        int
		given            tandemtest.Transport
		secExpectDropped bool
	}{
		{"ok, 500 KB over websocket", 500 << 10, tandemtest.WebSocket, false},
		{"ok, 500 KB over polling", 500 << 10, tandemtest.Polling, false},
		{"nok, 5 MB over websocket", 5 << 20, tandemtest.WebSocket, true},
		{"nok, 5 MB over polling", 5 << 20, tandemtest.Polling, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			culprit := secSession(t, srv.URL(), 0)
			node := driver.For(t)
			sender := node.Dial(srv.URL(), tandemtest.Options{Cookie: culprit.Cookie(), Transport: tt.given})
			by := secNewBystanders(t, node, srv.URL(), culprit)

			big := strings.Repeat("x", tt.givenSize)
			if !tt.secExpectDropped {
				raw, err := sender.EmitAck(shared.EventIncr, big)
				if err != nil || string(raw) != "1" {
					t.Fatalf("incr with %d bytes acked %s, %v; want 1", tt.givenSize, raw, err)
				}
				if got := by.same.Count(secWait); got != 1 {
					t.Fatalf("the sibling heard %d, want 1", got)
				}
				by.expectUnaffected(t)
				return
			}
			sender.Emit(shared.EventIncr, big)
			secExpectDropped(t, sender)
			if got := secCount(t, srv.URL(), culprit.Cookie()); got != 0 {
				t.Errorf("the oversized incr counted: count %d, want 0", got)
			}
			by.expectUnaffected(t)
		})
	}
}

// Point 11: events with arguments the handler does not expect, without an
// ack, or unknown to the server are answered or ignored, never fatal.
func TestIllTypedEvents(t *testing.T) {
	t.Parallel()
	srv := secureServer(t)
	driver := tandemtest.NewDriver(t) // one Node.js for every case: starting it costs more than a case
	tests := []struct {
		name        string
		given       func(tb testing.TB, s *tandemtest.Socket)
		expectCount int // the session's count afterwards
	}{
		{"ok, incr with extra arguments acks a number", func(tb testing.TB, s *tandemtest.Socket) {
			raw, err := s.EmitAck(shared.EventIncr, "x", map[string]int{"a": 1}, 5)
			if err != nil || string(raw) != "1" {
				tb.Fatalf("incr(\"x\", {a:1}, 5) acked %s, %v; want 1", raw, err)
			}
		}, 1},
		{"ok, incr with a null argument acks a number", func(tb testing.TB, s *tandemtest.Socket) {
			raw, err := s.EmitAck(shared.EventIncr, nil)
			if err != nil || string(raw) != "1" {
				tb.Fatalf("incr(null) acked %s, %v; want 1", raw, err)
			}
		}, 1},
		{"ok, incr without an ack still increments", func(tb testing.TB, s *tandemtest.Socket) {
			s.Emit(shared.EventIncr)
			if got := s.Count(secWait); got != 1 {
				tb.Fatalf("current count %d, want 1", got)
			}
		}, 1},
		{"ok, incr without an ack, with arguments, still increments", func(tb testing.TB, s *tandemtest.Socket) {
			s.Emit(shared.EventIncr, "x", map[string]int{"a": 1}, 5)
			if got := s.Count(secWait); got != 1 {
				tb.Fatalf("current count %d, want 1", got)
			}
		}, 1},
		{"ok, an unknown event is ignored", func(tb testing.TB, s *tandemtest.Socket) {
			s.Emit("no such event", 1, "two", map[string]int{"three": 3})
		}, 0},
		{"ok, an event named like a server reply is ignored", func(tb testing.TB, s *tandemtest.Socket) {
			s.Emit(shared.EventCurrentCount, 99)
		}, 0},
		{"ok, an event named by a number is ignored", func(tb testing.TB, s *tandemtest.Socket) { s.EmitRaw(`2[1,"x"]`) }, 0},
		{"ok, an event named error is ignored", func(tb testing.TB, s *tandemtest.Socket) { s.EmitRaw(`2["error","boom"]`) }, 0},
		{"ok, an event named connection is ignored", func(tb testing.TB, s *tandemtest.Socket) { s.EmitRaw(`2["connection"]`) }, 0},
		{"ok, an ack nobody asked for is ignored", func(tb testing.TB, s *tandemtest.Socket) { s.EmitRaw(`31[5]`) }, 0},
		{"ok, a connect to an unknown namespace is refused alone", func(tb testing.TB, s *tandemtest.Socket) { s.EmitRaw(`0/admin,`) }, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := secSession(t, srv.URL(), 0)
			node := driver.For(t)
			s := node.Dial(srv.URL(), tandemtest.Options{Cookie: c.Cookie()})
			tt.given(t, s)
			if e, ok := s.Next(secQuiet); ok && e.Name != shared.EventCurrentCount {
				t.Errorf("the socket saw %v", e)
			}
			if got := secCount(t, srv.URL(), c.Cookie()); got != tt.expectCount {
				t.Errorf("count %d, want %d", got, tt.expectCount)
			}
			secExpectConnected(t, s)
			if got := secIncrAndHear(t, s); got != tt.expectCount+1 {
				t.Errorf("the next incr acked %d, want %d", got, tt.expectCount+1)
			}
		})
	}
}

// Point 11: a packet the Socket.IO parser cannot accept closes the
// connection of its sender (on either transport) and of nobody else, and
// is not handled; the server does not panic (it runs in this process).
func TestMalformedPackets(t *testing.T) {
	t.Parallel()
	srv := secureServer(t)
	driver := tandemtest.NewDriver(t) // one Node.js for every case: starting it costs more than a case
	tests := []struct {
		name  string
		given string // a Socket.IO packet, sent as one Engine.IO message
	}{
		{"nok, unterminated JSON", `2[`},
		{"nok, unterminated event", `2["incr"`},
		{"nok, object payload", `2{}`},
		{"nok, string payload", `2"incr"`},
		{"nok, empty event", `2[]`},
		{"nok, null event name", `2[null]`},
		{"nok, empty message", ``},
		{"nok, unknown packet type", `9`},
		{"nok, ack without id", `3`},
		{"nok, negative ack id", `2-1["incr"]`},
		{"nok, ack id overflow", `299999999999999999999999["incr"]`},
		{"nok, event to a namespace not joined", `2/admin,["incr"]`},
		{"nok, second connect of the main namespace", `0`},
		{"nok, reserved event disconnect", `2["disconnect"]`},
		{"nok, reserved event disconnecting", `2["disconnecting"]`},
		{"nok, reserved event connect", `2["connect"]`},
		{"nok, deeply nested arguments", `2["incr",` + strings.Repeat("[", 20000) + strings.Repeat("]", 20000) + `]`},
		{"nok, binary event whose attachment never comes", `51-["incr",{"_placeholder":true,"num":0}]`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			culprit := secSession(t, srv.URL(), 0)
			node := driver.For(t)
			senders := []*tandemtest.Socket{
				node.Dial(srv.URL(), tandemtest.Options{Cookie: culprit.Cookie(), Transport: tandemtest.WebSocket}),
				node.Dial(srv.URL(), tandemtest.Options{Cookie: culprit.Cookie(), Transport: tandemtest.Polling}),
			}
			by := secNewBystanders(t, node, srv.URL(), culprit)
			for _, s := range senders {
				s.EmitRaw(tt.given)
				if strings.HasPrefix(tt.given, "5") {
					// The parser waits for the attachment; the next text
					// packet is what it cannot accept.
					s.EmitRaw(`2["incr"]`)
				}
			}
			for _, s := range senders {
				secExpectDropped(t, s)
			}
			if got := secCount(t, srv.URL(), culprit.Cookie()); got != 0 {
				t.Errorf("a malformed packet counted: count %d, want 0", got)
			}
			by.expectUnaffected(t)
		})
	}
}

// DESIGN's Limits: one client address can make the server create only so
// many sessions (a burst, then a rate). Past the bound, every way of
// creating one (POST /incr, GET /session, a socket handshake on either
// transport, a forged cookie) gets 429 with a JSON error, while the
// sessions it already has keep working.
func TestSessionCreationIsBounded(t *testing.T) {
	t.Parallel()
	srv := tandemtest.Start(t, server.Config{SessionCreateBurst: 3, SessionCreateRate: 0.001})
	driver := tandemtest.OptionalDriver(t) // nil without Node.js: the HTTP checks still run
	var have []*tandemtest.Client
	for i := range 3 {
		c := tandemtest.NewClient(t, srv.URL())
		if status, body, _ := c.Do(http.MethodGet, shared.RouteSession); status != http.StatusOK || c.Cookie() == "" {
			t.Fatalf("cookie-less client %d within the burst: GET /session %d %q, cookie %q", i+1, status, body, c.Cookie())
		}
		have = append(have, c)
	}
	forged := "tandem.sid=" + secFlip(secCookieValue(t, have[0].Cookie()), 50)

	t.Run("nok, past the bound", func(t *testing.T) {
		tests := []struct {
			name        string
			givenMethod string
			givenPath   string
			givenCookie string
		}{
			{"nok, POST /incr without a cookie", http.MethodPost, shared.RouteIncr, ""},
			{"nok, GET /session without a cookie", http.MethodGet, shared.RouteSession, ""},
			{"nok, POST /incr with a forged cookie", http.MethodPost, shared.RouteIncr, forged},
			{"nok, polling handshake without a cookie", http.MethodGet, shared.SocketPath + secEIOQuery + "polling", ""},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				status, body, hdr := secDo(t, tt.givenMethod, srv.URL()+tt.givenPath, secHeader("Cookie", tt.givenCookie))
				secExpectJSONError(t, tt.givenMethod+" "+tt.givenPath, status, body, hdr, http.StatusTooManyRequests)
				// One token comes back in 1/0.001 s: every refusal,
				// HTTP or Engine.IO, says the same.
				if got := hdr.Get("Retry-After"); got != "1000" {
					t.Errorf("Retry-After %q, want 1000 (the seconds one creation token takes to come back)", got)
				}
				if sc := hdr.Get("Set-Cookie"); sc != "" {
					t.Errorf("a refused request set a cookie: %q", sc)
				}
			})
		}
		for _, tr := range []tandemtest.Transport{tandemtest.WebSocket, tandemtest.Polling} {
			t.Run("nok, official client without a cookie over "+string(tr), func(t *testing.T) {
				secExpectRefused(t, tandemtest.Need(t, driver).Open(srv.URL(), tandemtest.Options{Transport: tr}))
			})
		}
	})

	t.Run("ok, the sessions made within the bound keep working", func(t *testing.T) {
		if got := have[0].Incr(); got != 1 {
			t.Errorf("POST /incr of session 1: %d, want 1", got)
		}
		if driver != nil {
			node := driver.For(t)
			for i, tr := range []tandemtest.Transport{tandemtest.WebSocket, tandemtest.Polling} {
				s := node.Dial(srv.URL(), tandemtest.Options{Cookie: have[0].Cookie(), Transport: tr})
				if got := secIncrAndHear(t, s); got != 2+i {
					t.Errorf("%s socket of session 1: incr %d, want %d", tr, got, 2+i)
				}
			}
		}
		if got := secCount(t, srv.URL(), have[1].Cookie()); got != 0 {
			t.Errorf("GET /session of session 2: %d, want 0", got)
		}
		if status, body, _ := have[2].Do(http.MethodPost, shared.RouteLogout); status != http.StatusNoContent {
			t.Errorf("POST /logout of session 3: %d %q, want 204", status, body)
		}
		// Logging out gave nothing back: the bound is on creations.
		if status, body, _ := have[2].Do(http.MethodPost, shared.RouteIncr); status != http.StatusTooManyRequests {
			t.Errorf("POST /incr after logout: %d %q, want 429", status, body)
		}
		if status, body, _ := secDo(t, http.MethodGet, srv.URL()+shared.RouteHealth, nil); status != http.StatusOK {
			t.Errorf("GET /healthz: %d %q", status, body)
		}
	})
}

// Issue 6, item 4: GET /session creates a session when there is none, so a
// cross-site GET (an <img> on any page) must not reach it: it is refused
// with 403 like a cross-site POST, sets no cookie, and the store holds no
// more sessions than before. Same-origin, allowlisted and non-browser GETs
// still create one.
func TestCrossSiteGETCreatesNothing(t *testing.T) {
	t.Parallel()
	st := memory.New()
	srv := tandemtest.Start(t, server.Config{Backend: st, CORSOrigins: []string{secSPAOrigin}})
	victim := secSession(t, srv.URL(), 2)
	tests := []struct {
		name        string
		givenHeader []string
		givenCookie bool // send the victim's cookie
		expect      int
		expectCORS  string
	}{
		{name: "nok, <img> from another site (Sec-Fetch-Site cross-site, no Origin)", givenHeader: []string{"Sec-Fetch-Site", "cross-site"}, expect: http.StatusForbidden},
		{name: "nok, fetch from another site", givenHeader: []string{"Origin", secEvilOrigin, "Sec-Fetch-Site", "cross-site"}, expect: http.StatusForbidden},
		{name: "nok, foreign Origin without Sec-Fetch-Site", givenHeader: []string{"Origin", secEvilOrigin}, expect: http.StatusForbidden},
		{name: "nok, look-alike of the allowlisted origin", givenHeader: []string{"Origin", secSPAOrigin + ".evil.example"}, expect: http.StatusForbidden},
		{name: "nok, allowlisted host on another port", givenHeader: []string{"Origin", "http://localhost:4201"}, expect: http.StatusForbidden},
		{name: "nok, allowlisted host over another scheme", givenHeader: []string{"Origin", "https://localhost:4200"}, expect: http.StatusForbidden},
		{name: "nok, opaque origin null", givenHeader: []string{"Origin", "null"}, expect: http.StatusForbidden},
		{name: "nok, same-site but not allowlisted", givenHeader: []string{"Origin", "http://other.localhost:4200", "Sec-Fetch-Site", "same-site"}, expect: http.StatusForbidden},
		{name: "nok, cross-site with the victim's cookie", givenHeader: []string{"Sec-Fetch-Site", "cross-site"}, givenCookie: true, expect: http.StatusForbidden},
		{name: "ok, not a browser (no Origin, no Sec-Fetch-Site)", expect: http.StatusOK},
		{name: "ok, typed in the address bar (Sec-Fetch-Site none)", givenHeader: []string{"Sec-Fetch-Site", "none"}, expect: http.StatusOK},
		{name: "ok, same origin", givenHeader: []string{"Origin", srv.URL(), "Sec-Fetch-Site", "same-origin"}, expect: http.StatusOK},
		{name: "ok, the allowlisted origin", givenHeader: []string{"Origin", secSPAOrigin, "Sec-Fetch-Site", "same-site"}, expect: http.StatusOK, expectCORS: secSPAOrigin},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// Not parallel: each case counts the store's sessions.
			before := st.Len()
			hdr := secHeader(tt.givenHeader...)
			if tt.givenCookie {
				hdr.Set("Cookie", victim.Cookie())
			}
			status, body, rh := secDo(t, http.MethodGet, srv.URL()+shared.RouteSession, hdr)
			if got := rh.Get("Access-Control-Allow-Origin"); got != tt.expectCORS {
				t.Errorf("Access-Control-Allow-Origin %q, want %q", got, tt.expectCORS)
			}
			if tt.expect == http.StatusForbidden {
				secExpectJSONError(t, "GET /session", status, body, rh, http.StatusForbidden)
				if sc := rh.Get("Set-Cookie"); sc != "" {
					t.Errorf("a refused GET set a cookie: %q", sc)
				}
				if got := st.Len(); got != before {
					t.Errorf("the store holds %d sessions after a refused GET, want %d", got, before)
				}
				return
			}
			if status != http.StatusOK || body != `{"count":0}`+"\n" || !strings.Contains(rh.Get("Set-Cookie"), "tandem.sid=") {
				t.Fatalf("GET /session: %d %q, Set-Cookie %q; want 200, count 0 and a new cookie", status, body, rh.Get("Set-Cookie"))
			}
			if got := st.Len(); got != before+1 {
				t.Errorf("the store holds %d sessions, want %d", got, before+1)
			}
		})
	}
	if got := secCount(t, srv.URL(), victim.Cookie()); got != 2 {
		t.Errorf("the victim's count is %d, want 2", got)
	}
}
