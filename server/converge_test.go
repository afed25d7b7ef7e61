package server_test

import (
	"context"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/tandem-go/tandem/internal/tandemtest"
	"github.com/tandem-go/tandem/server"
	"github.com/tandem-go/tandem/shared"
)

// Issue 17, convergence: after the adapter's connection to Redis drops and
// comes back, every socket of every node converges to its session's current
// state without waiting for a further change, and never goes back.

// converges reads s's current counts until one is want, before deadline,
// and fails the test if none is, or if the count ever went down. It
// returns when want arrived.
func converges(t *testing.T, name string, s *tandemtest.Socket, last, want int, deadline time.Time) time.Time {
	t.Helper()
	for {
		e, ok := s.Next(time.Until(deadline))
		if !ok {
			t.Errorf("%s: current count %d, want %d by the deadline; saw %v", name, last, want, s.Seen())
			return time.Time{}
		}
		if e.Name != shared.EventCurrentCount {
			continue
		}
		var n int
		e.Arg(t, 0, &n)
		if n < last {
			t.Errorf("%s: current count %d after %d: it went backwards", name, n, last)
		}
		last = n
		if n == want {
			return time.Now()
		}
	}
}

// untilRedisAnswers repeats do until it answers 200, for up to 20 s after
// Redis came back, and returns that answer's body.
func untilRedisAnswers(t *testing.T, what string, do func() (int, string)) string {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		status, body := do()
		if status == http.StatusOK {
			return body
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s still %d %s 20s after Redis came back", what, status, body)
		}
		time.Sleep(20 * time.Millisecond) // polling for Redis to answer again
	}
}

// A Redis restart (AOF, so the session survives; down 3 s): the first
// change committed on node 1 once Redis is back reaches every socket of the
// session on node 2 within 2 s, with no further change. Before the resync,
// node 2's subscription was often still backing off when node 1 published,
// and its sockets never heard of the change.
func TestClusterConvergesAfterRedisRestart(t *testing.T) {
	rds := tandemtest.StartRedisAOF(t)
	nodes := startNodes(t, rds, 2, server.Config{})
	drv := tandemtest.NewDriver(t)
	a := tandemtest.NewClient(t, nodes[0].URL())
	a.Incr()
	var socks []*tandemtest.Socket
	for _, tr := range transports {
		socks = append(socks, drv.Dial(nodes[1].URL(), tandemtest.Options{Cookie: a.Cookie(), Transport: tr}))
	}
	if got := a.Incr(); got != 2 {
		t.Fatalf("incr on node 1 = %d, want 2", got)
	}
	for i, s := range socks {
		if got := s.Count(wait); got != 2 {
			t.Fatalf("socket %d on node 2: count %d before the restart, want 2", i, got)
		}
	}

	rds.Kill()
	time.Sleep(3 * time.Second) // the outage itself: Redis is down for 3 s
	rds.Start()
	body := untilRedisAnswers(t, "POST /incr on node 1", func() (int, string) {
		status, body, _ := a.Do(http.MethodPost, shared.RouteIncr)
		return status, body
	})
	committed := time.Now()
	want, err := strconv.Atoi(body)
	if err != nil || want != 3 {
		t.Fatalf("first incr after the restart = %q, want 3 (the session survives the restart)", body)
	}
	for i, s := range socks {
		if at := converges(t, "socket "+strconv.Itoa(i)+" on node 2", s, 2, want, committed.Add(2*time.Second)); !at.IsZero() {
			t.Logf("socket %d on node 2 had the count %v after the commit", i, at.Sub(committed).Round(time.Millisecond))
		}
	}
}

// watchedFromNode2 starts a Redis and two nodes on it, makes a session on
// node 1 with a count of 1, and dials one socket of it per transport on
// node 2.
func watchedFromNode2(t *testing.T) (*tandemtest.Redis, *tandemtest.Client, []*tandemtest.Socket) {
	t.Helper()
	rds := tandemtest.StartRedis(t)
	nodes := startNodes(t, rds, 2, server.Config{})
	drv := tandemtest.NewDriver(t)
	a := tandemtest.NewClient(t, nodes[0].URL())
	a.Incr()
	var socks []*tandemtest.Socket
	for _, tr := range transports {
		socks = append(socks, drv.Dial(nodes[1].URL(), tandemtest.Options{Cookie: a.Cookie(), Transport: tr}))
	}
	return rds, a, socks
}

