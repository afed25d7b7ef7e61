package e2e

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/tandem-go/tandem/internal/tandemtest"
	"github.com/tandem-go/tandem/server"
	"github.com/tandem-go/tandem/shared"
	"github.com/tandem-go/tandem/webclient"
)

// TestPageFromAnOriginOutsideTheAllowlistCannotUseTheSession: the very
// same page, served from an origin that is not in the API's allowlist,
// runs in a browser that holds a session with the API (same site, so its
// SameSite=Lax cookie goes along). It can neither read the count, nor
// connect the socket, nor change the count, and it says so in the page
// (issue 3, point 13).
func TestPageFromAnOriginOutsideTheAllowlistCannotUseTheSession(t *testing.T) {
	srv := startServer(t, server.Config{})
	api := srv.URL()
	h, err := webclient.NewHandler(webclient.HandlerConfig{
		APIOrigin: api,
		WebDir:    webDir(t),
		Logger:    tandemtest.Logger(t),
	})
	if err != nil {
		t.Fatal(err)
	}
	foreign := httptest.NewServer(h)
	t.Cleanup(foreign.Close)
	if !strings.HasPrefix(foreign.URL, "http://127.0.0.1:") || !strings.HasPrefix(api, "http://127.0.0.1:") {
		t.Fatalf("want both origins on 127.0.0.1 (same site, shared cookies): %s and %s", foreign.URL, api)
	}
	browser := newBrowser(t)

	// The person's own tab on the API origin: a session at 2.
	own := newTab(t, browser, "API tab")
	own.open(api)
	own.waitText("status", "connected")
	own.click("incr")
	own.waitText("count", "1")
	own.click("incr")
	own.waitText("count", "2")
	sid := sessionCookie(t, own, api)

	// The foreign page loads and runs, but GET /session fails (no CORS
	// answer for its origin) and the socket's handshake is refused.
	evil := newTab(t, browser, "foreign tab")
	if err := evil.run(loadTimeout, chromedp.Navigate(foreign.URL)); err != nil {
		t.Fatalf("navigate to %s: %v", foreign.URL, err)
	}
	evil.waitFor("error", loadTimeout, "the failed load", func(s string) bool {
		return strings.Contains(s, "Could not load the count")
	})
	evil.watchStatus()
	evil.waitContains("error", "Live updates unavailable")

	evil.click("incr")
	evil.waitContains("error", "Increment over HTTP failed")
	// The emit waits in the client's buffer for a connection that never
	// comes, until the page's ack timeout.
	evil.click("incr-socket")
	evil.waitFor("error", waitTimeout, "the failed socket increment", func(s string) bool {
		return strings.Contains(s, "Increment over Socket.IO failed")
	})

	if c := evil.text("count"); countPattern.MatchString(c) {
		t.Errorf("the foreign page shows the count %q", c)
	}
	if st := evil.statuses(); slices.Contains(st, "connected") {
		t.Errorf("the foreign page's socket connected: statuses %q", st)
	}
	if s := evil.text("status"); s != "reconnecting" && s != "disconnected" {
		t.Errorf("the foreign page's status is %q, want reconnecting or disconnected", s)
	}

	// Nothing changed: the API still has 2 for this browser's session,
	// and the person's tab shows 2 (no live update came).
	if c := sessionCookie(t, own, api); c != sid {
		t.Error("the session cookie changed")
	}
	cl := tandemtest.NewClient(t, api)
	cl.SetCookie(server.CookieName + "=" + sid)
	status, body, _ := cl.Do(http.MethodGet, shared.RouteSession)
	var info shared.SessionInfo
	if status != http.StatusOK || json.Unmarshal([]byte(body), &info) != nil {
		t.Fatalf("GET /session: %d %s", status, body)
	}
	if info.Count != 2 {
		t.Errorf("the session's count is %d after the foreign page's increments, want 2", info.Count)
	}
	if c := own.text("count"); c != "2" {
		t.Errorf("the API tab shows %q, want 2", c)
	}
	t.Logf("the foreign page shows: %s", evil.text("error"))
}
