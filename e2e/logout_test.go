package e2e

import (
	"testing"

	"github.com/tandem-go/tandem/internal/tandemtest"
	"github.com/tandem-go/tandem/server"
)

// TestLogoutInOneTabLogsOutEveryTab: a logout in tab A shows "logged out"
// and a reset count in both tabs; the next increment starts a new session
// at 1, and each tab's socket joins it without a reload (issue 3, point 11).
func TestLogoutInOneTabLogsOutEveryTab(t *testing.T) {
	srv := startServer(t, server.Config{})
	browser := newBrowser(t)

	a := newTab(t, browser, "tab A")
	a.open(srv.URL())
	b := newTab(t, browser, "tab B")
	b.open(srv.URL())
	for _, tb := range []*tab{a, b} {
		tb.waitText("status", "connected")
	}
	a.click("incr")
	a.waitText("count", "1")
	b.waitText("count", "1")
	b.click("incr")
	b.waitText("count", "2")
	a.waitText("count", "2")
	oldSID := sessionCookie(t, a, srv.URL())

	a.click("logout")
	for _, tb := range []*tab{a, b} {
		tb.waitText("status", "logged out")
		tb.waitText("count", "0")
		if s := tb.text("error"); s != "" {
			t.Errorf("%s shows the error %q after the logout", tb.name, s)
		}
	}
	// The old session is gone from the store: its cookie is no session.
	old := tandemtest.NewClient(t, srv.URL())
	old.SetCookie(server.CookieName + "=" + oldSID)
	if n := old.Incr(); n != 1 {
		t.Errorf("POST /incr with the logged-out cookie answered %d, want 1 (a new session)", n)
	}

	// The next increment over HTTP starts a new session at 1 and the
	// socket reconnects to it.
	a.click("incr")
	a.waitText("count", "1")
	a.waitText("status", "connected")
	if sid := sessionCookie(t, a, srv.URL()); sid == oldSID {
		t.Error("the session cookie did not change after the logout")
	}
	// Tab B still shows it is logged out; its next increment, over
	// Socket.IO this time, lands in the same new session, and tab A sees
	// it live.
	b.waitText("status", "logged out")
	b.click("incr-socket")
	b.waitText("count", "2")
	b.waitText("status", "connected")
	a.waitText("count", "2")
	a.click("incr-socket")
	a.waitText("count", "3")
	b.waitText("count", "3")
	for _, tb := range []*tab{a, b} {
		if s := tb.text("error"); s != "" {
			t.Errorf("%s shows the error %q", tb.name, s)
		}
	}
}

// sessionCookie is the value of the browser's session cookie for url.
func sessionCookie(t *testing.T, tb *tab, url string) string {
	t.Helper()
	for _, ck := range tb.cookies(url) {
		if ck.Name == server.CookieName {
			return ck.Value
		}
	}
	t.Fatalf("%s: no %s cookie for %s", tb.name, server.CookieName, url)
	return ""
}
