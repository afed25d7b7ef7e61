package server_test

import (
	"bufio"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/sessions"
	"github.com/gorilla/websocket"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/tandem-go/tandem/internal/tandemtest"
	"github.com/tandem-go/tandem/server"
	"github.com/tandem-go/tandem/server/sessionio"
	"github.com/tandem-go/tandem/shared"
)

// scrape reads the admin listener's /metrics with the Prometheus text
// parser, and returns the families and the raw text.
func scrape(tb testing.TB, adminURL string, hdr ...string) (map[string]*dto.MetricFamily, string) {
	tb.Helper()
	req, _ := http.NewRequest(http.MethodGet, adminURL+"/metrics", nil)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		tb.Fatalf("scrape: %v", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		tb.Fatalf("scrape: %d %s", resp.StatusCode, body)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(string(body)))
	if err != nil {
		tb.Fatalf("scrape: parse: %v\n%s", err, body)
	}
	return fams, string(body)
}

// sample is the value of the series of family name with exactly the
// given labels (name=value pairs; a histogram gives its count), and
// whether it exists.
func sample(fams map[string]*dto.MetricFamily, name string, labels ...string) (float64, bool) {
	f := fams[name]
	if f == nil {
		return 0, false
	}
	want := map[string]string{}
	for i := 0; i+1 < len(labels); i += 2 {
		want[labels[i]] = labels[i+1]
	}
next:
	for _, m := range f.GetMetric() {
		if len(m.GetLabel()) != len(want) {
			continue
		}
		for _, l := range m.GetLabel() {
			if want[l.GetName()] != l.GetValue() {
				continue next
			}
		}
		switch {
		case m.Counter != nil:
			return m.Counter.GetValue(), true
		case m.Gauge != nil:
			return m.Gauge.GetValue(), true
		case m.Histogram != nil:
			return float64(m.Histogram.GetSampleCount()), true
		case m.Untyped != nil:
			return m.Untyped.GetValue(), true
		}
	}
	return 0, false
}

