package server_test

import (
	"context"
	"encoding/json"
	"net/http"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tandem-go/tandem/internal/tandemtest"
	"github.com/tandem-go/tandem/server"
	redisstore "github.com/tandem-go/tandem/server/store/redis"
	"github.com/tandem-go/tandem/shared"
)

// Multi-node tests: n tandem servers in this process, each on its own
// 127.0.0.1:0 listener, sharing a real redis-server started by the test
// (sessions in the Redis store, Socket.IO through the Redis adapter). They
// share the signing key, as the nodes of one deployment do.

// startNodes starts n nodes on rds, database 0, with cfg.
func startNodes(t *testing.T, rds *tandemtest.Redis, n int, cfg server.Config) []*server.Server {
	t.Helper()
	var nodes []*server.Server
	for range n {
		c := cfg
		c.Store = rds.URL(0)
		nodes = append(nodes, tandemtest.Start(t, c))
	}
	return nodes
}

// on returns a client of node with the cookie of c.
func on(t *testing.T, node *server.Server, c *tandemtest.Client) *tandemtest.Client {
	t.Helper()
	o := tandemtest.NewClient(t, node.URL())
	o.SetCookie(c.Cookie())
	return o
}

// Item 3: POST /incr on node A reaches the session's sockets on A, B and C,
// over WebSocket and over long-polling; an acked socket incr on C reaches
// them all too.
func TestClusterIncrReachesEveryNode(t *testing.T) {
	rds := tandemtest.StartRedis(t)
	nodes := startNodes(t, rds, 3, server.Config{})
	drv := tandemtest.NewDriver(t)
	a := tandemtest.NewClient(t, nodes[0].URL())
	if got := a.Incr(); got != 1 {
		t.Fatalf("first incr = %d", got)
	}
	var socks []*tandemtest.Socket
	for _, n := range nodes {
		for _, tr := range transports {
			socks = append(socks, drv.Dial(n.URL(), tandemtest.Options{Cookie: a.Cookie(), Transport: tr}))
		}
	}
	if got := a.Incr(); got != 2 {
		t.Fatalf("second incr = %d", got)
	}
	for i, s := range socks {
		if got := s.Count(wait); got != 2 {
			t.Errorf("socket %d (node %d): current count %d, want 2", i, i/2, got)
		}
	}
	if got := socks[5].Incr(); got != 3 {
		t.Fatalf("socket incr on node C acked %d, want 3", got)
	}
	for i, s := range socks {
		if got := s.Count(wait); got != 3 {
			t.Errorf("socket %d (node %d): current count %d, want 3", i, i/2, got)
		}
	}
	// Another session's socket hears nothing of it.
	b := tandemtest.NewClient(t, nodes[1].URL())
	b.Incr()
	other := drv.Dial(nodes[2].URL(), tandemtest.Options{Cookie: b.Cookie()})
	a.Incr()
	if e, ok := other.Next(300 * time.Millisecond); ok {
		t.Errorf("another session's socket got %v", e)
	}
}

// Item 3: POST /logout on node A ends the session on every node: each
// socket, on every node and transport, gets session ended and then a clean
// server-side disconnect, and the old cookie is no session on any node.
func TestClusterLogoutEndsTheSessionEverywhere(t *testing.T) {
	rds := tandemtest.StartRedis(t)
	nodes := startNodes(t, rds, 3, server.Config{})
	drv := tandemtest.NewDriver(t)
	a := tandemtest.NewClient(t, nodes[0].URL())
	a.Incr()
	old := a.Cookie()
	var socks []*tandemtest.Socket
	for _, n := range nodes {
		for _, tr := range transports {
			socks = append(socks, drv.Dial(n.URL(), tandemtest.Options{Cookie: old, Transport: tr, Reconnect: true}))
		}
	}
	status, body, _ := a.Do(http.MethodPost, shared.RouteLogout)
	if status != http.StatusNoContent {
		t.Fatalf("logout: %d %s", status, body)
	}
	for i, s := range socks {
		var ended shared.SessionEnded
		s.Wait(shared.EventSessionEnded, wait).Arg(t, 0, &ended)
		var reason string
		s.Wait("disconnect", wait).Arg(t, 0, &reason)
		if ended.Reason != shared.ReasonLogout || reason != "io server disconnect" {
			t.Errorf("socket %d (node %d): session ended %+v then disconnect %q", i, i/2, ended, reason)
		}
	}
	for i, n := range nodes {
		stale := tandemtest.NewClient(t, n.URL())
		stale.SetCookie(old)
		if got := sessionCount(t, stale); got != 0 {
			t.Errorf("node %d: the logged-out cookie still has count %d", i, got)
		}
		if stale.Cookie() == old {
			t.Errorf("node %d: the logged-out cookie was not replaced by a new session", i)
		}
	}
}

