package server_test

// Issue 6, item 13: a bad-input matrix against one real server. Each row
// sends one hostile or broken input and asserts its exact outcome; after
// every row a bystander (a session of its own, with a WebSocket open) still
// increments and hears its count, and the server still answers /healthz.
// Raw HTTP and raw WebSockets, so it runs without Node.js. The rows on
// packets, payload types, unknown events, acks and the 5 MB payload, with
// the official client over both transports, are TestMalformedPackets,
// TestIllTypedEvents and TestOversizedSocketPayload; the rows on event
// floods wait for the per-socket event limit (not on main yet).

import (
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/gorilla/websocket"

	"github.com/tandem-go/tandem/internal/tandemtest"
	"github.com/tandem-go/tandem/server"
	"github.com/tandem-go/tandem/server/store/memory"
	"github.com/tandem-go/tandem/shared"
)

// matrixBystander is a client that must not notice the matrix.
type matrixBystander struct {
	base   string
	client *tandemtest.Client
	ws     *websocket.Conn
	n      int
}

func newMatrixBystander(tb testing.TB, base string) *matrixBystander {
	tb.Helper()
	c := secSession(tb, base, 0)
	ws, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(base, "http")+shared.SocketPath+secEIOQuery+"websocket", secHeader("Cookie", c.Cookie()))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { ws.Close() })
	secEngineSID(tb, secWSRead(tb, ws, "0"))
	secWSSend(tb, ws, "40")
	secWSRead(tb, ws, "40")
	return &matrixBystander{base: base, client: c, ws: ws}
}

// check increments over HTTP and over the socket and expects the socket to
// hear both, in order.
func (b *matrixBystander) check(tb testing.TB) {
	tb.Helper()
	b.n++
	if got := b.client.Incr(); got != b.n {
		tb.Fatalf("bystander: POST /incr %d, want %d", got, b.n)
	}
	if got := secWSRead(tb, b.ws, `42["current count"`); got != `42["current count",`+strconv.Itoa(b.n)+`]` {
		tb.Fatalf("bystander heard %q, want current count %d", got, b.n)
	}
	b.n++
	secWSSend(tb, b.ws, `421["incr"]`)
	if got := secWSRead(tb, b.ws, "431"); got != "431["+strconv.Itoa(b.n)+"]" {
		tb.Fatalf("bystander's socket incr acked %q, want %d", got, b.n)
	}
	if status, body, _ := secDo(tb, http.MethodGet, b.base+shared.RouteHealth, nil); status != http.StatusOK {
		tb.Fatalf("GET /healthz: %d %q", status, body)
	}
}

