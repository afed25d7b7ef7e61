package socketio

import (
	"context"
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/maxence-charriere/go-app/v10/pkg/app"

	"github.com/tandem-go/tandem/shared"
)

// world is a fake socket.io client: the io function, the socket it returns
// and the socket's manager.
type world struct {
	io      *fake
	sock    *fake
	manager *fake
	funcs   *funcs
}

func newWorld(tb testing.TB) *world {
	tb.Helper()
	w := &world{manager: object(nil), funcs: &funcs{}}
	w.sock = object(map[string]app.Value{"io": w.manager})
	w.io = &fake{typ: app.TypeFunction, onInvoke: func([]any) app.Value { return w.sock }}
	tb.Cleanup(func() {
		if len(w.funcs.misuse) > 0 {
			tb.Errorf("misused functions: %v", w.funcs.misuse)
		}
	})
	return w
}

func (w *world) dial(cfg Config) *Socket {
	return newSocket(w.io, cfg, w.funcs.funcOf)
}

func TestNewSocketOptions(t *testing.T) {
	tests := []struct {
		name   string
		given  Config
		expect []any
	}{
		{
			name:  "ok, same origin: io(options)",
			given: Config{},
			expect: []any{map[string]any{
				"path": shared.SocketPath, "withCredentials": true, "autoConnect": false,
			}},
		},
		{
			name:  "ok, other origin: io(url, options)",
			given: Config{URL: "http://localhost:3000"},
			expect: []any{"http://localhost:3000", map[string]any{
				"path": shared.SocketPath, "withCredentials": true, "autoConnect": false,
			}},
		},
		{
			name:  "ok, custom path",
			given: Config{Path: "/rt/"},
			expect: []any{map[string]any{
				"path": "/rt/", "withCredentials": true, "autoConnect": false,
			}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := newWorld(t)
			w.dial(tt.given)
			calls := w.io.callsOf("()")
			if len(calls) != 1 {
				t.Fatalf("io called %d times, want 1", len(calls))
			}
			if !reflect.DeepEqual(calls[0].args, tt.expect) {
				t.Errorf("io(%v), want io(%v)", calls[0].args, tt.expect)
			}
			if n := len(w.sock.callsOf("connect")); n != 0 {
				t.Errorf("connected %d times before Connect", n)
			}
		})
	}
}

func TestNewWithoutScript(t *testing.T) {
	// On linux window.io is undefined, as on a page that did not load the script.
	if _, err := New(Config{}); !errors.Is(err, ErrNotLoaded) {
		t.Fatalf("New: %v, want ErrNotLoaded", err)
	}
}

func TestTypedEvents(t *testing.T) {
	w := newWorld(t)
	s := w.dial(Config{})
	var (
		counts    []int
		ended     []shared.SessionEnded
		protoErrs []error
		reasons   []string
		attempts  []int
		connErrs  []error
		connects  int
	)
	s.OnCurrentCount(func(n int) { counts = append(counts, n) })
	s.OnSessionEnded(func(e shared.SessionEnded) { ended = append(ended, e) })
	devicesChanged := 0
	s.OnDevicesChanged(func() { devicesChanged++ })
	s.OnProtocolError(func(err error) { protoErrs = append(protoErrs, err) })
	s.OnDisconnect(func(r string) { reasons = append(reasons, r) })
	s.OnReconnectAttempt(func(n int) { attempts = append(attempts, n) })
	s.OnConnectError(func(err error) { connErrs = append(connErrs, err) })
	s.OnConnect(func() { connects++ })

	w.sock.emit("connect")
	w.sock.emit(shared.EventCurrentCount, num(3))
	w.sock.emit(shared.EventCurrentCount, str("4")) // not the contract
	w.sock.emit(shared.EventSessionEnded, object(map[string]app.Value{"reason": str(shared.ReasonLogout)}))
	w.sock.emit(shared.EventSessionEnded, num(1)) // not the contract
	w.sock.emit(shared.EventSessionEnded, object(map[string]app.Value{"reason": str(shared.ReasonRevoked)}))
	w.sock.emit(shared.EventDevicesChanged)
	w.sock.emit("disconnect", str("io server disconnect"))
	w.manager.emit("reconnect_attempt", num(2))
	w.sock.emit("connect_error", jsError("xhr poll error"))

	if !reflect.DeepEqual(counts, []int{3}) {
		t.Errorf("counts %v, want [3]", counts)
	}
	if !reflect.DeepEqual(ended, []shared.SessionEnded{{Reason: shared.ReasonLogout}, {Reason: shared.ReasonRevoked}}) {
		t.Errorf("session ended %v", ended)
	}
	if devicesChanged != 1 {
		t.Errorf("devices changed %d times, want 1", devicesChanged)
	}
	if len(protoErrs) != 2 {
		t.Errorf("protocol errors %v, want 2", protoErrs)
	}
	if !reflect.DeepEqual(reasons, []string{"io server disconnect"}) {
		t.Errorf("reasons %v", reasons)
	}
	if !reflect.DeepEqual(attempts, []int{2}) {
		t.Errorf("attempts %v", attempts)
	}
	if len(connErrs) != 1 || connErrs[0].Error() != "socketio: connect: xhr poll error" {
		t.Errorf("connect errors %v", connErrs)
	}
	if connects != 1 {
		t.Errorf("connects %d, want 1", connects)
	}
}

