package transport

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unicode/utf8"

	"github.com/gobwas/ws"
	"github.com/zishang520/socket.io/parsers/engine/v3/packet"
	"github.com/zishang520/socket.io/servers/engine/v3/transports"
	"github.com/zishang520/socket.io/v3/pkg/types"
)

// Defaults of WebSocketBuilder.
const (
	// DefaultMaxPayload bounds one message (all its fragments) read from a
	// client, as the engine's MaxHttpBufferSize does for polling.
	DefaultMaxPayload = 1_000_000
	// DefaultMaxPending bounds the bytes written to a connection that its
	// client has not taken yet. Past it the client is disconnected.
	DefaultMaxPending = 4 << 20
	// flushTimeout bounds one blocking write of the bytes a slow client left
	// pending.
	flushTimeout = 30 * time.Second
)

// WebSocketBuilder makes WebSocket transports; it is the engine's
// constructor for the "websocket" transport name, both for a handshake over
// WebSocket and for an upgrade from polling.
type WebSocketBuilder struct {
	// MaxPayload bounds one message read from a client, counted on the
	// bytes read; a longer one is refused with close code 1009.
	// 0: DefaultMaxPayload.
	MaxPayload int64
	// MaxPending bounds the bytes waiting for a slow client; a connection
	// past it is closed. 0: DefaultMaxPending.
	MaxPending int
	// TooBig, if set, is called for each message refused for MaxPayload
	// (for the metrics). It must not block.
	TooBig func()
}

var _ transports.TransportCtor = WebSocketBuilder{}

// Name is the Engine.IO transport name.
func (WebSocketBuilder) Name() string { return transports.WEBSOCKET }

// HandlesUpgrades is true: a WebSocket connection is an upgrade.
func (WebSocketBuilder) HandlesUpgrades() bool { return true }

// UpgradesTo is empty: a WebSocket connection upgrades to nothing.
func (WebSocketBuilder) UpgradesTo() []string { return nil }

// New takes over the connection the engine has just upgraded (ctx.Websocket,
// gorilla/websocket's): from here on frames are read and written on its
// network connection by this package.
func (b WebSocketBuilder) New(ctx *types.HttpContext) transports.Transport {
	w := &WebSocket{Transport: transports.MakeTransport()}
	w.Prototype(w)
	w.Construct(ctx)
	w.maxPayload, w.maxPending, w.tooBig = b.MaxPayload, b.MaxPending, b.TooBig
	if w.maxPayload <= 0 {
		w.maxPayload = DefaultMaxPayload
	}
	if w.maxPending <= 0 {
		w.maxPending = DefaultMaxPending
	}
	w.idle = ctx.IdleTimeout
	wsc := ctx.Websocket
	if wsc == nil || wsc.Conn == nil {
		w.SetReadyState("closed")
		return w
	}
	w.conn = wsc.NetConn()
	if sc, ok := w.conn.(syscall.Conn); ok {
		if rc, err := sc.SyscallConn(); err == nil {
			w.raw = rc
		}
	}
	// Until the engine lets the transport read, it may still close the
	// connection through gorilla's (an aborted handshake or upgrade): that
	// closes the transport too.
	onClose := func(...any) { w.OnClose() }
	_ = wsc.Once("close", onClose)
	w.SetWritable(true)
	transports.StartReader(w, ctx.TransportReadPermission(), func() {
		wsc.RemoveListener("close", onClose)
		// The engine reads ctx.Websocket only before it lets the transport
		// read (contract_test.go): from here gorilla's connection and its
		// buffers are garbage, though the engine keeps ctx.
		ctx.Websocket = nil
		w.read()
	})
	return w
}

// WebSocket is an Engine.IO transport over one WebSocket connection.
//
// Writes go out on the caller's goroutine: Send frames each packet and
// writes it without blocking (one write system call on Linux). Only bytes
// the kernel would not take now wait, in order, for a goroutine of the
// connection that writes them with a blocking write; at most MaxPending
// bytes may wait. Frames are read, and messages handed to the engine, by
// one goroutine at a time: on Linux a short-lived one started by epoll when
// bytes arrive (an idle connection has none), elsewhere one for the life of
// the connection.
type WebSocket struct {
	transports.Transport

	conn       net.Conn
	raw        syscall.RawConn // nil: every write goes through the goroutine
	maxPayload int64
	maxPending int
	tooBig     func() // WebSocketBuilder.TooBig
	idle       time.Duration

	wmu      sync.Mutex
	pending  [][]byte // waiting for the flushing goroutine, in order
	queued   int      // bytes in pending
	flushing bool     // the flushing goroutine owns the connection's writes
	closing  bool     // no more frames but a close; the connection ends after pending
	gone     bool     // the connection is closed

	closeOnce sync.Once

	rd *Reader   // the reader's; set when reading starts
	ep epollConn // the epoll reader's state (read_linux.go); zero: not polled
}

