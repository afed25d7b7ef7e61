package server_test

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/tandem-go/tandem/internal/tandemtest"
	"github.com/tandem-go/tandem/server"
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
	// Keep flooding without acks: the connection is closed.
	for range burst + 1 {
		secWSSend(t, flooder, `42["incr"]`)
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
