package sessionio_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	sioredis "github.com/zishang520/socket.io/adapters/redis/v3"
	"github.com/zishang520/socket.io/adapters/redis/v3/adapter"
	"github.com/zishang520/socket.io/servers/socket/v3"

	"github.com/tandem-go/tandem/internal/tandemtest"
	"github.com/tandem-go/tandem/server/sessionio"
	"github.com/tandem-go/tandem/server/store"
	"github.com/tandem-go/tandem/server/store/bolt"
	"github.com/tandem-go/tandem/server/store/memory"
	redisstore "github.com/tandem-go/tandem/server/store/redis"
)

// nodes returns n bridges: one (memory store, no adapter) for n == 1;
// otherwise n nodes sharing one Redis for their store and their Socket.IO
// adapter.
func nodes(t *testing.T, n int, cfg sessionio.Config) []*bridge {
	t.Helper()
	if n == 1 {
		return []*bridge{newBridge(t, cfg)}
	}
	rds := tandemtest.StartRedis(t)
	var bs []*bridge
	for range n {
		st, err := redisstore.Open(rds.URL(0), redisstore.Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		c := cfg
		c.Store = st
		ctx, cancel := context.WithCancel(context.Background())
		t.Cleanup(cancel)
		rc := sioredis.NewRedisClient(ctx, rds.Client(0))
		b := newBridgeWith(t, c, &adapter.RedisAdapterBuilder{Redis: rc, Opts: adapter.DefaultRedisAdapterOptions()})
		if !b.m.Clustered() {
			t.Fatal("the node does not relay to the others")
		}
		bs = append(bs, b)
	}
	return bs
}

func cookieOf(t *testing.T, c *tandemtest.Client, name string) string {
	t.Helper()
	for _, part := range strings.Split(c.Cookie(), "; ") {
		if strings.HasPrefix(part, name+"=") {
			return part
		}
	}
	t.Fatalf("no %s cookie in %q", name, c.Cookie())
	return ""
}

// The fixation scenario, end to end with the official client: an attacker
// opens a socket with a cookie and plants that cookie in the victim's
// browser; the victim signs in with it. The planted socket is closed, never
// hears a value or an event of the signed-in session, its changes reach
// nothing, and once it reconnects with the old cookie it gets a session of
// its own. The victim's tab reconnects into the signed-in session. On one
// node, and with the planted socket and the victim on different nodes.
func TestSignInFixation(t *testing.T) {
	for _, n := range []int{1, 2} {
		t.Run(fmt.Sprintf("%d nodes", n), func(t *testing.T) {
			bs := nodes(t, n, sessionio.Config{CheckInterval: time.Hour, RenewGrace: time.Second})
			attackerNode, victimNode := bs[0], bs[len(bs)-1]
			attacker := tandemtest.NewClient(t, attackerNode.url)
			if status, body, _ := attacker.Do(http.MethodPost, "/set?v=planted"); status != http.StatusOK {
				t.Fatalf("POST /set: %d %s", status, body)
			}
			planted := cookieOf(t, attacker, attackerNode.m.CookieName())
			drv := tandemtest.NewDriver(t)
			spy := drv.Dial(attackerNode.url, tandemtest.Options{Cookie: planted, Reconnect: true})
			attackerNode.handle(t)

			victim := tandemtest.NewClient(t, victimNode.url)
			victim.SetCookie(planted)
			tab := drv.Dial(victimNode.url, tandemtest.Options{Cookie: planted, Reconnect: true})
			victimNode.handle(t)

			status, newKey, _ := victim.Do(http.MethodPost, "/signin?user=ada")
			if status != http.StatusOK {
				t.Fatalf("POST /signin: %d %s", status, newKey)
			}
			signedIn := cookieOf(t, victim, victimNode.m.CookieName())
			if signedIn == planted {
				t.Fatal("SignIn kept the planted cookie")
			}
			tab.SetCookie(signedIn) // the browser now holds the new cookie

			// Both old connections are closed (a close, not a clean
			// disconnect: the clients reconnect by themselves).
			for name, s := range map[string]*tandemtest.Socket{"spy": spy, "tab": tab} {
				var reason string
				s.Wait("disconnect", 10*time.Second).Arg(t, 0, &reason)
				if reason == "io server disconnect" {
					t.Errorf("%s: a clean disconnect, want the connection closed", name)
				}
			}
			// The victim's tab comes back in the signed-in session.
			tab.Wait("connect", 10*time.Second)
			h := victimNode.handle(t)
			if h.Key() != newKey || h.User() != "ada" {
				t.Fatalf("the tab reconnected into %.8s… (user %q), want the signed-in %.8s…", h.Key(), h.User(), newKey)
			}
			if status, body, _ := victim.Do(http.MethodPost, "/set?v=secret"); status != http.StatusOK || body != "secret" {
				t.Fatalf("POST /set as the victim: %d %s", status, body)
			}
			tab.Wait("v", 10*time.Second)

			// The spy, during the grace period, is refused; after it, it
			// gets a session of its own.
			spy.Wait("connect_error", 10*time.Second)
			spy.Wait("connect", 10*time.Second)
			mine := attackerNode.handle(t)
			if mine.Key() == newKey || mine.User() != "" {
				t.Fatalf("the spy reconnected into the signed-in session")
			}
			raw, err := spy.EmitAck("get")
			if err != nil || string(raw) != "null" {
				t.Errorf("spy's get after reconnecting = %s %v, want nothing", raw, err)
			}
			if _, err := spy.EmitAck("set", "evil"); err != nil {
				t.Fatal(err)
			}
			if _, body, _ := victim.Do(http.MethodGet, "/get"); body != "secret" {
				t.Errorf("the victim's session holds %q after the spy's set, want secret", body)
			}
			for _, e := range spy.Seen() {
				if e.Name == "v" {
					t.Errorf("the spy heard %s of the signed-in session", e.Name)
				}
			}
			// The planted cookie is no session any more.
			attacker.SetCookie(planted)
			if _, body, _ := attacker.Do(http.MethodGet, "/get"); body != "" {
				t.Errorf("the planted cookie reads %q after the sign-in", body)
			}
		})
	}
}

// A sign-in while 50 requests and 5 sockets of the old cookie are in
// flight: none of them creates a session (each either lands before the
// renewal, in the session that is renewed, or is refused with 409 and
// retried with the new cookie), the new cookie is the only one the client
// ends with, every tab reconnects into the renewed session, and the count
// is exact.
func TestSignInWithRequestsInFlight(t *testing.T) {
	var created atomic.Int64
	b := newBridge(t, sessionio.Config{CheckInterval: time.Hour, OnCreate: func(string) { created.Add(1) }})
	c := tandemtest.NewClient(t, b.url)
	if status, body, _ := c.Do(http.MethodPost, "/incr"); status != http.StatusOK || body != "1" {
		t.Fatalf("POST /incr: %d %s", status, body)
	}
	old := cookieOf(t, c, b.m.CookieName())
	drv := tandemtest.NewDriver(t)
	var tabs []*tandemtest.Socket
	for range 5 {
		tabs = append(tabs, drv.Dial(b.url, tandemtest.Options{Cookie: old, Reconnect: true}))
		b.handle(t)
	}
	before := created.Load()

	const n = 50
	var wg sync.WaitGroup
	var refused atomic.Int64
	var newCookie atomic.Value
	start := make(chan struct{})
	for range n {
		wg.Go(func() {
			<-start
			cookie := old
			for attempt := 0; attempt < 20; attempt++ {
				req, _ := http.NewRequest(http.MethodPost, b.url+"/incr", nil)
				req.Header.Set("Cookie", cookie)
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Error(err)
					return
				}
				resp.Body.Close()
				if sc := resp.Header.Values("Set-Cookie"); len(sc) > 0 {
					t.Errorf("a request in flight got Set-Cookie %q", sc)
				}
				switch resp.StatusCode {
				case http.StatusOK:
					return
				case http.StatusConflict:
					refused.Add(1)
					for newCookie.Load() == nil {
						time.Sleep(time.Millisecond) // the page retries once it has its new cookie
					}
					cookie = newCookie.Load().(string)
				default:
					t.Errorf("POST /incr in flight: %d", resp.StatusCode)
					return
				}
			}
		})
	}
	close(start)
	status, newKey, hdr := c.Do(http.MethodPost, "/signin?user=ada")
	if status != http.StatusOK {
		t.Fatalf("POST /signin: %d %s", status, newKey)
	}
	if sc := hdr.Values("Set-Cookie"); len(sc) != 1 {
		t.Errorf("the sign-in set %d cookies, want 1: %q", len(sc), sc)
	}
	renewed := cookieOf(t, c, b.m.CookieName())
	newCookie.Store(renewed)
	for _, tab := range tabs {
		tab.SetCookie(renewed)
	}
	wg.Wait()
	t.Logf("%d of %d requests in flight were refused with 409 and retried", refused.Load(), n)
	if got := created.Load() - before; got != 0 {
		t.Errorf("the requests and sockets in flight created %d sessions, want 0", got)
	}
	if got := c.Cookie(); got != renewed {
		t.Errorf("the client ends with cookies %q, want only the renewed one", got)
	}
	for i, tab := range tabs {
		tab.Wait("connect", 10*time.Second)
		if h := b.handle(t); h.Key() != newKey {
			t.Errorf("tab %d reconnected into %.8s…, want the renewed session", i, h.Key())
		}
	}
	for i, tab := range tabs {
		raw, err := tab.EmitAck("incr")
		if err != nil {
			t.Fatalf("tab %d incr: %v", i, err)
		}
		var got int
		_ = json.Unmarshal(raw, &got)
		if i == len(tabs)-1 && got != 1+n+len(tabs) {
			t.Errorf("count after 1 + %d requests + %d socket incrs = %d, want %d", n, len(tabs), got, 1+n+len(tabs))
		}
	}
	if got := created.Load() - before; got != 0 {
		t.Errorf("%d sessions created after the sign-in, want 0", got)
	}
}

