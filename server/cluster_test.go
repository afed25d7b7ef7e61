package server_test

import (
	"encoding/json"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/tandem-go/tandem/internal/tandemtest"
	"github.com/tandem-go/tandem/server"
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
// every node: their connections close, and they come back in a new session.
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
	if ttl := rds.Client(0).PTTL(t.Context(), "tandem:session:"+key).Val(); ttl <= 0 {
		t.Fatalf("the session's key has no TTL in Redis (%v)", ttl)
	}
	for i, s := range socks {
		var reason string
		s.Wait("disconnect", 10*time.Second).Arg(t, 0, &reason)
		if reason == "io server disconnect" {
			t.Errorf("socket %d: a clean disconnect, want the connection closed so the client reconnects", i)
		}
		s.Wait("connect", 10*time.Second)
	}
	for i, s := range socks {
		if got := s.Incr(); got < 1 || got > 3 {
			t.Errorf("socket %d: incr after expiry = %d, want a new session's count", i, got)
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
