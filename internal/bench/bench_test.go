package bench

import (
	"context"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tandem-go/tandem/internal/tandemtest"
	"github.com/tandem-go/tandem/server"
)

func TestParseEvent(t *testing.T) {
	for _, tc := range []struct {
		in, name, args string
		ok             bool
	}{
		{`["current count",5]`, "current count", `5]`, true},
		{`12["incr"]`, "incr", `]`, true},
		{`["session ended",{"reason":"logout"}]`, "session ended", `{"reason":"logout"}]`, true},
		{`["a\"b",1]`, `a"b`, `1]`, true},
		{``, "", "", false},
		{`[`, "", "", false},
		{`["x"`, "", "", false},
		{`[5,1]`, "", "", false},
		{`["unterminated`, "", "", false},
		{`["a\"b"`, "", "", false},
		{`{}`, "", "", false},
	} {
		name, args, ok := parseEvent([]byte(tc.in))
		if ok != tc.ok || name != tc.name || string(args) != tc.args {
			t.Errorf("parseEvent(%q) = %q, %q, %v; want %q, %q, %v", tc.in, name, args, ok, tc.name, tc.args, tc.ok)
		}
	}
	for _, tc := range []struct {
		in   string
		want int64
		ok   bool
	}{
		{`5]`, 5, true}, {` 12 ,"x"]`, 12, true}, {`3.0]`, 3, true},
		{`3.5]`, 0, false}, {`"5"]`, 0, false}, {`]`, 0, false}, {``, 0, false},
	} {
		if got, ok := firstNumber([]byte(tc.in)); got != tc.want || ok != tc.ok {
			t.Errorf("firstNumber(%q) = %d, %v; want %d, %v", tc.in, got, ok, tc.want, tc.ok)
		}
	}
}

// The delivery accounting: arrivals before and after the response, a
// duplicate, and a socket that never receives are each counted as such.
func TestSessionAccounting(t *testing.T) {
	var samples atomic.Int64
	credited := make(chan struct{}, 1)
	s := &session{n: 3, pending: map[int64]*entry{}, early: map[int64][]time.Time{}, credited: credited}
	wasCredited := func() bool {
		select {
		case <-credited:
			return true
		default:
			return false
		}
	}
	t0 := time.Now()
	e := &entry{v: 1, n: 3, t0: t0}
	s.pending[1] = e
	s.arrive(1, t0.Add(time.Millisecond), &samples) // before the response
	e.done = true                                   // the response is in
	_ = wasCredited()
	s.arrive(1, t0.Add(2*time.Millisecond), &samples)
	if got := s.outstanding(); got != 1 {
		t.Fatalf("outstanding = %d, want 1 (one socket has not received)", got)
	}
	// The drain waits on credited: every credited delivery wakes it.
	if !wasCredited() {
		t.Fatal("a credited delivery did not signal the drain")
	}
	s.arrive(1, t0.Add(3*time.Millisecond), &samples)
	if got := s.outstanding(); got != 0 {
		t.Fatalf("outstanding = %d, want 0", got)
	}
	if !wasCredited() {
		t.Fatal("the last credited delivery did not signal the drain")
	}
	s.arrive(1, t0.Add(4*time.Millisecond), &samples) // a fourth copy: duplicate
	if wasCredited() {
		t.Fatal("an uncredited copy signalled the drain")
	}
	if s.dup != 0 || len(s.early) != 1 {
		// entry 1 was removed when complete, so the extra copy waits as unattributed
		t.Fatalf("dup=%d early=%d after a surplus copy", s.dup, len(s.early))
	}
	if len(s.lat) != 3 || samples.Load() != 3 {
		t.Fatalf("%d latency samples, want 3", len(s.lat))
	}
	// An arrival ahead of its request's entry is credited once the response re-keys it.
	e2 := &entry{v: 7, n: 1, t0: t0}
	s.arrive(7, t0.Add(time.Millisecond), &samples)
	s.attachEarly(e2, &samples)
	if e2.got != 1 {
		t.Fatalf("early arrival not credited: got=%d", e2.got)
	}
}

func TestConfigRefusesBadValues(t *testing.T) {
	for _, c := range []Config{
		{URL: "http://example.com:80"},
		{URL: "ftp://127.0.0.1:1"},
		{URL: "http://127.0.0.1:1", Sockets: MaxSockets + 1},
		{URL: "http://127.0.0.1:1", Duration: -time.Second},
		{URL: "http://127.0.0.1:1", Rate: -1},
		{URL: "http://127.0.0.1:1", Concurrency: 5000},
	} {
		if err := c.check(); err == nil {
			t.Errorf("%+v accepted", c)
		}
	}
}

func startServer(t *testing.T) *server.Server {
	return tandemtest.Start(t, server.Config{SessionCreateBurst: 10000, SessionCreateRate: 10000, SessionCreateGlobalRate: 10000})
}

// The client speaks enough Socket.IO to get the session's events, with the
// values the server sends, and sees a logout end its connection.
func TestDialReceivesEvents(t *testing.T) {
	srv := startServer(t)
	c := tandemtest.NewClient(t, srv.URL())
	if n := c.Incr(); n != 1 {
		t.Fatalf("first incr = %d", n)
	}
	got := make(chan string, 16)
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	s, err := Dial(ctx, srv.URL(), "/socket.io/", c.Cookie(), func(name string, args []byte, _ time.Time) {
		got <- name + " " + string(args)
	})
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	defer s.Close()
	if n := c.Incr(); n != 2 {
		t.Fatalf("second incr = %d", n)
	}
	select {
	case e := <-got:
		if e != "current count 2]" {
			t.Fatalf("event %q, want current count 2", e)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no event within 10s")
	}
	if status, body, _ := c.Do(http.MethodPost, "/logout"); status != http.StatusNoContent {
		t.Fatalf("logout: %d %s", status, body)
	}
	select {
	case <-s.Done():
		if s.Err() == nil {
			t.Fatal("connection ended without a reason")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("logout did not end the connection")
	}
	var ended bool
	for len(got) > 0 {
		ended = ended || strings.HasPrefix(<-got, "session ended ")
	}
	if !ended {
		t.Fatal("no session ended event before the disconnect")
	}
}

// A short run in each mode delivers every event to every socket, with
// counts that are exactly the previous + 1.
func TestRun(t *testing.T) {
	srv := startServer(t)
	for _, rate := range []float64{0, 100} {
		res, err := Run(t.Context(), Config{
			URL: srv.URL(), Sockets: 30, PerSession: 3, Duration: time.Second, Rate: rate,
			Concurrency: 4, Grace: 10 * time.Second, Log: tWriter{t},
		})
		if err != nil {
			t.Fatalf("rate %v: %v", rate, err)
		}
		if res.Sockets.Connected != 30 || res.Sockets.Sessions != 10 {
			t.Errorf("rate %v: sockets %+v", rate, res.Sockets)
		}
		if res.HTTP.OK == 0 || res.HTTP.Errors != 0 || res.HTTP.CountAnomalies != 0 {
			t.Errorf("rate %v: http %+v", rate, res.HTTP)
		}
		d := res.Delivery
		if d.Expected != 3*res.HTTP.OK || d.Missed != 0 || d.Received != d.Expected || d.P99Ms == nil || d.DuplicateOrUntracked != 0 {
			t.Errorf("rate %v: delivery %+v", rate, d)
		}
		if rate > 0 && (res.Load.Scheduled != 100 || res.Load.Sent+res.Load.Skipped != 100) {
			t.Errorf("rate %v: load %+v", rate, res.Load)
		}
	}
}

type tWriter struct{ t *testing.T }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}
