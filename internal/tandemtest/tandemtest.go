// Package tandemtest starts real tandem servers for tests and talks to them
// the way users do: HTTP with a cookie jar, and Socket.IO clients over
// WebSocket or long-polling.
package tandemtest

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tandem-go/tandem/server"
)

// Start starts a server on 127.0.0.1:0 with cfg (SESSION_STORE=memory,
// quiet logs and a fixed secret unless cfg says otherwise) and closes it at
// the end of the test.
func Start(tb testing.TB, cfg server.Config) *server.Server {
	tb.Helper()
	if cfg.Addr == "" && cfg.Listener == nil {
		cfg.Addr = "127.0.0.1:0"
	}
	if cfg.Store == "" && cfg.Backend == nil {
		cfg.Store = "memory"
	}
	if cfg.SessionSecrets == nil {
		cfg.SessionSecrets = []string{strings.Repeat("k", 32)}
	}
	if cfg.DataDir == "" {
		cfg.DataDir = tb.TempDir()
	}
	if cfg.Logger == nil {
		cfg.Logger = Logger(tb)
	}
	srv, err := server.New(cfg)
	if err != nil {
		tb.Fatalf("server.New: %v", err)
	}
	if err := srv.Start(); err != nil {
		tb.Fatalf("Start: %v", err)
	}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := srv.Close(ctx); err != nil {
			tb.Errorf("Close: %v", err)
		}
	})
	return srv
}

// Logger logs to the test's output when TANDEM_TEST_LOG is set, and
// discards otherwise.
func Logger(tb testing.TB) *slog.Logger {
	if os.Getenv("TANDEM_TEST_LOG") == "" {
		return slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return slog.New(slog.NewTextHandler(testWriter{tb}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type testWriter struct{ tb testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.tb.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// Client is a browser-like HTTP client: a cookie jar and an optional Origin.
type Client struct {
	tb   testing.TB
	Base string
	HTTP *http.Client
	// Header is added to every request (e.g. Origin).
	Header http.Header
}

// NewClient returns a client of base with an empty cookie jar.
func NewClient(tb testing.TB, base string) *Client {
	tb.Helper()
	jar, _ := cookiejar.New(nil)
	return &Client{tb: tb, Base: base, HTTP: &http.Client{Jar: jar, Timeout: 10 * time.Second}, Header: http.Header{}}
}

// Do sends a request and returns the status, body and response headers.
func (c *Client) Do(method, path string, hdr ...string) (int, string, http.Header) {
	c.tb.Helper()
	req, err := http.NewRequest(method, c.Base+path, nil)
	if err != nil {
		c.tb.Fatal(err)
	}
	for k, v := range c.Header {
		req.Header[k] = v
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := c.HTTP.Do(req)
	if err != nil {
		c.tb.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), resp.Header
}

// Incr posts /incr and returns the new count, failing the test on any
// answer but 200.
func (c *Client) Incr() int {
	c.tb.Helper()
	status, body, _ := c.Do(http.MethodPost, "/incr")
	if status != http.StatusOK {
		c.tb.Fatalf("POST /incr: %d %s", status, body)
	}
	n, err := strconv.Atoi(body)
	if err != nil {
		c.tb.Fatalf("POST /incr: body %q is not a number", body)
	}
	return n
}

// Cookie returns the Cookie header value the jar sends to the server
// ("" when it holds none).
func (c *Client) Cookie() string {
	u, _ := url.Parse(c.Base)
	var parts []string
	for _, ck := range c.HTTP.Jar.Cookies(u) {
		parts = append(parts, ck.Name+"="+ck.Value)
	}
	return strings.Join(parts, "; ")
}

// SetCookie replaces the jar's cookies with the given Cookie header value.
func (c *Client) SetCookie(header string) {
	u, _ := url.Parse(c.Base)
	jar, _ := cookiejar.New(nil)
	var cookies []*http.Cookie
	for _, part := range strings.Split(header, ";") {
		name, value, ok := strings.Cut(strings.TrimSpace(part), "=")
		if ok {
			cookies = append(cookies, &http.Cookie{Name: name, Value: value})
		}
	}
	jar.SetCookies(u, cookies)
	c.HTTP.Jar = jar
}