// Issue 18: after a known sequence of what users do, every counter moved
// by exactly that, read through /metrics of a real server with the
// Prometheus text parser; tandem_sockets returns to 0 when the sockets
// close; and no series holds a session ID, key or cookie.
func TestMetricsCountWhatHappened(t *testing.T) {
	t.Parallel()
	const burst = 5
	drv := tandemtest.NewDriver(t)
	srv := tandemtest.Start(t, server.Config{
		AdminAddr:        "127.0.0.1:0",
		SocketEventBurst: burst,
		SocketEventRate:  0.001, // no refill during the test
	})
	if srv.AdminURL() == "" {
		t.Fatal("no admin listener")
	}
	fams, _ := scrape(t, srv.AdminURL())
	for _, name := range []string{"go_goroutines", "process_cpu_seconds_total", "tandem_sockets",
		"tandem_sessions_created_total", "tandem_sessions_ended_total", "tandem_refusals_total",
		"tandem_socket_events_total", "tandem_deliveries_total", "tandem_store_duration_seconds",
		"tandem_store_errors_total", "tandem_relay_errors_total", "tandem_broadcast_deliveries_total"} {
		if fams[name] == nil {
			t.Errorf("%s is not served before anything happened", name)
		}
	}

	// Two sessions: a by its first POST /incr, b by GET /session.
	a := tandemtest.NewClient(t, srv.URL())
	a.Incr()
	b := tandemtest.NewClient(t, srv.URL())
	if status, body, _ := b.Do(http.MethodGet, shared.RouteSession); status != http.StatusOK {
		t.Fatalf("GET /session: %d %s", status, body)
	}
	wsA := drv.Dial(srv.URL(), tandemtest.Options{Cookie: a.Cookie()})
	pollB := drv.Dial(srv.URL(), tandemtest.Options{Cookie: b.Cookie(), Transport: tandemtest.Polling})
	// Four more HTTP increments of a: each reaches a's one socket.
	for range 4 {
		a.Incr()
	}
	for wsA.Count(10*time.Second) != 5 { // the last of them arrived
	}
	// Three socket increments over each transport.
	for range 3 {
		wsA.Incr()
		pollB.Incr()
	}
	fams, _ = scrape(t, srv.AdminURL())
	if got, _ := sample(fams, "tandem_sockets", "transport", "websocket"); got != 1 {
		t.Errorf("tandem_sockets{websocket} = %v, want 1", got)
	}
	if got, _ := sample(fams, "tandem_sockets", "transport", "polling"); got != 1 {
		t.Errorf("tandem_sockets{polling} = %v, want 1", got)
	}

	// One event flood on a new socket of b: burst increments applied (each
	// delivered to b's two sockets), burst refused.
	flood := drv.Dial(srv.URL(), tandemtest.Options{Cookie: b.Cookie()})
	refused := 0
	for range 2 * burst {
		raw, err := flood.EmitAck(shared.EventIncr)
		if err != nil {
			t.Fatalf("flood: %v", err)
		}
		if strings.Contains(string(raw), "too many events") {
			refused++
		}
	}
	if refused != burst {
		t.Fatalf("%d of %d flood events refused, want %d", refused, 2*burst, burst)
	}

	// One foreign-origin handshake.
	evil := tandemtest.NewClient(t, srv.URL())
	if status, _, _ := evil.Do(http.MethodGet, shared.SocketPath+"?EIO=4&transport=polling", "Origin", "http://evil.example"); status != http.StatusForbidden {
		t.Fatalf("foreign-origin handshake: %d, want 403", status)
	}

	// A logout of a: "session ended" to its socket, which is disconnected.
	cookieA := a.Cookie()
	if status, body, _ := a.Do(http.MethodPost, shared.RouteLogout); status != http.StatusNoContent {
		t.Fatalf("POST /logout: %d %s", status, body)
	}
	wsA.Wait(shared.EventSessionEnded, 10*time.Second)
	wsA.Wait("disconnect", 10*time.Second)

	fams, text := scrape(t, srv.AdminURL())
	expect := []struct {
		name   string
		labels []string
		want   float64
	}{
		{"tandem_sessions_created_total", nil, 2},
		{"tandem_sessions_ended_total", []string{"reason", "logout"}, 1},
		{"tandem_sessions_ended_total", []string{"reason", "revoked"}, 0},
		{"tandem_sessions_ended_total", []string{"reason", "expired"}, 0},
		{"tandem_sessions_ended_total", []string{"reason", "gone"}, 0},
		{"tandem_refusals_total", []string{"cause", "origin"}, 1},
		{"tandem_refusals_total", []string{"cause", "event_rate"}, burst},
		{"tandem_refusals_total", []string{"cause", "csrf"}, 0},
		{"tandem_refusals_total", []string{"cause", "session_rate"}, 0},
		{"tandem_refusals_total", []string{"cause", "sockets_per_session"}, 0},
		{"tandem_refusals_total", []string{"cause", "sockets_per_client"}, 0},
		{"tandem_socket_events_total", []string{"event", shared.EventIncr}, 3 + 3 + 2*burst},
		{"tandem_socket_events_total", []string{"event", "other"}, 0},
		// a: 4 HTTP + 3 socket increments to 1 socket; b: 3 to 1 socket,
		// then burst to 2.
		{"tandem_deliveries_total", []string{"event", shared.EventCurrentCount}, 4 + 3 + 3 + 2*burst},
		{"tandem_deliveries_total", []string{"event", shared.EventSessionEnded}, 1},
		{"tandem_http_requests_total", []string{"route", shared.RouteIncr, "code", "200"}, 5},
		{"tandem_http_requests_total", []string{"route", shared.RouteSession, "code", "200"}, 1},
		{"tandem_http_requests_total", []string{"route", shared.RouteLogout, "code", "204"}, 1},
		{"tandem_http_requests_total", []string{"route", shared.SocketPath, "code", "403"}, 1},
		{"tandem_http_request_duration_seconds", []string{"route", shared.RouteIncr, "code", "200"}, 5},
		{"tandem_store_duration_seconds", []string{"backend", "memory", "op", "create"}, 2},
		// The first POST /incr creates a; its increment is in the create.
		{"tandem_store_duration_seconds", []string{"backend", "memory", "op", "update"}, 4 + 3 + 3 + burst},
		{"tandem_store_duration_seconds", []string{"backend", "memory", "op", "delete"}, 1},
		{"tandem_store_errors_total", []string{"backend", "memory", "op", "update"}, 0},
		{"tandem_store_errors_total", []string{"backend", "memory", "op", "load"}, 0},
		{"tandem_relay_errors_total", nil, 0},
		// The WebSockets wsA (7 counts and "session ended") and flood
		// (burst counts) get the broadcast's one frame; the polling pollB
		// (3 and burst counts) gets the library's path.
		{"tandem_broadcast_deliveries_total", []string{"path", "preframed"}, 7 + 1 + burst},
		{"tandem_broadcast_deliveries_total", []string{"path", "library"}, 3 + burst},
	}
	for _, e := range expect {
		got, ok := sample(fams, e.name, e.labels...)
		if !ok {
			t.Errorf("%s%v is not served", e.name, e.labels)
			continue
		}
		if got != e.want {
			t.Errorf("%s%v = %v, want %v", e.name, e.labels, got, e.want)
		}
	}
	if got, _ := sample(fams, "tandem_store_duration_seconds", "backend", "memory", "op", "load"); got < 3 {
		t.Errorf("store loads counted: %v, want one per socket packet at least", got)
	}

	// No series holds a session's ID, key or cookie.
	secrets := map[string]string{}
	for name, header := range map[string]string{"a": cookieA, "b": b.Cookie()} {
		_, value, _ := strings.Cut(header, "=")
		id, _, _ := strings.Cut(value, ".")
		if len(id) < 16 {
			t.Fatalf("session %s: cookie %q holds no ID", name, header)
		}
		gs := sessions.NewSession(srv.Sessions(), srv.Sessions().CookieName())
		gs.ID = id
		secrets[name+"'s cookie"] = value
		secrets[name+"'s ID"] = id
		secrets[name+"'s key"] = srv.Sessions().KeyOf(gs)
		secrets[name+"'s key as logged"] = srv.Sessions().KeyOf(gs)[:12]
	}
	for what, v := range secrets {
		if strings.Contains(text, v) {
			t.Errorf("the scrape holds %s (%q)", what, v)
		}
	}

	// Every socket closed: tandem_sockets is back to 0.
	pollB.Close()
	flood.Close()
	deadline := time.Now().Add(10 * time.Second)
	for {
		fams, _ = scrape(t, srv.AdminURL())
		ws, _ := sample(fams, "tandem_sockets", "transport", "websocket")
		poll, _ := sample(fams, "tandem_sockets", "transport", "polling")
		if ws == 0 && poll == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("tandem_sockets websocket %v, polling %v after every socket closed, want 0", ws, poll)
		}
		time.Sleep(20 * time.Millisecond) // polling a condition, bounded by the deadline
	}
}

