package server_test

// The page as the server serves it on both listeners (issue 6, item 1):
// no request-controlled text is ever rendered into it.

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tandem-go/tandem/internal/tandemtest"
	"github.com/tandem-go/tandem/server"
)

// fakeWebDir writes a web directory with every file the page handler needs;
// the page's HTML does not depend on what app.wasm holds.
func fakeWebDir(tb testing.TB) string {
	tb.Helper()
	dir := tb.TempDir()
	for name, content := range map[string]string{
		"app.wasm":         "\x00asm\x01\x00\x00\x00",
		"socket.io.min.js": "var io = function () {};\n",
		"app.css":          "body { color: black; }\n",
		"icon.svg":         `<svg xmlns="http://www.w3.org/2000/svg"></svg>`,
		"icon-192.png":     "\x89PNG fake",
		"icon-512.png":     "\x89PNG fake",
	} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			tb.Fatal(err)
		}
	}
	return dir
}

// pageServer starts a server with the page on PORT and on SPA_PORT.
func pageServer(tb testing.TB) *server.Server {
	tb.Helper()
	return tandemtest.Start(tb, server.Config{
		SPAAddr:     "127.0.0.1:0",
		CORSOrigins: []string{secSPAOrigin},
		WebDir:      fakeWebDir(tb),
	})
}

// rawGet sends target as it is, byte for byte, in the request line of a
// GET to base (no client-side escaping), and returns the status and body.
func rawGet(tb testing.TB, base, target string) (int, string) {
	tb.Helper()
	u, err := url.Parse(base)
	if err != nil {
		tb.Fatal(err)
	}
	conn, err := net.DialTimeout("tcp", u.Host, 5*time.Second)
	if err != nil {
		tb.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(conn, "GET "+target+" HTTP/1.1\r\nHost: "+u.Host+"\r\nConnection: close\r\n\r\n"); err != nil {
		tb.Fatal(err)
	}
	res, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		tb.Fatalf("GET %q: %v", target, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		tb.Fatal(err)
	}
	return res.StatusCode, string(b)
}

func TestPageRendersNoRequestText(t *testing.T) {
	srv := pageServer(t)
	// Each payload carries the marker; whatever the page did with the
	// request (escaped it, quoted it, decoded it), the marker would show.
	const marker = "xsSmarker"
	payloads := []struct{ name, target string }{
		{"double quote", `/"` + marker},
		{"single quote", `/'` + marker},
		{"attribute break", `/%22%3E%3Cscript%3Ealert(1)%3C/script%3E` + marker},
		{"raw attribute break", `/"><script>alert(1)</script>` + marker},
		{"svg onload", `/<svg/onload=alert(1)>` + marker},
		{"encoded svg onload", `/%3Csvg%20onload%3Dalert(1)%3E` + marker},
		{"end of script", `/</script><script>alert(1)</script>` + marker},
		{"double encoded", `/%253Cscript%253E` + marker},
		{"single quote encoded", `/%27` + marker + `%27`},
		{"deep link", `/a/b/` + marker},
		{"query", `/?q="><svg/onload=alert(1)>` + marker},
		{"encoded query", `/?` + marker + `=%22%3E%3Csvg%20onload%3Dalert(1)%3E`},
		{"fragment-like", `/` + marker + `%23%22%3E`},
	}
	for _, l := range []struct{ name, base string }{
		{"PORT", srv.URL()},
		{"SPA_PORT", srv.SPAURL()},
	} {
		status, want := rawGet(t, l.base, "/")
		if status != http.StatusOK || !strings.Contains(want, "<html") {
			t.Fatalf("%s: GET / = %d %.200q, want the page", l.name, status, want)
		}
		for _, p := range payloads {
			t.Run(l.name+", "+p.name, func(t *testing.T) {
				status, got := rawGet(t, l.base, p.target)
				if status != http.StatusOK {
					t.Fatalf("GET %s = %d, want 200 (the page)", p.target, status)
				}
				if i := strings.Index(strings.ToLower(got), strings.ToLower(marker)); i >= 0 {
					t.Fatalf("GET %s: the request text is in the page: …%s…", p.target, got[max(0, i-80):min(len(got), i+40)])
				}
				// go-app writes attributes in map order, so the same page
				// differs in its bytes but not in its length.
				if len(got) != len(want) {
					t.Errorf("GET %s: %d bytes, GET / %d: not the same page", p.target, len(got), len(want))
				}
			})
		}
	}
}

var countInPage = regexp.MustCompile(`<div[^>]*data-testid="count"[^>]*>([^<]*)</div>`)

// shownCount is the text of the page's count element.
func shownCount(tb testing.TB, page string) string {
	tb.Helper()
	m := countInPage.FindStringSubmatch(page)
	if m == nil {
		tb.Fatalf("no count element in the page: %.300q", page)
	}
	return m[1]
}

// TestFirstHTMLShowsTheSessionCount: on PORT the page's first HTML shows
// the count of the request's session, read only: a request without a
// session is shown 0 (what its first GET /session will answer) and gets no
// cookie, and the SPA_PORT page never reads the session (issue 9, item 3).
func TestFirstHTMLShowsTheSessionCount(t *testing.T) {
	srv := pageServer(t)
	get := func(base, cookie string) (string, http.Header) {
		t.Helper()
		hdr := http.Header{}
		if cookie != "" {
			hdr.Set("Cookie", cookie)
		}
		status, body, h := secDo(t, http.MethodGet, base+"/a/client/route", hdr)
		if status != http.StatusOK {
			t.Fatalf("GET %s/a/client/route = %d", base, status)
		}
		if sc := h.Values("Set-Cookie"); len(sc) != 0 {
			t.Errorf("GET %s/a/client/route set a cookie: %q", base, sc)
		}
		return body, h
	}

	page, h := get(srv.URL(), "")
	if got := shownCount(t, page); got != "0" {
		t.Errorf("without a session the page shows %q, want 0", got)
	}
	if !slices.Contains(h.Values("Vary"), "Cookie") {
		t.Errorf("Vary = %q, want Cookie among them", h.Values("Vary"))
	}

	c := tandemtest.NewClient(t, srv.URL())
	for range 3 {
		c.Incr()
	}
	cookie := c.Cookie()
	page, h = get(srv.URL(), cookie)
	if got := shownCount(t, page); got != "3" {
		t.Errorf("with a session at 3 the page shows %q", got)
	}
	if h.Get("ETag") != "" {
		t.Errorf("the page with a count has the ETag %q: a 304 would show an old count", h.Get("ETag"))
	}
	c.Incr()
	if page, _ = get(srv.URL(), cookie); shownCount(t, page) != "4" {
		t.Errorf("after one more increment the page shows %q, want 4", shownCount(t, page))
	}

	// A forged cookie is no session: 0, and no cookie.
	page, _ = get(srv.URL(), cookie[:len(cookie)-4]+"AAAA")
	if got := shownCount(t, page); got != "0" {
		t.Errorf("with a forged cookie the page shows %q, want 0", got)
	}
	// The SPA_PORT page never reads the session.
	page, _ = get(srv.SPAURL(), cookie)
	if got := shownCount(t, page); got != "–" {
		t.Errorf("the SPA_PORT page shows %q, want –", got)
	}
	if n := c.Incr(); n != 5 {
		t.Errorf("the session's count is %d after the page loads, want 5", n)
	}
}
