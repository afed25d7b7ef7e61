package e2e

import (
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
)

// nodePageEnv names the URL of a running Node recipe page
// (../shared/bench/seed-node) for TestFirstCountAgainstNode.
const nodePageEnv = "TANDEM_NODE_PAGE"

// TestFirstCountAgainstNode measures, in one headless Chromium run, the
// time from navigation to the first count shown on tandem's page (PORT)
// and on the Node recipe's page, on a first visit (fresh profile) and on a
// reload, alternating the two, and logs the medians and their ratio
// (issue 9, item 3). It runs by hand, against a Node page started first:
//
//	B=$(mktemp -d); cp -r ../shared/bench/seed-node "$B"; (cd "$B/seed-node" && npm ci)
//	PORT=3100 node "$B/seed-node/server.js" &
//	TANDEM_NODE_PAGE=http://127.0.0.1:3100 go test -count=1 -v -run TestFirstCountAgainstNode ./e2e/
//
// TANDEM_MEASURE_RUNS sets the repetitions (default 7). With
// TANDEM_NODE_SPA set to the Node server's SPA_PORT page (started with
// SPA_PORT=3101 PUBLIC_URL=http://127.0.0.1:3100
// CORS_ORIGINS=http://127.0.0.1:3101), it also compares the two
// cross-origin pages, tandem's served on its own SPA listener.
func TestFirstCountAgainstNode(t *testing.T) {
	nodeURL := os.Getenv(nodePageEnv)
	if nodeURL == "" {
		t.Skipf("set %s to the URL of a running Node recipe page to compare with it", nodePageEnv)
	}
	runs := 7
	if s := os.Getenv("TANDEM_MEASURE_RUNS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			t.Fatalf("TANDEM_MEASURE_RUNS=%q: want a positive number", s)
		}
		runs = n
	}
	srv, _, spa := crossOriginServer(t)
	pages := []struct{ name, url string }{{"tandem", srv.URL()}, {"Node page", nodeURL}}
	if nodeSPA := os.Getenv("TANDEM_NODE_SPA"); nodeSPA != "" {
		pages = append(pages, struct{ name, url string }{"tandem SPA", spa}, struct{ name, url string }{"Node SPA", nodeSPA})
	}

	// times[page][visit] are the milliseconds to the first count.
	times := map[string]map[string][]float64{}
	for _, p := range pages {
		times[p.name] = map[string][]float64{}
	}
	visits := []string{"first visit", "reload"}
	for i := range runs {
		for _, p := range pages {
			// A fresh browser per run: a first visit has no cache, no
			// service worker and no cookie.
			browser := newBrowser(t)
			tb := newTab(t, browser, p.name)
			if _, err := chromedp.Call(tb.ctx, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{Source: firstCountJS}); err != nil {
				t.Fatal(err)
			}
			for _, visit := range visits {
				nav := chromedp.Navigate(p.url)
				if visit == "reload" {
					nav = chromedp.Reload()
				}
				if err := tb.run(loadTimeout, nav); err != nil {
					t.Fatalf("%s, %s: %v", p.name, visit, err)
				}
				tb.waitMatch("count", countPattern, loadTimeout)
				// Fully loaded (socket included) before the reload, as a
				// person who reloads would have it.
				tb.waitText("status", "connected")
				ms := eval[float64](tb, `window.__firstCount`)
				times[p.name][visit] = append(times[p.name][visit], ms)
				t.Logf("run %d, %-9s %-11s first count after %4.0f ms", i+1, p.name, visit, ms)
			}
			_ = chromedp.Cancel(browser) // closes this browser now, not at the end of the test
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "first count, median of %d runs (headless Chromium, same machine, one run):\n", runs)
	fmt.Fprintf(&b, "| visit | tandem | Node page | ratio |\n|---|---|---|---|\n")
	for _, pair := range [][2]string{{"tandem", "Node page"}, {"tandem SPA", "Node SPA"}} {
		if len(times[pair[0]]) == 0 {
			continue
		}
		for _, visit := range visits {
			tm, nm := median(times[pair[0]][visit]), median(times[pair[1]][visit])
			fmt.Fprintf(&b, "| %s vs %s: %s, to the first count | %.0f ms | %.0f ms | ×%.2f |\n", pair[0], pair[1], visit, tm, nm, tm/nm)
		}
	}
	t.Log(b.String())
}

func median(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s) == 0 {
		return 0
	}
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}
