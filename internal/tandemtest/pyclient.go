package tandemtest

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// PyEvent is one line pyclient.py wrote: "connected" (with Transport and
// Log, the Engine.IO client's log of how it connected),
// "count" (with N), "ack" (with Args), "disconnect", "error" (with Error),
// or another server event with its Args.
type PyEvent struct {
	Event     string            `json:"event"`
	Transport string            `json:"transport"`
	Log       []string          `json:"log"`
	N         int               `json:"n"`
	Args      []json.RawMessage `json:"args"`
	Error     string            `json:"error"`
}

// PyClient is python-socketio's client (pyclient.py) in a process of its own.
type PyClient struct {
	tb     testing.TB
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	events chan PyEvent
	done   chan struct{}
	mu     sync.Mutex
	log    strings.Builder // the Engine.IO client's log (stderr)
}

// NeedPythonSocketIO returns a python3 that imports python-socketio and
// websocket-client and requests, or skips the test saying how to install them (it fails
// instead under CI=true, where .ci/run installs them). With -short it skips.
func NeedPythonSocketIO(tb testing.TB) string {
	tb.Helper()
	if testing.Short() {
		tb.Skip("-short: skipping what runs python-socketio's client")
	}
	// Debian's python3-socketio installs for /usr/bin/python3, which need
	// not be the python3 first on PATH (pyenv, a virtualenv).
	var tried []string
	candidates := []string{"/usr/bin/python3"}
	if p, err := exec.LookPath("python3"); err == nil {
		candidates = append(candidates, p)
	}
	for _, py := range candidates {
		out, err := exec.Command(py, "-c", "import socketio, engineio, websocket, requests").CombinedOutput()
		if err == nil {
			return py
		}
		tried = append(tried, fmt.Sprintf("%s: %v %s", py, err, strings.TrimSpace(lastLine(string(out)))))
	}
	msg := "needs python-socketio with websocket-client and requests: apt-get install python3-socketio python3-engineio python3-websocket python3-requests (tried " + strings.Join(tried, "; ") + ")"
	if os.Getenv("CI") == "true" {
		tb.Fatal(msg)
	}
	tb.Skip(msg)
	return ""
}

func lastLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		return s[i+1:]
	}
	return s
}

// StartPyClient runs pyclient.py against base with the Cookie header value
// cookie, over transports ("websocket", or "polling,websocket" for the
// upgrade), and stops it at the end of the test. It does not wait for the
// connection: see Next.
func StartPyClient(tb testing.TB, base, cookie, transports string) *PyClient {
	tb.Helper()
	py := NeedPythonSocketIO(tb)
	cmd := exec.Command(py, filepath.Join(RepoRoot(tb), "internal", "tandemtest", "pyclient.py"), base, transports)
	cmd.Env = append(os.Environ(), "TANDEM_COOKIE="+cookie, "PYTHONUNBUFFERED=1")
	c := &PyClient{tb: tb, cmd: cmd, events: make(chan PyEvent, 256), done: make(chan struct{})}
	cmd.Stderr = (*pyLog)(c)
	var err error
	if c.stdin, err = cmd.StdinPipe(); err != nil {
		tb.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		tb.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		tb.Fatalf("start %s: %v", py, err)
	}
	go func() {
		defer close(c.done)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			var e PyEvent
			if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
				e = PyEvent{Event: "error", Error: fmt.Sprintf("not JSON: %q", sc.Text())}
			}
			c.events <- e
		}
	}()
	tb.Cleanup(func() {
		_ = c.stdin.Close()
		select {
		case <-c.done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
		}
		_ = cmd.Wait()
		if tb.Failed() {
			tb.Logf("python-socketio client's log:\n%s", c.Log())
		}
	})
	return c
}

type pyLog PyClient

func (l *pyLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.log.Write(p)
}

// Log is what the client wrote on stderr so far (the Engine.IO client logs
// its polling requests and its upgrade there).
func (c *PyClient) Log() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.log.String()
}

// Next returns the client's next line, failing the test if none comes
// within timeout, if the client exits, or if the line is an "error".
func (c *PyClient) Next(timeout time.Duration) PyEvent {
	c.tb.Helper()
	select {
	case e := <-c.events:
		if e.Event == "error" {
			c.tb.Fatalf("python-socketio client: %s", e.Error)
		}
		return e
	case <-c.done:
		select {
		case e := <-c.events:
			if e.Event == "error" {
				c.tb.Fatalf("python-socketio client: %s", e.Error)
			}
			return e
		default:
		}
		c.tb.Fatalf("python-socketio client exited; its log:\n%s", c.Log())
	case <-time.After(timeout):
		c.tb.Fatalf("python-socketio client: nothing within %v", timeout)
	}
	return PyEvent{}
}

// Command sends one command line ("incr", "quit").
func (c *PyClient) Command(cmd string) {
	c.tb.Helper()
	if _, err := io.WriteString(c.stdin, cmd+"\n"); err != nil {
		c.tb.Fatalf("python-socketio client: write %q: %v", cmd, err)
	}
}

// Quit asks the client to disconnect and waits for it to exit cleanly.
func (c *PyClient) Quit(timeout time.Duration) {
	c.tb.Helper()
	c.Command("quit")
	_ = c.stdin.Close()
	select {
	case <-c.done:
	case <-time.After(timeout):
		c.tb.Fatalf("python-socketio client did not exit within %v", timeout)
	}
	if err := c.cmd.Wait(); err != nil {
		c.tb.Fatalf("python-socketio client: %v; its log:\n%s", err, c.Log())
	}
}
