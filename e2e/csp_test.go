package e2e

import (
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	cdplog "github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
)

// cspWatchJS runs before every document of a tab: it keeps every
// Content-Security-Policy violation the document reports.
const cspWatchJS = `(() => {
  window.__cspViolations = [];
  document.addEventListener("securitypolicyviolation", e => {
    window.__cspViolations.push(e.effectiveDirective + " blocked " + (e.blockedURI || "inline") + " at " + e.sourceFile + ":" + e.lineNumber);
  });
})()`

// swActivatedJS resolves to "activated" once the page's service worker
// registration has an activated worker.
const swActivatedJS = `navigator.serviceWorker.ready.then(r => r.active.state === "activated" ? "activated" :
  new Promise(done => r.active.addEventListener("statechange", e => { if (e.target.state === "activated") done("activated"); })))`

// cspWatch records what a tab reports about its Content-Security-Policy:
// the securitypolicyviolation events of its documents, and the browser's
// own log entries about the policy.
type cspWatch struct {
	t   *tab
	mu  sync.Mutex
	log []string
}

func watchCSP(t *testing.T, tb *tab) *cspWatch {
	t.Helper()
	w := &cspWatch{t: tb}
	err := chromedp.Listen(tb.ctx, func(ev any) {
		if e, ok := ev.(*cdplog.EventEntryAdded); ok && strings.Contains(e.Entry.Text, "Content Security Policy") {
			w.mu.Lock()
			w.log = append(w.log, string(e.Entry.Source)+": "+e.Entry.Text)
			w.mu.Unlock()
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := chromedp.Call(tb.ctx, cdplog.Enable, cdp.Empty{}); err != nil {
		t.Fatal(err)
	}
	if _, err := chromedp.Call(tb.ctx, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{Source: cspWatchJS}); err != nil {
		t.Fatal(err)
	}
	return w
}

// violations are the reports of the current document and the browser's
// log entries since the tab opened.
func (w *cspWatch) violations() []string {
	got := eval[[]string](w.t, `window.__cspViolations || ["the watcher did not run"]`)
	w.mu.Lock()
	defer w.mu.Unlock()
	return append(got, w.log...)
}

// TestPageWorksUnderItsCSP: the page, on the API origin and on the SPA
// origin, loads its scripts, compiles its WebAssembly, registers its
// service worker, counts over HTTP and over a WebSocket, and reloads under
// its Content-Security-Policy without one violation; an inline script is
// refused (issue 6, item 2).
func TestPageWorksUnderItsCSP(t *testing.T) {
	_, api, spa := crossOriginServer(t)
	browser := newBrowser(t)
	count := 0
	for _, o := range []struct{ name, url string }{{"API origin", api}, {"SPA origin", spa}} {
		t.Run(o.name, func(t *testing.T) {
			res, err := http.Get(o.url + "/some/route")
			if err != nil {
				t.Fatal(err)
			}
			res.Body.Close()
			csp := res.Header.Get("Content-Security-Policy")
			for _, want := range []string{"script-src 'self' 'wasm-unsafe-eval'", "frame-ancestors 'none'", "base-uri 'none'", "object-src 'none'"} {
				if !strings.Contains(csp, want) {
					t.Errorf("the page's Content-Security-Policy %q lacks %q", csp, want)
				}
			}
			if o.url == spa && !strings.Contains(csp, "connect-src 'self' "+api+" ws"+strings.TrimPrefix(api, "http")) {
				t.Errorf("the SPA page's Content-Security-Policy %q does not let it connect to %s over HTTP and WebSocket", csp, api)
			}
			if rp := res.Header.Get("Referrer-Policy"); rp == "" {
				t.Error("the page has no Referrer-Policy")
			}

			tb := newTab(t, browser, o.name)
			w := watchCSP(t, tb)
			tb.openConnected(o.url, strconv.Itoa(count))
			tb.click("incr")
			count++
			tb.waitText("count", strconv.Itoa(count))
			tb.click("incr-socket")
			count++
			tb.waitText("count", strconv.Itoa(count))
			tb.waitText("transport", "websocket")

			// A reload runs under the service worker, which registered
			// under the policy. The page registers it without waiting,
			// so wait until it is activated: a navigation before that
			// is not controlled by it.
			if state := evalAwait[string](tb, swActivatedJS); state != "activated" {
				t.Fatalf("the service worker is %q, not activated", state)
			}
			if err := tb.run(loadTimeout, chromedp.Reload()); err != nil {
				t.Fatal(err)
			}
			tb.waitRunning()
			tb.waitText("status", "connected")
			tb.waitText("count", strconv.Itoa(count))
			if !eval[bool](tb, `navigator.serviceWorker.controller !== null`) {
				t.Error("no service worker controls the reloaded page")
			}
			tb.click("incr-socket")
			count++
			tb.waitText("count", strconv.Itoa(count))
			if s := tb.text("error"); s != "" {
				t.Errorf("the page shows the error %q", s)
			}
			if v := w.violations(); len(v) != 0 {
				t.Errorf("Content-Security-Policy violations:\n  %s", strings.Join(v, "\n  "))
			}

			// The watch sees a violation when there is one: an inline
			// script is refused and reported.
			ran := eval[bool](tb, `(() => {
  window.__inlineRan = false;
  const s = document.createElement("script");
  s.textContent = "window.__inlineRan = true";
  document.head.appendChild(s);
  return window.__inlineRan;
})()`)
			if ran {
				t.Error("an inline script ran")
			}
			reported := false
			for end := time.Now().Add(waitTimeout); !reported && time.Now().Before(end); time.Sleep(pollEvery) {
				reported = len(w.violations()) > 0
			}
			if !reported {
				t.Error("the inline script was refused, but no violation was reported: the watch would miss one")
			}
		})
	}
}
