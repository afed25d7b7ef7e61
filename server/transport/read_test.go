package transport_test

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"github.com/gorilla/websocket"
	"github.com/zishang520/socket.io/servers/engine/v3"
	"github.com/zishang520/socket.io/servers/engine/v3/config"

	"github.com/tandem-go/tandem/server/transport"
)

// eachReader runs test with the epoll reader (Linux only) and with the
// goroutine reader.
func eachReader(t *testing.T, test func(t *testing.T)) {
	t.Helper()
	if runtime.GOOS == "linux" {
		t.Run("epoll", func(t *testing.T) {
			transport.UseGoroutineReader(t, false)
			test(t)
		})
	}
	t.Run("goroutine", func(t *testing.T) {
		transport.UseGoroutineReader(t, true)
		test(t)
	})
}

// checkReader fails unless the socket's transport reads with the reader
// the subtest of eachReader asked for. It sends a message first, which
// arrives once the reader has started.
func checkReader(t *testing.T, c *websocket.Conn, s engine.Socket) {
	t.Helper()
	got := make(chan struct{})
	_ = s.Once("message", func(...any) { close(got) })
	if err := c.WriteMessage(websocket.TextMessage, []byte("4check")); err != nil {
		t.Fatal(err)
	}
	select {
	case <-got:
	case <-time.After(10 * time.Second):
		t.Fatal("no message: the reader did not start")
	}
	want := runtime.GOOS == "linux" && strings.HasSuffix(t.Name(), "/epoll")
	if got := transport.Polled(s.Transport().(*transport.WebSocket)); got != want {
		t.Fatalf("polled by epoll: %v; want %v", got, want)
	}
}

// messages sends every "message" of s to a channel, as a string.
func messages(s engine.Socket, n int) chan string {
	got := make(chan string, n)
	_ = s.On("message", func(args ...any) {
		if r, ok := args[0].(interface{ String() string }); ok {
			got <- r.String()
		}
	})
	return got
}

// Messages arrive in bursts that end anywhere: inside a header, inside a
// payload, between the fragments of a message with pings between them.
// Every message reaches the engine whole and in order, every ping is
// answered, whichever reader reads them and however their bytes fall into
// readiness events.
func TestWebSocketReadsBurstsAcrossReadiness(t *testing.T) {
	eachReader(t, func(t *testing.T) {
		url, conns := engineServer(t, transport.WebSocketBuilder{})
		c := dial(t, url)
		s := <-conns
		checkReader(t, c, s)
		const n = 600
		got := messages(s, n)
		pongs := make(chan string, n)
		c.SetPongHandler(func(p string) error { pongs <- p; return nil })
		go func() {
			for {
				if _, _, err := c.ReadMessage(); err != nil {
					return
				}
			}
		}()
		raw := c.NetConn()
		rng := rand.New(rand.NewPCG(1, 2))
		var want []string
		var stream []byte
		// send writes the stream in pieces cut at random, each its own
		// write (loopback delivers each as soon as it is written).
		send := func() {
			for len(stream) > 0 {
				k := min(len(stream), 1+rng.IntN(64))
				if _, err := raw.Write(stream[:k]); err != nil {
					t.Fatalf("write: %v", err)
				}
				stream = stream[k:]
			}
		}
		waitPong := func(p string) {
			select {
			case got := <-pongs:
				if got != p {
					t.Fatalf("pong %q; want %q", got, p)
				}
			case <-time.After(10 * time.Second):
				t.Fatalf("no pong %q", p)
			}
		}
		for i := range n {
			body := fmt.Sprintf("4message %d %s", i, strings.Repeat("x", rng.IntN(300)))
			want = append(want, body[1:])
			switch i % 4 {
			case 0: // fragmented, a ping between fragments; the reader parks mid-message
				a, b := len(body)/3, 2*len(body)/3
				p := fmt.Sprint("p", i)
				stream = append(stream, clientFrame(false, ws.OpText, []byte(body[:a]))...)
				stream = append(stream, clientFrame(true, ws.OpPing, []byte(p))...)
				send()
				waitPong(p)
				stream = append(stream, clientFrame(false, ws.OpContinuation, []byte(body[a:b]))...)
				stream = append(stream, clientFrame(true, ws.OpContinuation, []byte(body[b:]))...)
			case 1: // a ping of its own after the message
				p := fmt.Sprint("q", i)
				stream = append(stream, clientFrame(true, ws.OpText, []byte(body))...)
				stream = append(stream, clientFrame(true, ws.OpPing, []byte(p))...)
				send()
				waitPong(p)
			default: // several messages in one burst
				stream = append(stream, clientFrame(true, ws.OpText, []byte(body))...)
			}
		}
		send()
		for i, w := range want {
			select {
			case m := <-got:
				if m != w {
					t.Fatalf("message %d: %.40q; want %.40q", i, m, w)
				}
			case <-time.After(10 * time.Second):
				t.Fatalf("message %d did not arrive", i)
			}
		}
		select {
		case m := <-got:
			t.Fatalf("one message more: %.40q", m)
		default:
		}
	})
}