var _ transports.Websocket = (*WebSocket)(nil)

// Name is the Engine.IO transport name.
func (w *WebSocket) Name() string { return transports.WEBSOCKET }

// HandlesUpgrades is true.
func (w *WebSocket) HandlesUpgrades() bool { return true }

// OnRequest answers an HTTP request that reaches the connection once it is
// on WebSocket. The engine checks a polling request's transport name against
// the connection's, then hands it to the connection's transport: an upgrade
// completing in between hands it here, and unanswered it would hang until
// its client gives up.
//
// The engine also calls OnRequest with the WebSocket handshake's own
// request, whose connection the upgrade has hijacked (ctx.Websocket is set
// until the transport may read): nothing is written on that one.
func (w *WebSocket) OnRequest(ctx *types.HttpContext) {
	if ctx.Websocket != nil {
		return
	}
	refuseRequest(ctx)
}

// Send writes packets, one frame each, on the caller's goroutine. It keeps
// the transport writable (nothing waits for a previous Send) and emits
// "drain" before it returns, as the engine expects of a transport that has
// taken its packets.
func (w *WebSocket) Send(packets []*packet.Packet) {
	for _, p := range packets {
		var data types.BufferInterface
		if p.Options != nil && p.Options.WsPreEncodedFrame != nil {
			data = p.Options.WsPreEncodedFrame
		} else {
			var err error
			if data, err = w.Parser().EncodePacket(p, w.SupportsBinary()); err != nil {
				w.OnError("websocket encode error", err)
				return
			}
		}
		op := ws.OpBinary
		if _, ok := data.(*types.StringBuffer); ok {
			op = ws.OpText
		}
		w.writeFrame(op, data.Bytes())
	}
	w.Emit("drain")
}

// Frame returns payload framed as one final, unmasked frame of opcode op.
func Frame(op ws.OpCode, payload []byte) []byte {
	h := ws.Header{Fin: true, OpCode: op, Length: int64(len(payload))}
	b := bytes.NewBuffer(make([]byte, 0, ws.HeaderSize(h)+len(payload)))
	_ = ws.WriteHeader(b, h) // a bytes.Buffer does not fail
	b.Write(payload)
	return b.Bytes()
}

func (w *WebSocket) writeFrame(op ws.OpCode, payload []byte) {
	w.write(Frame(op, payload), false)
}

// write sends one whole frame: inline if the connection takes it now,
// otherwise (or for what remains of it) through the flushing goroutine.
// last marks the close frame, after which nothing more is written.
func (w *WebSocket) write(frame []byte, last bool) {
	w.wmu.Lock()
	defer w.wmu.Unlock()
	if w.gone || w.closing {
		return
	}
	w.closing = last
	if !w.flushing {
		n, err := w.tryWrite(frame)
		if err != nil {
			w.dropLocked()
			return
		}
		if n == len(frame) {
			if last {
				w.dropLocked()
			}
			return
		}
		frame = frame[n:]
	}
	if w.queued+len(frame) > w.maxPending {
		// A client this far behind is gone for our purposes; its reader
		// sees the closed connection and closes the transport.
		w.dropLocked()
		return
	}
	w.pending = append(w.pending, frame)
	w.queued += len(frame)
	if !w.flushing {
		w.flushing = true
		go w.flush()
	}
}

// tryWrite writes what the connection takes without blocking.
func (w *WebSocket) tryWrite(p []byte) (int, error) {
	if w.raw == nil {
		return 0, nil
	}
	return writeNonBlocking(w.raw, p)
}

// flush writes the pending bytes with blocking writes until none are left.
func (w *WebSocket) flush() {
	for {
		w.wmu.Lock()
		batch, last := w.pending, w.closing
		w.pending, w.queued = nil, 0
		if len(batch) == 0 || w.gone {
			w.flushing = false
			if last {
				w.dropLocked()
			}
			w.wmu.Unlock()
			return
		}
		w.wmu.Unlock()
		_ = w.conn.SetWriteDeadline(time.Now().Add(flushTimeout))
		bufs := net.Buffers(batch)
		_, err := bufs.WriteTo(w.conn)
		_ = w.conn.SetWriteDeadline(time.Time{})
		if err != nil {
			w.wmu.Lock()
			w.flushing = false
			w.dropLocked()
			w.wmu.Unlock()
			return
		}
	}
}

