package e2e

import (
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/tandem-go/tandem/server"
)

// crossOriginServer starts a server whose page is also served on a second
// port (the SPA origin) calling the API origin with credentials, as `task
// dev` does with :3000 and :4200. Both use the host 127.0.0.1, so the
// SameSite=Lax cookie of the API travels with the SPA's requests (same
// site: ports do not count).
func crossOriginServer(t *testing.T) (srv *server.Server, api, spa string) {
	t.Helper()
	apiLn, spaLn := listenLocal(t), listenLocal(t)
	api, spa = "http://"+apiLn.Addr().String(), "http://"+spaLn.Addr().String()
	srv = startServer(t, server.Config{
		Listener:    apiLn,
		SPAListener: spaLn,
		PublicURL:   api,
		CORSOrigins: []string{spa},
	})
	if srv.URL() != api || srv.SPAURL() != spa {
		t.Fatalf("server listens on %s and %s, want %s and %s", srv.URL(), srv.SPAURL(), api, spa)
	}
	return srv, api, spa
}

// exchange is one request the browser sent and the answer it got.
type exchange struct {
	method, url string
	status      int64
	setCookie   bool // the raw answer had a Set-Cookie header
}

// netLog records the requests of a tab and their answers, raw headers
// included (Set-Cookie is only in the "extra info" events).
type netLog struct {
	mu    sync.Mutex
	byID  map[network.RequestID]*exchange
	order []network.RequestID
}

func watchNetwork(t *testing.T, tb *tab) *netLog {
	t.Helper()
	l := &netLog{byID: map[network.RequestID]*exchange{}}
	get := func(id network.RequestID) *exchange {
		x, ok := l.byID[id]
		if !ok {
			x = &exchange{}
			l.byID[id] = x
			l.order = append(l.order, id)
		}
		return x
	}
	err := chromedp.Listen(tb.ctx, func(ev any) {
		l.mu.Lock()
		defer l.mu.Unlock()
		switch ev := ev.(type) {
		case *network.EventRequestWillBeSent:
			x := get(ev.RequestID)
			x.method, x.url = ev.Request.Method, ev.Request.URL
		case *network.EventResponseReceived:
			get(ev.RequestID).status = ev.Response.Status
		case *network.EventResponseReceivedExtraInfo:
			for k := range ev.Headers {
				if strings.EqualFold(k, "Set-Cookie") {
					get(ev.RequestID).setCookie = true
				}
			}
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func (l *netLog) exchanges() []exchange {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]exchange, 0, len(l.order))
	for _, id := range l.order {
		out = append(out, *l.byID[id])
	}
	return out
}

// TestCrossOriginPageUsesTheAPIOriginWithCredentials: the page served on
// the SPA port increments and gets live updates through the API origin,
// with the API's cookie, which the page itself can neither see nor set
// (issue 3, point 10).
func TestCrossOriginPageUsesTheAPIOriginWithCredentials(t *testing.T) {
	_, api, spa := crossOriginServer(t)
	browser := newBrowser(t)

	a := newTab(t, browser, "SPA tab A")
	requests := watchNetwork(t, a)
	a.openConnected(spa, "0")

	b := newTab(t, browser, "SPA tab B")
	b.openConnected(spa+"/some/client/route", "0")

	a.click("incr")
	a.waitText("count", "1")
	b.waitText("count", "1")
	b.click("incr-socket")
	b.waitText("count", "2")
	a.waitText("count", "2")

	// The same session from the API origin's own page: cookies are the
	// API's, so both origins show one count.
	c := newTab(t, browser, "API tab")
	c.open(api)
	c.waitText("count", "2")
	c.click("incr")
	c.waitText("count", "3")
	a.waitText("count", "3")
	b.waitText("count", "3")

	for _, tb := range []*tab{a, b, c} {
		if s := tb.text("error"); s != "" {
			t.Errorf("%s shows the error %q", tb.name, s)
		}
	}

	// The session cookie: set by the API origin's answers, HttpOnly, and
	// out of reach of the page's script.
	var sid *network.Cookie
	for _, ck := range a.cookies(api) {
		if ck.Name == server.CookieName {
			sid = ck
		}
	}
	if sid == nil {
		t.Fatalf("no %s cookie for %s", server.CookieName, api)
	}
	apiPort := api[strings.LastIndex(api, ":")+1:]
	if strconv.FormatInt(sid.SourcePort, 10) != apiPort {
		t.Errorf("the session cookie was set from port %d, want the API's %s", sid.SourcePort, apiPort)
	}
	if !sid.HTTPOnly {
		t.Error("the session cookie is not HttpOnly")
	}
	if sid.SameSite != network.CookieSameSiteLax {
		t.Errorf("the session cookie is SameSite=%q, want Lax", sid.SameSite)
	}
	if sid.Domain != "127.0.0.1" || sid.Path != "/" {
		t.Errorf("the session cookie is for domain %q path %q, want 127.0.0.1 and /", sid.Domain, sid.Path)
	}
	if s := eval[string](a, `document.cookie`); s != "" {
		t.Errorf("the SPA page's document.cookie = %q, want empty (the session cookie is HttpOnly)", s)
	}

	// Every API call went to the API origin; the SPA origin served the
	// page only and never set a cookie.
	var incr, session, socket int
	for _, x := range requests.exchanges() {
		switch {
		case strings.HasPrefix(x.url, spa+"/"):
			if x.setCookie {
				t.Errorf("%s %s (the SPA origin) answered with Set-Cookie", x.method, x.url)
			}
			if x.method != http.MethodGet && x.method != http.MethodHead {
				t.Errorf("%s %s: the SPA origin got an API call", x.method, x.url)
			}
			for _, p := range []string{"/incr", "/session", "/logout", "/socket.io/"} {
				if strings.HasPrefix(x.url, spa+p) {
					t.Errorf("%s %s: an API call to the SPA origin", x.method, x.url)
				}
			}
		case x.method == http.MethodPost && x.url == api+"/incr":
			incr++
			if x.status != http.StatusOK {
				t.Errorf("POST %s: status %d", x.url, x.status)
			}
		case x.method == http.MethodGet && x.url == api+"/session":
			session++
		case strings.HasPrefix(x.url, api+"/socket.io/"):
			socket++
		}
	}
	if incr != 1 || session == 0 || socket == 0 {
		t.Errorf("tab A sent %d POST /incr (want 1), %d GET /session and %d Socket.IO requests (want some) to %s", incr, session, socket, api)
	}
}
