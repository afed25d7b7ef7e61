package server_test

// Issue 6, item 14: a churn soak. Sockets connect, increment and disconnect
// in waves across many sessions while other sessions are logged out or
// expire (their records deleted behind the server's back, as the store's
// expiry does). Afterwards the server's goroutines and heap are back near
// their baseline, every acknowledged increment is in the final counts, and
// no socket heard another session's events.
//
// The sockets speak Engine.IO/Socket.IO over real WebSockets
// (gorilla/websocket), not through the Node.js driver: a thousand official
// clients in one Node process would measure Node on this shared machine
// more than the server. By default it runs 10 waves of 100 sockets (about
// 1000 sockets, well under a minute); TANDEM_SOAK_WAVES=N runs longer.

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/tandem-go/tandem/internal/tandemtest"
	"github.com/tandem-go/tandem/server"
	"github.com/tandem-go/tandem/server/sessionio"
	"github.com/tandem-go/tandem/server/store/memory"
	"github.com/tandem-go/tandem/shared"
)

// soakSocket is one raw Socket.IO client over a WebSocket; every method
// returns errors (it runs in worker goroutines, which must not FailNow).
type soakSocket struct {
	c     *websocket.Conn
	heard []int // current count values, in order
	ended int   // session ended events
}

func soakDial(url, cookie string) (*soakSocket, error) {
	c, _, err := websocket.DefaultDialer.Dial(url, http.Header{"Cookie": {cookie}})
	if err != nil {
		return nil, err
	}
	s := &soakSocket{c: c}
	if _, err := s.read("0"); err != nil {
		c.Close()
		return nil, err
	}
	if err := c.WriteMessage(websocket.TextMessage, []byte("40")); err != nil {
		c.Close()
		return nil, err
	}
	if _, err := s.read("40"); err != nil {
		c.Close()
		return nil, err
	}
	return s, nil
}

// read returns the next message starting with prefix, recording the events
// it passes and answering pings.
func (s *soakSocket) read(prefix string) (string, error) {
	_ = s.c.SetReadDeadline(time.Now().Add(15 * time.Second))
	for {
		_, b, err := s.c.ReadMessage()
		if err != nil {
			return "", err
		}
		msg := string(b)
		switch {
		case msg == "2":
			if err := s.c.WriteMessage(websocket.TextMessage, []byte("3")); err != nil {
				return "", err
			}
			continue
		case strings.HasPrefix(msg, `42["`+shared.EventCurrentCount+`",`):
			n, err := strconv.Atoi(strings.TrimSuffix(strings.TrimPrefix(msg, `42["`+shared.EventCurrentCount+`",`), "]"))
			if err != nil {
				return "", fmt.Errorf("current count %q: %v", msg, err)
			}
			s.heard = append(s.heard, n)
		case strings.HasPrefix(msg, `42["`+shared.EventSessionEnded+`"`):
			s.ended++
		}
		if strings.HasPrefix(msg, prefix) {
			return msg, nil
		}
	}
}

// incr emits an acked incr and returns the acked count.
func (s *soakSocket) incr(id int) (int, error) {
	if err := s.c.WriteMessage(websocket.TextMessage, []byte("42"+strconv.Itoa(id)+`["incr"]`)); err != nil {
		return 0, err
	}
	msg, err := s.read("43" + strconv.Itoa(id) + "[")
	if err != nil {
		return 0, err
	}
	return strconv.Atoi(strings.TrimSuffix(strings.TrimPrefix(msg, "43"+strconv.Itoa(id)+"["), "]"))
}

func soakHeap() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

