package main

// Issue 2, point 15: the command as the outside checker runs it (a built
// binary, environment variables, signals), and parse() on its own.

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"io"
	"math"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/tandem-go/tandem/internal/tandemtest"
	"github.com/tandem-go/tandem/server"
)

var (
	buildOnce sync.Once
	buildDir  string
	binary    string
	buildErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if buildDir != "" {
		_ = os.RemoveAll(buildDir)
	}
	os.Exit(code)
}

// tandemBinary builds the command once per test run, the way it ships.
func tandemBinary(tb testing.TB) string {
	tb.Helper()
	buildOnce.Do(func() {
		buildDir, buildErr = os.MkdirTemp("", "tandem-cmd-test-")
		if buildErr != nil {
			return
		}
		binary = filepath.Join(buildDir, "tandem")
		out, err := exec.Command("go", "build", "-o", binary, ".").CombinedOutput()
		if err != nil {
			buildErr = errors.New("go build: " + err.Error() + "\n" + string(out))
		}
	})
	if buildErr != nil {
		tb.Fatal(buildErr)
	}
	return binary
}

// busyPort holds a port on every interface for the test's lifetime and
// returns it: a command told to listen there cannot.
func busyPort(tb testing.TB) string {
	tb.Helper()
	ln, err := net.Listen("tcp", ":0")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = ln.Close() })
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	return port
}

// listeningRE finds the API's URL in the command's log line
// "API listening url=http://localhost:PORT".
var listeningRE = regexp.MustCompile(`msg="API listening" url=http://[^ :]+:(\d+) `)

