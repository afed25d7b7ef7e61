package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"time"

	"github.com/gorilla/websocket"
)

// Socket is a minimal Socket.IO v5 client (Engine.IO v4) over WebSocket
// only, for load generation: it connects to the main namespace, answers the
// server's pings and hands every event to a callback. It does not do
// long-polling, acks, binary attachments, namespaces or reconnection; the
// official JavaScript client is the reference client and the one the tests
// use (internal/tandemtest).
//
// The protocol it speaks, one packet per WebSocket text frame:
//
//	server "0{...}"   Engine.IO open (sid, pingInterval, pingTimeout)
//	client "40"       Socket.IO CONNECT to "/"
//	server "40{...}"  CONNECT accepted ("44{...}" is a refusal)
//	server "2"        ping; the client answers "3" (pong)
//	server "42[...]"  EVENT: ["name", args...]
//	server "41"       DISCONNECT; "1" is an Engine.IO close
type Socket struct {
	conn    *websocket.Conn
	wmu     sync.Mutex // gorilla allows one writer at a time
	onEvent func(name string, args []byte, at time.Time)
	done    chan struct{}
	err     error // why the read loop ended; set before done closes
}

// ErrRefused is the error of a CONNECT the server refused ("44").
var ErrRefused = errors.New("bench: socket.io connect refused")

// Dial opens a WebSocket Socket.IO connection to base (http://host:port)
// at path (e.g. /socket.io/) with the given Cookie header, and returns once
// the main namespace's CONNECT is accepted. onEvent runs on the socket's
// read goroutine for every EVENT, with its name, its arguments as raw JSON
// (the rest of the array after the name, closing bracket included: `5]`
// for ["current count",5]) and when it arrived; it must be quick and must
// not block.
func Dial(ctx context.Context, base, path, cookie string, onEvent func(name string, args []byte, at time.Time)) (*Socket, error) {
	u, err := url.Parse(base)
	if err != nil {
		return nil, err
	}
	switch u.Scheme {
	case "http":
		u.Scheme = "ws"
	case "https":
		u.Scheme = "wss"
	default:
		return nil, fmt.Errorf("bench: %q is not an http(s) URL", base)
	}
	u.Path = path
	u.RawQuery = "EIO=4&transport=websocket"
	h := http.Header{}
	if cookie != "" {
		h.Set("Cookie", cookie)
	}
	d := websocket.Dialer{HandshakeTimeout: 10 * time.Second, ReadBufferSize: 1024, WriteBufferSize: 256}
	conn, resp, err := d.DialContext(ctx, u.String(), h)
	if err != nil {
		if resp != nil {
			return nil, fmt.Errorf("bench: websocket handshake: %s", resp.Status)
		}
		return nil, fmt.Errorf("bench: websocket handshake: %w", err)
	}
	s := &Socket{conn: conn, onEvent: onEvent, done: make(chan struct{})}
	if err := s.handshake(ctx); err != nil {
		_ = conn.Close()
		return nil, err
	}
	go s.readLoop()
	return s, nil
}

// handshake reads the Engine.IO open packet, sends CONNECT and waits for
// its answer, all within ctx's deadline (or 10s).
func (s *Socket) handshake(ctx context.Context) error {
	deadline, ok := ctx.Deadline()
	if !ok {
		deadline = time.Now().Add(10 * time.Second)
	}
	_ = s.conn.SetReadDeadline(deadline)
	defer func() { _ = s.conn.SetReadDeadline(time.Time{}) }()
	msg, err := s.read()
	if err != nil {
		return fmt.Errorf("bench: engine.io open: %w", err)
	}
	if len(msg) == 0 || msg[0] != '0' {
		return fmt.Errorf("bench: engine.io open: unexpected packet %.40q", msg)
	}
	if err := s.write("40"); err != nil {
		return err
	}
	for range 8 { // a ping may come first; bounded
		msg, err := s.read()
		if err != nil {
			return fmt.Errorf("bench: socket.io connect: %w", err)
		}
		switch {
		case bytes.HasPrefix(msg, []byte("40")):
			return nil
		case bytes.HasPrefix(msg, []byte("44")):
			return fmt.Errorf("%w: %s", ErrRefused, msg[2:])
		case bytes.Equal(msg, []byte("2")):
			if err := s.write("3"); err != nil {
				return err
			}
		default:
			return fmt.Errorf("bench: socket.io connect: unexpected packet %.40q", msg)
		}
	}
	return errors.New("bench: socket.io connect: no answer")
}

