// Package socketio is a thin typed wrapper over the official socket.io
// JavaScript client: the global io function of socket.io.min.js, which the
// page loads from /web/.
//
// It is written against go-app's app.Value rather than syscall/js, so it
// compiles on every platform and its logic is tested on linux with a fake
// app.Value. Event names and payload types come from package shared.
//
// Concurrency: handlers registered with the On methods are called on the
// goroutine of the JavaScript event that triggered them. They must not block
// (JavaScript waits for them): hand the value to the UI goroutine, for
// instance with go-app's Context.Dispatch. EmitIncr blocks until the ack
// arrives, so call it from a goroutine of its own (Context.Async), never from
// a handler. All methods are safe to call from any goroutine.
package socketio

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/maxence-charriere/go-app/v10/pkg/app"

	"github.com/tandem-go/tandem/shared"
)

// DefaultAckTimeout bounds EmitIncr when its context has no deadline.
const DefaultAckTimeout = 10 * time.Second

// Errors returned by New and EmitIncr.
var (
	ErrNotLoaded = errors.New("socketio: the socket.io client script is not loaded (window.io is undefined)")
	ErrClosed    = errors.New("socketio: socket closed")
)

// Config says where to connect.
type Config struct {
	// URL is the server's origin, such as "http://localhost:3000". Empty means
	// the origin of the page.
	URL string

	// Path is where the server serves Socket.IO. Defaults to shared.SocketPath.
	Path string
}

// funcOfFunc is app.FuncOf; tests replace it to call the handlers themselves.
type funcOfFunc func(fn func(this app.Value, args []app.Value) any) app.Func

// listener is one handler registered on a JavaScript emitter, kept so that
// Close can remove and release it.
type listener struct {
	target app.Value
	event  string
	fn     app.Func
}

// Socket is one Socket.IO client socket (namespace "/"), opened with
// withCredentials so that the session cookie travels with the handshake,
// also across origins. It does not connect until Connect is called, so that
// handlers can be registered first and the caller decides when the handshake
// happens.
type Socket struct {
	sock   app.Value // the JavaScript Socket
	funcOf funcOfFunc

	mu          sync.Mutex
	closed      bool
	done        chan struct{}
	listeners   []listener
	onTransport func(name string)
	onProtoErr  func(error)
	upgradeFn   app.Func  // registered on every new engine
	engine      app.Value // the engine upgradeFn is registered on
}

// New creates a socket with the global io function of the page. It does not
// connect: register handlers, then call Connect.
func New(cfg Config) (*Socket, error) {
	io := app.Window().Get("io")
	if io == nil || !io.Truthy() {
		return nil, ErrNotLoaded
	}
	return newSocket(io, cfg, app.FuncOf), nil
}

func newSocket(io app.Value, cfg Config, funcOf funcOfFunc) *Socket {
	path := cfg.Path
	if path == "" {
		path = shared.SocketPath
	}
	opts := map[string]any{
		"path":            path,
		"withCredentials": true,
		"autoConnect":     false,
	}
	var sock app.Value
	if cfg.URL == "" {
		sock = io.Invoke(opts)
	} else {
		sock = io.Invoke(cfg.URL, opts)
	}
	s := &Socket{sock: sock, funcOf: funcOf, done: make(chan struct{})}

	// The manager creates a new engine on every (re)connection: follow each
	// one to report its transport and its upgrade.
	s.upgradeFn = funcOf(func(_ app.Value, args []app.Value) any {
		if len(args) > 0 && args[0] != nil && args[0].Truthy() {
			s.reportTransport(args[0].Get("name").String())
		}
		return nil
	})
	s.listen(s.manager(), "open", func([]app.Value) {
		s.followEngine()
		s.reportTransport(s.Transport())
	})
	return s
}

func (s *Socket) manager() app.Value { return s.sock.Get("io") }

// Connect opens the socket (socket.connect()). After a disconnect decided by
// the server ("io server disconnect") or by Disconnect, the client does not
// reconnect by itself: Connect is how it comes back.
func (s *Socket) Connect() {
	if s.isClosed() {
		return
	}
	s.sock.Call("connect")
}

// Disconnect closes the socket (socket.disconnect()) without releasing its
// handlers: Connect may open it again. Its disconnect handlers see the
// reason "io client disconnect".
func (s *Socket) Disconnect() {
	if s.isClosed() {
		return
	}
	s.sock.Call("disconnect")
}

// Connected reports whether the socket is connected.
func (s *Socket) Connected() bool {
	return !s.isClosed() && s.sock.Get("connected").Truthy()
}

// Active reports whether the client will keep trying to connect by itself
// (false after Disconnect or a disconnect decided by the server).
func (s *Socket) Active() bool {
	return !s.isClosed() && s.sock.Get("active").Truthy()
}

// Transport is the name of the current transport ("polling" or
// "websocket"), or "" when there is no engine yet.
func (s *Socket) Transport() string {
	eng := s.manager().Get("engine")
	if eng == nil || !eng.Truthy() {
		return ""
	}
	t := eng.Get("transport")
	if t == nil || !t.Truthy() {
		return ""
	}
	return t.Get("name").String()
}

// Close disconnects the socket, removes every handler it registered and
// releases their JavaScript functions. The socket cannot be used again.
// Pending EmitIncr calls return ErrClosed.
func (s *Socket) Close() {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.closed = true
	close(s.done)
	ls := s.listeners
	s.listeners = nil
	eng := s.engine
	s.engine = nil
	s.mu.Unlock()

	s.sock.Call("disconnect")
	for _, l := range ls {
		l.target.Call("off", l.event, l.fn)
		l.fn.Release()
	}
	if eng != nil {
		eng.Call("off", "upgrade", s.upgradeFn)
	}
	s.upgradeFn.Release()
}