// Items 3 and 4: 300 concurrent increments spread over three nodes, over
// HTTP and acked socket incr (WebSocket and polling), end at exactly +300,
// each answered value distinct; sockets watching on every node never see the
// count go backwards, and all end at 300.
func TestClusterConcurrentIncrementsAreExactAndInOrder(t *testing.T) {
	rds := tandemtest.StartRedis(t)
	nodes := startNodes(t, rds, 3, server.Config{})
	drv := tandemtest.NewDriver(t)
	a := tandemtest.NewClient(t, nodes[0].URL())
	sessionCount(t, a) // creates the session
	var watchers, socks []*tandemtest.Socket
	for _, n := range nodes {
		watchers = append(watchers, drv.Dial(n.URL(), tandemtest.Options{Cookie: a.Cookie()}))
		for _, tr := range transports {
			socks = append(socks, drv.Dial(n.URL(), tandemtest.Options{Cookie: a.Cookie(), Transport: tr}))
		}
	}

	var (
		mu  sync.Mutex
		got []int
		wg  sync.WaitGroup
	)
	add := func(v []int) { mu.Lock(); got = append(got, v...); mu.Unlock() }
	for _, n := range nodes {
		wg.Go(func() { add(incrHTTP(t, on(t, n, a), 50)) })
	}
	wg.Go(func() { add(incrSockets(t, socks, 25)) }) // 6 sockets × 25
	wg.Wait()
	expectRange(t, "300 increments over 3 nodes", got, 1, 300)

	for i, w := range watchers {
		last := 0
		for last < 300 {
			n := w.Count(wait)
			if n < last {
				t.Fatalf("watcher on node %d: current count %d after %d: it went backwards", i, n, last)
			}
			last = n
		}
	}
	for i, n := range nodes {
		if c := sessionCount(t, on(t, n, a)); c != 300 {
			t.Errorf("node %d: count %d, want 300", i, c)
		}
	}
}

// Item 3: a session that expires in Redis is noticed by idle sockets on
// every node: each hears "session ended" {"reason":"expired"}, then is
// disconnected; a new socket gets a new session.
func TestClusterExpiryIsNoticedOnEveryNode(t *testing.T) {
	rds := tandemtest.StartRedis(t)
	nodes := startNodes(t, rds, 3, server.Config{SessionTTL: 2 * time.Second, SessionCheckInterval: 200 * time.Millisecond})
	drv := tandemtest.NewDriver(t)
	a := tandemtest.NewClient(t, nodes[0].URL())
	a.Incr()
	a.Incr()
	var socks []*tandemtest.Socket
	for _, n := range nodes {
		socks = append(socks, drv.Dial(n.URL(), tandemtest.Options{Cookie: a.Cookie(), Reconnect: true, Jar: true}))
	}
	key := tandemtest.StoreKey(t, a.Cookie())
	if ttl := rds.Client(0).PTTL(t.Context(), redisstore.New(rds.Client(0), redisstore.Options{Prefix: "tandem:session:"}).RecordKey(key)).Val(); ttl <= 0 {
		t.Fatalf("the session's key has no TTL in Redis (%v)", ttl)
	}
	for i, s := range socks {
		var ended shared.SessionEnded
		s.Wait(shared.EventSessionEnded, 10*time.Second).Arg(t, 0, &ended)
		if ended.Reason != "expired" {
			t.Errorf("socket %d: session ended %q, want expired", i, ended.Reason)
		}
		var reason string
		s.Wait("disconnect", 10*time.Second).Arg(t, 0, &reason)
		if reason != "io server disconnect" {
			t.Errorf("socket %d: disconnect %q, want io server disconnect after the notice", i, reason)
		}
	}
	// A new socket (the page's "new session") on every node works.
	for i, n := range nodes {
		s := drv.Dial(n.URL(), tandemtest.Options{Cookie: a.Cookie()})
		if got := s.Incr(); got != 1 {
			t.Errorf("node %d: a new socket's incr after expiry = %d, want a new session's 1", i, got)
		}
	}
}

