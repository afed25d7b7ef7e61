package server_test

import (
	"net/http"
	"testing"

	"github.com/tandem-go/tandem/internal/tandemtest"
	"github.com/tandem-go/tandem/server"
	"github.com/tandem-go/tandem/shared"
)

// The server's room emits go through the pre-framed broadcast: a session's
// tabs on WebSocket, on long-polling and upgrading from polling all get
// every count once and in order, the WebSocket ones pre-framed, the
// polling one through the library's path; on one node and, through the
// Redis adapter, on two.
func TestRoomEmitsArePreframed(t *testing.T) {
	for _, nodes := range []int{1, 2} {
		t.Run(map[int]string{1: "one node", 2: "two nodes, Redis"}[nodes], func(t *testing.T) {
			var srvs []*server.Server
			if nodes == 1 {
				srvs = []*server.Server{tandemtest.Start(t, server.Config{})}
			} else {
				srvs = startNodes(t, tandemtest.StartRedis(t), nodes, server.Config{})
			}
			a := tandemtest.NewClient(t, srvs[0].URL())
			a.Do(http.MethodGet, shared.RouteSession)
			drv := tandemtest.NewDriver(t)
			var tabs []*tandemtest.Socket
			for _, srv := range srvs {
				for _, tr := range []tandemtest.Transport{tandemtest.WebSocket, tandemtest.WebSocket, tandemtest.Polling, tandemtest.Both} {
					tabs = append(tabs, drv.Dial(srv.URL(), tandemtest.Options{Cookie: a.Cookie(), Transport: tr}))
				}
			}
			for want := 1; want <= 20; want++ {
				if got := a.Incr(); got != want {
					t.Fatalf("incr = %d, want %d", got, want)
				}
			}
			for i, tab := range tabs {
				for want := 1; want <= 20; want++ {
					if got := tab.Count(wait); got != want {
						t.Fatalf("tab %d: current count %d, want %d", i, got, want)
					}
				}
			}
			for i, srv := range srvs {
				pre, lib := server.Broadcasts(srv)
				t.Logf("node %d: %d pre-framed, %d through the library", i, pre, lib)
				if pre < 2*20 || lib == 0 {
					t.Errorf("node %d: %d pre-framed, %d through the library; want at least 40 (two WebSocket tabs) and some (the polling tab)", i, pre, lib)
				}
			}
		})
	}
}
