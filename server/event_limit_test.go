package server_test

import (
	"slices"
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
	"github.com/tandem-go/tandem/shared"
)

// Issue 6, item 5: one socket's events are bounded by a token bucket
// (SOCKET_EVENT_BURST, SOCKET_EVENT_RATE). Events over it are acked with an
// error and not applied; a socket that keeps flooding is disconnected; a
// socket of the same session, with its own bucket, is served meanwhile.
func TestSocketEventRateLimit(t *testing.T) {
	t.Parallel()
	const burst = 5
	srv := tandemtest.Start(t, server.Config{SocketEventBurst: burst, SocketEventRate: 0.001})
	victim := secSession(t, srv.URL(), 0)
	flooder := connectRaceWS(t, srv.URL(), victim.Cookie())
	defer flooder.Close()
	secWSSend(t, flooder, "40")
	secWSRead(t, flooder, "40")
	// 2×burst acked increments at once: the first burst are applied, the
	// rest refused.
	for i := range 2 * burst {
		secWSSend(t, flooder, "42"+strconv.Itoa(i)+`["incr"]`)
	}
	applied, refused := 0, 0
	for range 2 * burst {
		got := secWSRead(t, flooder, "43")
		switch {
		case strings.Contains(got, `"error":"too many events; slow down"`):
			refused++
		case strings.HasPrefix(got, "43"+strconv.Itoa(applied)+"["+strconv.Itoa(applied+1)+"]"):
			applied++
		default:
			t.Fatalf("ack %q", got)
		}
	}
	if applied != burst || refused != burst {
		t.Fatalf("%d applied and %d refused, want %d and %d", applied, refused, burst, burst)
	}
	// Another socket of the session has its own bucket.
	other := connectRaceWS(t, srv.URL(), victim.Cookie())
	defer other.Close()
	secWSSend(t, other, "40")
	secWSRead(t, other, "40")
	secWSSend(t, other, `421["incr"]`)
	if got := secWSRead(t, other, "43"); got != "431["+strconv.Itoa(burst+1)+"]" {
		t.Fatalf("the other socket's incr acked %q", got)
	}
	// Keep flooding without acks: the connection is closed. The first of
	// these is the one over the bound, so the server may close before the
	// rest are written: a write error then is the disconnect.
	for range burst + 1 {
		if err := flooder.WriteMessage(websocket.TextMessage, []byte(`42["incr"]`)); err != nil {
			break
		}
	}
	_ = flooder.SetReadDeadline(time.Now().Add(secWait))
	for {
		_, msg, err := flooder.ReadMessage()
		if err != nil {
			if !websocket.IsCloseError(err, websocket.CloseNormalClosure, websocket.CloseAbnormalClosure, websocket.CloseGoingAway) && !strings.Contains(err.Error(), "EOF") && !strings.Contains(err.Error(), "reset") {
				t.Fatalf("the flooding socket was not disconnected: %v", err)
			}
			break
		}
		if string(msg) == "2" {
			secWSSend(t, flooder, "3")
		}
	}
	if got := secCount(t, srv.URL(), victim.Cookie()); got != burst+1 {
		t.Errorf("count %d, want %d: refused events must not be applied", got, burst+1)
	}
}

// Issue 6, item 5: while one client floods (sockets that send events as
// fast as they can, reconnecting when they are disconnected), another
// client's acked increments keep their round trip: the median during the
// flood stays within a generous bound of the median measured before it, in
// the same run.
func TestFloodDoesNotSlowOtherClients(t *testing.T) {
	t.Parallel()
	srv := tandemtest.Start(t, server.Config{})
	flooderSession := secSession(t, srv.URL(), 0)
	other := connectRaceWS(t, srv.URL(), secSession(t, srv.URL(), 0).Cookie())
	defer other.Close()
	secWSSend(t, other, "40")
	secWSRead(t, other, "40")
	n := 0
	median := func(rounds int) time.Duration {
		t.Helper()
		d := make([]time.Duration, rounds)
		for i := range d {
			n++
			start := time.Now()
			secWSSend(t, other, "42"+strconv.Itoa(n)+`["incr"]`)
			if got, want := secWSRead(t, other, "43"), "43"+strconv.Itoa(n)+"["+strconv.Itoa(n)+"]"; got != want {
				t.Fatalf("incr acked %q, want %q", got, want)
			}
			d[i] = time.Since(start)
		}
		slices.Sort(d)
		return d[len(d)/2]
	}
	// The other client's own events stay within its burst (170 of
	// DefaultEventBurst), so however fast this machine sends them, none is
	// refused by the rate limit this test is not about.
	const warmUp, rounds = 10, 80
	if warmUp+2*rounds > sessionio.DefaultEventBurst {
		t.Fatalf("the other client would send %d events, over its burst of %d", warmUp+2*rounds, sessionio.DefaultEventBurst)
	}
	median(warmUp)
	before := median(rounds)

	stop := make(chan struct{})
	var sent, conns atomic.Int64
	floodStart := time.Now()
	var wg sync.WaitGroup
	target := "ws" + strings.TrimPrefix(srv.URL(), "http") + shared.SocketPath + secEIOQuery + "websocket"
	for range 1 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				conn, _, err := websocket.DefaultDialer.Dial(target, secHeader("Cookie", flooderSession.Cookie()))
				if err != nil {
					continue
				}
				conns.Add(1)
				go func() { // drain the acks and pings; ends when the conn does
					for {
						if _, _, err := conn.ReadMessage(); err != nil {
							return
						}
					}
				}()
				if conn.WriteMessage(websocket.TextMessage, []byte("40")) == nil {
					for {
						if conn.WriteMessage(websocket.TextMessage, []byte(`42["incr"]`)) != nil {
							break
						}
						sent.Add(1)
						select {
						case <-stop:
						default:
							continue
						}
						break
					}
				}
				conn.Close()
			}
		})
	}
	during := median(rounds)
	close(stop)
	wg.Wait()
	elapsed := time.Since(floodStart)
	t.Logf("other client's acked incr, median round trip: %v before, %v during a flood of %d events over %d connections in %v", before, during, sent.Load(), conns.Load(), elapsed)
	// Each flooding connection had its own bucket: at most a burst plus
	// the rate over the flood's duration were applied.
	bound := int(conns.Load()) * (sessionio.DefaultEventBurst + int(sessionio.DefaultEventRate*elapsed.Seconds()) + 1)
	if applied := secCount(t, srv.URL(), flooderSession.Cookie()); applied > bound {
		t.Errorf("%d of the flood's events were applied, over the bound of %d", applied, bound)
	}
	if sent.Load() < 1000 {
		t.Fatalf("the flood sent only %d events", sent.Load())
	}
	if limit := 10*before + 20*time.Millisecond; during > limit {
		t.Errorf("median round trip %v during the flood, over %v (10× the %v before, plus 20 ms)", during, limit, before)
	}
}