// clusterErrors reads the error body of a response.
func errorBody(t *testing.T, body string) string {
	t.Helper()
	var e shared.ErrorBody
	if err := json.Unmarshal([]byte(body), &e); err != nil || e.Error == "" {
		t.Fatalf("body %q is not a JSON error", body)
	}
	return e.Error
}

// Items 2 and 5: Redis stops and comes back, with two nodes serving a
// session with sockets on both. Meanwhile requests fail fast with 503 and a
// JSON error, a socket incr acks the error, /healthz says 503, nothing
// panics, the adapter's receive loops back off instead of spinning, and no
// goroutines pile up. Once Redis is back, everything works again by itself:
// the session (kept by Redis across its restart) and its count, socket
// increments, and delivery across nodes.
func TestClusterRedisOutage(t *testing.T) {
	rds := tandemtest.StartRedis(t)
	nodes := startNodes(t, rds, 2, server.Config{SessionCheckInterval: 200 * time.Millisecond})
	drv := tandemtest.NewDriver(t)
	a := tandemtest.NewClient(t, nodes[0].URL())
	a.Incr()
	sa := drv.Dial(nodes[0].URL(), tandemtest.Options{Cookie: a.Cookie(), Reconnect: true})
	sb := drv.Dial(nodes[1].URL(), tandemtest.Options{Cookie: a.Cookie(), Transport: tandemtest.Polling, Reconnect: true})
	if got := sb.Incr(); got != 2 || sa.Count(wait) != 2 {
		t.Fatalf("before the outage: incr on B = %d", got)
	}
	before := runtime.NumGoroutine()
	errsBefore := server.AdapterErrors(nodes[0]) + server.AdapterErrors(nodes[1])

	rds.Stop()
	outage := time.Now()
	for i := range 20 {
		for j, n := range nodes {
			c := on(t, n, a)
			start := time.Now()
			status, body, _ := c.Do(http.MethodPost, shared.RouteIncr)
			if d := time.Since(start); d > 3*time.Second {
				t.Errorf("node %d: POST /incr took %v with Redis down", j, d)
			}
			if status != http.StatusServiceUnavailable || errorBody(t, body) != "session store unavailable" {
				t.Fatalf("node %d, try %d: POST /incr with Redis down: %d %s, want 503 and a JSON error", j, i, status, body)
			}
			if status, body, _ := c.Do(http.MethodGet, shared.RouteHealth); status != http.StatusServiceUnavailable {
				t.Fatalf("node %d: /healthz with Redis down: %d %s, want 503", j, status, body)
			}
		}
	}
	for i, s := range []*tandemtest.Socket{sa, sb} {
		raw, err := s.EmitAck(shared.EventIncr)
		var e shared.ErrorBody
		if err != nil || json.Unmarshal(raw, &e) != nil || e.Error != "session store unavailable" {
			t.Errorf("socket %d: incr with Redis down acked %s (%v), want the store error", i, raw, err)
		}
	}
	// Let the adapter's loops run against the dead Redis for a while.
	time.Sleep(time.Until(outage.Add(2 * time.Second)))
	errs := server.AdapterErrors(nodes[0]) + server.AdapterErrors(nodes[1]) - errsBefore
	perSecond := float64(errs) / time.Since(outage).Seconds()
	t.Logf("adapter errors during the outage: %d (%.0f/s over two nodes)", errs, perSecond)
	if perSecond > 50 {
		t.Errorf("the adapter reported %.0f errors a second with Redis down: its receive loops spin", perSecond)
	}
	if g := runtime.NumGoroutine(); g > before+50 {
		t.Errorf("goroutines: %d before the outage, %d during it", before, g)
	}

	rds.Start()
	deadline := time.Now().Add(20 * time.Second)
	for {
		status, body, _ := a.Do(http.MethodPost, shared.RouteIncr)
		if status == http.StatusOK {
			if body != "3" {
				t.Fatalf("first incr after Redis came back = %s, want 3: the session and its count are kept", body)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("POST /incr still %d %s 20s after Redis came back", status, body)
		}
		time.Sleep(50 * time.Millisecond) // polling for recovery
	}
	for i, n := range nodes {
		c := on(t, n, a)
		for {
			status, body, _ := c.Do(http.MethodGet, shared.RouteHealth)
			if status == http.StatusOK {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("node %d: /healthz still %d %s 20s after Redis came back", i, status, body)
			}
			time.Sleep(50 * time.Millisecond) // polling for recovery
		}
	}
	// The adapters resubscribe by themselves (after their back-off): wait
	// until both nodes listen again, then a change on A reaches B's socket.
	raw := rds.Client(0)
	for {
		subs := raw.PubSubNumSub(t.Context(), "tandem:socket.io-request#/#").Val()["tandem:socket.io-request#/#"]
		if subs == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d nodes subscribed 20s after Redis came back, want 2", subs)
		}
		time.Sleep(50 * time.Millisecond) // polling for recovery
	}
	if got := sb.Incr(); got != 4 {
		t.Fatalf("socket incr on B after the outage = %d, want 4", got)
	}
	want := 5
	if got := a.Incr(); got != want {
		t.Fatalf("incr on A after the outage = %d, want %d", got, want)
	}
	for {
		if n := sb.Count(wait); n == want {
			break
		}
	}
	for i := 0; ; i++ {
		g := runtime.NumGoroutine()
		if g <= before+20 {
			break
		}
		if i == 100 {
			t.Errorf("goroutines: %d before the outage, %d after it", before, g)
			break
		}
		time.Sleep(50 * time.Millisecond) // goroutines of finished requests exit
	}
}