// OnConnect calls fn each time the socket is connected.
func (s *Socket) OnConnect(fn func()) {
	s.listen(s.sock, "connect", func([]app.Value) { fn() })
}

// OnDisconnect calls fn with the reason of each disconnection, such as
// "io server disconnect", "io client disconnect", "transport close" or
// "ping timeout".
func (s *Socket) OnDisconnect(fn func(reason string)) {
	s.listen(s.sock, "disconnect", func(args []app.Value) {
		fn(stringArg(args, 0))
	})
}

// OnConnectError calls fn when a connection attempt fails: server down,
// origin refused, or an error from a server middleware.
func (s *Socket) OnConnectError(fn func(error)) {
	s.listen(s.sock, "connect_error", func(args []app.Value) {
		fn(connectError(args))
	})
}

// OnReconnectAttempt calls fn before each automatic reconnection attempt,
// with the attempt number (1, 2, ...).
func (s *Socket) OnReconnectAttempt(fn func(attempt int)) {
	s.listen(s.manager(), "reconnect_attempt", func(args []app.Value) {
		n, _ := parseCount(arg(args, 0))
		fn(n)
	})
}

// OnTransport calls fn with the transport name when a connection opens and
// after each upgrade (typically "polling", then "websocket").
func (s *Socket) OnTransport(fn func(name string)) {
	s.mu.Lock()
	s.onTransport = fn
	s.mu.Unlock()
}

// OnProtocolError calls fn when the server sent a payload that does not
// match the shared contract. Without it such payloads are dropped.
func (s *Socket) OnProtocolError(fn func(error)) {
	s.mu.Lock()
	s.onProtoErr = fn
	s.mu.Unlock()
}

// OnCurrentCount calls fn with the count of each shared.EventCurrentCount.
func (s *Socket) OnCurrentCount(fn func(count int)) {
	s.listen(s.sock, shared.EventCurrentCount, func(args []app.Value) {
		n, err := parseCount(arg(args, 0))
		if err != nil {
			s.protocolError(fmt.Errorf("socketio: %s: %w", shared.EventCurrentCount, err))
			return
		}
		fn(n)
	})
}

// OnSessionEnded calls fn with the payload of each shared.EventSessionEnded.
func (s *Socket) OnSessionEnded(fn func(shared.SessionEnded)) {
	s.listen(s.sock, shared.EventSessionEnded, func(args []app.Value) {
		ended, err := parseSessionEnded(arg(args, 0))
		if err != nil {
			s.protocolError(fmt.Errorf("socketio: %s: %w", shared.EventSessionEnded, err))
			return
		}
		fn(ended)
	})
}

// OnDevicesChanged calls fn on each shared.EventDevicesChanged (no
// payload: the list is read again over HTTP).
func (s *Socket) OnDevicesChanged(fn func()) {
	s.listen(s.sock, shared.EventDevicesChanged, func([]app.Value) { fn() })
}

// EmitIncr emits shared.EventIncr and waits for its ack: the new count, or
// an *AckError when the server answered with a shared.ErrorBody. While the
// socket is not connected the client buffers the event, so it is sent once
// the socket connects, within the timeout: the context's deadline, or
// DefaultAckTimeout. It blocks: call it from its own goroutine.
func (s *Socket) EmitIncr(ctx context.Context) (int, error) {
	if s.isClosed() {
		return 0, ErrClosed
	}
	timeout := DefaultAckTimeout
	if d, ok := ctx.Deadline(); ok {
		timeout = time.Until(d)
	}
	if timeout <= 0 {
		return 0, context.DeadlineExceeded
	}

	type result struct {
		n   int
		err error
	}
	res := make(chan result, 1)
	// The client calls an ack with a timeout exactly once (ack, timeout or
	// disconnection), so the function releases itself then; Close must not
	// release it, as the client's timer may still call it.
	var ack app.Func
	ack = s.funcOf(func(_ app.Value, args []app.Value) any {
		ack.Release()
		n, err := parseAck(args)
		res <- result{n, err}
		return nil
	})
	s.sock.Call("timeout", timeout.Milliseconds()).Call("emit", shared.EventIncr, ack)

	select {
	case r := <-res:
		return r.n, r.err
	case <-ctx.Done():
		return 0, ctx.Err()
	case <-s.done:
		return 0, ErrClosed
	}
}

// listen registers fn for event on target (socket or manager).
func (s *Socket) listen(target app.Value, event string, fn func(args []app.Value)) {
	f := s.funcOf(func(_ app.Value, args []app.Value) any {
		fn(args)
		return nil
	})
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		f.Release()
		return
	}
	s.listeners = append(s.listeners, listener{target: target, event: event, fn: f})
	s.mu.Unlock()
	target.Call("on", event, f)
}

// followEngine registers the upgrade handler on the manager's current
// engine, once per engine.
func (s *Socket) followEngine() {
	eng := s.manager().Get("engine")
	if eng == nil || !eng.Truthy() {
		return
	}
	s.mu.Lock()
	if s.closed || (s.engine != nil && s.engine.Equal(eng)) {
		s.mu.Unlock()
		return
	}
	old := s.engine
	s.engine = eng
	s.mu.Unlock()
	if old != nil {
		old.Call("off", "upgrade", s.upgradeFn)
	}
	eng.Call("on", "upgrade", s.upgradeFn)
}

func (s *Socket) reportTransport(name string) {
	s.mu.Lock()
	fn := s.onTransport
	s.mu.Unlock()
	if fn != nil && name != "" {
		fn(name)
	}
}

func (s *Socket) protocolError(err error) {
	s.mu.Lock()
	fn := s.onProtoErr
	s.mu.Unlock()
	if fn != nil {
		fn(err)
	}
}

func (s *Socket) isClosed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed
}