// dropLocked closes the network connection, and the transport after it:
// the goroutine reader sees the connection end and closes it; for a polled
// connection a goroutine does. Called with wmu held.
func (w *WebSocket) dropLocked() {
	if !w.gone {
		w.gone = true
		w.pending, w.queued = nil, 0
		// Out of epoll before Close can free the descriptor's number for
		// another connection.
		polled := w.unpollLocked()
		_ = w.conn.Close()
		if polled {
			// No reader goroutine waits to see the connection end.
			go w.OnClose()
		}
	}
}

// sendClose writes a close frame with code (none if code is 0) after
// everything already written, then ends the connection.
func (w *WebSocket) sendClose(code ws.StatusCode) {
	var body []byte
	if code != 0 {
		body = ws.NewCloseFrameBody(code, "")
	}
	w.write(Frame(ws.OpClose, body), true)
}

// DoClose closes the transport: a close frame (1000) after what is pending,
// then the connection.
func (w *WebSocket) DoClose(fn types.Callable) {
	if w.conn != nil {
		w.sendClose(ws.StatusNormalClosure)
	}
	if fn != nil {
		fn()
	}
	w.OnClose()
}

// OnClose marks the transport closed, once.
func (w *WebSocket) OnClose() {
	w.closeOnce.Do(func() {
		if w.conn != nil {
			w.wmu.Lock()
			if !w.flushing {
				w.dropLocked()
			}
			w.wmu.Unlock()
		}
		w.Transport.OnClose()
	})
}

// read hands the connection's messages to the engine until it ends, then
// closes the transport. On Linux, a connection with a raw file descriptor
// waits for its bytes in the process's epoll poller (read_linux.go) and has
// no goroutine while it is idle; otherwise (other systems, TLS, a
// connection without a descriptor, an epoll failure, or
// TANDEM_WS_READER=goroutine) a goroutine of its own reads it.
func (w *WebSocket) read() {
	w.rd = NewReader(nil, w.maxPayload)
	if w.poll() {
		return
	}
	w.readBlocking()
}

// goroutineReader makes every connection use the goroutine reader
// (TANDEM_WS_READER=goroutine in the environment): to compare the two, and
// to run the tests on both.
var goroutineReader atomic.Bool

func init() { goroutineReader.Store(os.Getenv("TANDEM_WS_READER") == "goroutine") }

// readBlocking is the goroutine reader: it reads frames until the
// connection ends.
func (w *WebSocket) readBlocking() {
	defer w.OnClose()
	w.rd.r = bufio.NewReaderSize(w.conn, readBufferSize)
	for {
		if w.idle > 0 {
			_ = w.conn.SetReadDeadline(time.Now().Add(w.idle))
		}
		m, err := w.rd.Next()
		if err != nil {
			w.readEnded(err)
			return
		}
		w.handle(m)
	}
}

// readBufferSize is the size of the buffered reader over the connection.
const readBufferSize = 512

// handle answers a ping or hands a message to the engine.
func (w *WebSocket) handle(m Message) {
	switch m.Op {
	case ws.OpPing:
		w.writeFrame(ws.OpPong, m.Payload)
	case ws.OpText:
		w.OnData(types.NewStringBuffer(m.Payload))
	case ws.OpBinary:
		w.OnData(types.NewBytesBuffer(m.Payload))
	}
}

// readEnded ends the connection after the Reader's error: with the close
// it asks for (a client's close echoed, a protocol error, 1009 past
// MaxPayload), or at once for the connection's own error (its end, the idle
// timeout's deadline).
func (w *WebSocket) readEnded(err error) {
	var ce *CloseError
	if errors.As(err, &ce) {
		if ce.Code == ws.StatusMessageTooBig && w.tooBig != nil {
			w.tooBig()
		}
		w.sendClose(ce.Code)
		return
	}
	w.wmu.Lock()
	w.dropLocked()
	w.wmu.Unlock()
}

// Message is what Reader.Next returns: a whole data message (text or
// binary), or a ping or pong.
type Message struct {
	Op      ws.OpCode
	Payload []byte
}

// CloseError ends a connection with a close frame of Code: the client's own
// close (its code echoed), or a protocol error found by the Reader.
type CloseError struct {
	Code ws.StatusCode
	Err  error
}

func (e *CloseError) Error() string {
	return "transport: websocket closed (" + e.Err.Error() + ")"
}

func (e *CloseError) Unwrap() error { return e.Err }

// ErrClosedByClient is the Err of the CloseError for a client's close frame.
var ErrClosedByClient = errors.New("close frame from the client")