// base waits until the command, started with PORT=0 (the kernel picks a
// free port, so no other test can take it first), says where it listens,
// and returns http://127.0.0.1:PORT.
func (c *command) base(tb testing.TB, within time.Duration) string {
	tb.Helper()
	deadline := time.Now().Add(within)
	for {
		if m := listeningRE.FindStringSubmatch(c.stderr.String()); m != nil {
			return "http://127.0.0.1:" + m[1]
		}
		select {
		case <-c.done:
			tb.Fatalf("exited before listening (%v); stderr:\n%s", c.err, c.stderr)
		default:
		}
		if time.Now().After(deadline) {
			tb.Fatalf("did not say where it listens within %v; stderr:\n%s", within, c.stderr)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// command is a running tandem binary.
type command struct {
	cmd    *exec.Cmd
	stderr *tandemtest.Buffer
	done   chan struct{} // closed once it exited
	err    error         // its exit, once done
}

// startCommand runs the binary with only the given environment (nothing
// leaks from the developer's shell) in an empty working directory, and
// kills it at the end of the test if it is still running.
func startCommand(tb testing.TB, env []string, args ...string) *command {
	tb.Helper()
	cmd := exec.Command(tandemBinary(tb), args...)
	cmd.Env = env
	cmd.Dir = tb.TempDir()
	c := &command{cmd: cmd, stderr: &tandemtest.Buffer{}, done: make(chan struct{})}
	cmd.Stdout = io.Discard
	cmd.Stderr = c.stderr
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	go func() {
		c.err = cmd.Wait()
		close(c.done)
	}()
	tb.Cleanup(func() {
		select {
		case <-c.done:
		default:
			_ = cmd.Process.Kill()
			<-c.done
			tb.Logf("stderr of the killed command:\n%s", c.stderr)
		}
	})
	return c
}

// wait returns the exit status, failing the test if the command is still
// running after within.
func (c *command) wait(tb testing.TB, within time.Duration) int {
	tb.Helper()
	select {
	case <-c.done:
	case <-time.After(within):
		tb.Fatalf("still running after %v; stderr:\n%s", within, c.stderr)
	}
	var exit *exec.ExitError
	switch {
	case c.err == nil:
		return 0
	case errors.As(c.err, &exit):
		return exit.ExitCode()
	default:
		tb.Fatalf("wait: %v", c.err)
		return -1
	}
}

// waitHealthy polls GET /healthz until it answers 200.
func (c *command) waitHealthy(tb testing.TB, base string, within time.Duration) {
	tb.Helper()
	deadline := time.Now().Add(within)
	client := &http.Client{Timeout: time.Second}
	for {
		resp, err := client.Get(base + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		select {
		case <-c.done:
			tb.Fatalf("exited before answering /healthz (%v); stderr:\n%s", c.err, c.stderr)
		default:
		}
		if time.Now().After(deadline) {
			tb.Fatalf("GET /healthz did not answer 200 within %v (last: %v); stderr:\n%s", within, err, c.stderr)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// post sends a POST with the given headers and returns status, body and
// headers.
func post(tb testing.TB, client *http.Client, url string, hdr ...string) (int, string, http.Header) {
	tb.Helper()
	req, err := http.NewRequest(http.MethodPost, url, nil)
	if err != nil {
		tb.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := client.Do(req)
	if err != nil {
		tb.Fatalf("POST %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), resp.Header
}

// The outside checker's run: PORT, CORS_ORIGINS and SESSION_STORE=memory
// start the API on that port; a signal stops it gracefully, even with a
// WebSocket and a long poll open, exiting 0 and saying so.
func TestCommandServesAndStopsGracefully(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		given os.Signal
	}{
		{"ok, SIGTERM", syscall.SIGTERM},
		{"ok, SIGINT", syscall.SIGINT},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := startCommand(t, []string{"PORT=0", "CORS_ORIGINS=http://localhost:4200", "SESSION_STORE=memory"})
			base := c.base(t, 10*time.Second)
			c.waitHealthy(t, base, 5*time.Second)

			jar, _ := cookiejar.New(nil)
			client := &http.Client{Jar: jar, Timeout: 5 * time.Second}
			for want := 1; want <= 2; want++ {
				status, body, _ := post(t, client, base+"/incr")
				if status != http.StatusOK || body != strconv.Itoa(want) {
					t.Fatalf("POST /incr: %d %q, want 200 %q", status, body, strconv.Itoa(want))
				}
			}
			// CORS_ORIGINS was read: its origin may POST with credentials,
			// another may not.
			status, body, hdr := post(t, client, base+"/incr", "Origin", "http://localhost:4200")
			if status != http.StatusOK || hdr.Get("Access-Control-Allow-Origin") != "http://localhost:4200" || hdr.Get("Access-Control-Allow-Credentials") != "true" {
				t.Errorf("POST /incr from CORS_ORIGINS: %d %q, CORS headers %q %q", status, body, hdr.Get("Access-Control-Allow-Origin"), hdr.Get("Access-Control-Allow-Credentials"))
			}
			if status, body, _ := post(t, client, base+"/incr", "Origin", "http://evil.example"); status != http.StatusForbidden {
				t.Errorf("POST /incr from another origin: %d %q, want 403", status, body)
			}

			// At the signal: a WebSocket, a pending long poll, and a request
			// in flight (its body not all sent yet, so the server cannot have
			// answered it).
			ws, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(base, "http")+"/socket.io/?EIO=4&transport=websocket", nil)
			if err != nil {
				t.Fatalf("WebSocket: %v", err)
			}
			defer ws.Close()
			if _, open, err := ws.ReadMessage(); err != nil || !strings.HasPrefix(string(open), "0{") {
				t.Fatalf("WebSocket open packet %q, %v", open, err)
			}
			resp, err := http.Get(base + "/socket.io/?EIO=4&transport=polling")
			if err != nil {
				t.Fatal(err)
			}
			open, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			var hs struct {
				SID string `json:"sid"`
			}
			if !strings.HasPrefix(string(open), "0") || json.Unmarshal(open[1:], &hs) != nil || hs.SID == "" {
				t.Fatalf("polling open packet %q", open)
			}
			type answer struct {
				status int
				body   string
				err    error
			}
			poll := make(chan answer, 1)
			go func() {
				resp, err := http.Get(base + "/socket.io/?EIO=4&transport=polling&sid=" + hs.SID)
				if err != nil {
					poll <- answer{err: err}
					return
				}
				b, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				poll <- answer{resp.StatusCode, string(b), err}
			}()
			inflight, err := net.Dial("tcp", strings.TrimPrefix(base, "http://"))
			if err != nil {
				t.Fatal(err)
			}
			defer inflight.Close()
			u, _ := url.Parse(base)
			cookie := ""
			for _, ck := range jar.Cookies(u) {
				cookie = ck.Name + "=" + ck.Value
			}
			if _, err := io.WriteString(inflight, "POST /incr HTTP/1.1\r\nHost: 127.0.0.1\r\nCookie: "+cookie+"\r\nContent-Length: 2\r\n\r\nx"); err != nil {
				t.Fatal(err)
			}
			// The count moves once the handler ran; the answer waits for
			// the body.
			deadline := time.Now().Add(5 * time.Second)
			for {
				req, _ := http.NewRequest(http.MethodGet, base+"/session", nil)
				req.Header.Set("Cookie", cookie)
				if resp, err := http.DefaultClient.Do(req); err == nil {
					b, _ := io.ReadAll(resp.Body)
					resp.Body.Close()
					if string(b) == `{"count":4}`+"\n" {
						break
					}
				}
				if time.Now().After(deadline) {
					t.Fatal("the in-flight POST /incr never reached its handler")
				}
				time.Sleep(10 * time.Millisecond)
			}

			start := time.Now()
			if err := c.cmd.Process.Signal(tt.given); err != nil {
				t.Fatal(err)
			}
			// While it drains (the in-flight request holds it up), and not
			// after it exited, where anything would look closed: the
			// sockets are closed the Engine.IO way, the long poll is
			// answered, the process is still there.
			a := <-poll
			if a.err != nil || a.status != http.StatusOK || !strings.Contains(a.body, "1") {
				t.Errorf("the pending long poll at shutdown: %d %q %v, want 200 with an Engine.IO close packet", a.status, a.body, a.err)
			}
			_ = ws.SetReadDeadline(time.Now().Add(5 * time.Second))
			var wsEnd error
			for wsEnd == nil {
				_, _, wsEnd = ws.ReadMessage()
			}
			var ce *websocket.CloseError
			if !errors.As(wsEnd, &ce) {
				t.Errorf("the WebSocket at shutdown ended with %v, want a close frame from the server", wsEnd)
			}
			select {
			case <-c.done:
				t.Fatalf("the command exited (%v) with a request in flight; stderr:\n%s", c.err, c.stderr)
			default:
			}
			if _, err := io.WriteString(inflight, "y"); err != nil {
				t.Fatalf("finishing the in-flight request: %v", err)
			}
			_ = inflight.SetReadDeadline(time.Now().Add(5 * time.Second))
			resp, err = http.ReadResponse(bufio.NewReader(inflight), nil)
			if err != nil {
				t.Fatalf("the in-flight request was not answered: %v", err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK || string(b) != "4" {
				t.Errorf("the in-flight POST /incr answered %d %q, want 200 \"4\"", resp.StatusCode, b)
			}
			if got := c.wait(t, 10*time.Second); got != 0 {
				t.Fatalf("exit status %d after %v, want 0; stderr:\n%s", got, tt.given, c.stderr)
			}
			t.Logf("stopped %v after the signal", time.Since(start).Round(time.Millisecond))
			if !strings.Contains(c.stderr.String(), "msg=stopped") {
				t.Errorf("the log does not say it stopped:\n%s", c.stderr)
			}
		})
	}
}

// A bad setting stops the command at start-up with exit status 2 and one
// line that names the variable.
func TestCommandRefusesBadConfiguration(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		givenEnv  []string
		givenArgs []string
		expectVar string
	}{
		{name: "nok, PORT not a number", givenEnv: []string{"PORT=abc"}, expectVar: "PORT"},
		{name: "nok, PORT out of range", givenEnv: []string{"PORT=70000"}, expectVar: "PORT"},
		{name: "nok, -port not a number", givenArgs: []string{"-port", "abc"}, expectVar: "PORT"},
		{name: "nok, SPA_PORT not a number", givenEnv: []string{"SPA_PORT=x"}, expectVar: "SPA_PORT"},
		{name: "nok, PUBLIC_URL not http", givenEnv: []string{"PUBLIC_URL=ftp://example.com"}, expectVar: "PUBLIC_URL"},
		{name: "nok, SESSION_TTL not a duration", givenEnv: []string{"SESSION_TTL=soon"}, expectVar: "SESSION_TTL"},
		{name: "nok, SESSION_TTL too short", givenEnv: []string{"SESSION_TTL=10ms"}, expectVar: "SESSION_TTL"},
		{name: "nok, SESSION_CHECK_INTERVAL too short", givenEnv: []string{"SESSION_CHECK_INTERVAL=1ms"}, expectVar: "SESSION_CHECK_INTERVAL"},
		{name: "nok, COOKIE_SAMESITE none without COOKIE_SECURE", givenEnv: []string{"COOKIE_SAMESITE=none"}, expectVar: "COOKIE_SAMESITE"},
		{name: "nok, COOKIE_SAMESITE unknown", givenEnv: []string{"COOKIE_SAMESITE=sometimes"}, expectVar: "COOKIE_SAMESITE"},
		{name: "nok, COOKIE_SECURE not a boolean", givenEnv: []string{"COOKIE_SECURE=maybe"}, expectVar: "COOKIE_SECURE"},
		{name: "nok, CORS_ORIGINS star", givenEnv: []string{"CORS_ORIGINS=*"}, expectVar: "CORS_ORIGINS"},
		{name: "nok, CORS_ORIGINS wildcard subdomain", givenEnv: []string{"CORS_ORIGINS=http://localhost:4200,http://*.x"}, expectVar: "CORS_ORIGINS"},
		{name: "nok, SESSION_STORE unknown", givenEnv: []string{"SESSION_STORE=nope"}, expectVar: "SESSION_STORE"},
		{name: "nok, SESSION_STORE bolt without a path", givenEnv: []string{"SESSION_STORE=bolt:"}, expectVar: "SESSION_STORE"},
		{name: "nok, SESSION_STORE redis with a bad database", givenEnv: []string{"SESSION_STORE=redis://:hunter2hunter2@127.0.0.1:6379/abc"}, expectVar: "SESSION_STORE"},
		{name: "nok, SESSION_STORE redis with an unknown option", givenEnv: []string{"SESSION_STORE=redis://127.0.0.1:6379/0?colour=blue"}, expectVar: "SESSION_STORE"},
		{name: "nok, SESSION_SECRET short", givenEnv: []string{"SESSION_SECRET=short"}, expectVar: "SESSION_SECRET"},
		{name: "nok, SESSION_SECRET second key short", givenEnv: []string{"SESSION_SECRET=" + strings.Repeat("k", 32) + ",short"}, expectVar: "SESSION_SECRET"},
		{name: "nok, SESSION_CREATE_BURST negative", givenEnv: []string{"SESSION_CREATE_BURST=-1"}, expectVar: "SESSION_CREATE_BURST"},
		{name: "nok, SESSION_CREATE_RATE not a number", givenEnv: []string{"SESSION_CREATE_RATE=fast"}, expectVar: "SESSION_CREATE_RATE"},
		{name: "nok, SESSION_CREATE_RATE NaN", givenEnv: []string{"SESSION_CREATE_RATE=NaN"}, expectVar: "SESSION_CREATE_RATE"},
		{name: "nok, SOCKET_EVENT_RATE Inf", givenEnv: []string{"SOCKET_EVENT_RATE=Inf"}, expectVar: "SOCKET_EVENT_RATE"},
		{name: "nok, SESSION_CREATE_GLOBAL_RATE NaN", givenEnv: []string{"SESSION_CREATE_GLOBAL_RATE=NaN"}, expectVar: "SESSION_CREATE_GLOBAL_RATE"},
		{name: "nok, MAX_SOCKET_PAYLOAD too small", givenEnv: []string{"MAX_SOCKET_PAYLOAD=10"}, expectVar: "MAX_SOCKET_PAYLOAD"},
		{name: "nok, LISTEN_HOST with a port", givenEnv: []string{"LISTEN_HOST=127.0.0.1:3000"}, expectVar: "LISTEN_HOST"},
		{name: "nok, LOG_LEVEL unknown", givenEnv: []string{"LOG_LEVEL=loud"}, expectVar: "LOG_LEVEL"},
		{name: "nok, BODY_READ_TIMEOUT too short", givenEnv: []string{"BODY_READ_TIMEOUT=1ms"}, expectVar: "BODY_READ_TIMEOUT"},
		{name: "nok, MAX_CONNS_PER_CLIENT zero", givenEnv: []string{"MAX_CONNS_PER_CLIENT=0"}, expectVar: "MAX_CONNS_PER_CLIENT"},
		{name: "nok, TRUSTED_PROXIES a host name", givenEnv: []string{"TRUSTED_PROXIES=10.0.0.0/8,proxy.internal"}, expectVar: "TRUSTED_PROXIES"},
		{name: "nok, ADMIN_ADDR every interface without ADMIN_TOKEN", givenEnv: []string{"ADMIN_ADDR=:0"}, expectVar: "ADMIN_ADDR"},
		{name: "nok, ADMIN_ADDR 0.0.0.0 without ADMIN_TOKEN", givenEnv: []string{"ADMIN_ADDR=0.0.0.0:0"}, expectVar: "ADMIN_ADDR"},
		{name: "nok, ADMIN_ADDR a public address without ADMIN_TOKEN", givenArgs: []string{"-admin-addr", "192.0.2.1:9464"}, expectVar: "ADMIN_ADDR"},
		{name: "nok, ADMIN_ADDR not host:port", givenEnv: []string{"ADMIN_ADDR=9464"}, expectVar: "ADMIN_ADDR"},
		{name: "nok, ADMIN_TOKEN short", givenEnv: []string{"ADMIN_ADDR=0.0.0.0:0", "ADMIN_TOKEN=short"}, expectVar: "ADMIN_TOKEN"},
		{name: "nok, ADMIN_TOKEN without ADMIN_ADDR", givenEnv: []string{"ADMIN_TOKEN=" + strings.Repeat("t", 32)}, expectVar: "ADMIN_TOKEN"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			// Without SESSION_STORE the default bolt store would be used,
			// so every case runs with a valid PORT and memory store unless it
			// sets its own.
			env := []string{"PORT=0", "SESSION_STORE=memory"}
			env = append(env, tt.givenEnv...)
			c := startCommand(t, env, tt.givenArgs...)
			if got := c.wait(t, 5*time.Second); got != 2 {
				t.Fatalf("exit status %d, want 2; stderr:\n%s", got, c.stderr)
			}
			out := c.stderr.String()
			lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
			if len(lines) != 1 {
				t.Fatalf("stderr has %d lines, want 1:\n%s", len(lines), out)
			}
			if !strings.HasPrefix(lines[0], "tandem: "+tt.expectVar+": ") {
				t.Errorf("stderr %q does not name %s", lines[0], tt.expectVar)
			}
			if strings.Contains(out, "hunter2") {
				t.Errorf("stderr shows the Redis password: %q", out)
			}
			if entries, _ := os.ReadDir(c.cmd.Dir); len(entries) != 0 {
				t.Errorf("a refused start left files behind: %v", entries)
			}
		})
	}
}

// A flag wins over its environment variable, bad or good. {busy} is a port
// the test holds: a command that listened there instead of the flag's port
// 0 would fail to start.
func TestCommandFlagWinsOverVariable(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		givenEnv  []string
		givenArgs []string
	}{
		{"ok, -port over a bad PORT", []string{"PORT=abc", "SESSION_STORE=memory"}, []string{"-port", "0"}},
		{"ok, -port over another PORT", []string{"PORT={busy}", "SESSION_STORE=memory"}, []string{"-port=0"}},
		{"ok, -session-store over a bad SESSION_STORE", []string{"PORT={busy}", "SESSION_STORE=nope"}, []string{"-port", "0", "-session-store", "memory"}},
		{"ok, -cors-origins over a star CORS_ORIGINS", []string{"CORS_ORIGINS=*", "SESSION_STORE=memory"}, []string{"-port", "0", "-cors-origins", "http://localhost:4200"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			busy := busyPort(t)
			fill := func(in []string) []string {
				out := make([]string, len(in))
				for i, s := range in {
					out[i] = strings.ReplaceAll(s, "{busy}", busy)
				}
				return out
			}
			c := startCommand(t, fill(tt.givenEnv), fill(tt.givenArgs)...)
			base := c.base(t, 10*time.Second)
			c.waitHealthy(t, base, 5*time.Second)
			if strings.HasSuffix(base, ":"+busy) {
				t.Errorf("the command listens on the environment's PORT %s; the flag should have replaced it", busy)
			}
			if err := c.cmd.Process.Signal(syscall.SIGTERM); err != nil {
				t.Fatal(err)
			}
			if got := c.wait(t, 10*time.Second); got != 0 {
				t.Errorf("exit status %d, want 0; stderr:\n%s", got, c.stderr)
			}
		})
	}
}

// env turns name=value pairs into a getenv.
func env(kv ...string) func(string) string {
	m := map[string]string{}
	for _, s := range kv {
		k, v, _ := strings.Cut(s, "=")
		m[k] = v
	}
	return func(k string) string { return m[k] }
}

func TestParse(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		givenArgs []string
		givenEnv  []string
		expect    func(tb testing.TB, o *options)
		expectVar string // the variable a ConfigError names; "" for success
	}{
		{name: "ok, nothing set leaves every default to server.New", expect: func(tb testing.TB, o *options) {
			if o.Config.Addr != "" || o.Store != "" || o.CORSOrigins != nil || o.logLevel != 0 {
				tb.Errorf("options %+v, want zero values", o)
			}
		}},
		{name: "ok, PORT", givenEnv: []string{"PORT=8080"}, expect: addr(":8080")},
		{name: "ok, PORT with spaces", givenEnv: []string{"PORT= 8080 "}, expect: addr(":8080")},
		{name: "ok, -port wins over PORT", givenArgs: []string{"-port", "9090"}, givenEnv: []string{"PORT=8080"}, expect: addr(":9090")},
		{name: "ok, -port wins over a bad PORT", givenArgs: []string{"-port=9090"}, givenEnv: []string{"PORT=abc"}, expect: addr(":9090")},
		{name: "ok, an empty -port wins over PORT: the default", givenArgs: []string{"-port="}, givenEnv: []string{"PORT=abc"}, expect: addr("")},
		{name: "ok, SPA_PORT", givenEnv: []string{"SPA_PORT=4200"}, expect: func(tb testing.TB, o *options) {
			if o.SPAAddr != ":4200" {
				tb.Errorf("SPAAddr %q, want :4200", o.SPAAddr)
			}
		}},
		{name: "ok, CORS_ORIGINS is a trimmed list", givenEnv: []string{"CORS_ORIGINS= http://a:1 ,,http://b:2,"}, expect: func(tb testing.TB, o *options) {
			if want := []string{"http://a:1", "http://b:2"}; !slices.Equal(o.CORSOrigins, want) {
				tb.Errorf("CORSOrigins %q, want %q", o.CORSOrigins, want)
			}
		}},
		{name: "ok, SESSION_SECRET is a list, first signs", givenEnv: []string{"SESSION_SECRET=new,old"}, expect: func(tb testing.TB, o *options) {
			if want := []string{"new", "old"}; !slices.Equal(o.SessionSecrets, want) {
				tb.Errorf("SessionSecrets %q, want %q", o.SessionSecrets, want)
			}
		}},
		{name: "ok, durations", givenEnv: []string{"SESSION_TTL=2h", "SESSION_CHECK_INTERVAL=100ms"}, expect: func(tb testing.TB, o *options) {
			if o.SessionTTL != 2*time.Hour || o.SessionCheckInterval != 100*time.Millisecond {
				tb.Errorf("TTL %v, check interval %v", o.SessionTTL, o.SessionCheckInterval)
			}
		}},
		{name: "ok, cookie settings", givenEnv: []string{"COOKIE_SECURE=true", "COOKIE_SAMESITE=none"}, expect: func(tb testing.TB, o *options) {
			if !o.CookieSecure || o.CookieSameSite != "none" {
				tb.Errorf("CookieSecure %v, CookieSameSite %q", o.CookieSecure, o.CookieSameSite)
			}
		}},
		{name: "ok, store, data dir, public URL, web dir", givenEnv: []string{"SESSION_STORE=bolt:/tmp/x.db", "DATA_DIR=/tmp/d", "PUBLIC_URL=https://api.example.com", "WEB_DIR=/tmp/w"}, expect: func(tb testing.TB, o *options) {
			if o.Store != "bolt:/tmp/x.db" || o.DataDir != "/tmp/d" || o.PublicURL != "https://api.example.com" || o.WebDir != "/tmp/w" {
				tb.Errorf("options %+v", o.Config)
			}
		}},
		{name: "ok, limits", givenEnv: []string{"SESSION_CREATE_BURST=5", "SESSION_CREATE_RATE=0.5", "MAX_SOCKET_PAYLOAD=2048"}, expect: func(tb testing.TB, o *options) {
			if o.SessionCreateBurst != 5 || o.SessionCreateRate != 0.5 || o.MaxSocketPayload != 2048 {
				tb.Errorf("options %+v", o.Config)
			}
		}},
		{name: "ok, engine conns per client", givenEnv: []string{"ENGINE_CONNS_PER_CLIENT=16"}, expect: func(tb testing.TB, o *options) {
			if o.EngineConnsPerClient != 16 {
				tb.Errorf("EngineConnsPerClient %d, want 16", o.EngineConnsPerClient)
			}
		}},
		{name: "ok, engine conns per client off", givenArgs: []string{"-engine-conns-per-client", "off"}, expect: func(tb testing.TB, o *options) {
			if o.EngineConnsPerClient != -1 {
				tb.Errorf("EngineConnsPerClient %d, want -1 (sessionio.Off)", o.EngineConnsPerClient)
			}
		}},
		{name: "nok, ENGINE_CONNS_PER_CLIENT zero", givenEnv: []string{"ENGINE_CONNS_PER_CLIENT=0"}, expectVar: "ENGINE_CONNS_PER_CLIENT"},
		{name: "ok, listen host", givenEnv: []string{"LISTEN_HOST=127.0.0.1", "PORT=3005"}, expect: func(tb testing.TB, o *options) {
			if o.ListenHost != "127.0.0.1" || o.Addr != ":3005" {
				tb.Errorf("ListenHost %q, Addr %q", o.ListenHost, o.Addr)
			}
		}},
		{name: "ok, global creation rate", givenEnv: []string{"SESSION_CREATE_GLOBAL_RATE=50"}, expect: func(tb testing.TB, o *options) {
			if o.SessionCreateGlobalRate != 50 {
				tb.Errorf("SessionCreateGlobalRate %v, want 50", o.SessionCreateGlobalRate)
			}
		}},
		{name: "ok, global creation rate off", givenEnv: []string{"SESSION_CREATE_GLOBAL_RATE=off"}, expect: func(tb testing.TB, o *options) {
			if o.SessionCreateGlobalRate != -1 {
				tb.Errorf("SessionCreateGlobalRate %v, want -1 (sessionio.Off)", o.SessionCreateGlobalRate)
			}
		}},
		{name: "ok, socket caps", givenEnv: []string{"SOCKETS_PER_SESSION=4"}, givenArgs: []string{"-sockets-per-client", "off"}, expect: func(tb testing.TB, o *options) {
			if o.SocketsPerSession != 4 || o.SocketsPerClient != -1 {
				tb.Errorf("SocketsPerSession %d, SocketsPerClient %d, want 4 and -1 (sessionio.Off)", o.SocketsPerSession, o.SocketsPerClient)
			}
		}},
		{name: "ok, connection limits and proxies", givenEnv: []string{"BODY_READ_TIMEOUT=3s", "MAX_CONNS_PER_CLIENT=9", "TRUSTED_PROXIES=10.0.0.0/8, fd00::/8"}, expect: func(tb testing.TB, o *options) {
			if o.BodyReadTimeout != 3*time.Second || o.MaxConnsPerClient != 9 || !slices.Equal(o.TrustedProxies, []string{"10.0.0.0/8", "fd00::/8"}) {
				tb.Errorf("options %+v", o.Config)
			}
		}},
		{name: "ok, LOG_LEVEL", givenEnv: []string{"LOG_LEVEL=debug"}, expect: func(tb testing.TB, o *options) {
			if o.logLevel.String() != "DEBUG" {
				tb.Errorf("log level %v, want DEBUG", o.logLevel)
			}
		}},
		{name: "nok, PORT", givenEnv: []string{"PORT=abc"}, expectVar: "PORT"},
		{name: "nok, -port", givenArgs: []string{"-port", "-1"}, expectVar: "PORT"},
		{name: "nok, SPA_PORT", givenEnv: []string{"SPA_PORT=99999"}, expectVar: "SPA_PORT"},
		{name: "nok, SESSION_TTL", givenEnv: []string{"SESSION_TTL=soon"}, expectVar: "SESSION_TTL"},
		{name: "nok, SESSION_TTL negative", givenEnv: []string{"SESSION_TTL=-1h"}, expectVar: "SESSION_TTL"},
		{name: "nok, SESSION_CHECK_INTERVAL", givenEnv: []string{"SESSION_CHECK_INTERVAL=often"}, expectVar: "SESSION_CHECK_INTERVAL"},
		{name: "nok, SESSION_CREATE_BURST", givenEnv: []string{"SESSION_CREATE_BURST=0"}, expectVar: "SESSION_CREATE_BURST"},
		{name: "nok, SESSION_CREATE_RATE", givenEnv: []string{"SESSION_CREATE_RATE=-2"}, expectVar: "SESSION_CREATE_RATE"},
		{name: "nok, SESSION_CREATE_GLOBAL_RATE", givenEnv: []string{"SESSION_CREATE_GLOBAL_RATE=-3"}, expectVar: "SESSION_CREATE_GLOBAL_RATE"},
		{name: "nok, SESSION_CREATE_RATE NaN", givenEnv: []string{"SESSION_CREATE_RATE=NaN"}, expectVar: "SESSION_CREATE_RATE"},
		{name: "nok, SESSION_CREATE_RATE Inf", givenEnv: []string{"SESSION_CREATE_RATE=Inf"}, expectVar: "SESSION_CREATE_RATE"},
		{name: "nok, SESSION_CREATE_RATE +Inf", givenEnv: []string{"SESSION_CREATE_RATE=+Inf"}, expectVar: "SESSION_CREATE_RATE"},
		{name: "nok, SESSION_CREATE_RATE infinity", givenEnv: []string{"SESSION_CREATE_RATE=infinity"}, expectVar: "SESSION_CREATE_RATE"},
		{name: "nok, SESSION_CREATE_RATE -Inf", givenEnv: []string{"SESSION_CREATE_RATE=-Inf"}, expectVar: "SESSION_CREATE_RATE"},
		{name: "nok, SOCKET_EVENT_RATE NaN", givenEnv: []string{"SOCKET_EVENT_RATE=NaN"}, expectVar: "SOCKET_EVENT_RATE"},
		{name: "nok, SOCKET_EVENT_RATE Inf", givenEnv: []string{"SOCKET_EVENT_RATE=Inf"}, expectVar: "SOCKET_EVENT_RATE"},
		{name: "nok, SOCKET_EVENT_RATE +Inf", givenEnv: []string{"SOCKET_EVENT_RATE=+Inf"}, expectVar: "SOCKET_EVENT_RATE"},
		{name: "nok, SOCKET_EVENT_RATE infinity", givenEnv: []string{"SOCKET_EVENT_RATE=infinity"}, expectVar: "SOCKET_EVENT_RATE"},
		{name: "nok, SOCKET_EVENT_RATE -Inf", givenEnv: []string{"SOCKET_EVENT_RATE=-Inf"}, expectVar: "SOCKET_EVENT_RATE"},
		{name: "nok, SESSION_CREATE_GLOBAL_RATE NaN", givenEnv: []string{"SESSION_CREATE_GLOBAL_RATE=NaN"}, expectVar: "SESSION_CREATE_GLOBAL_RATE"},
		{name: "nok, SESSION_CREATE_GLOBAL_RATE Inf", givenEnv: []string{"SESSION_CREATE_GLOBAL_RATE=Inf"}, expectVar: "SESSION_CREATE_GLOBAL_RATE"},
		{name: "nok, SESSION_CREATE_GLOBAL_RATE +Inf", givenEnv: []string{"SESSION_CREATE_GLOBAL_RATE=+Inf"}, expectVar: "SESSION_CREATE_GLOBAL_RATE"},
		{name: "nok, SESSION_CREATE_GLOBAL_RATE infinity", givenEnv: []string{"SESSION_CREATE_GLOBAL_RATE=infinity"}, expectVar: "SESSION_CREATE_GLOBAL_RATE"},
		{name: "nok, SESSION_CREATE_GLOBAL_RATE -Inf", givenEnv: []string{"SESSION_CREATE_GLOBAL_RATE=-Inf"}, expectVar: "SESSION_CREATE_GLOBAL_RATE"},
		{name: "nok, -session-create-rate nan", givenArgs: []string{"-session-create-rate", "nan"}, expectVar: "SESSION_CREATE_RATE"},
		{name: "nok, COOKIE_SECURE", givenEnv: []string{"COOKIE_SECURE=maybe"}, expectVar: "COOKIE_SECURE"},
		{name: "nok, SOCKETS_PER_SESSION", givenEnv: []string{"SOCKETS_PER_SESSION=0"}, expectVar: "SOCKETS_PER_SESSION"},
		{name: "nok, -sockets-per-client", givenArgs: []string{"-sockets-per-client", "many"}, expectVar: "SOCKETS_PER_CLIENT"},
		{name: "nok, MAX_SOCKET_PAYLOAD", givenEnv: []string{"MAX_SOCKET_PAYLOAD=1MB"}, expectVar: "MAX_SOCKET_PAYLOAD"},
		{name: "nok, LOG_LEVEL", givenEnv: []string{"LOG_LEVEL=loud"}, expectVar: "LOG_LEVEL"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			o, err := parse(tt.givenArgs, env(tt.givenEnv...), io.Discard)
			if tt.expectVar != "" {
				var ce *server.ConfigError
				if !errors.As(err, &ce) || ce.Var != tt.expectVar {
					t.Fatalf("parse: %v (%T), want a ConfigError naming %s", err, err, tt.expectVar)
				}
				return
			}
			if err != nil {
				t.Fatalf("parse: %v", err)
			}
			tt.expect(t, o)
		})
	}
}

func addr(want string) func(testing.TB, *options) {
	return func(tb testing.TB, o *options) {
		tb.Helper()
		if o.Config.Addr != want {
			tb.Errorf("Addr %q, want %q", o.Config.Addr, want)
		}
	}
}

func TestParseRefusesWhatIsNotASetting(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		given  []string
		expect error // nil: any error
	}{
		{"nok, a positional argument", []string{"serve"}, nil},
		{"nok, an unknown flag", []string{"-nope"}, nil},
		{"nok, -h asks for help", []string{"-h"}, flag.ErrHelp},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := parse(tt.given, env(), io.Discard)
			if err == nil || (tt.expect != nil && !errors.Is(err, tt.expect)) {
				t.Fatalf("parse(%q): %v, want %v", tt.given, err, tt.expect)
			}
		})
	}
}

