// Package transport holds tandem's Engine.IO transports for
// zishang520/socket.io v3.0.6. The engine takes its transports as
// constructors in an option (config.ServerOptions.SetTransports; the
// handshake and the upgrade from polling both create transports through
// it), so these replace the library's own without a fork:
//
//   - Polling is the library's long-polling transport with its POST handling
//     replaced: the answer to a POST is written by the POST's own goroutine
//     only, also when the connection is closed from another goroutine while
//     the POST is in the engine (the library writes a 429 on it from the
//     closing goroutine, racing the POST's own "ok" on one http.Header map:
//     "fatal error: concurrent map writes").
//   - WebSocket takes over the network connection the engine has upgraded
//     (with gorilla/websocket, which only answers the handshake) and reads
//     and writes frames itself with gobwas/ws: Send frames each packet and
//     writes it inline without blocking; only what the kernel will not take
//     now waits for a goroutine of the connection, at most MaxPending bytes
//     (DefaultMaxPending, 4 MiB), past which the client is disconnected.
//     No extension is negotiated (the engine's upgrader accepts none while
//     PerMessageDeflate is unset), a message is bounded by MaxPayload on the
//     bytes read (close 1009), fragments and control frames between them
//     are read, and a client's close code is echoed.
//   - Reading: on Linux an idle WebSocket has no goroutine. One epoll
//     poller per process (read_linux.go) holds every connection that has a
//     descriptor (net.TCPConn, or a wrapper with SyscallConn and no buffer
//     of its own), registered one-shot and level-triggered under an id of
//     the poller's; an event starts a goroutine that reads and hands
//     messages to the engine until no byte is left (a frame cut short is
//     waited for under the read deadline), gives back its bufio and message
//     buffers, and re-arms the registration last: one goroutine at a time
//     per connection, messages in order. The engine's IdleTimeout, the
//     goroutine reader's read deadline, is a sweep of the poller's
//     connections there. Every epoll_ctl holds the descriptor open
//     (RawConn.Control), and a connection leaves epoll before it is closed,
//     so a reused descriptor number never gets another's registration.
//     Other systems, TLS connections, connections without a descriptor, a
//     failed epoll_create1, and TANDEM_WS_READER=goroutine in the
//     environment (for comparisons and tests) use the goroutine reader: one
//     goroutine per connection, blocked in a read.
//
// BroadcastBuilder is a Socket.IO adapter constructor (ServerOptions.SetAdapter)
// for the pre-framed broadcast: a room emit is encoded once, framed once
// as a WebSocket text frame, and the same bytes are written
// (WebSocket.WriteFrame) to every recipient on a WebSocket of this
// package, where the library's adapter would copy, wrap, buffer, flush
// and frame the packet once per recipient and emit seven events for it.
// It writes only where the library would have written at once (engine
// socket open, not upgrading, nothing in its write buffer), holding the
// same two locks the library's path holds (the client's, the engine
// socket's flush lock), so nothing is overtaken; polling and upgrading
// recipients, binary packets and broadcasts with an ack take the
// library's path. Both locks and the write buffer are private to the
// library: engine_internals.go finds them by reflection, once, and turns
// the pre-framed path off if they are not what v3.0.6 has
// (TestPreframedInternalsPinned fails then). Over another adapter
// (BroadcastBuilder.Inner, the Redis adapter) only broadcasts flagged
// local are delivered this way; the rest go to the inner adapter whole.
//
// Register them with Register(opts, WebSocketBuilder{...}). The package speaks of frames, requests
// and connections; it knows nothing of sessions.
package transport
