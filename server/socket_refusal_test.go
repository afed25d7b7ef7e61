package server_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/gorilla/websocket"

	"github.com/tandem-go/tandem/internal/tandemtest"
	"github.com/tandem-go/tandem/server"
	"github.com/tandem-go/tandem/server/store/memory"
	"github.com/tandem-go/tandem/shared"
)

// Issue 6, items 3 and 4 (Engine.IO part): JSONP polling is refused, and
// only a handshake that passed every check creates a session. Each refused
// request gets a 400, no cookie, and leaves the store as it was; the two
// valid handshakes, the positive controls, create one session each.
func TestEngineIORefusalsCreateNothing(t *testing.T) {
	t.Parallel()
	st := memory.New()
	srv := tandemtest.Start(t, server.Config{Backend: st})
	base := srv.URL() + shared.SocketPath
	victim := secSession(t, srv.URL(), 1)
	// A live polling connection of the victim's session, for the requests
	// that name a sid.
	status, body, _ := secPollingHandshake(t, srv.URL(), secHeader("Cookie", victim.Cookie()))
	if status != http.StatusOK {
		t.Fatalf("polling handshake: %d %q", status, body)
	}
	sid := secEngineSID(t, body)
	upgrade := []string{"Connection", "Upgrade", "Upgrade", "websocket", "Sec-WebSocket-Version", "13", "Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="}
	tests := []struct {
		name         string
		givenMethod  string
		givenQuery   string
		givenHeader  []string
		expect       int
		expectOurs   bool   // our JSON error body, not the engine's
		expectInBody string // in the error message
	}{
		{name: "nok, JSONP handshake", givenQuery: "?EIO=4&transport=polling&j=0", expect: 400, expectOurs: true, expectInBody: "JSONP"},
		{name: "nok, JSONP handshake without a callback number", givenQuery: "?EIO=4&transport=polling&j=", expect: 400, expectOurs: true, expectInBody: "JSONP"},
		{name: "nok, JSONP poll of a live connection", givenQuery: "?EIO=4&transport=polling&j=0&sid=" + sid, expect: 400, expectOurs: true, expectInBody: "JSONP"},
		{name: "nok, JSONP POST to a live connection", givenMethod: http.MethodPost, givenQuery: "?EIO=4&transport=polling&j=0&sid=" + sid, expect: 400, expectOurs: true, expectInBody: "JSONP"},
		{name: "nok, unknown transport", givenQuery: "?EIO=4&transport=flashsocket", expect: 400, expectOurs: true, expectInBody: "transport"},
		{name: "nok, WebTransport over HTTP/1", givenQuery: "?EIO=4&transport=webtransport", expect: 400, expectOurs: true, expectInBody: "transport"},
		{name: "nok, no transport", givenQuery: "?EIO=4", expect: 400, expectOurs: true, expectInBody: "transport"},
		{name: "nok, protocol 3", givenQuery: "?EIO=3&transport=polling", expect: 400, expectOurs: true, expectInBody: "protocol"},
		{name: "nok, protocol 5", givenQuery: "?EIO=5&transport=polling", expect: 400, expectOurs: true, expectInBody: "protocol"},
		{name: "nok, no protocol", givenQuery: "?transport=polling", expect: 400, expectOurs: true, expectInBody: "protocol"},
		{name: "nok, WebSocket transport without an upgrade", givenQuery: "?EIO=4&transport=websocket", expect: 400, expectOurs: true, expectInBody: "upgrade"},
		{name: "nok, WebSocket upgrade without a key", givenQuery: "?EIO=4&transport=websocket", givenHeader: upgrade[:6], expect: 400, expectOurs: true, expectInBody: "Sec-WebSocket-Key"},
		{name: "nok, polling handshake that asks for an upgrade", givenQuery: "?EIO=4&transport=polling", givenHeader: upgrade, expect: 400, expectOurs: true, expectInBody: "polling"},
		{name: "nok, unknown sid", givenQuery: "?EIO=4&transport=polling&sid=AAAAAAAAAAAAAAAAAAAA", expect: 400},
		{name: "nok, malformed sid", givenQuery: "?EIO=4&transport=polling&sid=%3Cscript%3E", expect: 400},
		{name: "nok, sid of another transport", givenQuery: "?EIO=4&transport=websocket&sid=" + sid, expect: 400},
		{name: "nok, POST handshake", givenMethod: http.MethodPost, givenQuery: "?EIO=4&transport=polling", expect: 400},
		// Issue 13, item 3: the engine reads the last of a repeated
		// parameter, url.Values the first; either way round is refused
		// before anything reads it.
		{name: "nok, POST with sid twice, the empty one first", givenMethod: http.MethodPost, givenQuery: "?EIO=4&transport=polling&sid=&sid=" + sid, expect: 400, expectOurs: true, expectInBody: "sid given 2 times"},
		{name: "nok, GET without a cookie with sid twice, the empty one first", givenQuery: "?EIO=4&transport=polling&sid=&sid=" + sid, expect: 400, expectOurs: true, expectInBody: "sid given 2 times"},
		{name: "nok, GET with sid twice, the live one first", givenQuery: "?EIO=4&transport=polling&sid=" + sid + "&sid=", expect: 400, expectOurs: true, expectInBody: "sid given 2 times"},
		{name: "nok, EIO twice", givenQuery: "?EIO=5&EIO=4&transport=polling", expect: 400, expectOurs: true, expectInBody: "EIO given 2 times"},
		{name: "nok, j twice", givenQuery: "?EIO=4&transport=polling&j=&j=", expect: 400, expectOurs: true, expectInBody: "given 2 times"},
		// Item 6: the handshakes the engine refuses after the session
		// would have been made.
		{name: "nok, transport polling then webtransport", givenQuery: "?EIO=4&transport=polling&transport=webtransport", expect: 400, expectOurs: true, expectInBody: "transport given 2 times"},
		{name: "nok, EIO 4 then 5", givenQuery: "?EIO=4&EIO=5&transport=polling", expect: 400, expectOurs: true, expectInBody: "EIO given 2 times"},
		{name: "nok, WebSocket upgrade with a key that is not base64", givenQuery: "?EIO=4&transport=websocket", givenHeader: append(upgrade[:6:6], "Sec-WebSocket-Key", "not base64!"), expect: 400, expectOurs: true, expectInBody: "Sec-WebSocket-Key"},
		{name: "nok, WebSocket upgrade with a key of 15 bytes", givenQuery: "?EIO=4&transport=websocket", givenHeader: append(upgrade[:6:6], "Sec-WebSocket-Key", "AAAAAAAAAAAAAAAAAAAA"), expect: 400, expectOurs: true, expectInBody: "Sec-WebSocket-Key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := st.Len()
			method := tt.givenMethod
			if method == "" {
				method = http.MethodGet
			}
			status, body, hdr := secDo(t, method, base+tt.givenQuery, secHeader(tt.givenHeader...))
			if status != tt.expect {
				t.Fatalf("%s %s: %d %q, want %d", method, tt.givenQuery, status, body, tt.expect)
			}
			if tt.expectOurs {
				secExpectJSONError(t, method+" "+tt.givenQuery, status, body, hdr, tt.expect)
				if !strings.Contains(body, tt.expectInBody) {
					t.Errorf("error %q does not say %q", body, tt.expectInBody)
				}
			}
			if strings.Contains(body, "___eio") {
				t.Errorf("answered JSONP: %q", body)
			}
			if sc := hdr.Values("Set-Cookie"); len(sc) != 0 {
				t.Errorf("a refused request set a cookie: %q", sc)
			}
			if got := st.Len(); got != before {
				t.Errorf("the store holds %d sessions after a refused request, want %d", got, before)
			}
		})
	}
	t.Run("ok, polling handshake", func(t *testing.T) {
		before := st.Len()
		status, body, hdr := secPollingHandshake(t, srv.URL(), nil)
		if status != http.StatusOK || !strings.Contains(hdr.Get("Set-Cookie"), "tandem.sid=") {
			t.Fatalf("polling handshake: %d %q, Set-Cookie %q", status, body, hdr.Get("Set-Cookie"))
		}
		secEngineSID(t, body)
		if got := st.Len(); got != before+1 {
			t.Errorf("the store holds %d sessions, want %d", got, before+1)
		}
	})
	t.Run("ok, WebSocket handshake", func(t *testing.T) {
		before := st.Len()
		conn, resp, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(base, "http")+secEIOQuery+"websocket", nil)
		if err != nil {
			t.Fatalf("dial: %v (%v)", err, secRespStatus(resp))
		}
		defer conn.Close()
		if !strings.Contains(resp.Header.Get("Set-Cookie"), "tandem.sid=") {
			t.Errorf("101 without a session cookie: %q", resp.Header.Get("Set-Cookie"))
		}
		secEngineSID(t, secWSRead(t, conn, "0"))
		if got := st.Len(); got != before+1 {
			t.Errorf("the store holds %d sessions, want %d", got, before+1)
		}
	})
	// The live connection that the rows named is still served.
	secConnectNamespace(t, srv.URL(), sid, victim.Cookie(), "")
	if got := secCount(t, srv.URL(), victim.Cookie()); got != 1 {
		t.Errorf("the victim's count is %d, want 1", got)
	}
}