// The reader's limits and closes are the same on both readers, through a
// real connection: MAX_SOCKET_PAYLOAD on the bytes read (1009, TooBig
// called), protocol errors (1002), text that is not UTF-8 (1007), and a
// client's close echoed.
func TestWebSocketReaderCloses(t *testing.T) {
	tests := []struct {
		name   string
		given  []byte
		expect int // the close code the client reads
		tooBig bool
	}{
		{"nok, over MaxPayload", clientFrame(true, ws.OpText, bytes.Repeat([]byte("a"), 129)), websocket.CloseMessageTooBig, true},
		{"nok, over MaxPayload in fragments", bytes.Join([][]byte{
			clientFrame(false, ws.OpText, bytes.Repeat([]byte("a"), 100)),
			clientFrame(true, ws.OpContinuation, bytes.Repeat([]byte("a"), 29)),
		}, nil), websocket.CloseMessageTooBig, true},
		{"nok, continuation without a start", clientFrame(true, ws.OpContinuation, []byte("x")), websocket.CloseProtocolError, false},
		{"nok, not UTF-8", clientFrame(true, ws.OpText, []byte{0xff}), websocket.CloseInvalidFramePayloadData, false},
		{"ok, client's close echoed", clientFrame(true, ws.OpClose, ws.NewCloseFrameBody(4321, "bye")), 4321, false},
	}
	eachReader(t, func(t *testing.T) {
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				tooBig := make(chan struct{}, 1)
				url, conns := engineServer(t, transport.WebSocketBuilder{MaxPayload: 128, TooBig: func() { tooBig <- struct{}{} }})
				c := dial(t, url)
				s := <-conns
				closed := make(chan struct{})
				_ = s.Once("close", func(...any) { close(closed) })
				if _, err := c.NetConn().Write(tt.given); err != nil {
					t.Fatal(err)
				}
				for {
					_, _, err := c.ReadMessage()
					if err == nil {
						continue
					}
					if !websocket.IsCloseError(err, tt.expect) {
						t.Fatalf("client read %v; want close %d", err, tt.expect)
					}
					break
				}
				select {
				case <-closed:
				case <-time.After(10 * time.Second):
					t.Fatal("the engine's socket did not close")
				}
				if got := len(tooBig) == 1; got != tt.tooBig {
					t.Fatalf("TooBig called: %v; want %v", got, tt.tooBig)
				}
			})
		}
	})
}

// Connections end every way at once while their clients write: closed by
// the server from another goroutine, by the client's close frame, by the
// client dropping TCP. Round after round, so that descriptor numbers are
// reused while others' bytes are in flight: every message reaches its own
// socket only, every socket closes, and nothing stays registered or
// running.
func TestWebSocketCloseRaces(t *testing.T) {
	eachReader(t, func(t *testing.T) {
		url, conns := engineServer(t, transport.WebSocketBuilder{})
		before := runtime.NumGoroutine()
		const rounds, perRound = 4, 40
		for round := range rounds {
			var wg sync.WaitGroup
			for i := range perRound {
				// One handshake at a time: the engine's socket that comes
				// next is this client's.
				c := dialNoCleanup(t, url)
				s := <-conns
				id := fmt.Sprint(round, "-", i)
				closed := make(chan struct{})
				var closeOnce sync.Once
				_ = s.Once("close", func(...any) { closeOnce.Do(func() { close(closed) }) })
				if s.ReadyState() == "closed" { // before the listener: seen on failure below
					t.Logf("socket %s closed before its client wrote", fmt.Sprint(round, "-", i))
					closeOnce.Do(func() { close(closed) })
				}
				var first sync.Once
				var mine string
				_ = s.On("message", func(args ...any) {
					r, _ := args[0].(interface{ String() string })
					from, _, _ := strings.Cut(r.String(), "/")
					first.Do(func() { mine = from })
					if from != mine {
						t.Errorf("socket of %s got a message of %s", mine, from)
					}
				})
				wg.Add(2)
				go func() { // the client writes until it can not
					defer wg.Done()
					for k := 0; ; k++ {
						if err := c.WriteMessage(websocket.TextMessage, fmt.Appendf(nil, "4%s/%d", id, k)); err != nil {
							return
						}
						if k == 20 {
							switch i % 3 {
							case 0:
								go s.Close(true)
							case 1:
								_ = c.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(4000, ""))
							case 2:
								_ = c.NetConn().Close()
							}
						}
						if k > 5000 {
							return
						}
					}
				}()
				go func() {
					defer wg.Done()
					select {
					case <-closed:
					case <-time.After(20 * time.Second):
						buf := make([]byte, 1<<20)
						t.Errorf("socket %s did not close (state %s):\n%s", id, s.ReadyState(), buf[:runtime.Stack(buf, true)])
					}
					_ = c.Close()
				}()
			}
			wg.Wait()
			if t.Failed() {
				return
			}
		}
		if n := transport.PolledConns(); n != 0 {
			t.Fatalf("%d connections still registered with epoll", n)
		}
		// Only what the engine's sockets and the HTTP server leave behind
		// for a moment; no reader goroutine is left.
		deadline := time.Now().Add(10 * time.Second)
		for runtime.NumGoroutine() > before+5 && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond) // polls a count; the bound is the check
		}
		if n := runtime.NumGoroutine(); n > before+5 {
			buf := make([]byte, 1<<16)
			t.Fatalf("%d goroutines; %d before:\n%s", n, before, buf[:runtime.Stack(buf, true)])
		}
	})
}