func TestBadInputMatrix(t *testing.T) {
	t.Parallel()
	srv := secureServer(t)
	base := srv.URL()
	wsBase := "ws" + strings.TrimPrefix(base, "http") + shared.SocketPath + secEIOQuery + "websocket"
	other := tandemtest.Start(t, server.Config{SessionSecrets: []string{strings.Repeat("f", 32)}})
	foreign := secCookieValue(t, secSession(t, other.URL(), 1).Cookie())
	by := newMatrixBystander(t, base)

	origins := []struct {
		name   string
		origin string
		ok     bool
	}{
		{"missing", "", true},
		{"allowlisted", secSPAOrigin, true},
		{"null", "null", false},
		{"foreign", secEvilOrigin, false},
		{"look-alike", secSPAOrigin + ".evil.example", false},
		{"other port", "http://localhost:4201", false},
		{"other scheme", "https://localhost:4200", false},
	}
	for _, o := range origins {
		prefix := "nok, "
		if o.ok {
			prefix = "ok, "
		}
		t.Run(prefix+"Origin "+o.name+", POST /incr", func(t *testing.T) {
			victim := secSession(t, base, 1)
			status, body, _ := secDo(t, http.MethodPost, base+shared.RouteIncr, secHeader("Cookie", victim.Cookie(), "Origin", o.origin))
			want, count := http.StatusForbidden, 1
			if o.ok {
				want, count = http.StatusOK, 2
			}
			if status != want {
				t.Fatalf("%d %q, want %d", status, body, want)
			}
			if got := secCount(t, base, victim.Cookie()); got != count {
				t.Errorf("count %d, want %d", got, count)
			}
			by.check(t)
		})
		t.Run(prefix+"Origin "+o.name+", GET /session without a cookie", func(t *testing.T) {
			status, body, hdr := secDo(t, http.MethodGet, base+shared.RouteSession, secHeader("Origin", o.origin))
			if o.ok != (status == http.StatusOK) || (!o.ok && status != http.StatusForbidden) {
				t.Fatalf("%d %q", status, body)
			}
			if !o.ok && hdr.Get("Set-Cookie") != "" {
				t.Errorf("a refused GET set a cookie")
			}
			by.check(t)
		})
		t.Run(prefix+"Origin "+o.name+", polling handshake", func(t *testing.T) {
			status, body, hdr := secPollingHandshake(t, base, secHeader("Origin", o.origin))
			if o.ok {
				if status != http.StatusOK {
					t.Fatalf("%d %q, want 200", status, body)
				}
				secEngineSID(t, body)
			} else {
				secExpectJSONError(t, "polling handshake", status, body, hdr, http.StatusForbidden)
			}
			by.check(t)
		})
		t.Run(prefix+"Origin "+o.name+", WebSocket handshake", func(t *testing.T) {
			conn, resp, err := websocket.DefaultDialer.Dial(wsBase, secHeader("Origin", o.origin))
			if o.ok {
				if err != nil {
					t.Fatalf("%v (%v)", err, secRespStatus(resp))
				}
				secEngineSID(t, secWSRead(t, conn, "0"))
				conn.Close()
			} else {
				if err == nil {
					conn.Close()
					t.Fatal("a WebSocket from a refused origin opened")
				}
				if resp == nil || resp.StatusCode != http.StatusForbidden {
					t.Fatalf("%v (%v), want 403", err, secRespStatus(resp))
				}
			}
			by.check(t)
		})
	}

	// Issue 13, items 3 and 6: repeated Engine.IO parameters (read first by
	// Go, last by the engine) and the handshakes the engine refuses late
	// are refused at once, with no cookie, whatever connection they name.
	live := secSession(t, base, 0)
	status, body, _ := secPollingHandshake(t, base, secHeader("Cookie", live.Cookie()))
	if status != http.StatusOK {
		t.Fatalf("polling handshake: %d %q", status, body)
	}
	sid := secEngineSID(t, body)
	upgrade := []string{"Connection", "Upgrade", "Upgrade", "websocket", "Sec-WebSocket-Version", "13"}
	engineRows := []struct {
		name   string
		method string
		query  string
		header []string
	}{
		{"POST with sid twice, the empty one first", http.MethodPost, "transport=polling&sid=&sid=" + sid, []string{"Cookie", live.Cookie()}},
		{"GET without a cookie with sid twice, the empty one first", http.MethodGet, "transport=polling&sid=&sid=" + sid, nil},
		{"transport polling then webtransport", http.MethodGet, "transport=polling&transport=webtransport", nil},
		{"EIO 4 then 5", http.MethodGet, "transport=polling&EIO=5", nil},
		{"a Sec-WebSocket-Key that is not base64 of 16 bytes", http.MethodGet, "transport=websocket", append(upgrade, "Sec-WebSocket-Key", "x")},
	}
	for _, row := range engineRows {
		t.Run("nok, Engine.IO "+row.name, func(t *testing.T) {
			status, body, hdr := secDo(t, row.method, base+shared.SocketPath+"?EIO=4&"+row.query, secHeader(row.header...))
			secExpectJSONError(t, row.name, status, body, hdr, http.StatusBadRequest)
			if sc := hdr.Values("Set-Cookie"); len(sc) != 0 {
				t.Errorf("a refused request set a cookie: %q", sc)
			}
			by.check(t)
		})
	}
	secConnectNamespace(t, base, sid, live.Cookie(), "")

	cookies := []struct {
		name  string
		given func(valid string) string
		fresh bool // no session: a fresh one
	}{
		{"tampered", func(v string) string { return "tandem.sid=" + secFlip(v, len(v)-3) }, true},
		{"truncated", func(v string) string { return "tandem.sid=" + v[:len(v)-1] }, true},
		{"oversized", func(v string) string { return "tandem.sid=" + v + strings.Repeat("A", 8000) }, true},
		{"signed with a foreign key", func(string) string { return "tandem.sid=" + foreign }, true},
		{"duplicated, both bad", func(v string) string { return "tandem.sid=" + secFlip(v, 5) + "; tandem.sid=" + foreign }, true},
		{"duplicated, bad then good", func(v string) string { return "tandem.sid=" + secFlip(v, 5) + "; tandem.sid=" + v }, false},
	}
	for _, c := range cookies {
		t.Run("nok, cookie "+c.name+", POST /incr and a WebSocket", func(t *testing.T) {
			victim := secSession(t, base, 3)
			given := c.given(secCookieValue(t, victim.Cookie()))
			status, body, hdr := secDo(t, http.MethodPost, base+shared.RouteIncr, secHeader("Cookie", given))
			want := "1"
			if !c.fresh {
				want = "4"
			}
			if status != http.StatusOK || body != want {
				t.Fatalf("POST /incr: %d %q, want 200 %q", status, body, want)
			}
			if c.fresh != (hdr.Get("Set-Cookie") != "") {
				t.Errorf("Set-Cookie %q", hdr.Get("Set-Cookie"))
			}
			conn, resp, err := websocket.DefaultDialer.Dial(wsBase, secHeader("Cookie", given))
			if err != nil {
				t.Fatalf("WebSocket: %v (%v)", err, secRespStatus(resp))
			}
			defer conn.Close()
			secEngineSID(t, secWSRead(t, conn, "0"))
			secWSSend(t, conn, "40")
			secWSRead(t, conn, "40")
			secWSSend(t, conn, `420["incr"]`)
			wantAck := "430[1]"
			if !c.fresh {
				wantAck = "430[5]"
			}
			if got := secWSRead(t, conn, "430"); got != wantAck {
				t.Errorf("socket incr acked %q, want %q", got, wantAck)
			}
			wantVictim := 3
			if !c.fresh {
				wantVictim = 5
			}
			if got := secCount(t, base, victim.Cookie()); got != wantVictim {
				t.Errorf("the imitated session's count is %d, want %d", got, wantVictim)
			}
			by.check(t)
		})
	}
}