// Every call of one request sees what the earlier calls did: one session,
// one Set-Cookie, no orphaned record.
func TestCallsCompose(t *testing.T) {
	tests := []struct {
		name        string
		cookie      bool // the request carries a live session's cookie
		calls       func(m *sessionio.Manager, w http.ResponseWriter, r *http.Request) error
		wantRecords int
		wantValue   int // of the one session left, when there is one
		wantUser    string
	}{
		{
			name: "ok, Update (creating) then Renew",
			calls: func(m *sessionio.Manager, w http.ResponseWriter, r *http.Request) error {
				if _, err := m.Update(w, r, incr, nil); err != nil {
					return err
				}
				_, err := m.Renew(w, r)
				return err
			},
			wantRecords: 1, wantValue: 1,
		},
		{
			name: "ok, Update (creating) then SignIn",
			calls: func(m *sessionio.Manager, w http.ResponseWriter, r *http.Request) error {
				if _, err := m.Update(w, r, incr, nil); err != nil {
					return err
				}
				_, err := m.SignIn(w, r, "ada", sessionio.SignInOptions{})
				return err
			},
			wantRecords: 1, wantValue: 1, wantUser: "ada",
		},
		{
			name:   "ok, Renew then Update",
			cookie: true,
			calls: func(m *sessionio.Manager, w http.ResponseWriter, r *http.Request) error {
				if _, err := m.Renew(w, r); err != nil {
					return err
				}
				_, err := m.Update(w, r, incr, nil)
				return err
			},
			wantRecords: 1, wantValue: 2,
		},
		{
			name: "ok, two Updates",
			calls: func(m *sessionio.Manager, w http.ResponseWriter, r *http.Request) error {
				if _, err := m.Update(w, r, incr, nil); err != nil {
					return err
				}
				_, err := m.Update(w, r, incr, nil)
				return err
			},
			wantRecords: 1, wantValue: 2,
		},
		{
			name: "ok, Update (creating) then Destroy",
			calls: func(m *sessionio.Manager, w http.ResponseWriter, r *http.Request) error {
				if _, err := m.Update(w, r, incr, nil); err != nil {
					return err
				}
				_, err := m.Destroy(w, r)
				return err
			},
			wantRecords: 0,
		},
		{
			name:   "ok, SignIn then UserOf",
			cookie: true,
			calls: func(m *sessionio.Manager, w http.ResponseWriter, r *http.Request) error {
				if _, err := m.SignIn(w, r, "ada", sessionio.SignInOptions{}); err != nil {
					return err
				}
				if u, err := m.UserOf(r); err != nil || u != "ada" {
					return fmt.Errorf("UserOf after SignIn = %q, %v", u, err)
				}
				return nil
			},
			wantRecords: 1, wantValue: 1, wantUser: "ada",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// given
			st := memory.New()
			t.Cleanup(func() { st.Close() })
			m := newManagerWith(t, sessionio.Config{Store: st, RenewGrace: sessionio.Off})
			r := httptest.NewRequest(http.MethodPost, "/", nil)
			if tt.cookie {
				r = newSessions(t, m, 1)[0]
				w := httptest.NewRecorder()
				if _, err := m.Update(w, r, incr, nil); err != nil { // its own request: n = 1
					t.Fatal(err)
				}
				r = again(r)
			}

			// when
			w := httptest.NewRecorder()
			if err := tt.calls(m, w, r); err != nil {
				t.Fatal(err)
			}

			// expect
			cookies := w.Result().Header.Values("Set-Cookie")
			if len(cookies) != 1 {
				t.Fatalf("%d Set-Cookie headers, want 1: %q", len(cookies), cookies)
			}
			if st.Len() != tt.wantRecords {
				t.Errorf("store holds %d records, want %d", st.Len(), tt.wantRecords)
			}
			if tt.wantRecords == 0 {
				if !strings.Contains(cookies[0], "Max-Age=0") {
					t.Errorf("cookie %q, want it expired", cookies[0])
				}
				return
			}
			next := httptest.NewRequest(http.MethodGet, "/", nil)
			next.Header.Set("Cookie", strings.SplitN(cookies[0], ";", 2)[0])
			s, err := m.New(next, m.CookieName())
			if err != nil || s.IsNew {
				t.Fatalf("the cookie set names no session: %v", err)
			}
			if got, _ := s.Values["n"].(int); got != tt.wantValue {
				t.Errorf("n = %d, want %d", got, tt.wantValue)
			}
			if u, _ := m.UserOf(next); u != tt.wantUser {
				t.Errorf("user %q, want %q", u, tt.wantUser)
			}
		})
	}
}

