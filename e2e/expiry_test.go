package e2e

import (
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/tandem-go/tandem/internal/tandemtest"
	"github.com/tandem-go/tandem/server"
)

// TestExpiredSessionReconnectsAnIdleTab: when the session of an idle tab
// expires, the server closes its socket; the tab reconnects by itself into
// a new session and keeps working there, live updates included (issue 3,
// point 12).
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
	a.watchStatus()
	a.waitFor("status", ttl+waitTimeout, "a reconnection after the expiry", func(string) bool {
		return reconnected(a.statuses())
	})
	t.Logf("reconnected %v after the last activity; statuses: %q", time.Since(idleSince).Round(10*time.Millisecond), a.statuses())
	if d := time.Since(idleSince); d < ttl {
		t.Errorf("the socket was closed %v after the last activity, before the TTL (%v)", d, ttl)
	}

	// The new session: another cookie, its count read again.
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

// reconnected reports whether statuses went from connected through a
// reconnection (reconnecting or connecting) back to connected.
func reconnected(statuses []string) bool {
	i := slices.Index(statuses, "connected")
	if i < 0 {
		return false
	}
	rest := statuses[i+1:]
	j := slices.IndexFunc(rest, func(s string) bool { return s == "reconnecting" || s == "connecting" })
	return j >= 0 && slices.Contains(rest[j+1:], "connected")
}