// Issue 18: what the operator's listener serves is never served on PORT or
// SPA_PORT (there /metrics and /debug/pprof/ get what any unknown path
// gets); with ADMIN_TOKEN, a request without the token gets 401.
func TestAdminListenerStaysApart(t *testing.T) {
	t.Parallel()
	token := strings.Repeat("t0ken", 8)
	srv := tandemtest.Start(t, server.Config{
		AdminAddr:  "127.0.0.1:0",
		AdminToken: token,
		SPAAddr:    "127.0.0.1:0",
		WebDir:     t.TempDir(), // no page build: both listeners answer their "not built" page
	})
	get := func(url string, hdr ...string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, url, nil)
		for i := 0; i+1 < len(hdr); i += 2 {
			req.Header.Set(hdr[i], hdr[i+1])
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("GET %s: %v", url, err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	for _, base := range []string{srv.URL(), srv.SPAURL()} {
		wantStatus, wantBody := get(base + "/no-such-path-anywhere")
		for _, p := range []string{"/metrics", "/debug/pprof/", "/debug/pprof/heap", "/debug/pprof/cmdline"} {
			status, body := get(base+p, "Authorization", "Bearer "+token)
			if status != wantStatus || body != wantBody {
				t.Errorf("GET %s%s: %d %.80q, want what an unknown path gets: %d %.80q", base, p, status, body, wantStatus, wantBody)
			}
			if strings.Contains(body, "tandem_") || strings.Contains(body, "goroutine") {
				t.Errorf("GET %s%s serves metrics or profiles", base, p)
			}
		}
	}
	tests := []struct {
		name   string
		given  []string
		expect int
	}{
		{"nok, no Authorization", nil, http.StatusUnauthorized},
		{"nok, wrong token", []string{"Authorization", "Bearer " + strings.Repeat("x", len(token))}, http.StatusUnauthorized},
		{"nok, token as Basic", []string{"Authorization", "Basic " + token}, http.StatusUnauthorized},
		{"nok, token with a suffix", []string{"Authorization", "Bearer " + token + "x"}, http.StatusUnauthorized},
		{"ok, bearer token", []string{"Authorization", "Bearer " + token}, http.StatusOK},
	}
	for _, tt := range tests {
		for _, p := range []string{"/metrics", "/debug/pprof/"} {
			t.Run(tt.name+p, func(t *testing.T) {
				status, body := get(srv.AdminURL()+p, tt.given...)
				if status != tt.expect {
					t.Fatalf("GET %s: %d, want %d", p, status, tt.expect)
				}
				if status == http.StatusUnauthorized && (strings.Contains(body, "tandem_") || strings.Contains(body, "goroutine")) {
					t.Fatalf("a 401 answer leaks: %.200q", body)
				}
			})
		}
	}
	if fams, _ := scrape(t, srv.AdminURL(), "Authorization", "Bearer "+token); fams["tandem_sockets"] == nil {
		t.Error("the scrape with the token has no tandem_sockets")
	}
}

// Issue 18: a non-loopback ADMIN_ADDR needs ADMIN_TOKEN (server.New
// refuses it, naming the variable); a loopback one does not.
func TestAdminAddrLoopbackOnlyWithoutToken(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		givenAddr string
		givenTok  string
		expectErr bool
	}{
		{"ok, 127.0.0.1", "127.0.0.1:0", "", false},
		{"ok, ::1", "[::1]:0", "", false},
		{"ok, localhost", "localhost:0", "", false},
		{"nok, every interface", ":0", "", true},
		{"nok, 0.0.0.0", "0.0.0.0:0", "", true},
		{"nok, a public address", "192.0.2.1:9464", "", true},
		{"ok, every interface with a token", ":0", strings.Repeat("s", 32), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := server.New(server.Config{Addr: "127.0.0.1:0", Store: "memory", AdminAddr: tt.givenAddr, AdminToken: tt.givenTok,
				SessionSecrets: []string{strings.Repeat("k", 32)}, Logger: tandemtest.Logger(t)})
			var ce *server.ConfigError
			switch {
			case tt.expectErr && err == nil:
				t.Fatal("accepted")
			case tt.expectErr && (!errors.As(err, &ce) || ce.Var != "ADMIN_ADDR"):
				t.Fatalf("error %v does not name ADMIN_ADDR", err)
			case !tt.expectErr && err != nil:
				t.Fatalf("refused: %v", err)
			}
		})
	}
}

