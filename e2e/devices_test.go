package e2e

import (
	"bytes"
	"context"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/tandem-go/tandem/internal/tandemtest"
	"github.com/tandem-go/tandem/server"
)

// newDevice starts a browser context of its own in browser (its own
// cookies, as another device has) and returns it; tabs made from it with
// newTab share its cookies.
func newDevice(t *testing.T, browser context.Context) context.Context {
	t.Helper()
	ctx, cancel := chromedp.NewContext(browser, chromedp.WithNewBrowserContext())
	t.Cleanup(cancel)
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("new browser context: %v", err)
	}
	return ctx
}

// signIn types user into the sign-in form and submits it.
func (t *tab) signIn(user string) {
	t.tb.Helper()
	if err := t.run(waitTimeout, chromedp.SendKeys(chromedp.CSS(sel("login-user")), user)); err != nil {
		t.tb.Fatalf("%s: type the user: %v", t.name, err)
	}
	t.click("login")
	t.waitText("user", user)
	t.waitText("status", "connected")
}

// devicesJS lists the devices the page shows, one "current|other:tabs"
// each, in order.
const devicesJS = `[...document.querySelectorAll('[data-testid="device"]')].map(d =>
	(d.dataset.current === "true" ? "current" : "other") + ":" + d.querySelector('[data-testid="device-tabs"]').dataset.tabs).join(" ")`

// waitDevices waits until the page's device list is want.
func (t *tab) waitDevices(want string) {
	t.tb.Helper()
	t.waitEval(devicesJS, want)
}

// waitEval waits until the string expression expr is want.
func (t *tab) waitEval(expr, want string) {
	t.tb.Helper()
	ctx, cancel := context.WithTimeout(t.ctx, waitTimeout)
	defer cancel()
	var got string
	for {
		s, err := chromedp.Run(ctx, chromedp.Evaluate[string](expr))
		if err == nil {
			got = s
			if s == want {
				return
			}
		}
		select {
		case <-ctx.Done():
			t.tb.Fatalf("%s: %q, want %q within %v\n%s", t.name, got, want, waitTimeout, t.state())
		case <-time.After(pollEvery):
		}
	}
}

// revokeOther clicks the sign-out button of the first device that is not
// this one.
func (t *tab) revokeOther() {
	t.tb.Helper()
	if err := t.run(waitTimeout, chromedp.Click(chromedp.CSS(`[data-testid="device"][data-current="false"] [data-testid="device-revoke"]`))); err != nil {
		t.tb.Fatalf("%s: click the other device's sign-out: %v", t.name, err)
	}
}

// devicesStatusJS answers the status of the page's own GET /devices.
const devicesStatusJS = `fetch("/devices", {credentials: "include"}).then(r => String(r.status))`

// twoDevices is the whole story, with device A's pages at urlA and B's at
// urlB: sign in as the same user on both; each list shows both devices
// with their tabs, live; A signs B out; B signs in again; "sign out
// everywhere" ends both. shots, when set, takes A's screenshots while two
// devices are listed.
func twoDevices(t *testing.T, urlA, urlB string, shots func(*tab)) {
	browser := newBrowser(t)
	devA, devB := newDevice(t, browser), newDevice(t, browser)
	a := newTab(t, devA, "device A")
	a.openConnected(urlA, "0")
	a.click("incr")
	a.waitText("count", "1")
	a.signIn("ada")
	a.waitText("count", "1") // the count carries over the sign-in
	b1 := newTab(t, devB, "device B, tab 1")
	b1.openConnected(urlB, "0")
	b1.signIn("ada")

	a.waitDevices("current:1 other:1")
	b1.waitDevices("current:1 other:1")
	if agent := a.text("device-agent"); agent != "Headless Chrome on Linux" {
		t.Errorf("device agent %q", agent)
	}

	// A second tab on B: A's list follows it live.
	b2 := newTab(t, devB, "device B, tab 2")
	b2.openConnected(urlB, "0")
	b2.waitText("user", "ada")
	a.waitDevices("current:1 other:2")
	b1.waitDevices("current:2 other:1")
	if shots != nil {
		shots(a)
	}

	// A signs B out: both of B's tabs say why, and B's cookie is no
	// session any more.
	a.revokeOther()
	for _, b := range []*tab{b1, b2} {
		b.waitText("ended-reason", "Signed out from another device")
		b.waitText("status", "logged out")
	}
	if got := evalAwait[string](b1, devicesStatusJS); got != "401" {
		t.Errorf("GET /devices with B's old cookie: %s, want 401", got)
	}
	a.waitDevices("current:1")

	// B signs in again; "sign out everywhere" from A ends both.
	b1.signIn("ada")
	a.waitDevices("current:1 other:1")
	a.click("logout-everywhere")
	a.waitText("ended-reason", "You signed out")
	b1.waitText("ended-reason", "Signed out from another device")
	if got := evalAwait[string](a, devicesStatusJS); got != "401" {
		t.Errorf("GET /devices after signing out everywhere: %s, want 401", got)
	}
}

