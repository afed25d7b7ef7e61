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
