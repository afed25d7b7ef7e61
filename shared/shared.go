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

import "time"

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

	// EventDevicesChanged (server to client) has no payload. It is sent to
	// every socket of a signed-in user when the user's list of devices or
	// their tab counts changed, at most once a second per user: the page
	// reads GET /devices again.
	EventDevicesChanged = "devices changed"
)

// HTTP routes of the API.
const (
	RouteIncr    = "/incr"    // POST: increments, answers the new count as text/plain
	RouteLogout  = "/logout"  // POST: ends the session, answers 204
	RouteSession = "/session" // GET: answers a SessionInfo
	RouteHealth  = "/healthz" // GET: 200 when the store answers, 503 otherwise

	RouteLogin         = "/login"          // POST a LoginRequest: renews and signs in, answers a LoginInfo
	RouteDevices       = "/devices"        // GET: the signed-in user's Devices; 401 when not signed in
	RouteDevicesRevoke = "/devices/revoke" // POST a RevokeRequest: ends one of the user's sessions, 204

	// SocketPath is where Socket.IO is served (both transports).
	SocketPath = "/socket.io/"
)

// Reasons of a SessionEnded.
const (
	// ReasonLogout: a POST /logout from one of the session's own tabs
	// ended it.
	ReasonLogout = "logout"
	// ReasonRevoked: another session of the same user ended it (POST
	// /devices/revoke, POST /logout everywhere), or a new sign-in went over
	// the user's bound of sessions.
	ReasonRevoked = "revoked"
	// ReasonExpired: the session outlived its idle or absolute lifetime.
	ReasonExpired = "expired"
)

// SessionEnded is the payload of EventSessionEnded.
type SessionEnded struct {
	Reason string `json:"reason"`
}

// SessionInfo is the body of GET /session. User is the name the session
// is signed in as, absent when it is not signed in.
type SessionInfo struct {
	Count int    `json:"count"`
	User  string `json:"user,omitempty"`
}

// LoginRequest is the body of POST /login. Remember makes the cookie
// persistent (until the session's absolute lifetime ends); otherwise it is
// a browser-session cookie.
type LoginRequest struct {
	User     string `json:"user"`
	Remember bool   `json:"remember"`
}

// LoginInfo is the body of a POST /login that signed in.
type LoginInfo struct {
	User  string `json:"user"`
	Count int    `json:"count"`
}

// MaxUserLen is the longest user name ValidUser accepts.
const MaxUserLen = 64

// ValidUser reports whether name is a user name POST /login accepts: 1 to
// MaxUserLen characters, each an ASCII letter or digit, '.', '_' or '-'.
func ValidUser(name string) bool {
	if name == "" || len(name) > MaxUserLen {
		return false
	}
	for i := 0; i < len(name); i++ {
		switch c := name[i]; {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '.', c == '_', c == '-':
		default:
			return false
		}
	}
	return true
}

// Device is one session of a signed-in user, as GET /devices lists it.
// ID names the session to its user only: it is neither the session ID nor
// its key, and no use as a cookie. Created and LastSeen are RFC 3339 times
// in JSON; Agent is a coarse name from the User-Agent at sign-in ("Firefox
// on Linux"); Tabs is the number of the session's sockets connected to any
// node right now.
type Device struct {
	ID       string    `json:"id"`
	Current  bool      `json:"current"`
	Created  time.Time `json:"created"`
	LastSeen time.Time `json:"lastSeen"`
	Agent    string    `json:"agent"`
	Tabs     int       `json:"tabs"`
}

// Devices is the body of GET /devices: the current device first, then the
// others by LastSeen, newest first.
type Devices struct {
	Devices []Device `json:"devices"`
}

// RevokeRequest is the body of POST /devices/revoke.
type RevokeRequest struct {
	ID string `json:"id"`
}

// LogoutRequest is the optional body of POST /logout. Everywhere, for a
// signed-in session, ends every session of its user.
type LogoutRequest struct {
	Everywhere bool `json:"everywhere"`
}

// ErrorBody is the body of every JSON error answer, and the ack of a failed
// EventIncr.
type ErrorBody struct {
	Error string `json:"error"`
}
