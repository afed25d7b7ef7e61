package server_test

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tandem-go/tandem/internal/tandemtest"
	"github.com/tandem-go/tandem/server"
	"github.com/tandem-go/tandem/shared"
)

// startProcessNode starts a node in a process of its own (this test binary,
// see TestMain) on rds, so that a test can SIGKILL it. It returns the
// node's URL and its process.
func startProcessNode(t *testing.T, rds *tandemtest.Redis) (string, *os.Process) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), envNode+"="+rds.URL(0))
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	line := make(chan string, 1)
	go func() {
		s := bufio.NewScanner(out)
		if s.Scan() {
			line <- s.Text()
		}
		close(line)
	}()
	select {
	case url, ok := <-line:
		if !ok || !strings.HasPrefix(url, "http://") {
			t.Fatalf("process node did not start (got %q)", url)
		}
		return url, cmd.Process
	case <-time.After(20 * time.Second):
		t.Fatal("process node did not print its URL within 20s")
	}
	return "", nil
}

// tabsOf asks node how many sockets of the session key are connected to
// any node.
func tabsOf(t *testing.T, node *server.Server, key string) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	counts, err := node.Sessions().Tabs(ctx, key)
	if err != nil {
		t.Fatalf("Tabs: %v", err)
	}
	return counts[key]
}

// waitTabs waits, at most wait, until node counts want tabs of key, and
// returns the last count.
func waitTabs(t *testing.T, node *server.Server, key string, want int) int {
	t.Helper()
	deadline := time.Now().Add(wait)
	for {
		got := tabsOf(t, node, key)
		if got == want || time.Now().After(deadline) {
			return got
		}
		time.Sleep(20 * time.Millisecond) // polls a condition; the wait is bounded
	}
}

// Tabs counts a session's sockets on every node, over both transports, and
// no socket of another session.
func TestTabsCountEveryNode(t *testing.T) {
	rds := tandemtest.StartRedis(t)
	nodes := startNodes(t, rds, 2, server.Config{})
	drv := tandemtest.NewDriver(t)
	a := tandemtest.NewClient(t, nodes[0].URL())
	a.Incr()
	key := tandemtest.StoreKey(t, a.Cookie())
	other := tandemtest.NewClient(t, nodes[1].URL())
	other.Incr()
	_ = drv.Dial(nodes[1].URL(), tandemtest.Options{Cookie: other.Cookie()})

	s1 := drv.Dial(nodes[0].URL(), tandemtest.Options{Cookie: a.Cookie(), Transport: tandemtest.WebSocket})
	_ = drv.Dial(nodes[1].URL(), tandemtest.Options{Cookie: a.Cookie(), Transport: tandemtest.Polling})
	_ = drv.Dial(nodes[1].URL(), tandemtest.Options{Cookie: a.Cookie(), Transport: tandemtest.WebSocket})
	for i, n := range nodes {
		if got := tabsOf(t, n, key); got != 3 {
			t.Errorf("node %d counts %d tabs, want 3", i, got)
		}
	}
	s1.Close()
	for i, n := range nodes {
		if got := waitTabs(t, n, key, 2); got != 2 {
			t.Errorf("node %d counts %d tabs after one closed, want 2", i, got)
		}
	}
}

// A node killed with SIGKILL: its tabs leave the count at the next count
// (Redis drops a dead process's subscriptions as its connection closes, so
// the adapter neither waits for it nor counts it), within
// killedNodeBound.
func TestTabsOfAKilledNodeLeaveTheCount(t *testing.T) {
	const killedNodeBound = 2 * time.Second
	rds := tandemtest.StartRedis(t)
	nodes := startNodes(t, rds, 1, server.Config{})
	url, proc := startProcessNode(t, rds)
	drv := tandemtest.NewDriver(t)
	a := tandemtest.NewClient(t, nodes[0].URL())
	a.Incr()
	key := tandemtest.StoreKey(t, a.Cookie())
	_ = drv.Dial(nodes[0].URL(), tandemtest.Options{Cookie: a.Cookie()})
	for _, tr := range transports {
		_ = drv.Dial(url, tandemtest.Options{Cookie: a.Cookie(), Transport: tr})
	}
	if got := tabsOf(t, nodes[0], key); got != 3 {
		t.Fatalf("before the kill: %d tabs, want 3", got)
	}
	if err := proc.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_, _ = proc.Wait()
	killed := time.Now()
	got := waitTabs(t, nodes[0], key, 1)
	took := time.Since(killed)
	if got != 1 {
		t.Fatalf("after the kill: %d tabs, want the live node's 1", got)
	}
	if took > killedNodeBound {
		t.Errorf("the killed node's tabs left the count after %v, over the bound of %v", took, killedNodeBound)
	}
	t.Logf("the killed node's tabs left the count %v after its death", took)
}

