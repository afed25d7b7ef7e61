package server_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/tandem-go/tandem/internal/tandemtest"
	"github.com/tandem-go/tandem/server"
	"github.com/tandem-go/tandem/shared"
)

const wait = 5 * time.Second

var transports = []tandemtest.Transport{tandemtest.WebSocket, tandemtest.Polling}

// Point 1: POST /incr counts per session and creates one when there is none.
func TestIncrCountsPerSession(t *testing.T) {
	srv := tandemtest.Start(t, server.Config{})
	a := tandemtest.NewClient(t, srv.URL())
	for want := 1; want <= 3; want++ {
		status, body, hdr := a.Do(http.MethodPost, shared.RouteIncr)
		if status != http.StatusOK || body != string(rune('0'+want)) {
			t.Fatalf("POST /incr #%d: %d %q, want 200 %q", want, status, body, string(rune('0'+want)))
		}
		if ct := hdr.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
			t.Errorf("Content-Type %q, want text/plain", ct)
		}
		if want == 1 && !strings.Contains(hdr.Get("Set-Cookie"), "tandem.sid=") {
			t.Errorf("first /incr set no session cookie: %q", hdr.Get("Set-Cookie"))
		}
	}
	if b := tandemtest.NewClient(t, srv.URL()); b.Incr() != 1 {
		t.Error("a second client did not start its own session at 1")
	}
}

// Point 2: every socket of the session hears each /incr, on both
// transports; sockets of other sessions hear nothing.
func TestIncrNotifiesEverySocketOfTheSession(t *testing.T) {
	for _, tr := range transports {
		t.Run(string(tr), func(t *testing.T) {
			srv := tandemtest.Start(t, server.Config{})
			a := tandemtest.NewClient(t, srv.URL())
			a.Do(http.MethodGet, shared.RouteSession)
			node := tandemtest.NewDriver(t)
			var tabs []*tandemtest.Socket
			for range 3 {
				tabs = append(tabs, node.Dial(srv.URL(), tandemtest.Options{Cookie: a.Cookie(), Transport: tr}))
			}
			b := tandemtest.NewClient(t, srv.URL())
			b.Do(http.MethodGet, shared.RouteSession)
			other := node.Dial(srv.URL(), tandemtest.Options{Cookie: b.Cookie(), Transport: tr})

			for want := 1; want <= 3; want++ {
				if got := a.Incr(); got != want {
					t.Fatalf("incr = %d, want %d", got, want)
				}
				for i, tab := range tabs {
					if got := tab.Count(wait); got != want {
						t.Errorf("tab %d: current count %d, want %d", i, got, want)
					}
				}
			}
			if e, ok := other.Next(300 * time.Millisecond); ok {
				t.Errorf("a socket of another session got %v", e)
			}
		})
	}
}