// Reader reads a client's frames (RFC 6455, server side, no extension) with
// gobwas/ws: fragmented messages are put back together, control frames may
// come between their fragments, and a message longer than the limit,
// counted on the bytes read, is refused.
type Reader struct {
	r     io.Reader
	limit int64
	hdr   [ws.MaxHeaderSize - 2]byte
	msg   *bytes.Buffer // the message being put together; nil: none yet
	op    ws.OpCode     // of the message being put together; 0: none

	// ready, if set, tells before each frame whether bytes are there to
	// read; if not, Next returns errNoFrame and may be called again later,
	// a fragmented message's first fragments kept.
	ready func() bool
}

// errNoFrame: Reader.ready said no bytes are waiting.
var errNoFrame = errors.New("transport: no frame waiting")

// msgBuffers holds the message buffers of connections with no message in
// progress (the epoll reader lets go of its buffer when it parks).
var msgBuffers = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// maxKeptBuffer: a buffer that grew past it for a big message is not kept.
const maxKeptBuffer = 64 << 10

// release gives the message buffer back to the pool unless a fragmented
// message is being put together.
func (r *Reader) release() {
	if r.op != 0 || r.msg == nil {
		return
	}
	if r.msg.Cap() <= maxKeptBuffer {
		r.msg.Reset()
		msgBuffers.Put(r.msg)
	}
	r.msg = nil
}

// NewReader reads frames from r, refusing messages over limit bytes.
func NewReader(r io.Reader, limit int64) *Reader {
	return &Reader{r: r, limit: limit}
}

// Next returns the next message or control frame. A close frame or a
// protocol error is a *CloseError with the code to close with; other errors
// are the connection's.
func (r *Reader) Next() (Message, error) {
	for {
		if r.ready != nil && !r.ready() {
			return Message{}, errNoFrame
		}
		h, err := ws.ReadHeaderBuffer(r.r, r.hdr[:0])
		if err != nil {
			if errors.Is(err, ws.ErrHeaderLengthMSB) || errors.Is(err, ws.ErrHeaderLengthUnexpected) {
				return Message{}, &CloseError{ws.StatusProtocolError, err}
			}
			return Message{}, err
		}
		state := ws.StateServerSide
		if r.op != 0 {
			state = state.Set(ws.StateFragmented)
		}
		if err := ws.CheckHeader(h, state); err != nil {
			return Message{}, &CloseError{ws.StatusProtocolError, err}
		}
		if h.OpCode.IsControl() {
			payload := make([]byte, h.Length)
			if _, err := io.ReadFull(r.r, payload); err != nil {
				return Message{}, err
			}
			ws.Cipher(payload, h.Mask, 0)
			if h.OpCode == ws.OpClose {
				return Message{}, closeOf(payload)
			}
			return Message{Op: h.OpCode, Payload: payload}, nil
		}
		if r.msg == nil {
			r.msg = msgBuffers.Get().(*bytes.Buffer)
		}
		if int64(r.msg.Len())+h.Length > r.limit {
			return Message{}, &CloseError{ws.StatusMessageTooBig, errors.New("message over the payload limit")}
		}
		if r.op == 0 {
			r.op = h.OpCode
			r.msg.Reset()
		}
		start := r.msg.Len()
		// Grows as bytes arrive, not by the length the client declares.
		if _, err := io.CopyN(r.msg, r.r, h.Length); err != nil {
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return Message{}, err
		}
		ws.Cipher(r.msg.Bytes()[start:], h.Mask, 0)
		if !h.Fin {
			continue
		}
		op := r.op
		r.op = 0
		payload := bytes.Clone(r.msg.Bytes())
		r.msg.Reset()
		if r.msg.Cap() > maxKeptBuffer {
			r.msg = nil // a big message's buffer is not kept
		}
		if op == ws.OpText && !utf8.Valid(payload) {
			return Message{}, &CloseError{ws.StatusInvalidFramePayloadData, errors.New("text message is not UTF-8")}
		}
		return Message{Op: op, Payload: payload}, nil
	}
}

// closeOf is the CloseError answering a client's close frame: its code
// echoed (1000 if it sent none), or 1002 if its code or reason is invalid.
func closeOf(payload []byte) *CloseError {
	if len(payload) == 0 {
		return &CloseError{ws.StatusNormalClosure, ErrClosedByClient}
	}
	if len(payload) < 2 {
		return &CloseError{ws.StatusProtocolError, errors.New("one-byte close frame")}
	}
	code, reason := ws.ParseCloseFrameData(payload)
	if err := ws.CheckCloseFrameData(code, reason); err != nil {
		return &CloseError{ws.StatusProtocolError, err}
	}
	return &CloseError{code, ErrClosedByClient}
}