func TestChurnSoak(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: the churn soak takes a while")
	}
	waves := 10
	if v := os.Getenv("TANDEM_SOAK_WAVES"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			t.Fatalf("TANDEM_SOAK_WAVES=%q is not a positive number", v)
		}
		waves = n
	}
	const (
		perWave  = 100
		steady   = 40 // sessions that live through the soak
		churned  = 20 // sessions logged out or expired, one per wave round
		incrs    = 3  // acked incr per socket
		slackGor = 20
		// soakRange apart, the steady sessions' counts never meet.
		soakRange = 1_000_000
	)
	st := memory.New()
	srv := tandemtest.Start(t, server.Config{
		Backend:            st,
		SessionCreateBurst: 1_000_000, SessionCreateRate: 1_000_000, // all from 127.0.0.1
		MaxConnsPerClient:    10_000,
		SessionCheckInterval: 200 * time.Millisecond,
	})
	wsURL := "ws" + strings.TrimPrefix(srv.URL(), "http") + shared.SocketPath + secEIOQuery + "websocket"
	cookies := make([]string, steady+churned)
	for i := range cookies {
		cookies[i] = secSession(t, srv.URL(), 0).Cookie()
	}
	// Each steady session counts in a range of its own, so a count that a
	// socket hears tells which session it came from.
	base := func(sess int) int { return (sess + 1) * soakRange }
	for i := range steady {
		r := httptest.NewRequest(http.MethodPost, srv.URL()+shared.RouteIncr, nil)
		r.Header.Set("Cookie", cookies[i])
		if _, err := srv.Sessions().Update(httptest.NewRecorder(), r, func(v sessionio.Values) error {
			v["count"] = base(i) // the key of server/counter
			return nil
		}, nil); err != nil {
			t.Fatalf("steady session %d: setting its count: %v", i, err)
		}
		if got := secCount(t, srv.URL(), cookies[i]); got != base(i) {
			t.Fatalf("steady session %d: count %d after setting it to %d", i, got, base(i))
		}
	}
	baseG, baseHeap := runtime.NumGoroutine(), soakHeap()
	start := time.Now()

	var (
		mu       sync.Mutex
		acks     = make([][]int, steady) // acked values per steady session
		problems []string
		sockets  atomic.Int64
		events   atomic.Int64
	)
	problem := func(format string, args ...any) {
		mu.Lock()
		defer mu.Unlock()
		if len(problems) < 20 {
			problems = append(problems, fmt.Sprintf(format, args...))
		}
	}
	for w := range waves {
		var wg sync.WaitGroup
		for i := range perWave {
			wg.Add(1)
			go func() {
				defer wg.Done()
				sess := (w*perWave + i) % len(cookies)
				s, err := soakDial(wsURL, cookies[sess])
				if err != nil {
					if sess < steady {
						problem("wave %d socket %d (steady session %d): connect: %v", w, i, sess, err)
					}
					return
				}
				defer s.c.Close()
				sockets.Add(1)
				for k := range incrs {
					n, err := s.incr(k)
					if err != nil {
						if sess < steady {
							problem("wave %d socket %d (steady session %d): incr: %v", w, i, sess, err)
						}
						return
					}
					events.Add(1)
					if sess < steady {
						mu.Lock()
						acks[sess] = append(acks[sess], n)
						mu.Unlock()
					}
				}
				// What it heard: counts of its own session only, which rise
				// (one node sends them in commit order).
				for j := 1; j < len(s.heard); j++ {
					if s.heard[j] <= s.heard[j-1] {
						problem("wave %d socket %d (session %d) heard counts %v: not rising, another session's?", w, i, sess, s.heard)
						break
					}
				}
				if sess < steady {
					for _, n := range s.heard {
						if n <= base(sess) || n > base(sess)+soakRange {
							problem("wave %d socket %d (steady session %d) heard count %d: another session's", w, i, sess, n)
							break
						}
					}
				}
				if sess < steady && s.ended > 0 {
					problem("wave %d socket %d (steady session %d) heard session ended", w, i, sess)
				}
			}()
		}
		// Meanwhile one churned session ends: a logout, or (every other
		// wave) its record disappears as on expiry.
		victim := steady + w%churned
		if w%2 == 0 {
			if status, body, _ := secDo(t, http.MethodPost, srv.URL()+shared.RouteLogout, secHeader("Cookie", cookies[victim])); status != http.StatusNoContent {
				t.Errorf("logout of churned session %d: %d %q", victim, status, body)
			}
		} else if err := st.Delete(context.Background(), tandemtest.StoreKey(t, cookies[victim])); err != nil {
			t.Errorf("expiring churned session %d: %v", victim, err)
		}
		wg.Wait()
	}
	took := time.Since(start)
	for _, p := range problems {
		t.Error(p)
	}

	// Every acked increment is in the final counts: a steady session's acks
	// are exactly base+1..its count.
	for i := range steady {
		got := secCount(t, srv.URL(), cookies[i]) - base(i)
		seen := map[int]bool{}
		for _, n := range acks[i] {
			seen[n-base(i)] = true
		}
		if got != len(acks[i]) || len(seen) != len(acks[i]) || (got > 0 && (!seen[1] || !seen[got])) {
			t.Errorf("steady session %d: count %d after %d acked increments (distinct %d)", i, got, len(acks[i]), len(seen))
		}
	}

	// Goroutines and heap back near the baseline, once the server has
	// noticed every client gone.
	deadline := time.Now().Add(30 * time.Second)
	g := runtime.NumGoroutine()
	for g > baseG+slackGor && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
		g = runtime.NumGoroutine()
	}
	heap := soakHeap()
	t.Logf("soak: %d waves, %d sockets connected, %d acked increments across %d sessions (%d logged out or expired), %v; goroutines %d before, %d after; heap %.1f MB before, %.1f MB after; store holds %d sessions",
		waves, sockets.Load(), events.Load(), steady+churned, waves, took.Round(time.Millisecond), baseG, g, float64(baseHeap)/1e6, float64(heap)/1e6, st.Len())
	if g > baseG+slackGor {
		buf := make([]byte, 1<<20)
		t.Errorf("%d goroutines after the soak, %d before:\n%s", g, baseG, buf[:runtime.Stack(buf, true)])
	}
	if heap > baseHeap*2+8<<20 {
		t.Errorf("heap %d bytes after the soak, %d before", heap, baseHeap)
	}
	if want := int64(waves * perWave); sockets.Load() < want*steady/(steady+churned) {
		t.Errorf("only %d sockets connected out of %d", sockets.Load(), want)
	}
}