// Every variable of DESIGN.md's configuration table is read, and has its
// flag.
func TestEveryDesignVariableHasAFlag(t *testing.T) {
	t.Parallel()
	design := []string{"PORT", "SPA_PORT", "PUBLIC_URL", "CORS_ORIGINS", "SESSION_STORE", "SESSION_SECRET",
		"SESSION_TTL", "SESSION_CHECK_INTERVAL", "COOKIE_SECURE", "COOKIE_SAMESITE", "TRUSTED_PROXIES", "LOG_LEVEL",
		"ADMIN_ADDR", "ADMIN_TOKEN"}
	var usage bytes.Buffer
	_, err := parse([]string{"-h"}, env(), &usage)
	if !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("parse -h: %v", err)
	}
	for _, v := range design {
		if !slices.ContainsFunc(settings, func(s setting) bool { return s.env == v }) {
			t.Errorf("%s is not read", v)
		}
		if !strings.Contains(usage.String(), "-"+flagName(v)+" ") || !strings.Contains(usage.String(), "["+v+"]") {
			t.Errorf("-%s is not in the usage:\n%s", flagName(v), usage.String())
		}
	}
}

// Issue 6, item 15: on bbolt, an increment the server acknowledged is on
// disk. Clients stream POST /incr; the process is killed (SIGKILL: no
// shutdown, no flush) in the middle; after a restart on the same file every
// session's count is at least the last value it was given, and at most the
// number of increments it sent (one may have committed without its answer
// reaching the client).
func TestCommandSIGKILLLosesNoAckedIncrement(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	env := []string{"PORT=0", "SESSION_STORE=bolt:" + filepath.Join(dir, "sessions.db"), "DATA_DIR=" + dir}
	c := startCommand(t, env)
	base := c.base(t, 10*time.Second)
	c.waitHealthy(t, base, 5*time.Second)

	type stream struct {
		cookie string
		acked  atomic.Int64 // the last value answered
		sent   atomic.Int64 // requests sent
	}
	streams := make([]*stream, 4)
	client := &http.Client{Timeout: 5 * time.Second}
	for i := range streams {
		status, body, hdr := post(t, client, base+"/incr")
		ck := (&http.Response{Header: hdr}).Cookies()
		if status != http.StatusOK || body != "1" || len(ck) != 1 {
			t.Fatalf("first POST /incr: %d %q %v", status, body, ck)
		}
		streams[i] = &stream{cookie: ck[0].Name + "=" + ck[0].Value}
		streams[i].acked.Store(1)
		streams[i].sent.Store(1)
	}
	var wg sync.WaitGroup
	for _, s := range streams {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 100_000 { // bounded; the kill ends it long before
				req, _ := http.NewRequest(http.MethodPost, base+"/incr", nil)
				req.Header.Set("Cookie", s.cookie)
				s.sent.Add(1)
				resp, err := client.Do(req)
				if err != nil {
					return // the server is gone
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				n, err := strconv.Atoi(string(b))
				if resp.StatusCode != http.StatusOK || err != nil {
					return
				}
				s.acked.Store(int64(n))
			}
		}()
	}
	deadline := time.Now().Add(20 * time.Second)
	for total := int64(0); total < 200; {
		total = 0
		for _, s := range streams {
			total += s.acked.Load()
		}
		if time.Now().After(deadline) {
			t.Fatalf("only %d increments acknowledged in 20s", total)
		}
		time.Sleep(5 * time.Millisecond)
	}
	if err := c.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	c.wait(t, 5*time.Second)

	again := startCommand(t, env)
	base = again.base(t, 10*time.Second)
	again.waitHealthy(t, base, 5*time.Second)
	for i, s := range streams {
		req, _ := http.NewRequest(http.MethodGet, base+"/session", nil)
		req.Header.Set("Cookie", s.cookie)
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var info struct{ Count int64 }
		err = json.NewDecoder(resp.Body).Decode(&info)
		resp.Body.Close()
		if err != nil || resp.Header.Get("Set-Cookie") != "" {
			t.Fatalf("session %d after the restart: %v, Set-Cookie %q (the session is gone)", i+1, err, resp.Header.Get("Set-Cookie"))
		}
		acked, sent := s.acked.Load(), s.sent.Load()
		if info.Count < acked || info.Count > sent {
			t.Errorf("session %d: count %d after SIGKILL, want between the last acknowledged %d and the %d sent", i+1, info.Count, acked, sent)
		}
		t.Logf("session %d: %d acknowledged, %d sent, %d on disk", i+1, acked, sent, info.Count)
	}
	_ = again.cmd.Process.Signal(syscall.SIGTERM)
	again.wait(t, 10*time.Second)
}

