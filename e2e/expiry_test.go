package e2e

import (
	"strconv"
	"testing"
	"time"

	"github.com/tandem-go/tandem/internal/tandemtest"
	"github.com/tandem-go/tandem/server"
)

// TestExpiredSessionReconnectsAnIdleTab: when the session of an idle tab
// expires, the server sends "session ended" with "expired" and closes its
// socket; the tab says "Your session expired" and offers a new session,
// and keeps working in it, live updates included (issue 3, point 12; the
// expired reason of DESIGN.md's Users and devices).
func TestExpiredSessionReconnectsAnIdleTab(t *testing.T) {
	const ttl = 2 * time.Second
	srv := startServer(t, server.Config{
		SessionTTL:           ttl,
		SessionCheckInterval: 200 * time.Millisecond,
	})
	browser := newBrowser(t)

	a := newTab(t, browser, "tab")
	a.open(srv.URL())
	a.waitText("status", "connected")
	a.click("incr")
	a.waitText("count", "1")
	a.click("incr-socket")
	a.waitText("count", "2")
	oldSID := sessionCookie(t, a, srv.URL())

	// Now idle: nothing but the socket's pings until the session expires.
	idleSince := time.Now()
	a.waitFor("ended-reason", ttl+waitTimeout, `"Your session expired"`, func(s string) bool { return s == "Your session expired" })
	t.Logf("ended %v after the last activity", time.Since(idleSince).Round(10*time.Millisecond))
	if d := time.Since(idleSince); d < ttl {
		t.Errorf("the session ended %v after the last activity, before the TTL (%v)", d, ttl)
	}
	a.waitText("status", "logged out")

	// The new session: another cookie, its count read again.
	a.click("new-session")
	a.waitText("count", "0")
	a.waitText("status", "connected")
	sid := sessionCookie(t, a, srv.URL())
	if sid == oldSID {
		t.Fatal("the session cookie did not change after the expiry")
	}

	a.click("incr")
	a.waitText("count", "1")
	// Live updates reach the tab in its new session: an increment from
	// elsewhere (a plain HTTP client with the browser's cookie) shows.
	other := tandemtest.NewClient(t, srv.URL())
	other.SetCookie(server.CookieName + "=" + sid)
	if n := other.Incr(); n != 2 {
		t.Fatalf("POST /incr with the tab's new cookie answered %d, want 2", n)
	}
	a.waitText("count", "2")
	a.click("incr-socket")
	a.waitText("count", "3")
	a.waitText("status", "connected")
	if s := a.text("error"); s != "" {
		t.Errorf("the tab shows the error %q", s)
	}
	if n := other.Incr(); n != 4 {
		t.Errorf("POST /incr answered %d after the tab's increments, want 4", n)
	}
	a.waitText("count", strconv.Itoa(4))
}
