package e2e

import (
	"testing"

	"github.com/tandem-go/tandem/server"
)

// TestSameOriginTwoTabsShareTheCount: two tabs of one browser on the API
// origin share one session; an increment over HTTP or over Socket.IO in
// one tab shows in both, live, over a WebSocket (issue 3, point 9).
func TestSameOriginTwoTabsShareTheCount(t *testing.T) {
	srv := startServer(t, server.Config{})
	browser := newBrowser(t)

	a := newTab(t, browser, "tab A")
	a.openConnected(srv.URL(), "0")

	b := newTab(t, browser, "tab B")
	b.openConnected(srv.URL(), "0")

	a.click("incr")
	a.waitText("count", "1")
	b.waitText("count", "1")

	a.click("incr-socket")
	a.waitText("count", "2")
	b.waitText("count", "2")

	b.click("incr")
	b.waitText("count", "3")
	a.waitText("count", "3")

	b.click("incr-socket")
	b.waitText("count", "4")
	a.waitText("count", "4")

	for _, tb := range []*tab{a, b} {
		if s := tb.text("error"); s != "" {
			t.Errorf("%s shows the error %q", tb.name, s)
		}
		if s := tb.text("status"); s != "connected" {
			t.Errorf("%s: status %q after the increments, want connected", tb.name, s)
		}
	}
}