// FuzzParse: configuration comes from the environment and the command line
// of whoever runs the server. parse never panics, and every error but a
// flag error (which the flag package reports itself) is a ConfigError that
// names one of the settings.
func FuzzParse(f *testing.F) {
	// Issue 13, item 9: NaN and Inf parse as floats, and would turn a
	// limit off; every float setting refuses them.
	for _, v := range []string{"NaN", "nan", "Inf", "+Inf", "-Inf", "infinity", "1e309"} {
		for _, name := range []string{"SESSION_CREATE_RATE", "SOCKET_EVENT_RATE", "SESSION_CREATE_GLOBAL_RATE"} {
			f.Add(name, v, "")
			f.Add("", "", "-"+flagName(name)+" "+v)
		}
	}
	f.Fuzz(func(t *testing.T, name, value, flagArg string) {
		var args []string
		if flagArg != "" {
			args = strings.Fields(flagArg)
		}
		o, err := parse(args, env(name+"="+value), io.Discard)
		if err == nil {
			if o == nil {
				t.Fatal("parse returned neither options nor an error")
			}
			for _, r := range []float64{o.SessionCreateRate, o.SocketEventRate, o.SessionCreateGlobalRate} {
				if math.IsNaN(r) || math.IsInf(r, 0) {
					t.Fatalf("parse accepted a rate of %v (%s=%q, %q)", r, name, value, flagArg)
				}
			}
			return
		}
		var ce *server.ConfigError
		if errors.As(err, &ce) {
			if !slices.ContainsFunc(settings, func(s setting) bool { return s.env == ce.Var }) {
				t.Fatalf("a ConfigError names %q, which is not a setting", ce.Var)
			}
			if ce.Problem == "" || strings.Contains(ce.Problem, "\n") {
				t.Fatalf("ConfigError %q: want one line", ce.Problem)
			}
		}
	})
}