// Issue 18: a connection over MAX_CONNS_PER_CLIENT is counted under
// tandem_refusals_total{cause="conns_per_client"}, once per connection.
func TestMetricsCountConnRefusals(t *testing.T) {
	t.Parallel()
	srv := tandemtest.Start(t, server.Config{AdminAddr: "127.0.0.1:0", MaxConnsPerClient: 1})
	addr := strings.TrimPrefix(srv.URL(), "http://")
	held, err := net.Dial("tcp", addr) // the one connection allowed
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	// The held connection is accepted (and counted) once a request on it
	// is answered.
	if _, err := io.WriteString(held, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	if _, err := http.ReadResponse(bufio.NewReader(held), nil); err != nil {
		t.Fatalf("the first connection: %v", err)
	}
	for range 2 {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		c.Close()
		if err != nil || resp.StatusCode != http.StatusTooManyRequests {
			t.Fatalf("a connection over the bound: %v %v", resp, err)
		}
	}
	fams, _ := scrape(t, srv.AdminURL())
	if got, _ := sample(fams, "tandem_refusals_total", "cause", "conns_per_client"); got != 2 {
		t.Fatalf("tandem_refusals_total{conns_per_client} = %v, want 2", got)
	}
}

// Issue 18: a signed-in session's user name and agent never reach a
// series (nor its keys before and after the sign-in's renewal), and the
// sign-in's store call is counted as op renew.
func TestMetricsHoldNoUserName(t *testing.T) {
	t.Parallel()
	const user, agent = "ada-lovelace-7f3e", "Quill 1843 on Engine"
	srv := tandemtest.Start(t, server.Config{AdminAddr: "127.0.0.1:0"})
	c := tandemtest.NewClient(t, srv.URL())
	c.Incr()
	old := c.Cookie()
	r := httptest.NewRequest(http.MethodPost, "/login", nil)
	r.Header.Set("Cookie", old)
	w := httptest.NewRecorder()
	sess, err := srv.Sessions().SignIn(w, r, user, sessionio.SignInOptions{Agent: agent})
	if err != nil {
		t.Fatal(err)
	}
	renewed := w.Result().Cookies()[0]
	c.SetCookie(renewed.Name + "=" + renewed.Value)
	if got := c.Incr(); got != 2 {
		t.Fatalf("incr after sign-in = %d", got)
	}
	fams, text := scrape(t, srv.AdminURL())
	if got, _ := sample(fams, "tandem_store_duration_seconds", "backend", "memory", "op", "renew"); got != 1 {
		t.Errorf("renew calls counted: %v, want 1", got)
	}
	_, oldValue, _ := strings.Cut(old, "=")
	oldID, _, _ := strings.Cut(oldValue, ".")
	newID, _, _ := strings.Cut(renewed.Value, ".")
	for what, v := range map[string]string{
		"the user name": user, "the agent": agent, "the old ID": oldID, "the new ID": newID,
		"the new cookie": renewed.Value, "the new key": srv.Sessions().KeyOf(sess),
	} {
		if v == "" {
			t.Fatalf("%s is empty", what)
		}
		if strings.Contains(text, v) {
			t.Errorf("the scrape holds %s (%q)", what, v)
		}
	}
}

// Issue 18: a logout of a session with no socket counts once (Destroy, then
// End, both name it).
func TestMetricsCountALogoutOnce(t *testing.T) {
	t.Parallel()
	srv := tandemtest.Start(t, server.Config{AdminAddr: "127.0.0.1:0"})
	c := tandemtest.NewClient(t, srv.URL())
	c.Incr()
	if status, body, _ := c.Do(http.MethodPost, shared.RouteLogout); status != http.StatusNoContent {
		t.Fatalf("POST /logout: %d %s", status, body)
	}
	fams, _ := scrape(t, srv.AdminURL())
	if got, _ := sample(fams, "tandem_sessions_ended_total", "reason", "logout"); got != 1 {
		t.Fatalf("tandem_sessions_ended_total{logout} = %v, want 1", got)
	}
}

// The two other reasons a session ends, each counted once under its own
// reason and no other: revoked (POST /devices/revoke from another session
// of the user) and expired (idle past SESSION_TTL, found by the periodic
// check while its socket is open). Each waits for the ended session's
// socket to hear why (the end is counted before it is sent), then makes
// one more request with its cookie, which must not count it again.
func TestMetricsCountRevokedAndExpired(t *testing.T) {
	t.Parallel()
	reasons := []string{"logout", "revoked", "expired", "gone"}
	// delivered: the ended session's "session ended" is counted too. The
	// periodic check counts it after writing it to the socket, so only an
	// end whose request has been answered (a revoke) can expect it.
	expectEnded := func(t *testing.T, srv *server.Server, reason string, delivered bool) {
		t.Helper()
		fams, _ := scrape(t, srv.AdminURL())
		for _, r := range reasons {
			want := 0.0
			if r == reason {
				want = 1
			}
			if got, _ := sample(fams, "tandem_sessions_ended_total", "reason", r); got != want {
				t.Errorf("tandem_sessions_ended_total{%s} = %v, want %v", r, got, want)
			}
		}
		if got, _ := sample(fams, "tandem_deliveries_total", "event", shared.EventSessionEnded); delivered && got != 1 {
			t.Errorf("tandem_deliveries_total{%s} = %v, want 1", shared.EventSessionEnded, got)
		}
	}
	socketOf := func(t *testing.T, base, cookie string) *websocket.Conn {
		t.Helper()
		ws, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(base, "http")+shared.SocketPath+secEIOQuery+"websocket", secHeader("Cookie", cookie))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { ws.Close() })
		secWSRead(t, ws, "0")
		secWSSend(t, ws, "40")
		secWSRead(t, ws, "40")
		return ws
	}
	hear := func(t *testing.T, ws *websocket.Conn, reason string) {
		t.Helper()
		want := `42["` + shared.EventSessionEnded + `",{"reason":"` + reason + `"}]`
		if got := secWSRead(t, ws, `42["`+shared.EventSessionEnded+`"`); got != want {
			t.Fatalf("the socket heard %q; want %q", got, want)
		}
	}

	t.Run("ok, revoked", func(t *testing.T) {
		t.Parallel()
		srv := tandemtest.Start(t, server.Config{AdminAddr: "127.0.0.1:0"})
		laptop := tandemtest.NewClient(t, srv.URL())
		login(t, laptop, "ada", firefoxLinux)
		phone := tandemtest.NewClient(t, srv.URL())
		login(t, phone, "ada", safariIOS)
		ws := socketOf(t, srv.URL(), laptop.Cookie())
		var id string
		for _, d := range devicesOf(t, phone) {
			if !d.Current {
				id = d.ID
			}
		}
		if status, body := postJSON(t, phone, shared.RouteDevicesRevoke, `{"id":"`+id+`"}`); status != http.StatusNoContent {
			t.Fatalf("POST /devices/revoke: %d %s", status, body)
		}
		hear(t, ws, shared.ReasonRevoked)
		if got := sessionUser(t, laptop); got != "" {
			t.Fatalf("the revoked session still signs in as %q", got)
		}
		expectEnded(t, srv, "revoked", true)
	})

	t.Run("ok, expired", func(t *testing.T) {
		t.Parallel()
		srv := tandemtest.Start(t, server.Config{AdminAddr: "127.0.0.1:0", SessionTTL: time.Second, SessionCheckInterval: 100 * time.Millisecond})
		c := tandemtest.NewClient(t, srv.URL())
		c.Incr()
		ws := socketOf(t, srv.URL(), c.Cookie())
		hear(t, ws, shared.ReasonExpired) // secWSRead answers pings, nothing else
		if status, body, _ := c.Do(http.MethodGet, shared.RouteSession); status != http.StatusOK || strings.TrimSpace(body) != `{"count":0}` {
			t.Fatalf("GET /session after the expiry: %d %s; want a new session", status, body)
		}
		expectEnded(t, srv, "expired", false)
	})
}

