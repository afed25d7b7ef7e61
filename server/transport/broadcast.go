package transport

import (
	"sync/atomic"

	"github.com/gobwas/ws"
	"github.com/zishang520/socket.io/parsers/socket/v3/parser"
	"github.com/zishang520/socket.io/servers/socket/v3"
	"github.com/zishang520/socket.io/v3/pkg/types"
)

// BroadcastBuilder is a Socket.IO adapter constructor (for
// ServerOptions.SetAdapter) whose broadcasts are pre-framed: a room emit
// is encoded once and framed once as a WebSocket text frame, and the same
// bytes are written to every recipient whose connection is a WebSocket of
// this package, with no per-recipient copy, packet or event. Every other
// recipient (polling, an upgrade under way, a packet of its still waiting
// in the engine) gets the emit through the library's path, as the
// library's adapter would deliver it.
//
// A recipient is written to directly only where the library would have
// written at once, under the same locks (the client's write lock and the
// engine socket's flush lock), so no packet ever overtakes one sent before
// it. What is skipped is the engine's bookkeeping of a packet it never
// held: its "packetCreate", "flush" and "drain" events (engine socket and
// engine server) for that packet.
//
// Honoured as the library does: rooms, except, local, volatile (a
// WebSocket of ours is always writable, so nothing is dropped) and the
// outgoing listeners (Socket.OnAnyOutgoing). Compress is moot: no
// compression is negotiated. Left to the library's path whole: a binary
// packet (attachments), a broadcast with an ack, and, over an adapter that
// reaches other nodes, a broadcast without the local flag.
type BroadcastBuilder struct {
	// Inner makes the adapter that keeps the rooms and does everything but
	// the local deliveries of a broadcast. nil: the library's in-process
	// adapter, and every broadcast is delivered here. Any other (the Redis
	// adapter): only broadcasts flagged local are delivered here; the rest
	// go to Inner as they are, for it to publish.
	Inner socket.AdapterConstructor

	preframed, library atomic.Uint64
}

// Deliveries counts the recipients of b's adapters' text broadcasts on
// this node: those written pre-framed, and those that took the library's
// path (polling, an upgrade under way, a packet of theirs waiting).
// Broadcasts handed to the library whole (binary, with an ack, not local
// over a cluster adapter) are not counted.
func (b *BroadcastBuilder) Deliveries() (preframed, library uint64) {
	return b.preframed.Load(), b.library.Load()
}

var _ socket.AdapterConstructor = (*BroadcastBuilder)(nil)

// New makes the adapter of nsp.
func (b *BroadcastBuilder) New(nsp socket.Namespace) socket.Adapter {
	a := &broadcastAdapter{b: b, allLocal: b.Inner == nil, encoder: nsp.Server().Encoder()}
	if a.allLocal {
		a.Adapter = socket.NewAdapter(nsp)
	} else {
		a.Adapter = b.Inner.New(nsp)
	}
	return a
}

// Unwrap is the constructor of the adapter that keeps the rooms: Inner, or
// the library's in-process one. (sessionio asks it whether the adapter
// reaches other nodes.)
func (b *BroadcastBuilder) Unwrap() socket.AdapterConstructor {
	if b.Inner == nil {
		return &socket.AdapterBuilder{}
	}
	return b.Inner
}

type broadcastAdapter struct {
	socket.Adapter // the inner adapter: rooms, acks, remote requests

	b        *BroadcastBuilder
	allLocal bool // the inner adapter reaches this node only
	encoder  parser.Encoder
}

// Broadcast delivers packet to the matching sockets of this node, one
// frame for all WebSocket recipients (see BroadcastBuilder).
func (a *broadcastAdapter) Broadcast(packet *parser.Packet, opts *socket.BroadcastOptions) {
	flags := &socket.BroadcastFlags{}
	if opts != nil && opts.Flags != nil {
		flags = opts.Flags
	}
	if !a.allLocal && !flags.Local || !preframedOK() {
		a.Adapter.Broadcast(packet, opts)
		return
	}
	packet.Nsp = a.Nsp().Name()
	encoded := a.encoder.Encode(packet)
	var text *types.StringBuffer
	if len(encoded) == 1 {
		text, _ = encoded[0].(*types.StringBuffer)
	}
	if text == nil {
		// Binary: the library's path, which encodes it again.
		a.Adapter.Broadcast(packet, opts)
		return
	}
	// What the library's adapter hands each client (socket/adapter.go
	// Broadcast): the encoded packet and the Engine.IO message ("4" and
	// the packet) as the WebSocket frame's payload.
	packetOpts := &socket.WriteOptions{}
	packetOpts.PreEncoded = true
	packetOpts.Volatile = flags.Volatile
	packetOpts.Compress = flags.Compress
	message := types.NewStringBufferString("4")
	_, _ = message.Write(text.Bytes())
	packetOpts.WsPreEncodedFrame = message
	frame := Frame(ws.OpText, message.Bytes())

	in := internals()
	var preframed, library uint64
	defer func() {
		a.b.preframed.Add(preframed)
		a.b.library.Add(library)
	}()
	// The inner adapter's FetchSockets picks the recipients as its
	// Broadcast does (rooms, except, connected; this node's only with the
	// local flag), and calls back before it returns.
	a.Adapter.FetchSockets(opts)(func(sockets []socket.SocketDetails, _ error) {
		for _, d := range sockets {
			s, ok := d.(*socket.Socket)
			if !ok {
				continue
			}
			if notify := s.NotifyOutgoingListeners(); notify != nil {
				notify(packet)
			}
			if writePreframed(&in, s.Client(), frame) {
				preframed++
			} else {
				s.Client().WriteToEngine(encoded, packetOpts)
				library++
			}
		}
	})
}

// writePreframed writes frame to c's connection if the library's path
// would have written it there at once: the engine socket is open and not
// upgrading, its transport is a writable WebSocket of ours, and nothing
// waits in its write buffer. It checks and writes holding c's write lock
// and the engine socket's flush lock, as the library's path does, so no
// packet of c is between being taken from the buffer and written.
func writePreframed(in *engineInternals, c *socket.Client, frame []byte) bool {
	conn := c.Conn()
	w, ok := conn.Transport().(*WebSocket)
	if !ok {
		return false
	}
	flushMu, writeBuffer, ok := engineSocket(in, conn)
	if !ok {
		return false
	}
	mu := clientMu(in, c)
	mu.Lock()
	defer mu.Unlock()
	flushMu.Lock()
	defer flushMu.Unlock()
	if conn.ReadyState() != "open" || conn.Upgrading() || conn.Transport() != w || !w.Writable() || writeBuffer.Len() != 0 {
		return false
	}
	w.WriteFrame(frame)
	return true
}
