package tandemtest

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/tandem-go/tandem/shared"
)

// Driver runs the official socket.io JavaScript client (the npm-pinned
// socket.io-client, in Node.js) and lets a Go test open sockets with it. It
// is the same client the browser page uses, so what the tests see is what
// users get.
type Driver struct {
	tb testing.TB // fails on behalf of this test; see For
	*process
}

// process is one Node.js driver process, shared by every view of it.
type process struct {
	root  testing.TB // the test that started it, alive as long as it
	cmd   *exec.Cmd
	stdin io.WriteCloser

	mu      sync.Mutex
	nextID  int
	pending map[int]chan reply
	sockets map[string]*Socket
	n       int
}

// For returns a view of d that fails tb, not the test that started d, and
// whose sockets belong to tb: parallel subtests can share one Node.js
// process (starting one costs more than most subtests) as long as the
// parent test outlives them, which it does.
func (d *Driver) For(tb testing.TB) *Driver { return &Driver{tb: tb, process: d.process} }

type reply struct {
	ID        int               `json:"id"`
	OK        bool              `json:"ok"`
	Error     string            `json:"error"`
	Ack       []json.RawMessage `json:"ack"`
	Connected bool              `json:"connected"`
	Transport string            `json:"transport"`
	Cookies   map[string]string `json:"cookies"`
	Sock      string            `json:"sock"`
	Event     string            `json:"event"`
	Args      []json.RawMessage `json:"args"`
}

// RepoRoot returns the module's root directory.
func RepoRoot(tb testing.TB) string {
	tb.Helper()
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}

// NeedNode finds node and the npm-installed socket.io-client; without them
// it skips the test, or fails it under CI=true. With -short it skips.
func NeedNode(tb testing.TB) string {
	tb.Helper()
	node, why := findNode(tb)
	if why != "" {
		tb.Skip(why)
	}
	return node
}

// findNode returns node's path, or why the official client cannot run
// (-short, or Node.js or the npm package missing; the latter fails the
// test under CI=true).
func findNode(tb testing.TB) (node, why string) {
	tb.Helper()
	if testing.Short() {
		return "", "-short: skipping what drives the official socket.io client in Node.js"
	}
	node, err := exec.LookPath("node")
	if err == nil {
		_, err = os.Stat(filepath.Join(RepoRoot(tb), "node_modules", "socket.io-client", "package.json"))
	}
	if err != nil {
		msg := fmt.Sprintf("needs Node.js and the pinned socket.io-client: run `npm ci` at the repository root (or `go tool task test`): %v", err)
		if os.Getenv("CI") == "true" {
			tb.Fatal(msg)
		}
		return "", msg
	}
	return node, ""
}

// OptionalDriver starts a driver when Node.js and the client are there, and
// returns nil (saying why in the test's log) when they are not or with
// -short; under CI=true a missing Node.js fails, as in NewDriver. Tests
// whose HTTP checks do not need a socket use it, so that those checks run
// everywhere and only the socket checks are skipped.
func OptionalDriver(tb testing.TB) *Driver {
	tb.Helper()
	if _, why := findNode(tb); why != "" {
		tb.Logf("socket checks skipped: %s", why)
		return nil
	}
	return NewDriver(tb)
}

// Need returns d.For(tb), or skips tb when d is nil (no Node.js): for the
// parts of a test that need a socket.
func Need(tb testing.TB, d *Driver) *Driver {
	tb.Helper()
	if d == nil {
		tb.Skip("needs the official socket.io client in Node.js (see OptionalDriver)")
	}
	return d.For(tb)
}

// NewDriver starts a driver for the test's lifetime.
func NewDriver(tb testing.TB) *Driver {
	tb.Helper()
	node := NeedNode(tb)
	cmd := exec.Command(node, filepath.Join(RepoRoot(tb), "internal", "tandemtest", "siodriver.mjs"))
	cmd.Stderr = testWriter{tb}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		tb.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		tb.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		tb.Fatalf("start socket.io driver: %v", err)
	}
	d := &Driver{tb: tb, process: &process{root: tb, cmd: cmd, stdin: stdin, pending: map[int]chan reply{}, sockets: map[string]*Socket{}}}
	done := make(chan struct{})
	go d.read(stdout, done)
	tb.Cleanup(func() {
		_ = stdin.Close()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			_ = cmd.Process.Kill()
		}
		_ = cmd.Wait()
	})
	// Loading Node.js and socket.io-client takes half a second on an idle
	// machine and several on a busy one (go test runs packages in
	// parallel): wait for it here, so that the commands' own timeouts
	// measure the client and the server, not Node's start-up.
	d.call(map[string]any{"op": "ping"}, startTimeout)
	return d
}