func (s *Socket) read() ([]byte, error) {
	typ, msg, err := s.conn.ReadMessage()
	if err != nil {
		return nil, err
	}
	if typ != websocket.TextMessage {
		return nil, fmt.Errorf("unexpected binary frame of %d bytes", len(msg))
	}
	return msg, nil
}

func (s *Socket) write(p string) error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	_ = s.conn.SetWriteDeadline(time.Now().Add(10 * time.Second))
	return s.conn.WriteMessage(websocket.TextMessage, []byte(p))
}

func (s *Socket) readLoop() {
	defer close(s.done)
	for {
		msg, err := s.read()
		if err != nil {
			s.err = err
			return
		}
		at := time.Now()
		switch {
		case bytes.Equal(msg, []byte("2")):
			if err := s.write("3"); err != nil {
				s.err = err
				return
			}
		case bytes.HasPrefix(msg, []byte("42")):
			if name, args, ok := parseEvent(msg[2:]); ok && s.onEvent != nil {
				s.onEvent(name, args, at)
			}
		case bytes.Equal(msg, []byte("41")), bytes.Equal(msg, []byte("1")):
			s.err = errors.New("disconnected by the server")
			_ = s.conn.Close()
			return
		}
	}
}

// Done is closed when the connection ends; Err then says why.
func (s *Socket) Done() <-chan struct{} { return s.done }

// Err is why the connection ended, once Done is closed.
func (s *Socket) Err() error {
	select {
	case <-s.done:
		return s.err
	default:
		return nil
	}
}

// Close sends a Socket.IO DISCONNECT and closes the connection.
func (s *Socket) Close() {
	_ = s.write("41")
	_ = s.conn.Close()
	<-s.done
}

// parseEvent splits the body of an EVENT packet (after "42": an optional
// ack id, then a JSON array whose first element is the event name) into the
// name and the rest of the array (the arguments, each still JSON, followed
// by the closing bracket). It never panics on bad input.
func parseEvent(p []byte) (name string, args []byte, ok bool) {
	i := 0
	for i < len(p) && p[i] >= '0' && p[i] <= '9' {
		i++ // ack id
	}
	p = p[i:]
	if len(p) < 4 || p[0] != '[' || p[1] != '"' {
		return "", nil, false
	}
	// Fast path: a name without escapes.
	if end := bytes.IndexByte(p[2:], '"'); end >= 0 && bytes.IndexByte(p[2:2+end], '\\') < 0 {
		name, rest := string(p[2:2+end]), p[2+end+1:]
		switch {
		case len(rest) > 0 && rest[0] == ',':
			return name, rest[1:], true
		case len(rest) > 0 && rest[0] == ']':
			return name, rest, true
		}
		return "", nil, false
	}
	var all []json.RawMessage
	if err := json.Unmarshal(p, &all); err != nil || len(all) == 0 {
		return "", nil, false
	}
	if err := json.Unmarshal(all[0], &name); err != nil {
		return "", nil, false
	}
	rest, _ := json.Marshal(all[1:])
	return name, rest[1:], true
}

// firstNumber reads the first argument of an event as a whole number, as
// produced by parseEvent (`5]` or `5,...]`).
func firstNumber(args []byte) (int64, bool) {
	end := bytes.IndexAny(args, ",]")
	if end <= 0 {
		return 0, false
	}
	n, err := strconv.ParseInt(string(bytes.TrimSpace(args[:end])), 10, 64)
	if err != nil {
		f, ferr := strconv.ParseFloat(string(bytes.TrimSpace(args[:end])), 64)
		if ferr != nil || f != float64(int64(f)) {
			return 0, false
		}
		return int64(f), true
	}
	return n, true
}