func dialNoCleanup(tb testing.TB, url string) *websocket.Conn {
	tb.Helper()
	c, _, err := websocket.DefaultDialer.Dial(url, nil)
	if err != nil {
		tb.Fatalf("dial: %v", err)
	}
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, msg, err := c.ReadMessage(); err != nil || !strings.HasPrefix(string(msg), "0{") {
		tb.Fatalf("open packet %q, %v", msg, err)
	}
	return c
}

// A client that sends nothing for longer than the engine's IdleTimeout is
// disconnected (the goroutine reader's read deadline; the epoll reader's
// sweep), with the engine's heartbeat too slow to do it; a client that
// keeps sending is not.
func TestWebSocketIdleTimeout(t *testing.T) {
	const idle = 400 * time.Millisecond
	eachReader(t, func(t *testing.T) {
		opts := config.DefaultServerOptions()
		opts.SetIdleTimeout(idle)
		opts.SetPingInterval(time.Minute)
		opts.SetPingTimeout(time.Minute)
		url, conns := engineServerWith(t, opts, transport.WebSocketBuilder{})

		talker := dial(t, url)
		ts := <-conns
		quiet := dial(t, url)
		qs := <-conns
		start := time.Now()
		checkReader(t, quiet, qs) // its last message
		quietClosed, talkerClosed := make(chan string, 1), make(chan string, 1)
		_ = qs.Once("close", func(args ...any) { r, _ := args[0].(string); quietClosed <- r })
		_ = ts.Once("close", func(args ...any) { r, _ := args[0].(string); talkerClosed <- r })
		stop := make(chan struct{})
		done := make(chan struct{})
		go func() {
			defer close(done)
			tick := time.NewTicker(idle / 8)
			defer tick.Stop()
			for {
				select {
				case <-stop:
					return
				case <-tick.C:
					if err := talker.WriteMessage(websocket.TextMessage, []byte("4hi")); err != nil {
						return
					}
				}
			}
		}()
		select {
		case r := <-quietClosed:
			if d := time.Since(start); d < idle {
				t.Fatalf("the quiet client was closed after %v, before the idle timeout %v", d, idle)
			}
			if r != "transport close" {
				t.Fatalf("closed with %q", r)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("the quiet client was not disconnected")
		}
		// The talker outlives three idle timeouts.
		for time.Since(start) < 3*idle {
			select {
			case r := <-talkerClosed:
				t.Fatalf("the talking client was closed after %v (%s)", time.Since(start), r)
			case <-time.After(idle / 4):
			}
		}
		close(stop)
		<-done
	})
}

// A TLS connection has no descriptor to poll (its bytes must be decrypted
// first): it is read by the goroutine reader, epoll or not.
func TestWebSocketOverTLSUsesTheGoroutineReader(t *testing.T) {
	transport.UseGoroutineReader(t, false)
	opts := config.DefaultServerOptions()
	transport.Register(opts, transport.WebSocketBuilder{})
	srv := engine.NewServer(opts)
	conns := make(chan engine.Socket, 1)
	_ = srv.On("connection", func(args ...any) { conns <- args[0].(engine.Socket) })
	ts := httptest.NewTLSServer(srv)
	t.Cleanup(func() { ts.Close(); srv.Close() })
	d := websocket.Dialer{TLSClientConfig: ts.Client().Transport.(*http.Transport).TLSClientConfig, HandshakeTimeout: 10 * time.Second}
	c, _, err := d.Dial("wss"+strings.TrimPrefix(ts.URL, "https")+"/engine.io/?EIO=4&transport=websocket", nil)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	defer c.Close()
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, msg, err := c.ReadMessage(); err != nil || !strings.HasPrefix(string(msg), "0{") {
		t.Fatalf("open packet %q, %v", msg, err)
	}
	s := <-conns
	checkReader(t, c, s) // the name has no "/epoll": not polled
	s.Send(strings.NewReader("back"), nil, nil)
	if _, msg, err := c.ReadMessage(); err != nil || string(msg) != "4back" {
		t.Fatalf("client got %q, %v", msg, err)
	}
}