// Issue 6, item 9: sockets are checked like Go's CrossOriginProtection
// checks POSTs, Sec-Fetch-Site first: a handshake whose Origin names the
// server's own host (over https, or even over http) but that the browser
// marks cross-site is refused on both transports, with no cookie.
func TestSocketOriginCheckReadsSecFetchSiteFirst(t *testing.T) {
	t.Parallel()
	srv := secureServer(t)
	host := strings.TrimPrefix(srv.URL(), "http://")
	tests := []struct {
		name        string
		givenHeader []string
		expect      int
	}{
		{name: "nok, https://<host>, cross-site", givenHeader: []string{"Origin", "https://" + host, "Sec-Fetch-Site", "cross-site"}, expect: http.StatusForbidden},
		{name: "nok, http://<host>, cross-site", givenHeader: []string{"Origin", "http://" + host, "Sec-Fetch-Site", "cross-site"}, expect: http.StatusForbidden},
		{name: "nok, https://<host>, no Sec-Fetch-Site (another scheme)", givenHeader: []string{"Origin", "https://" + host}, expect: http.StatusForbidden},
		{name: "nok, allowlisted host over https, cross-site", givenHeader: []string{"Origin", "https://localhost:4200", "Sec-Fetch-Site", "cross-site"}, expect: http.StatusForbidden},
		{name: "ok, http://<host>, same-origin", givenHeader: []string{"Origin", "http://" + host, "Sec-Fetch-Site", "same-origin"}, expect: http.StatusOK},
		{name: "ok, the allowlisted origin, cross-site", givenHeader: []string{"Origin", secSPAOrigin, "Sec-Fetch-Site", "cross-site"}, expect: http.StatusOK},
	}
	for _, tt := range tests {
		t.Run(tt.name+", polling", func(t *testing.T) {
			status, body, hdr := secPollingHandshake(t, srv.URL(), secHeader(tt.givenHeader...))
			if tt.expect == http.StatusOK {
				if status != http.StatusOK {
					t.Fatalf("polling handshake: %d %q", status, body)
				}
				secEngineSID(t, body)
				return
			}
			secExpectJSONError(t, "polling handshake", status, body, hdr, tt.expect)
			if sc := hdr.Values("Set-Cookie"); len(sc) != 0 {
				t.Errorf("a refused handshake set a cookie: %q", sc)
			}
		})
		t.Run(tt.name+", websocket", func(t *testing.T) {
			conn, resp, err := websocket.DefaultDialer.Dial("ws://"+host+shared.SocketPath+secEIOQuery+"websocket", secHeader(tt.givenHeader...))
			if tt.expect == http.StatusOK {
				if err != nil {
					t.Fatalf("dial: %v (%v)", err, secRespStatus(resp))
				}
				defer conn.Close()
				secEngineSID(t, secWSRead(t, conn, "0"))
				return
			}
			if err == nil {
				conn.Close()
				t.Fatal("a cross-site WebSocket handshake was upgraded")
			}
			if resp == nil || resp.StatusCode != tt.expect {
				t.Fatalf("dial: %v (%v), want %d", err, secRespStatus(resp), tt.expect)
			}
			if sc := resp.Header.Values("Set-Cookie"); len(sc) != 0 {
				t.Errorf("a refused handshake set a cookie: %q", sc)
			}
		})
	}
}