// Item 7: every node of one build serves one page version, so a client
// moved to another node (by the proxy, or after a node stopped) does not
// reinstall the app. The version is a hash of the assets and the API
// origin, not of the process's start time.
func TestClusterNodesServeOnePageVersion(t *testing.T) {
	rds := tandemtest.StartRedis(t)
	web := fakeWebDir(t)
	nodes := startNodes(t, rds, 2, server.Config{WebDir: web})
	var etags, appJS []string
	for i, n := range nodes {
		c := tandemtest.NewClient(t, n.URL())
		// The page checks for a new version with this request's ETag.
		status, _, hdr := c.Do(http.MethodHead, "/manifest.webmanifest")
		if status != http.StatusOK || hdr.Get("ETag") == "" {
			t.Fatalf("node %d: HEAD /manifest.webmanifest = %d, ETag %q", i, status, hdr.Get("ETag"))
		}
		etags = append(etags, hdr.Get("ETag"))
		_, js, _ := c.Do(http.MethodGet, "/app.js")
		m := regexp.MustCompile(`"GOAPP_VERSION":"([^"]+)"`).FindStringSubmatch(js)
		if m == nil {
			t.Fatalf("node %d: app.js has no GOAPP_VERSION", i)
		}
		appJS = append(appJS, m[1])
	}
	if etags[0] != etags[1] || appJS[0] != appJS[1] {
		t.Errorf("two nodes of one build serve versions %v (ETag) and %v (app.js)", etags, appJS)
	}
}

