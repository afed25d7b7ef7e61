package e2e

import (
	"bytes"
	"context"
	"fmt"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/tandem-go/tandem/server"
)

// TestSocketIncrWhileDisconnectedFailsAtOnce: with the server gone, an
// increment over Socket.IO says at once that the live connection is down,
// instead of after the 10 s request timeout (issue 9, item 5).
func TestSocketIncrWhileDisconnectedFailsAtOnce(t *testing.T) {
	srv := startServer(t, server.Config{})
	browser := newBrowser(t)
	tb := newTab(t, browser, "tab")
	tb.openConnected(srv.URL(), "0")

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Close(ctx); err != nil {
		t.Fatalf("Close: %v", err)
	}
	tb.waitMatchAny("status", "reconnecting", "disconnected")
	start := time.Now()
	tb.click("incr-socket")
	msg := tb.waitContains("error", "not connected")
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("the failure showed after %v, want at once", d)
	}
	if !strings.Contains(msg, "Increment over Socket.IO failed") {
		t.Errorf("the error %q does not say what failed", msg)
	}
}

// TestLoggedOutTabOffersANewSession: after a logout the tab offers to
// start a new session, and doing so gives it a session at 0 and a
// connected socket (issue 9, item 5).
func TestLoggedOutTabOffersANewSession(t *testing.T) {
	srv := startServer(t, server.Config{})
	browser := newBrowser(t)
	tb := newTab(t, browser, "tab")
	tb.openConnected(srv.URL(), "0")
	tb.click("incr")
	tb.waitText("count", "1")
	if s := tb.text("new-session"); s != "<absent>" {
		t.Errorf("a tab with a session offers a new one (%q)", s)
	}
	old := sessionCookie(t, tb, srv.URL())

	tb.click("logout")
	tb.waitText("status", "logged out")
	tb.waitText("new-session", "Start a new session")
	tb.click("new-session")
	tb.waitText("status", "connected")
	tb.waitText("count", "0")
	tb.waitText("new-session", "<absent>")
	if sessionCookie(t, tb, srv.URL()) == old {
		t.Error("the session cookie did not change")
	}
	tb.click("incr-socket")
	tb.waitText("count", "1")
	if s := tb.text("error"); s != "" {
		t.Errorf("the page shows the error %q", s)
	}
}

// screenshotDirEnv, when set, is where TestLayoutWidths writes its
// screenshots (to look at them).
const screenshotDirEnv = "TANDEM_SCREENSHOT_DIR"

// TestLayoutWidths: the page holds from 320 px to wide screens: nothing
// overflows sideways, every button is on screen, and the screenshots at
// 375 px and 1280 px decode (issue 9, item 5).
func TestLayoutWidths(t *testing.T) {
	srv := startServer(t, server.Config{})
	browser := newBrowser(t)
	tb := newTab(t, browser, "tab")
	tb.openConnected(srv.URL(), "0")
	tb.click("incr")
	tb.waitText("count", "1")
	dir := os.Getenv(screenshotDirEnv)
	for _, w := range []int64{320, 375, 768, 1280, 1920} {
		if err := tb.run(waitTimeout, chromedp.EmulateViewport(w, 800)); err != nil {
			t.Fatal(err)
		}
		// Layout is synchronous: reading it after the resize sees the new one.
		over := eval[[]string](tb, `(() => {
  const vw = document.documentElement.clientWidth, bad = [];
  if (document.documentElement.scrollWidth > vw) bad.push("the page scrolls sideways: " + document.documentElement.scrollWidth + " > " + vw);
  for (const el of document.querySelectorAll("button, [data-testid]")) {
    const r = el.getBoundingClientRect();
    if (r.width > 0 && (r.left < 0 || r.right > vw + 0.5)) bad.push((el.dataset.testid || el.className) + " spans " + r.left.toFixed(0) + ".." + r.right.toFixed(0));
  }
  return bad;
})()`)
		if len(over) > 0 {
			t.Errorf("at %d px: %s", w, strings.Join(over, "; "))
		}
		if w != 375 && w != 1280 {
			continue
		}
		buf, err := chromedp.Run(tb.ctx, chromedp.CaptureScreenshot())
		if err != nil {
			t.Fatal(err)
		}
		img, err := png.Decode(bytes.NewReader(buf))
		if err != nil || img.Bounds().Dx() != int(w) {
			t.Fatalf("the screenshot at %d px: %v, %v", w, err, img.Bounds())
		}
		if dir != "" {
			name := filepath.Join(dir, fmt.Sprintf("page-%d.png", w))
			if err := os.WriteFile(name, buf, 0o644); err != nil {
				t.Fatal(err)
			}
			t.Logf("wrote %s", name)
		}
	}
}
