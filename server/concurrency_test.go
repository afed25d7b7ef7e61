package server_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tandem-go/tandem/internal/tandemtest"
	"github.com/tandem-go/tandem/server"
	"github.com/tandem-go/tandem/shared"
)

// concurrently runs incr n times at once and returns what each answered.
func concurrently(t *testing.T, n int, incr func() (int, error)) []int {
	t.Helper()
	var (
		mu  sync.Mutex
		got []int
		wg  sync.WaitGroup
	)
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			v, err := incr()
			if err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			got = append(got, v)
			mu.Unlock()
		}()
	}
	wg.Wait()
	return got
}

// incrHTTP posts /incr n times at once with the client's cookie and returns
// the answers.
func incrHTTP(t *testing.T, c *tandemtest.Client, n int) []int {
	t.Helper()
	return concurrently(t, n, func() (int, error) {
		req, _ := http.NewRequest(http.MethodPost, c.Base+shared.RouteIncr, nil)
		req.Header.Set("Cookie", c.Cookie())
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return 0, err
		}
		defer resp.Body.Close()
		var v int
		if err := json.NewDecoder(resp.Body).Decode(&v); err != nil || resp.StatusCode != http.StatusOK {
			return 0, fmt.Errorf("POST /incr: %d %v", resp.StatusCode, err)
		}
		return v, nil
	})
}

// incrSockets emits n acked incr from each socket at once and returns the
// acks.
func incrSockets(t *testing.T, socks []*tandemtest.Socket, n int) []int {
	t.Helper()
	var next atomic.Int64
	return concurrently(t, n*len(socks), func() (int, error) {
		s := socks[int(next.Add(1))%len(socks)]
		raw, err := s.EmitAck(shared.EventIncr)
		var v int
		if err == nil {
			err = json.Unmarshal(raw, &v)
		}
		if err != nil {
			return 0, fmt.Errorf("incr acked %s: %v", raw, err)
		}
		return v, nil
	})
}

// expectRange fails unless got holds each of from..to exactly once: every
// increment took effect and none saw another's value.
func expectRange(t *testing.T, what string, got []int, from, to int) {
	t.Helper()
	slices.Sort(got)
	want := make([]int, 0, to-from+1)
	for i := from; i <= to; i++ {
		want = append(want, i)
	}
	if !slices.Equal(got, want) {
		t.Fatalf("%s answered %d values %v..., want each of %d..%d once", what, len(got), head(got), from, to)
	}
}

func head(v []int) []int { return v[:min(len(v), 20)] }

// expectCounts fails unless the socket receives current count from..to in
// increasing order: notifications leave in commit order, each after its
// commit, and the last one is the final value.
func expectCounts(t *testing.T, s *tandemtest.Socket, from, to int) {
	t.Helper()
	for want := from; want <= to; want++ {
		if got := s.Count(wait); got != want {
			t.Fatalf("current count %d, want %d (notifications out of commit order)", got, want)
		}
	}
}

func sessionCount(t *testing.T, c *tandemtest.Client) int {
	t.Helper()
	_, body, _ := c.Do(http.MethodGet, shared.RouteSession)
	var info shared.SessionInfo
	if err := json.Unmarshal([]byte(body), &info); err != nil {
		t.Fatalf("GET /session: %q", body)
	}
	return info.Count
}

// Point 7: no lost updates, from HTTP, sockets and both at once, with
// notifications in commit order. Runs on the memory and the bolt store.
func TestConcurrentIncrementsAreExact(t *testing.T) {
	for _, st := range []string{"memory", "bolt"} {
		t.Run(st, func(t *testing.T) {
			cfg := server.Config{}
			if st == "bolt" {
				cfg.Store = "bolt:" + t.TempDir() + "/sessions.db"
			}
			srv := tandemtest.Start(t, cfg)
			node := tandemtest.NewDriver(t)
			c := tandemtest.NewClient(t, srv.URL())
			c.Do(http.MethodGet, shared.RouteSession)
			watcher := node.Dial(srv.URL(), tandemtest.Options{Cookie: c.Cookie()})

			expectRange(t, "200 concurrent POST /incr", incrHTTP(t, c, 200), 1, 200)
			expectCounts(t, watcher, 1, 200)

			var socks []*tandemtest.Socket
			for i := range 5 {
				tr := tandemtest.WebSocket
				if i%2 == 1 {
					tr = tandemtest.Polling
				}
				socks = append(socks, node.Dial(srv.URL(), tandemtest.Options{Cookie: c.Cookie(), Transport: tr}))
			}
			expectRange(t, "5 sockets × 40 acked incr", incrSockets(t, socks, 40), 201, 400)
			expectCounts(t, watcher, 201, 400)

			var mixed []int
			var wg sync.WaitGroup
			wg.Add(2)
			go func() { defer wg.Done(); mixed = append(mixed, incrHTTP(t, c, 100)...) }()
			var fromSockets []int
			go func() { defer wg.Done(); fromSockets = incrSockets(t, socks[:4], 25) }()
			wg.Wait()
			expectRange(t, "100 POST /incr with 4 sockets × 25 incr", append(mixed, fromSockets...), 401, 600)
			expectCounts(t, watcher, 401, 600)
			if got := sessionCount(t, c); got != 600 {
				t.Errorf("final count %d, want 600", got)
			}
		})
	}
}

// Point 8: a long-polling socket never writes back a stale session. The
// recipe's polling requests re-save the session they loaded at handshake,
// undoing concurrent increments and reviving destroyed sessions.
func TestPollingNeverWritesBackAStaleSession(t *testing.T) {
	srv := tandemtest.Start(t, server.Config{})
	node := tandemtest.NewDriver(t)
	c := tandemtest.NewClient(t, srv.URL())
	c.Do(http.MethodGet, shared.RouteSession)
	poller := node.Dial(srv.URL(), tandemtest.Options{Cookie: c.Cookie(), Transport: tandemtest.Polling})
	for want := 1; want <= 4; want++ {
		if got := c.Incr(); got != want {
			t.Fatalf("POST /incr #%d with a polling socket attached: %d", want, got)
		}
		if got := poller.Count(wait); got != want {
			t.Fatalf("polling socket got %d, want %d", got, want)
		}
		poller.Emit("ping from the test") // packets from the poller, between writes
	}
	if got := sessionCount(t, c); got != 4 {
		t.Fatalf("count %d after four increments, want 4", got)
	}

	old := c.Cookie()
	if status, _, _ := c.Do(http.MethodPost, shared.RouteLogout); status != http.StatusNoContent {
		t.Fatalf("logout: %d", status)
	}
	poller.Wait("disconnect", wait)
	// The client closes its Engine.IO connection after the server's
	// disconnect; once the server has dropped it, no request of that
	// connection can reach the session any more.
	engineIO := server.SocketServer(srv).Engine()
	deadline := time.Now().Add(wait)
	for engineIO.ClientsCount() != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%d Engine.IO connections still open %v after the logout", engineIO.ClientsCount(), wait)
		}
		time.Sleep(5 * time.Millisecond)
	}
	stale := tandemtest.NewClient(t, srv.URL())
	stale.SetCookie(old)
	if got := sessionCount(t, stale); got != 0 {
		t.Errorf("the logged-out session came back with count %d", got)
	}
	if stale.Cookie() == old {
		t.Error("the logged-out cookie still names a live session")
	}
}
