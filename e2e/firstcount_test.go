package e2e

import (
	"testing"

	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"github.com/tandem-go/tandem/server"
)

// countTrailJS runs before every document of a tab: it notes every text
// the count element shows, and who rendered the page at that moment (the
// server, or the WebAssembly app), each run of one text once.
const countTrailJS = `(() => {
  const trail = window.__countTrail = [];
  const read = () => {
    const el = document.querySelector('[data-testid="count"]');
    if (!el) return;
    const text = el.textContent.trim();
    const page = document.querySelector(".page");
    const by = page ? page.dataset.rendered : "";
    if (trail.length === 0 || trail[trail.length - 1].text !== text) trail.push({text, by});
  };
  new MutationObserver(read).observe(document, {subtree: true, childList: true, characterData: true});
})()`

type countSeen struct {
	Text string `json:"text"`
	By   string `json:"by"`
}

// TestFirstHTMLShowsTheCountWithoutFlicker: the page on the API's origin
// shows the session's count in its first HTML, before the WebAssembly
// runs, and the app takes over without the count changing on screen: on
// a first visit (0, no session yet) and on a reload after increments
// (issue 9, item 3).
func TestFirstHTMLShowsTheCountWithoutFlicker(t *testing.T) {
	srv := startServer(t, server.Config{})
	browser := newBrowser(t)
	tb := newTab(t, browser, "tab")
	if _, err := chromedp.Call(tb.ctx, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{Source: countTrailJS}); err != nil {
		t.Fatal(err)
	}
	check := func(what, want string) {
		t.Helper()
		tb.waitText("status", "connected")
		tb.waitText("count", want)
		trail := eval[[]countSeen](tb, `window.__countTrail`)
		if len(trail) == 0 || trail[0].By != "server" || trail[0].Text != want {
			t.Errorf("%s: the count first showed %+v, want %q rendered by the server", what, trail, want)
		}
		if len(trail) != 1 {
			t.Errorf("%s: the count showed %+v, want %q only: no flicker while the app takes over", what, trail, want)
		}
	}

	tb.open(srv.URL())
	check("first visit", "0")
	tb.click("incr")
	tb.waitText("count", "1")
	tb.click("incr-socket")
	tb.waitText("count", "2")
	if err := tb.run(loadTimeout, chromedp.Reload()); err != nil {
		t.Fatal(err)
	}
	tb.waitRunning()
	check("reload", "2")
	if s := tb.text("error"); s != "" {
		t.Errorf("the page shows the error %q", s)
	}
}
