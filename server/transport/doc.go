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
//
// Register them with Register(opts, WebSocketBuilder{...}). The package speaks of frames, requests
// and connections; it knows nothing of sessions.
package transport