// startTimeout bounds how long Node.js may take to load the driver.
const startTimeout = 60 * time.Second

func (d *process) read(r io.Reader, done chan struct{}) {
	defer close(done)
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		var m reply
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			d.root.Logf("socket.io driver: bad line %q", sc.Text())
			continue
		}
		d.mu.Lock()
		if m.Sock != "" && m.Event != "" {
			s := d.sockets[m.Sock]
			d.mu.Unlock()
			if s != nil {
				s.record(Event{Name: m.Event, Args: m.Args})
			}
			continue
		}
		ch := d.pending[m.ID]
		delete(d.pending, m.ID)
		d.mu.Unlock()
		if ch != nil {
			ch <- m
		}
	}
}

func (d *Driver) call(cmd map[string]any, timeout time.Duration) reply {
	d.tb.Helper()
	r, err := d.tryCall(cmd, timeout)
	if err != nil {
		d.tb.Fatal(err)
	}
	return r
}

// tryCall is call for any goroutine: it reports failures as an error,
// never through the test (FailNow must not run outside the test's own
// goroutine).
func (d *Driver) tryCall(cmd map[string]any, timeout time.Duration) (reply, error) {
	d.mu.Lock()
	d.nextID++
	id := d.nextID
	ch := make(chan reply, 1)
	d.pending[id] = ch
	d.mu.Unlock()
	cmd["id"] = id
	b, _ := json.Marshal(cmd)
	if _, err := d.stdin.Write(append(b, '\n')); err != nil {
		return reply{}, fmt.Errorf("socket.io driver: %v", err)
	}
	select {
	case r := <-ch:
		return r, nil
	case <-time.After(timeout):
		d.mu.Lock()
		delete(d.pending, id)
		d.mu.Unlock()
		return reply{}, fmt.Errorf("socket.io driver: no answer to %s within %v", b, timeout)
	}
}

// Options tunes Open.
type Options struct {
	Cookie string // Cookie header (extraHeaders), as in the recipe's tests
	Origin string // Origin header
	// Transports defaults to WebSocket only; Polling means long-polling
	// only; Both is the client's default (polling, then upgrade).
	Transport Transport
	Reconnect bool // let the client reconnect by itself
	Jar       bool // withCredentials: the client keeps the cookies it is given
}

// Transport selects how a socket talks to the server.
type Transport string

const (
	WebSocket Transport = "websocket"
	Polling   Transport = "polling"
	Both      Transport = "both"
)

// Open opens a socket to base without waiting for it to connect.
func (d *Driver) Open(base string, o Options) *Socket {
	d.tb.Helper()
	d.mu.Lock()
	d.n++
	name := fmt.Sprintf("s%d", d.n)
	s := &Socket{d: d, tb: d.tb, name: name, events: make(chan Event, 4096)}
	d.sockets[name] = s
	d.mu.Unlock()
	transports := []string{"websocket"}
	switch o.Transport {
	case Polling:
		transports = []string{"polling"}
	case Both:
		transports = []string{"polling", "websocket"}
	}
	r := d.call(map[string]any{
		"op": "open", "sock": name, "url": base, "cookie": o.Cookie, "origin": o.Origin,
		"transports": transports, "reconnect": o.Reconnect, "jar": o.Jar,
	}, 5*time.Second)
	if r.Error != "" {
		d.tb.Fatalf("open socket: %s", r.Error)
	}
	if d.tb != d.root {
		// The process outlives this test: its sockets must not.
		d.tb.Cleanup(s.Close)
	}
	return s
}

// Dial opens a socket and waits until it is connected. The socket may emit
// at once: the server reads no packet of a connection before its connect
// has completed (sessionio's connect barrier).
func (d *Driver) Dial(base string, o Options) *Socket {
	d.tb.Helper()
	s := d.Open(base, o)
	s.Wait("connect", 10*time.Second)
	return s
}

// Event is one thing a socket saw: a lifecycle event (connect, disconnect,
// connect_error, reconnect_attempt, transport) or an event from the server.
type Event struct {
	Name string
	Args []json.RawMessage
}

func (e Event) String() string {
	s := e.Name
	for _, a := range e.Args {
		s += " " + string(a)
	}
	return s
}

// Arg decodes argument i into v, failing the test if it cannot.
func (e Event) Arg(tb testing.TB, i int, v any) {
	tb.Helper()
	if i >= len(e.Args) {
		tb.Fatalf("event %s has no argument %d", e, i)
	}
	if err := json.Unmarshal(e.Args[i], v); err != nil {
		tb.Fatalf("event %s argument %d: %v", e, i, err)
	}
}

// Socket is one official socket.io-client socket in the driver.
type Socket struct {
	d      *Driver
	tb     testing.TB
	name   string
	events chan Event

	mu   sync.Mutex
	seen []Event
}