func TestTransport(t *testing.T) {
	w := newWorld(t)
	s := w.dial(Config{})
	var names []string
	s.OnTransport(func(n string) { names = append(names, n) })
	if got := s.Transport(); got != "" {
		t.Fatalf("Transport before any engine = %q", got)
	}

	// First connection: polling, then the engine upgrades to websocket.
	eng := object(map[string]app.Value{"transport": object(map[string]app.Value{"name": str("polling")})})
	w.manager.props["engine"] = eng
	w.manager.emit("open")
	eng.emit("upgrade", object(map[string]app.Value{"name": str("websocket")}))

	// A reconnection makes a new engine: the upgrade handler moves to it.
	eng2 := object(map[string]app.Value{"transport": object(map[string]app.Value{"name": str("polling")})})
	w.manager.props["engine"] = eng2
	w.manager.emit("open")
	if eng.count("upgrade") != 0 || eng2.count("upgrade") != 1 {
		t.Errorf("upgrade handlers: old engine %d, new engine %d; want 0 and 1", eng.count("upgrade"), eng2.count("upgrade"))
	}
	eng.emit("upgrade", object(map[string]app.Value{"name": str("websocket")})) // stale engine: ignored

	want := []string{"polling", "websocket", "polling"}
	if !reflect.DeepEqual(names, want) {
		t.Errorf("transports %v, want %v", names, want)
	}
	if got := s.Transport(); got != "polling" {
		t.Errorf("Transport() = %q, want polling", got)
	}
}

// acker answers the next emit of incr with args, as the JavaScript client
// calls the ack.
func acker(w *world, ms *int64, args ...app.Value) {
	w.sock.onCall = func(m string, a []any) app.Value {
		switch m {
		case "timeout":
			*ms = a[0].(int64)
			return w.sock
		case "emit":
			if a[0] != shared.EventIncr {
				panic("emit of " + a[0].(string))
			}
			a[1].(*fakeFunc).call(args...)
		}
		return nil
	}
}

func TestEmitIncr(t *testing.T) {
	tests := []struct {
		name      string
		given     []app.Value
		expect    int
		expectErr error
		expectMsg string
	}{
		{name: "ok, count", given: []app.Value{null(), num(7)}, expect: 7},
		{name: "ok, zero", given: []app.Value{null(), num(0)}, expect: 0},
		{
			name:      "nok, error body",
			given:     []app.Value{null(), object(map[string]app.Value{"error": str("store unavailable")})},
			expectMsg: "socketio: server: store unavailable",
		},
		{name: "nok, timeout", given: []app.Value{jsError("operation has timed out")}, expectErr: ErrAckTimeout},
		{name: "nok, disconnected", given: []app.Value{jsError("socket has been disconnected")}, expectErr: ErrDisconnected},
		{name: "nok, fraction", given: []app.Value{null(), num(1.5)}, expectMsg: "socketio: ack: want a non-negative integer, got 1.5"},
		{name: "nok, string", given: []app.Value{null(), str("7")}, expectMsg: "socketio: ack: want a number or shared.ErrorBody, got string"},
		{name: "nok, no value", given: []app.Value{null()}, expectMsg: "socketio: ack: want a number or shared.ErrorBody, got undefined"},
		{name: "nok, no arguments", given: nil, expectMsg: "socketio: ack without arguments"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := newWorld(t)
			s := w.dial(Config{})
			var ms int64
			acker(w, &ms, tt.given...)

			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
			defer cancel()
			n, err := s.EmitIncr(ctx)

			switch {
			case tt.expectErr != nil:
				if !errors.Is(err, tt.expectErr) {
					t.Fatalf("err %v, want %v", err, tt.expectErr)
				}
			case tt.expectMsg != "":
				if err == nil || err.Error() != tt.expectMsg {
					t.Fatalf("err %v, want %q", err, tt.expectMsg)
				}
			default:
				if err != nil || n != tt.expect {
					t.Fatalf("EmitIncr = %d, %v; want %d", n, err, tt.expect)
				}
			}
			if ms <= 2000 || ms > 3000 {
				t.Errorf("ack timeout %d ms, want the context's ~3000", ms)
			}
			if w.funcs.unreleased() != 2 { // the open and upgrade handlers
				t.Errorf("%d functions unreleased after the ack, want 2", w.funcs.unreleased())
			}
		})
	}
}

