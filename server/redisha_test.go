package server_test

import (
	"encoding/json"
	"net/http"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/tandem-go/tandem/internal/tandemtest"
	"github.com/tandem-go/tandem/server"
	"github.com/tandem-go/tandem/shared"
)

// Issue 17 item 2: SESSION_STORE in the Redis Cluster form (three masters
// on loopback). A change on node 1 reaches the session's sockets on both
// nodes, an acked socket incr on node 2 too, and a logout on node 1 ends
// every socket on both.
func TestClusterOnRedisCluster(t *testing.T) {
	rc := tandemtest.StartRedisCluster(t, 3)
	var nodes []*server.Server
	for range 2 {
		nodes = append(nodes, tandemtest.Start(t, server.Config{Store: rc.URL()}))
	}
	drv := tandemtest.NewDriver(t)
	a := tandemtest.NewClient(t, nodes[0].URL())
	a.Incr()
	var socks []*tandemtest.Socket
	for _, n := range nodes {
		for _, tr := range transports {
			socks = append(socks, drv.Dial(n.URL(), tandemtest.Options{Cookie: a.Cookie(), Transport: tr}))
		}
	}
	if got := a.Incr(); got != 2 {
		t.Fatalf("incr on node 1 = %d", got)
	}
	for i, s := range socks {
		if got := s.Count(wait); got != 2 {
			t.Errorf("socket %d (node %d): count %d, want 2", i, i/2+1, got)
		}
	}
	if got := socks[3].Incr(); got != 3 {
		t.Fatalf("socket incr on node 2 = %d, want 3", got)
	}
	for i, s := range socks {
		if got := s.Count(wait); got != 3 {
			t.Errorf("socket %d (node %d): count %d, want 3", i, i/2+1, got)
		}
	}
	status, body, _ := a.Do(http.MethodPost, shared.RouteLogout)
	if status != http.StatusNoContent {
		t.Fatalf("logout: %d %s", status, body)
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

// Issue 17 item 3: Redis master, replica and three sentinels, two tandem
// nodes in the Sentinel form. The master is killed during a stream of
// increments on both nodes: after the failover every acknowledged
// increment is in the final count (no acked value is answered twice, which
// a lost write would cause), and every socket converges to it without a
// further change.
func TestClusterSentinelFailover(t *testing.T) {
	rs := tandemtest.StartRedisSentinel(t)
	var nodes []*server.Server
	for range 2 {
		nodes = append(nodes, tandemtest.Start(t, server.Config{Store: rs.URL()}))
	}
	drv := tandemtest.NewDriver(t)
	a := tandemtest.NewClient(t, nodes[0].URL())
	a.Incr()
	var socks []*tandemtest.Socket
	for _, n := range nodes {
		for _, tr := range transports {
			socks = append(socks, drv.Dial(n.URL(), tandemtest.Options{Cookie: a.Cookie(), Transport: tr, Reconnect: true}))
		}
	}

	var (
		mu     sync.Mutex
		acked  = map[int]bool{1: true}
		dup    []int
		wg     sync.WaitGroup
		stop   = make(chan struct{})
		after  = make(chan struct{}) // closed once an increment was acked after the kill
		once   sync.Once
		killed bool
	)
	for _, n := range nodes {
		c := on(t, n, a)
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				status, body, _ := c.Do(http.MethodPost, shared.RouteIncr)
				if status != http.StatusOK {
					continue // 503 during the failover; not acknowledged
				}
				v, err := strconv.Atoi(body)
				if err != nil {
					t.Errorf("POST /incr: %q", body)
					return
				}
				mu.Lock()
				if acked[v] {
					dup = append(dup, v)
				}
				acked[v] = true
				if killed {
					once.Do(func() { close(after) })
				}
				mu.Unlock()
			}
		})
	}
	// Some increments before the kill.
	for {
		mu.Lock()
		n := len(acked)
		mu.Unlock()
		if n >= 50 {
			break
		}
		time.Sleep(10 * time.Millisecond) // polling for the stream to get going
	}
	rs.Master.Kill()
	killedAt := time.Now()
	mu.Lock()
	killed = true
	mu.Unlock()
	// Once the replica is the master, the old one comes back as its
	// replica (the sentinels reconfigure it): until then no write can be
	// confirmed by a replica, so none is acknowledged.
	t.Logf("new master %s, %v after the kill", rs.WaitFailover(t, 30*time.Second), time.Since(killedAt).Round(time.Millisecond))
	rs.Master.Start()
	select {
	case <-after:
		t.Logf("first increment acked %v after the master was killed", time.Since(killedAt).Round(time.Millisecond))
	case <-time.After(30 * time.Second):
		close(stop)
		wg.Wait()
		t.Fatal("no increment acked within 30s of the master's death: no failover")
	}
	// A few more on the new master, then stop.
	time.Sleep(500 * time.Millisecond) // let the stream run on the new master
	close(stop)
	wg.Wait()
	last := time.Now()

	status, body, _ := a.Do(http.MethodGet, shared.RouteSession)
	var info shared.SessionInfo
	if err := json.Unmarshal([]byte(body), &info); err != nil || status != http.StatusOK {
		t.Fatalf("GET /session: %d %q", status, body)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(dup) > 0 {
		t.Errorf("values acked twice (a write acked before the failover was lost): %v", head(dup))
	}
	maxAcked := 0
	for v := range acked {
		maxAcked = max(maxAcked, v)
	}
	if info.Count < len(acked) || info.Count < maxAcked {
		t.Errorf("final count %d after %d acked increments (highest %d): acked increments were lost", info.Count, len(acked), maxAcked)
	}
	t.Logf("%d increments acked, final count %d", len(acked), info.Count)
	for i, s := range socks {
		converges(t, "socket "+strconv.Itoa(i)+" (node "+strconv.Itoa(i/2+1)+")", s, 0, info.Count, last.Add(5*time.Second))
	}
}
