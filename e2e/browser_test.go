package e2e

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/tandem-go/tandem/internal/tandemtest"
	"github.com/tandem-go/tandem/server"
)

// Bounds of the waits. A first load compiles 12 MB of WebAssembly, which
// takes seconds on a busy 2-core runner under -race; everything after it
// is a round trip or two.
const (
	loadTimeout = 45 * time.Second
	waitTimeout = 20 * time.Second
	pollEvery   = 25 * time.Millisecond
)

// needBrowser returns Chromium's path once it and the built page exist;
// without them it skips the test on a developer machine and fails it under
// CI=true.
func needBrowser(tb testing.TB) string {
	tb.Helper()
	if testing.Short() {
		tb.Skip("-short: skipping a browser test")
	}
	missing := func(msg string) {
		if os.Getenv("CI") == "true" {
			tb.Fatal(msg)
		}
		tb.Skip(msg)
	}
	path := "/usr/bin/chromium"
	if _, err := os.Stat(path); err != nil {
		p, err := exec.LookPath("chromium")
		if err != nil {
			missing("the browser tests need Chromium: apt-get install -y chromium (or put chromium on PATH)")
		}
		path = p
	}
	wasm := filepath.Join(webDir(tb), "app.wasm")
	if _, err := os.Stat(wasm); err != nil {
		missing(fmt.Sprintf("the browser tests need the built page (%s): run `go tool task build:js build:wasm`", wasm))
	}
	return path
}

// webDir is the repository's public/web, whatever the test's working
// directory.
func webDir(tb testing.TB) string {
	return filepath.Join(tandemtest.RepoRoot(tb), "public", "web")
}

// startServer starts a tandem server serving the built page.
func startServer(tb testing.TB, cfg server.Config) *server.Server {
	tb.Helper()
	if cfg.WebDir == "" {
		cfg.WebDir = webDir(tb)
	}
	return tandemtest.Start(tb, cfg)
}

// listenLocal listens on 127.0.0.1:0, for servers whose origins must be
// known before they start: the listener is handed to the server
// (server.Config.Listener), so no other test can take its port meanwhile.
func listenLocal(tb testing.TB) net.Listener {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = ln.Close() }) // in case the server never took it
	return ln
}

// newBrowser starts a headless Chromium with a fresh profile and returns
// its context; tabs made with newTab from it share its cookies. It stops
// at the end of the test.
func newBrowser(tb testing.TB) context.Context {
	tb.Helper()
	path := needBrowser(tb)
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.UserDataDir(tb.TempDir()),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.WindowSize(1000, 800),
	)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(allocCtx, chromedp.WithLogf(func(string, ...any) {}))
	tb.Cleanup(func() {
		cancel()
		cancelAlloc()
	})
	start := time.Now()
	if err := chromedp.Do(ctx); err != nil { // starts the browser
		tb.Fatalf("starting Chromium (%s): %v", path, err)
	}
	tb.Logf("Chromium started in %v", time.Since(start).Round(time.Millisecond))
	return ctx
}

// tab is one browser tab showing the page.
type tab struct {
	tb   testing.TB
	name string
	ctx  context.Context

	mu  sync.Mutex
	log []string // console messages and exceptions, shown when the test fails
}

// newTab opens a tab in the browser of browserCtx; it closes at the end of
// the test.
func newTab(tb testing.TB, browserCtx context.Context, name string) *tab {
	tb.Helper()
	ctx, cancel := chromedp.NewContext(browserCtx)
	t := &tab{tb: tb, name: name, ctx: ctx}
	tb.Cleanup(func() {
		if tb.Failed() {
			t.dumpLog()
		}
		cancel()
	})
	if err := chromedp.Listen(ctx, t.record); err != nil {
		tb.Fatalf("%s: opening a tab: %v", name, err)
	}
	return t
}