// Two devices (browser contexts) on one node.
func TestTwoDevicesOneNode(t *testing.T) {
	srv := startServer(t, server.Config{})
	twoDevices(t, srv.URL(), srv.URL(), devicesScreenshots)
}

// Two devices on two nodes: A through the shipped nginx configuration, B
// straight to the node nginx does not send A to, so that every list,
// count and sign-out crosses nodes.
func TestTwoDevicesTwoNodesBehindNginx(t *testing.T) {
	rds := tandemtest.StartRedis(t)
	var nodes []*server.Server
	var addrs []string
	for range 2 {
		n := startServer(t, server.Config{Store: rds.URL(0)})
		nodes = append(nodes, n)
		addrs = append(addrs, strings.TrimPrefix(n.URL(), "http://"))
	}
	ngx := tandemtest.StartNginx(t, addrs)
	// nginx hashes the client address: find the node it picks for us.
	c := tandemtest.NewClient(t, ngx.URL)
	c.Incr()
	key := tandemtest.StoreKey(t, c.Cookie())
	drv := tandemtest.NewDriver(t)
	_ = drv.Dial(ngx.URL, tandemtest.Options{Cookie: c.Cookie()})
	other := -1
	for i, n := range nodes {
		if len(n.Sessions().Sockets(key)) == 0 {
			other = i
		}
	}
	if other < 0 {
		t.Fatal("no node without nginx's socket")
	}
	twoDevices(t, ngx.URL, nodes[other].URL(), nil)
}

// devicesScreenshots writes docs/devices-375.png and docs/devices-1280.png
// with TANDEM_SCREENSHOT=1; it always takes them and checks they decode.
func devicesScreenshots(a *tab) {
	a.tb.Helper()
	for _, size := range []struct {
		name          string
		width, height int64
	}{{"375", 375, 900}, {"1280", 1280, 900}} {
		if err := a.run(waitTimeout, chromedp.EmulateViewport(size.width, size.height)); err != nil {
			a.tb.Fatal(err)
		}
		a.waitDevices("current:1 other:2")
		eval[chromedp.Void](a, `document.activeElement && document.activeElement.blur()`)
		buf, err := chromedp.Run(a.ctx, chromedp.FullScreenshot(100)) // 100: PNG
		if err != nil {
			a.tb.Fatalf("screenshot %s: %v", size.name, err)
		}
		img, err := png.Decode(bytes.NewReader(buf))
		if err != nil {
			a.tb.Fatalf("screenshot %s is no PNG: %v", size.name, err)
		}
		if w := img.Bounds().Dx(); w != int(size.width) {
			a.tb.Errorf("screenshot %s is %d px wide", size.name, w)
		}
		if os.Getenv(screenshotEnv) != "1" {
			continue
		}
		path := filepath.Join(tandemtest.RepoRoot(a.tb), "docs", "devices-"+size.name+".png")
		if err := os.WriteFile(path, buf, 0o644); err != nil {
			a.tb.Fatal(err)
		}
		a.tb.Logf("wrote %s (%d bytes)", path, len(buf))
	}
}
