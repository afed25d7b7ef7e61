package server_test

import (
	"fmt"
	"net/http"
	"testing"

	"github.com/tandem-go/tandem/internal/tandemtest"
	"github.com/tandem-go/tandem/server"
	"github.com/tandem-go/tandem/shared"
)

// Issue 13, item 5, over HTTP through a trusted proxy: the 256 /64s of one
// /56, each within its own burst, used to make more sessions than the
// global burst (1000) and lock every visitor out. Now the /56 makes at most
// twice the per-address burst, and a visitor from another network, and a
// client with a session, are served.
func TestOneSlash56CannotStarveOthers(t *testing.T) {
	t.Parallel()
	const burst = 4
	srv := tandemtest.Start(t, server.Config{
		SessionCreateBurst: burst, SessionCreateRate: 0.001, // the global bound keeps its default, 1000
		TrustedProxies: []string{"127.0.0.1/32"},
	})
	base := srv.URL()
	by := newMatrixBystander(t, base)
	from := func(addr string) int {
		status, _, _ := secDo(t, http.MethodGet, base+shared.RouteSession, secHeader("X-Forwarded-For", addr))
		return status
	}
	made := 0
	for i := range 256 {
		for range burst {
			switch status := from(fmt.Sprintf("2001:db8:1:1%02x::%d", i, i+1)); status {
			case http.StatusOK:
				made++
			case http.StatusTooManyRequests:
			default:
				t.Fatalf("GET /session: %d", status)
			}
		}
	}
	t.Logf("the /56's 1024 requests made %d sessions", made)
	if made > 2*burst {
		t.Errorf("one /56 made %d sessions, want at most %d", made, 2*burst)
	}
	for _, visitor := range []string{"2001:db8:ffff::1", "203.0.113.9"} {
		if status := from(visitor); status != http.StatusOK {
			t.Errorf("a visitor from %s got %d, want 200", visitor, status)
		}
	}
	by.check(t)
}
