// Package shared is the contract between the tandem server and its WebAssembly
// client: Socket.IO event names, their payloads, the HTTP routes and the JSON
// bodies they answer with.
//
// Both sides compile this package (linux and js/wasm), so it imports the
// standard library only; TestImportsStayPortable guards that. Call sites never
// spell an event name or a route as a string literal: they use the constants
// here, so a rename is a compile error on both sides instead of a silent
// mismatch at run time.
package shared

// Socket.IO events. The server and the client agree on these names and on the
// payload documented beside each one.
const (
	// EventCurrentCount (server to client) carries one number: the session's
	// count after a change, sent to every socket of that session once the store
	// has committed the value.
	EventCurrentCount = "current count"

	// EventIncr (client to server, with an ack) takes no argument. The server
	// increments the session's count and acks the new value (a number), or an
	// ErrorBody when the increment failed.
	EventIncr = "incr"

	// EventSessionEnded (server to client) carries a SessionEnded, sent just
	// before the server disconnects every socket of the session.
	EventSessionEnded = "session ended"
)

// HTTP routes of the API.
const (
	RouteIncr    = "/incr"    // POST: increments, answers the new count as text/plain
	RouteLogout  = "/logout"  // POST: ends the session, answers 204
	RouteSession = "/session" // GET: answers a SessionInfo
	RouteHealth  = "/healthz" // GET: 200 when the store answers, 503 otherwise

	// SocketPath is where Socket.IO is served (both transports).
	SocketPath = "/socket.io/"
)

// ReasonLogout is the SessionEnded reason sent when a POST /logout ended the
// session.
const ReasonLogout = "logout"

// SessionEnded is the payload of EventSessionEnded.
type SessionEnded struct {
	Reason string `json:"reason"`
}

// SessionInfo is the body of GET /session.
type SessionInfo struct {
	Count int `json:"count"`
}

// ErrorBody is the body of every JSON error answer, and the ack of a failed
// EventIncr.
type ErrorBody struct {
	Error string `json:"error"`
}
