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
	rc := tandemtest.StartRedisCluster(t, 3, 0)
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
	a, socks := sessionOnEveryNode(t, nodes)
	run := incrementAcross(t, nodes, a, rs.Master.Kill, func() {
		// Once the replica is the master, the old one comes back as its
		// replica: until then no write can be confirmed by a replica, so
		// none is acknowledged.
		addr := rs.WaitFailover(t, 30*time.Second)
		t.Logf("new master %s", addr)
		rs.Master.StartAsReplicaOf(addr)
	})
	if len(run.dup) > 0 {
		t.Errorf("values acked twice (a write acked before the failover was lost): %v", head(run.dup))
	}
	if run.final < len(run.acked) || run.final < run.maxAcked() {
		t.Errorf("final count %d after %d acked increments (highest %d): acked increments were lost", run.final, len(run.acked), run.maxAcked())
	}
	for i, s := range socks {
		converges(t, "socket "+strconv.Itoa(i)+" (node "+strconv.Itoa(i/2+1)+")", s, 0, run.final, run.last.Add(5*time.Second))
	}
}

// Redis Cluster, three masters with a replica each, two tandem nodes. The
// master of the adapter's request channel, which every relay message goes
// through (each PUBLISH goes to its channel's slot master), is killed
// during increments on both nodes: a replica takes its place, increments
// are acknowledged again on both nodes, and every socket on both converges
// to the final count without going back; after the stream, increments on
// both nodes are relayed with no relay error. A relay PUBLISH made before
// the client saw the new master fails, and its count reaches the other
// node only at the next periodic check (sessionio's design for a failed
// PUBLISH), so the check runs every second here: with the default 30 s a
// lost last count failed the 5 s bound in 1 of 3 -race runs. Cluster
// writes do not wait for a replica, so an increment acknowledged just
// before the kill may be lost (README): that is logged, not failed.
func TestClusterFailoverOnRedisCluster(t *testing.T) {
	rc := tandemtest.StartRedisCluster(t, 3, 1)
	var nodes []*server.Server
	for range 2 {
		nodes = append(nodes, tandemtest.Start(t, server.Config{Store: rc.URL(), SessionCheckInterval: time.Second, AdminAddr: "127.0.0.1:0"}))
	}
	a, socks := sessionOnEveryNode(t, nodes)
	const relay = "tandem:socket.io-request#/#" // the Redis adapter's request channel
	dead := rc.MasterOf(t, relay)
	run := incrementAcross(t, nodes, a, dead.Kill, func() {
		m := rc.WaitFailover(t, dead, relay, 30*time.Second)
		t.Logf("%s is the relay channel's master in place of %s", m.Addr(), dead.Addr())
	})
	if len(run.dup) > 0 {
		t.Logf("values acked twice (acked writes lost at the failover, as Cluster allows): %v", head(run.dup))
	}
	for i, s := range socks {
		converges(t, "socket "+strconv.Itoa(i)+" (node "+strconv.Itoa(i/2+1)+")", s, 0, run.final, run.last.Add(5*time.Second))
	}
	// The relay works again: 20 more increments, half on each node, and
	// no PUBLISH of theirs fails.
	before := relayErrors(t, nodes)
	for i := range 20 {
		on(t, nodes[i%2], a).Incr()
	}
	if after := relayErrors(t, nodes); after != before {
		t.Errorf("%v relay errors in 20 increments after the failover: the nodes still publish to the dead master", after-before)
	}
	t.Logf("%v relay errors during the failover", before)
}

// relayErrors is the sum of the nodes' tandem_relay_errors_total.
func relayErrors(t *testing.T, nodes []*server.Server) float64 {
	t.Helper()
	n := 0.0
	for _, node := range nodes {
		fams, _ := scrape(t, node.AdminURL())
		v, ok := sample(fams, "tandem_relay_errors_total")
		if !ok {
			t.Fatal("tandem_relay_errors_total is not served")
		}
		n += v
	}
	return n
}

// sessionOnEveryNode makes a session with a count of 1 and dials, on every
// node, one socket of it per transport (reconnecting ones), in node order.
func sessionOnEveryNode(t *testing.T, nodes []*server.Server) (*tandemtest.Client, []*tandemtest.Socket) {
	t.Helper()
	drv := tandemtest.NewDriver(t)
	a := tandemtest.NewClient(t, nodes[0].URL())
	a.Incr()
	var socks []*tandemtest.Socket
	for _, n := range nodes {
		for _, tr := range transports {
			socks = append(socks, drv.Dial(n.URL(), tandemtest.Options{Cookie: a.Cookie(), Transport: tr, Reconnect: true}))
		}
	}
	return a, socks
}

// failoverRun is what a stream of increments saw across a Redis failover.
type failoverRun struct {
	acked map[int]bool // the values answered
	dup   []int        // values answered twice: an acked write was lost
	final int          // the session's count once the stream stopped
	last  time.Time    // when the stream stopped
}

func (r failoverRun) maxAcked() int {
	m := 0
	for v := range r.acked {
		m = max(m, v)
	}
	return m
}

// incrementAcross streams POST /incr as a's session on every node (a 503
// during the failover is not acknowledged). Once 50 increments are acked it
// calls kill, which kills Redis's master, then failover, which returns once
// another took over; then it waits for an increment acked after the kill,
// lets the stream run on the new master for 500 ms, stops it, and reads
// the count.
func incrementAcross(t *testing.T, nodes []*server.Server, a *tandemtest.Client, kill, failover func()) failoverRun {
	t.Helper()
	var (
		mu     sync.Mutex
		run    = failoverRun{acked: map[int]bool{1: true}}
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
				if run.acked[v] {
					run.dup = append(run.dup, v)
				}
				run.acked[v] = true
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
		n := len(run.acked)
		mu.Unlock()
		if n >= 50 {
			break
		}
		time.Sleep(10 * time.Millisecond) // polling for the stream to get going
	}
	kill()
	killedAt := time.Now()
	mu.Lock()
	killed = true
	mu.Unlock()
	failover()
	t.Logf("failover done %v after the kill", time.Since(killedAt).Round(time.Millisecond))
	select {
	case <-after:
		t.Logf("first increment acked %v after the kill", time.Since(killedAt).Round(time.Millisecond))
	case <-time.After(30 * time.Second):
		close(stop)
		wg.Wait()
		t.Fatal("no increment acked within 30s of the master's death: no failover")
	}
	// A few more on the new master, then stop.
	time.Sleep(500 * time.Millisecond) // let the stream run on the new master
	close(stop)
	wg.Wait()
	run.last = time.Now()

	status, body, _ := a.Do(http.MethodGet, shared.RouteSession)
	var info shared.SessionInfo
	if err := json.Unmarshal([]byte(body), &info); err != nil || status != http.StatusOK {
		t.Fatalf("GET /session: %d %q", status, body)
	}
	run.final = info.Count
	mu.Lock()
	defer mu.Unlock()
	t.Logf("%d increments acked, final count %d", len(run.acked), run.final)
	return run
}