// Item 13, the last row: a flood of anonymous handshakes. Every one that
// the bound lets through makes a session; the rest get 429 and make
// nothing; the store holds no more than the bound, and a client with a
// session is not affected.
func TestAnonymousHandshakeFlood(t *testing.T) {
	t.Parallel()
	st := memory.New()
	const burst = 40
	srv := tandemtest.Start(t, server.Config{Backend: st, SessionCreateBurst: burst, SessionCreateRate: 0.001})
	by := newMatrixBystander(t, srv.URL()) // one session of the burst
	before := st.Len()
	var (
		wg         sync.WaitGroup
		mu         sync.Mutex
		byStatus   = map[int]int{}
		unexpected []string
	)
	for range 10 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 40 {
				req, _ := http.NewRequest(http.MethodGet, srv.URL()+shared.SocketPath+secEIOQuery+"polling", nil)
				resp, err := http.DefaultClient.Do(req)
				mu.Lock()
				if err != nil {
					unexpected = append(unexpected, err.Error())
				} else {
					byStatus[resp.StatusCode]++
					resp.Body.Close()
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	for _, u := range unexpected {
		t.Error(u)
	}
	ok, refused := byStatus[http.StatusOK], byStatus[http.StatusTooManyRequests]
	t.Logf("400 anonymous handshakes: %d made a session, %d refused with 429 (%v); the store holds %d sessions", ok, refused, byStatus, st.Len())
	if ok+refused != 400 || ok > burst-before || refused == 0 {
		t.Errorf("answers %v: want at most %d sessions made and the rest 429", byStatus, burst-before)
	}
	if st.Len() > burst {
		t.Errorf("the store holds %d sessions, above the bound %d", st.Len(), burst)
	}
	by.check(t)
}