// A node that is alive for Redis but does not answer (stopped with
// SIGSTOP, as a hung process or a partitioned host would be): a count
// waits for it at most the adapter's requests timeout (5 s, the Redis
// adapter's default), then counts the others without it.
func TestTabsOfAHungNodeLeaveTheCount(t *testing.T) {
	const hungNodeBound = 5*time.Second + time.Second
	rds := tandemtest.StartRedis(t)
	nodes := startNodes(t, rds, 1, server.Config{})
	url, proc := startProcessNode(t, rds)
	drv := tandemtest.NewDriver(t)
	a := tandemtest.NewClient(t, nodes[0].URL())
	a.Incr()
	key := tandemtest.StoreKey(t, a.Cookie())
	_ = drv.Dial(nodes[0].URL(), tandemtest.Options{Cookie: a.Cookie()})
	_ = drv.Dial(url, tandemtest.Options{Cookie: a.Cookie()})
	if got := tabsOf(t, nodes[0], key); got != 2 {
		t.Fatalf("before the stop: %d tabs, want 2", got)
	}
	if err := proc.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = proc.Signal(syscall.SIGCONT) })
	start := time.Now()
	got := tabsOf(t, nodes[0], key)
	took := time.Since(start)
	if got != 1 {
		t.Errorf("with the other node stopped: %d tabs, want the live node's 1", got)
	}
	if took > hungNodeBound {
		t.Errorf("the count waited %v for the stopped node, over the bound of %v", took, hungNodeBound)
	}
	t.Logf("the count waited %v for the stopped node", took)
}

// GET /devices and POST /devices/revoke need a signed-in session, and
// never create one; POST /logout takes only its documented body.
func TestDevicesRoutesNeedASignedInSession(t *testing.T) {
	srv := tandemtest.Start(t, server.Config{})
	c := tandemtest.NewClient(t, srv.URL())
	status, body, hdr := c.Do(http.MethodGet, shared.RouteDevices)
	if status != http.StatusUnauthorized || !strings.Contains(body, `"error":"not signed in"`) || hdr.Get("Set-Cookie") != "" {
		t.Errorf("GET /devices without a session: %d %s, Set-Cookie %q", status, body, hdr.Get("Set-Cookie"))
	}
	c.Incr() // a session, not signed in
	status, body, hdr = c.Do(http.MethodGet, shared.RouteDevices)
	if status != http.StatusUnauthorized || hdr.Get("Set-Cookie") != "" {
		t.Errorf("GET /devices, not signed in: %d %s", status, body)
	}
	status, body = postJSON(t, c, shared.RouteDevicesRevoke, `{"id":"x"}`)
	if status != http.StatusUnauthorized {
		t.Errorf("POST /devices/revoke, not signed in: %d %s", status, body)
	}
	for _, bad := range []string{`{"id":`, `[]`, `{"id":"x","other":1}`, `{"id":"x"}{"id":"y"}`} {
		if status, body := postJSON(t, c, shared.RouteDevicesRevoke, bad); status != http.StatusBadRequest {
			t.Errorf("POST /devices/revoke %s: %d %s, want 400", bad, status, body)
		}
	}
	if status, body := postJSON(t, c, shared.RouteLogout, `{"everywhere":"yes"}`); status != http.StatusBadRequest {
		t.Errorf("POST /logout with a bad body: %d %s, want 400", status, body)
	}
	if got := c.Incr(); got != 2 {
		t.Errorf("the refused requests changed the session: count %d, want 2", got)
	}
	// Everywhere, not signed in: a plain logout.
	if status, body := postJSON(t, c, shared.RouteLogout, `{"everywhere":true}`); status != http.StatusNoContent {
		t.Errorf("POST /logout everywhere, not signed in: %d %s", status, body)
	}
	if got := c.Incr(); got != 1 {
		t.Errorf("after the logout: count %d, want a new session's 1", got)
	}
	// A cross-site GET /devices is refused, as GET /session is.
	status, _, _ = c.Do(http.MethodGet, shared.RouteDevices, "Sec-Fetch-Site", "cross-site")
	if status != http.StatusForbidden {
		t.Errorf("cross-site GET /devices: %d, want 403", status)
	}
}

// postJSON posts body as JSON with c's cookies and answers status and body.
func postJSON(t *testing.T, c *tandemtest.Client, path, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, c.Base+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	for k, v := range c.Header {
		req.Header[k] = v
	}
	res, err := c.HTTP.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}