func (s *Socket) record(e Event) {
	s.mu.Lock()
	s.seen = append(s.seen, e)
	s.mu.Unlock()
	select {
	case s.events <- e:
	default:
		s.d.root.Errorf("socket %s: event buffer full; dropped %s", s.name, e)
	}
}

// Wait returns the next event named name, skipping others, or fails the
// test after timeout.
func (s *Socket) Wait(name string, timeout time.Duration) Event {
	s.tb.Helper()
	deadline := time.After(timeout)
	for {
		select {
		case e := <-s.events:
			if e.Name == name {
				return e
			}
		case <-deadline:
			s.tb.Fatalf("socket %s: no %q within %v; saw %v", s.name, name, timeout, s.Seen())
			return Event{}
		}
	}
}

// Next returns the next event, or ok false after timeout.
func (s *Socket) Next(timeout time.Duration) (Event, bool) {
	select {
	case e := <-s.events:
		return e, true
	case <-time.After(timeout):
		return Event{}, false
	}
}

// Seen returns every event the socket saw so far.
func (s *Socket) Seen() []Event {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Event(nil), s.seen...)
}

// Count waits for the next current count and returns it.
func (s *Socket) Count(timeout time.Duration) int {
	s.tb.Helper()
	var n int
	s.Wait(shared.EventCurrentCount, timeout).Arg(s.tb, 0, &n)
	return n
}

// Emit emits an event without an ack.
func (s *Socket) Emit(event string, args ...any) {
	s.tb.Helper()
	if args == nil {
		args = []any{}
	}
	if r := s.d.call(map[string]any{"op": "emit", "sock": s.name, "event": event, "args": args}, 5*time.Second); r.Error != "" {
		s.tb.Fatalf("emit %s: %s", event, r.Error)
	}
}

// EmitAck emits an event with an ack and returns the ack's argument as
// JSON, or an error (e.g. the ack timed out). It never fails the test
// itself, so worker goroutines may call it.
func (s *Socket) EmitAck(event string, args ...any) (json.RawMessage, error) {
	if args == nil {
		args = []any{}
	}
	r, err := s.d.tryCall(map[string]any{"op": "emit", "sock": s.name, "event": event, "args": args, "ack": true, "timeout": 5000}, 10*time.Second)
	if err != nil {
		return nil, err
	}
	if r.Error != "" {
		return nil, fmt.Errorf("%s", r.Error)
	}
	if len(r.Ack) != 1 {
		return nil, fmt.Errorf("ack has %d arguments", len(r.Ack))
	}
	return r.Ack[0], nil
}

// Incr emits the acked incr and returns the acked count, failing the test
// on anything else.
func (s *Socket) Incr() int {
	s.tb.Helper()
	raw, err := s.EmitAck(shared.EventIncr)
	if err != nil {
		s.tb.Fatalf("socket %s: incr: %v; saw %v", s.name, err, s.Seen())
	}
	var n int
	if err := json.Unmarshal(raw, &n); err != nil {
		s.tb.Fatalf("incr acked %s, not a number", raw)
	}
	return n
}

// EmitRaw writes an Engine.IO message straight to the connection, for
// packets the typed API would not send.
func (s *Socket) EmitRaw(data string) {
	s.tb.Helper()
	if r := s.d.call(map[string]any{"op": "emitRaw", "sock": s.name, "data": data}, 5*time.Second); r.Error != "" {
		s.tb.Fatalf("emitRaw: %s", r.Error)
	}
}

// State is what the client knows of its connection.
type State struct {
	Connected bool
	Transport string
	Cookies   map[string]string // the client's cookie jar (Jar option)
}

// State asks the client for its connection state.
func (s *Socket) State() State {
	s.tb.Helper()
	r := s.d.call(map[string]any{"op": "state", "sock": s.name}, 5*time.Second)
	if r.Error != "" {
		s.tb.Fatalf("state: %s", r.Error)
	}
	return State{Connected: r.Connected, Transport: r.Transport, Cookies: r.Cookies}
}

// SetCookie makes the socket's next connections (its reconnects) carry the
// Cookie header cookie, as a browser's tab does once a response of its
// origin set a new cookie.
func (s *Socket) SetCookie(cookie string) {
	s.tb.Helper()
	r := s.d.call(map[string]any{"op": "cookie", "sock": s.name, "cookie": cookie}, 5*time.Second)
	if r.Error != "" {
		s.tb.Fatalf("cookie: %s", r.Error)
	}
}

// Close disconnects the socket from the client side.
func (s *Socket) Close() {
	s.tb.Helper()
	s.d.call(map[string]any{"op": "close", "sock": s.name}, 5*time.Second)
}