// again is a new request with r's cookies.
func again(r *http.Request) *http.Request {
	n := httptest.NewRequest(r.Method, r.URL.String(), nil)
	n.Header.Set("Cookie", r.Header.Get("Cookie"))
	return n
}

func newManagerWith(t *testing.T, cfg sessionio.Config) *sessionio.Manager {
	t.Helper()
	if cfg.Store == nil {
		cfg.Store = memory.New()
	}
	cfg.Keys = [][]byte{[]byte(strings.Repeat("k", 32))}
	cfg.Logger = tandemtest.Logger(t)
	m, err := sessionio.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

// A renewed cookie, for the grace period: requests get ErrSessionRenewed
// and create nothing; afterwards it is simply no session. Remember makes
// the cookie persistent with what remains of the absolute lifetime.
func TestRenewedCookie(t *testing.T) {
	st := memory.New()
	t.Cleanup(func() { st.Close() })
	m := newManagerWith(t, sessionio.Config{Store: st, RenewGrace: 300 * time.Millisecond, MaxAge: time.Hour})
	old := newSessions(t, m, 1)[0]
	w := httptest.NewRecorder()
	if _, err := m.SignIn(w, again(old), "ada", sessionio.SignInOptions{Remember: true}); err != nil {
		t.Fatal(err)
	}
	sc := w.Result().Cookies()
	if len(sc) != 1 || sc[0].MaxAge < 3590 || sc[0].MaxAge > 3600 {
		t.Errorf("remembered sign-in cookie %+v, want Max-Age about 3600", sc)
	}
	renewedAt := time.Now()

	for name, call := range map[string]func(w http.ResponseWriter, r *http.Request) error{
		"Update": func(w http.ResponseWriter, r *http.Request) error { _, err := m.Update(w, r, incr, nil); return err },
		"Get":    func(w http.ResponseWriter, r *http.Request) error { _, err := m.Get(r, m.CookieName()); return err },
		"SignIn": func(w http.ResponseWriter, r *http.Request) error {
			_, err := m.SignIn(w, r, "mallory", sessionio.SignInOptions{})
			return err
		},
	} {
		w := httptest.NewRecorder()
		err := call(w, again(old))
		if !errors.Is(err, sessionio.ErrSessionRenewed) || errors.Is(err, sessionio.ErrSessionGone) {
			t.Errorf("%s with the renewed cookie: %v, want ErrSessionRenewed", name, err)
		}
		if sc := w.Result().Header.Values("Set-Cookie"); len(sc) != 0 {
			t.Errorf("%s with the renewed cookie set %q", name, sc)
		}
	}
	if st.Len() != 2 { // the signed-in session and the tombstone
		t.Errorf("store holds %d records, want the session and its old ID's tombstone", st.Len())
	}
	time.Sleep(time.Until(renewedAt.Add(300*time.Millisecond + 50*time.Millisecond)))
	if s, err := m.Get(again(old), m.CookieName()); err != nil || !s.IsNew {
		t.Errorf("after the grace period the old cookie: IsNew %v, %v; want no session", s.IsNew, err)
	}
}

// A session used every 100 ms ends at its absolute lifetime all the same:
// every socket hears {"reason":"expired"}, then is disconnected; on every
// store.
func TestAbsoluteLifetime(t *testing.T) {
	rds := tandemtest.StartRedis(t)
	stores := map[string]func(t *testing.T) store.Store{
		"memory": func(*testing.T) store.Store { return memory.New() },
		"bolt": func(t *testing.T) store.Store {
			s, err := bolt.Open(t.TempDir()+"/s.db", bolt.Options{})
			if err != nil {
				t.Fatal(err)
			}
			return s
		},
		"redis": func(t *testing.T) store.Store {
			s, err := redisstore.Open(rds.URL(0), redisstore.Options{})
			if err != nil {
				t.Fatal(err)
			}
			return s
		},
	}
	for name, open := range stores {
		t.Run(name, func(t *testing.T) {
			st := open(t)
			t.Cleanup(func() { st.Close() })
			const maxAge = 2 * time.Second
			b := newBridge(t, sessionio.Config{Store: st, MaxAge: maxAge, TTL: time.Hour, CheckInterval: 200 * time.Millisecond})
			c := tandemtest.NewClient(t, b.url)
			start := time.Now()
			c.Do(http.MethodPost, "/set?v=x")
			drv := tandemtest.NewDriver(t)
			var socks []*tandemtest.Socket
			for _, tr := range []tandemtest.Transport{tandemtest.WebSocket, tandemtest.Polling} {
				socks = append(socks, drv.Dial(b.url, tandemtest.Options{Cookie: c.Cookie(), Transport: tr}))
				b.handle(t)
			}
			// Busy: a change every 100 ms, over HTTP.
			stop := make(chan struct{})
			done := make(chan struct{})
			go func() {
				defer close(done)
				tick := time.NewTicker(100 * time.Millisecond)
				defer tick.Stop()
				for {
					select {
					case <-stop:
						return
					case <-tick.C:
						req, _ := http.NewRequest(http.MethodPost, b.url+"/set?v=busy", nil)
						req.Header.Set("Cookie", c.Cookie())
						if resp, err := http.DefaultClient.Do(req); err == nil {
							resp.Body.Close()
						}
					}
				}
			}()
			t.Cleanup(func() { close(stop); <-done })
			for i, s := range socks {
				var notice sessionio.EndNotice
				s.Wait("session ended", maxAge+5*time.Second).Arg(t, 0, &notice)
				if notice.Reason != sessionio.EndExpired {
					t.Errorf("socket %d: session ended %q, want expired", i, notice.Reason)
				}
				if ended := time.Since(start); ended < maxAge-100*time.Millisecond {
					t.Errorf("socket %d told of the end after %v, before the absolute lifetime %v", i, ended, maxAge)
				}
				var reason string
				s.Wait("disconnect", 5*time.Second).Arg(t, 0, &reason)
				if reason != "io server disconnect" {
					t.Errorf("socket %d: disconnect %q, want a clean server disconnect", i, reason)
				}
			}
		})
	}
}

// An adapter set after Attach would leave emits on this node: the manager
// refuses to act instead.
func TestAdapterReplacedAfterAttach(t *testing.T) {
	m := newManagerWith(t, sessionio.Config{})
	io := socket.NewServer(nil, nil)
	t.Cleanup(func() { io.Close(nil) })
	h, err := m.Attach(io, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Emit("k", "e"); err != nil {
		t.Fatalf("Emit before the change: %v", err)
	}
	rds := tandemtest.StartRedis(t)
	io.SetAdapter(&adapter.RedisAdapterBuilder{Redis: sioredis.NewRedisClient(t.Context(), rds.Client(0)), Opts: adapter.DefaultRedisAdapterOptions()})
	for name, err := range map[string]error{"Emit": m.Emit("k", "e"), "Disconnect": m.Disconnect("k"), "End": m.End("k", sessionio.EndLogout)} {
		if !errors.Is(err, sessionio.ErrAdapterChanged) {
			t.Errorf("%s after the adapter changed: %v, want ErrAdapterChanged", name, err)
		}
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/socket.io/?EIO=4&transport=polling", nil))
	if w.Code != http.StatusInternalServerError {
		t.Errorf("handshake after the adapter changed: %d, want 500", w.Code)
	}
}

// Attach does not change the options it is given.
func TestAttachKeepsItsOptions(t *testing.T) {
	m := newManagerWith(t, sessionio.Config{})
	io := socket.NewServer(nil, nil)
	t.Cleanup(func() { io.Close(nil) })
	opts := socket.DefaultServerOptions()
	if _, err := m.Attach(io, opts); err != nil {
		t.Fatal(err)
	}
	if opts.GetRawCors() != nil {
		t.Error("Attach set Cors on the options it was given")
	}
}