func (t *tab) record(ev any) {
	var line string
	switch ev := ev.(type) {
	case *runtime.EventConsoleAPICalled:
		var args []string
		for _, a := range ev.Args {
			if len(a.Value) > 0 {
				args = append(args, string(a.Value))
			} else {
				args = append(args, a.Description)
			}
		}
		line = fmt.Sprintf("console.%s: %s", ev.Type, strings.Join(args, " "))
	case *runtime.EventExceptionThrown:
		line = "exception: " + ev.ExceptionDetails.Text
		if ev.ExceptionDetails.Exception != nil {
			line += " " + ev.ExceptionDetails.Exception.Description
		}
	default:
		return
	}
	t.mu.Lock()
	t.log = append(t.log, line)
	t.mu.Unlock()
}

func (t *tab) dumpLog() {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, line := range t.log {
		t.tb.Logf("%s %s", t.name, line)
	}
}

// open navigates to url and waits until the page runs and shows a count.
func (t *tab) open(url string) {
	t.tb.Helper()
	if err := t.run(loadTimeout, chromedp.Navigate(url)); err != nil {
		t.tb.Fatalf("%s: navigate to %s: %v", t.name, url, err)
	}
	t.waitRunning()
	t.waitMatch("count", countPattern, loadTimeout)
}

// runningJS is true once the WebAssembly app renders the page: the
// server's pre-rendered page (which may show a count already) says
// data-rendered="server".
const runningJS = `document.querySelector('.page[data-rendered="browser"]') !== null`

// waitRunning waits until the WebAssembly app runs the page.
func (t *tab) waitRunning() {
	t.tb.Helper()
	ctx, cancel := context.WithTimeout(t.ctx, loadTimeout)
	defer cancel()
	for {
		if ok, err := chromedp.Run(ctx, chromedp.Evaluate[bool](runningJS)); err == nil && ok {
			return
		}
		select {
		case <-ctx.Done():
			t.tb.Fatalf("%s: the WebAssembly app did not start within %v\n%s", t.name, loadTimeout, t.state())
		case <-time.After(pollEvery):
		}
	}
}

var countPattern = regexp.MustCompile(`^\d+$`)

// openConnected opens url and waits until the page shows count and its
// socket is connected over WebSocket.
func (t *tab) openConnected(url, count string) {
	t.tb.Helper()
	t.open(url)
	t.waitText("count", count)
	t.waitText("status", "connected")
	t.waitText("transport", "websocket")
}

func (t *tab) run(timeout time.Duration, steps ...chromedp.Action[chromedp.Void]) error {
	ctx, cancel := context.WithTimeout(t.ctx, timeout)
	defer cancel()
	return chromedp.Do(ctx, steps...)
}

// eval evaluates a JavaScript expression in the page.
func eval[T any](t *tab, expr string) T {
	t.tb.Helper()
	ctx, cancel := context.WithTimeout(t.ctx, waitTimeout)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		t.tb.Fatalf("%s: evaluate %s: %v", t.name, expr, err)
	}
	return v
}

// evalAwait is eval for an expression that yields a promise: it waits for
// the promise to settle, up to waitTimeout.
func evalAwait[T any](t *tab, expr string) T {
	t.tb.Helper()
	ctx, cancel := context.WithTimeout(t.ctx, waitTimeout)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr, chromedp.EvalAwaitPromise))
	if err != nil {
		t.tb.Fatalf("%s: evaluate %s: %v", t.name, expr, err)
	}
	return v
}

// sel is the CSS selector of a data-testid.
func sel(testid string) string { return `[data-testid="` + testid + `"]` }

// textJS reads the trimmed text of a data-testid, "<absent>" when the
// page has no such element.
func textJS(testid string) string {
	return `(() => { const el = document.querySelector('` + sel(testid) + `'); return el ? el.textContent.trim() : "<absent>"; })()`
}

// text is what the element with data-testid shows now.
func (t *tab) text(testid string) string {
	t.tb.Helper()
	return eval[string](t, textJS(testid))
}

// click clicks the button with data-testid, as a person would (mouse
// events at its centre).
func (t *tab) click(testid string) {
	t.tb.Helper()
	if err := t.run(waitTimeout, chromedp.Click(chromedp.CSS(sel(testid)))); err != nil {
		t.tb.Fatalf("%s: click %s: %v", t.name, testid, err)
	}
}

