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
//
// Register them with Register(opts). The package speaks of frames, requests
// and connections; it knows nothing of sessions.
package transport