// Item 6 (and item 3's stopped node): the shipped nginx configuration in
// front of three nodes, with WebSocket and polling-only clients. A change
// made on another node reaches them; the node they are on stops, they
// reconnect through nginx to another node and keep their session and
// count; a logout through nginx ends them. Issue 18: Prometheus with the
// shipped scrape configuration (deploy/prometheus) scrapes all three nodes'
// operator's listeners, and its /api/v1/targets reports them up.
func TestClusterThroughNginx(t *testing.T) {
	rds := tandemtest.StartRedis(t)
	nodes := startNodes(t, rds, 3, server.Config{AdminAddr: "127.0.0.1:0"})
	var addrs, admins []string
	for _, n := range nodes {
		addrs = append(addrs, strings.TrimPrefix(n.URL(), "http://"))
		admins = append(admins, strings.TrimPrefix(n.AdminURL(), "http://"))
	}
	ngx := tandemtest.StartNginx(t, addrs)
	prom := tandemtest.StartPrometheus(t, admins)
	for deadline := time.Now().Add(30 * time.Second); ; {
		targets := prom.Targets(t)
		up := map[string]bool{}
		for _, tg := range targets {
			if tg.Health == "up" {
				up[strings.TrimSuffix(strings.TrimPrefix(tg.ScrapeURL, "http://"), "/metrics")] = true
			}
		}
		missing := 0
		for _, a := range admins {
			if !up[a] {
				missing++
			}
		}
		if missing == 0 && len(targets) == len(admins) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("Prometheus does not report the three nodes up after 30s: %+v (nodes %v)", targets, admins)
		}
		time.Sleep(100 * time.Millisecond) // polling Prometheus's view, bounded by the deadline
	}
	drv := tandemtest.NewDriver(t)
	c := tandemtest.NewClient(t, ngx.URL)
	if got := c.Incr(); got != 1 {
		t.Fatalf("incr through nginx = %d", got)
	}
	var socks []*tandemtest.Socket
	for _, tr := range transports {
		socks = append(socks, drv.Dial(ngx.URL, tandemtest.Options{Cookie: c.Cookie(), Transport: tr, Reconnect: true}))
	}
	key := tandemtest.StoreKey(t, c.Cookie())
	behind := -1
	for i, n := range nodes {
		if len(n.Sessions().Sockets(key)) == len(socks) {
			behind = i
		}
	}
	if behind < 0 {
		t.Fatal("the sockets through nginx are not all on one node: the upstream is not sticky")
	}
	other := nodes[(behind+1)%3]
	if got := on(t, other, c).Incr(); got != 2 {
		t.Fatalf("incr on another node = %d", got)
	}
	for i, s := range socks {
		if got := s.Count(wait); got != 2 {
			t.Errorf("socket %d: current count %d, want 2", i, got)
		}
	}

	// The node stops; nginx sends the reconnections to another one.
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if err := nodes[behind].Close(ctx); err != nil {
		t.Fatalf("stop node %d: %v", behind, err)
	}
	for i, s := range socks {
		s.Wait("disconnect", wait)
		s.Wait("connect", 15*time.Second)
		if got := s.Incr(); got != 3+i {
			t.Errorf("socket %d: incr after its node stopped = %d, want %d (same session, same count)", i, got, 3+i)
		}
	}
	if got := c.Incr(); got != 5 {
		t.Fatalf("incr through nginx after a node stopped = %d, want 5", got)
	}
	for _, s := range socks {
		for last := 0; last != 5; {
			last = s.Count(wait)
		}
	}

	status, body, _ := c.Do(http.MethodPost, shared.RouteLogout)
	if status != http.StatusNoContent {
		t.Fatalf("logout through nginx: %d %s", status, body)
	}
	for i, s := range socks {
		s.Wait(shared.EventSessionEnded, wait)
		var reason string
		s.Wait("disconnect", wait).Arg(t, 0, &reason)
		if reason != "io server disconnect" {
			t.Errorf("socket %d: disconnect %q after logout", i, reason)
		}
	}
}