// CLIENT KILL TYPE pubsub while 100 increments flow through node 1 (once in
// the middle, once before the last): every socket on node 2 ends at the
// final count within 2 s of the last increment, never going back.
func TestClusterConvergesAfterPubsubKill(t *testing.T) {
	rds, a, socks := watchedFromNode2(t)
	raw := rds.Client(0)
	for i := 1; i <= 100; i++ {
		if i == 50 || i == 100 {
			if err := raw.ClientKillByFilter(t.Context(), "TYPE", "pubsub").Err(); err != nil {
				t.Fatalf("CLIENT KILL TYPE pubsub: %v", err)
			}
		}
		if got := a.Incr(); got != 1+i {
			t.Fatalf("increment %d on node 1 = %d, want %d", i, got, 1+i)
		}
	}
	last := time.Now()
	for i, s := range socks {
		if at := converges(t, "socket "+strconv.Itoa(i)+" on node 2", s, 1, 101, last.Add(2*time.Second)); !at.IsZero() {
			t.Logf("socket %d on node 2 had the final count %v after the last increment", i, at.Sub(last).Round(time.Millisecond))
		}
	}
}

// Relays that could not be published are caught up on once publishing
// works again, though no subscription broke: with PUBLISH denied to the
// nodes' Redis user (ACL), three increments on node 1 are acknowledged but
// not relayed; once it is allowed again, with no further increment, the
// sockets on node 2 reach the count within 3 s, long before the periodic
// check (30 s), and never go back.
func TestClusterCatchesUpOnFailedRelays(t *testing.T) {
	rds, a, socks := watchedFromNode2(t)
	raw := rds.Client(0)
	acl := func(rule string) {
		t.Helper()
		if err := raw.Do(t.Context(), "ACL", "SETUSER", "default", rule).Err(); err != nil {
			t.Fatalf("ACL SETUSER default %s: %v", rule, err)
		}
	}
	acl("-publish")
	t.Cleanup(func() { _ = raw.Do(context.Background(), "ACL", "SETUSER", "default", "+publish").Err() })
	for i := 2; i <= 4; i++ {
		if got := a.Incr(); got != i {
			t.Fatalf("increment on node 1 = %d, want %d", got, i)
		}
	}
	acl("+publish")
	allowed := time.Now()
	for i, s := range socks {
		if at := converges(t, "socket "+strconv.Itoa(i)+" on node 2", s, 1, 4, allowed.Add(3*time.Second)); !at.IsZero() {
			t.Logf("socket %d on node 2 had the count %v after PUBLISH was allowed again", i, at.Sub(allowed).Round(time.Millisecond))
		}
	}
}

// The device list converges too: a device that signs in on node 1 right
// after a Redis restart, while node 2's subscription may still be backing
// off, makes every tab of the user on node 2 hear devices changed (and so
// read the list again) within 2 s, with no further change.
func TestClusterDeviceListConvergesAfterRedisRestart(t *testing.T) {
	rds := tandemtest.StartRedisAOF(t)
	nodes := startNodes(t, rds, 2, server.Config{})
	drv := tandemtest.NewDriver(t)
	laptop := tandemtest.NewClient(t, nodes[0].URL())
	login(t, laptop, "ada", firefoxLinux)
	var socks []*tandemtest.Socket
	for _, tr := range transports {
		socks = append(socks, drv.Dial(nodes[1].URL(), tandemtest.Options{Cookie: laptop.Cookie(), Transport: tr}))
	}
	for _, s := range socks {
		for { // what the tabs heard as they opened
			if _, ok := s.Next(1500 * time.Millisecond); !ok {
				break
			}
		}
	}

	rds.Kill()
	time.Sleep(3 * time.Second) // the outage itself: Redis is down for 3 s
	rds.Start()
	phone := tandemtest.NewClient(t, nodes[0].URL())
	phone.Header.Set("User-Agent", safariIOS)
	untilRedisAnswers(t, "POST /login on node 1", func() (int, string) {
		return postJSON(t, phone, shared.RouteLogin, `{"user":"ada"}`)
	})
	signedIn := time.Now()
	for i, s := range socks {
		for {
			e, ok := s.Next(time.Until(signedIn.Add(2 * time.Second)))
			if !ok {
				t.Errorf("laptop socket %d on node 2: no devices changed within 2 s of the phone's sign-in; saw %v", i, s.Seen())
				break
			}
			if e.Name == shared.EventDevicesChanged {
				t.Logf("laptop socket %d on node 2 heard devices changed %v after the sign-in", i, time.Since(signedIn).Round(time.Millisecond))
				break
			}
		}
	}
	if list := devicesOf(t, laptop); len(list) != 2 {
		t.Errorf("ada's devices after the restart: %+v, want the laptop and the phone", list)
	}
}