func TestEmitIncrAckError(t *testing.T) {
	w := newWorld(t)
	s := w.dial(Config{})
	var ms int64
	acker(w, &ms, null(), object(map[string]app.Value{"error": str("nope")}))
	_, err := s.EmitIncr(context.Background())
	var ackErr *AckError
	if !errors.As(err, &ackErr) || ackErr.Message != "nope" {
		t.Fatalf("err %v, want *AckError{nope}", err)
	}
	if ms != DefaultAckTimeout.Milliseconds() {
		t.Errorf("timeout %d ms without a deadline, want %d", ms, DefaultAckTimeout.Milliseconds())
	}
}

func TestCloseReleasesEverything(t *testing.T) {
	w := newWorld(t)
	s := w.dial(Config{})
	s.OnConnect(func() {})
	s.OnDisconnect(func(string) {})
	s.OnCurrentCount(func(int) {})
	s.OnSessionEnded(func(shared.SessionEnded) {})
	s.OnReconnectAttempt(func(int) {})
	eng := object(map[string]app.Value{"transport": object(map[string]app.Value{"name": str("polling")})})
	w.manager.props["engine"] = eng
	w.manager.emit("open")

	// An emit whose ack is pending when the socket closes.
	emitted := make(chan *fakeFunc, 1)
	w.sock.onCall = func(m string, a []any) app.Value {
		switch m {
		case "timeout":
			return w.sock
		case "emit":
			emitted <- a[1].(*fakeFunc)
		}
		return nil
	}
	errc := make(chan error, 1)
	go func() {
		_, err := s.EmitIncr(context.Background())
		errc <- err
	}()
	var pending *fakeFunc
	select {
	case pending = <-emitted:
	case <-time.After(2 * time.Second):
		t.Fatal("EmitIncr did not emit")
	}

	s.Close()
	s.Close() // idempotent

	if err := <-errc; !errors.Is(err, ErrClosed) {
		t.Errorf("pending EmitIncr: %v, want ErrClosed", err)
	}
	if n := len(w.sock.callsOf("disconnect")); n != 1 {
		t.Errorf("disconnect called %d times, want 1", n)
	}
	for _, ev := range []string{"connect", "disconnect", shared.EventCurrentCount, shared.EventSessionEnded} {
		if w.sock.count(ev) != 0 {
			t.Errorf("%q handler still registered", ev)
		}
	}
	if w.manager.count("open") != 0 || w.manager.count("reconnect_attempt") != 0 || eng.count("upgrade") != 0 {
		t.Error("manager or engine handler still registered")
	}
	// The JavaScript client still calls the pending ack (its timer): that
	// must not be a released function.
	if w.funcs.unreleased() != 1 {
		t.Errorf("%d functions unreleased, want only the pending ack", w.funcs.unreleased())
	}
	pending.call(jsError("operation has timed out"))
	if w.funcs.unreleased() != 0 {
		t.Errorf("%d functions unreleased after the last ack", w.funcs.unreleased())
	}

	if _, err := s.EmitIncr(context.Background()); !errors.Is(err, ErrClosed) {
		t.Errorf("EmitIncr after Close: %v, want ErrClosed", err)
	}
	s.Connect()
	if n := len(w.sock.callsOf("connect")); n != 0 {
		t.Errorf("Connect after Close reached the client")
	}
}

func TestParseCount(t *testing.T) {
	tests := []struct {
		name    string
		given   app.Value
		expect  int
		wantErr bool
	}{
		{name: "ok, integer", given: num(42), expect: 42},
		{name: "ok, max safe integer", given: num(maxSafeInteger), expect: maxSafeInteger},
		{name: "nok, negative", given: num(-1), wantErr: true},
		{name: "nok, beyond safe integers", given: num(maxSafeInteger + 2), wantErr: true},
		{name: "nok, string", given: str("1"), wantErr: true},
		{name: "nok, boolean", given: boolean(true), wantErr: true},
		{name: "nok, null", given: null(), wantErr: true},
		{name: "nok, missing", given: nil, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n, err := parseCount(tt.given)
			if (err != nil) != tt.wantErr || n != tt.expect {
				t.Fatalf("parseCount = %d, %v; want %d, error %v", n, err, tt.expect, tt.wantErr)
			}
		})
	}
}