// waitText waits until data-testid shows want.
func (t *tab) waitText(testid, want string) {
	t.tb.Helper()
	t.waitFor(testid, waitTimeout, fmt.Sprintf("%q", want), func(s string) bool { return s == want })
}

// waitMatch waits until data-testid shows a text that re matches.
func (t *tab) waitMatch(testid string, re *regexp.Regexp, timeout time.Duration) string {
	t.tb.Helper()
	return t.waitFor(testid, timeout, "text matching "+re.String(), re.MatchString)
}

// waitContains waits until data-testid shows a text containing sub.
func (t *tab) waitContains(testid, sub string) string {
	t.tb.Helper()
	return t.waitFor(testid, waitTimeout, fmt.Sprintf("text containing %q", sub), func(s string) bool { return strings.Contains(s, sub) })
}

// waitMatchAny waits until data-testid shows one of want.
func (t *tab) waitMatchAny(testid string, want ...string) string {
	t.tb.Helper()
	return t.waitFor(testid, waitTimeout, fmt.Sprintf("one of %q", want), func(s string) bool { return slices.Contains(want, s) })
}

// waitFor polls the text of data-testid until ok accepts it, and fails the
// test with what the page shows when it does not within timeout.
func (t *tab) waitFor(testid string, timeout time.Duration, want string, ok func(string) bool) string {
	t.tb.Helper()
	ctx, cancel := context.WithTimeout(t.ctx, timeout)
	defer cancel()
	var last string
	var lastErr error
	for {
		s, err := chromedp.Run(ctx, chromedp.Evaluate[string](textJS(testid)))
		if err == nil {
			last = s
			if ok(s) {
				return s
			}
		} else if !errors.Is(err, context.DeadlineExceeded) {
			lastErr = err // a navigation in progress, say: try again
		}
		select {
		case <-ctx.Done():
			t.tb.Fatalf("%s: after %v, %s shows %q, want %s (last error: %v)\n%s", t.name, timeout, testid, last, want, lastErr, t.state())
			return ""
		case <-time.After(pollEvery):
		}
	}
}

// state sums up what the page shows, for failure messages.
func (t *tab) state() string {
	ctx, cancel := context.WithTimeout(t.ctx, 5*time.Second)
	defer cancel()
	var b strings.Builder
	fmt.Fprintf(&b, "  %s shows:", t.name)
	for _, id := range []string{"count", "status", "transport", "error"} {
		s, err := chromedp.Run(ctx, chromedp.Evaluate[string](textJS(id)))
		if err != nil {
			s = "(" + err.Error() + ")"
		}
		fmt.Fprintf(&b, " %s=%q", id, s)
	}
	return b.String()
}

// cookies are the browser's cookies for url.
func (t *tab) cookies(url string) []*network.Cookie {
	t.tb.Helper()
	ctx, cancel := context.WithTimeout(t.ctx, waitTimeout)
	defer cancel()
	res, err := chromedp.Call(ctx, network.GetCookies, network.GetCookiesParams{URLs: []string{url}})
	if err != nil {
		t.tb.Fatalf("%s: Network.getCookies: %v", t.name, err)
	}
	return res.Cookies
}

// watchStatus records every text the status element shows from now on,
// read back with statuses: a MutationObserver sees states that last less
// than a poll.
func (t *tab) watchStatus() {
	t.tb.Helper()
	eval[chromedp.Void](t, `(() => {
  const seen = window.__tandemStatuses = [];
  const read = () => {
    const el = document.querySelector('`+sel("status")+`');
    const s = el ? el.textContent.trim() : "";
    if (s !== "" && seen[seen.length - 1] !== s) seen.push(s);
  };
  read();
  new MutationObserver(read).observe(document.body, {subtree: true, childList: true, characterData: true});
})()`)
}

// statuses are the texts status showed since watchStatus, in order, each
// run of one text counted once.
func (t *tab) statuses() []string {
	t.tb.Helper()
	return eval[[]string](t, `window.__tandemStatuses || []`)
}