// The shipped Grafana dashboard asks only for metrics a server serves: a
// renamed or removed metric fails here, not on an operator's empty panel.
func TestDashboardQueriesServedMetrics(t *testing.T) {
	t.Parallel()
	raw, err := os.ReadFile("../deploy/grafana/tandem-dashboard.json")
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Panels []struct {
			Title   string
			Targets []struct{ Expr string }
		}
	}
	if err := json.Unmarshal(raw, &dash); err != nil {
		t.Fatalf("dashboard: %v", err)
	}
	srv := tandemtest.Start(t, server.Config{AdminAddr: "127.0.0.1:0"})
	// The HTTP series exist once a request was answered.
	if status, body, _ := tandemtest.NewClient(t, srv.URL()).Do(http.MethodGet, shared.RouteSession); status != http.StatusOK {
		t.Fatalf("GET /session: %d %s", status, body)
	}
	fams, _ := scrape(t, srv.AdminURL())
	name := regexp.MustCompile(`\b(tandem|go|process)_[a-z_]+\b`)
	asked := 0
	for _, p := range dash.Panels {
		for _, q := range p.Targets {
			for _, m := range name.FindAllString(q.Expr, -1) {
				asked++
				family := m
				for _, suffix := range []string{"_bucket", "_sum", "_count"} {
					if f := strings.TrimSuffix(m, suffix); f != m && fams[f] != nil && fams[f].GetType() == dto.MetricType_HISTOGRAM {
						family = f
					}
				}
				if fams[family] == nil {
					t.Errorf("panel %q asks for %s, which the server does not serve", p.Title, m)
				}
			}
		}
	}
	if asked < len(dash.Panels) {
		t.Fatalf("%d metrics asked for by %d panels: the dashboard was not read", asked, len(dash.Panels))
	}
}
