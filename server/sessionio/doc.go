// Package sessionio shares one browser session between net/http (Echo,
// gorilla) handlers and Socket.IO sockets (github.com/zishang520/socket.io).
//
// It is the Go form of the Node recipe "socket.io + express-session", with
// the recipe's sharp edges removed:
//
//   - The cookie holds only a random ID and its HMAC; values live in a
//     store.Store. The session's key (Manager.KeyOf, Session.Key) names it
//     everywhere else: store key, Socket.IO room (Manager.Room), log name,
//     and the argument of Emit and Disconnect. It is a SHA-256 of the ID, so
//     no raw ID leaves the cookie.
//   - A Manager is a gorilla sessions.Store (use it with echo-contrib/session)
//     and wires a Socket.IO server with Attach: every socket gets its
//     handshake's session (Manager.FromSocket), joins the session's room, and reloads
//     the session before each incoming packet (when the store is unavailable
//     the packet is handled with the values the handle holds, and a change
//     fails with an error wrapping ErrStoreUnavailable). A handshake without a valid
//     session gets a new one and its cookie, set on the polling answer or
//     the WebSocket 101.
//   - Changes are atomic read-modify-writes (Manager.Update for HTTP,
//     Session.Update for sockets); the manager itself never writes a whole
//     stale session back, so a long-polling request cannot undo a change or
//     revive a session that was logged out. Only the gorilla Save, called
//     by the app, writes a whole session (last writer wins: Get, then
//     Update, then Save in one request undoes the Update).
//   - Manager.SignIn is the sign-in step: after the app checked the
//     credentials, one store step gives the session a new ID bound to the
//     user (Session.User, Manager.UserOf), values kept, a new absolute
//     lifetime, and a browser-session or ("remember") persistent cookie.
//     The old session's connections are closed on every node and its
//     sockets never join the new session, so a socket opened with a
//     planted cookie (session fixation) learns nothing of the signed-in
//     session and changes nothing in it; the browser's tabs reconnect with
//     the new cookie. For Config.RenewGrace (10s) the old ID is a
//     tombstone: requests and handshakes that carry it (sent before the
//     sign-in's answer arrived) get ErrSessionRenewed, create nothing and
//     set no cookie, so an in-flight request cannot sign its user out.
//     Manager.Renew is the same without a new user.
//   - Every Manager call of one HTTP request sees what the earlier ones did
//     (the state lives in the request's context, as gorilla's registry
//     does): Update then SignIn, SignIn then Update, two Updates, an
//     Update that created the session then Destroy: one session, one
//     Set-Cookie, no orphaned record. Use one *http.Request per request.
//   - A session ends at its idle lifetime (Config.TTL, extended by use) or
//     its absolute one (Config.MaxAge from creation or sign-in, never
//     extended), both enforced by the store. Manager.End(key, reason) ends
//     one for its sockets: Config.EndEvent ("session ended") with
//     {"reason": "logout" | "revoked" | "expired"} on every node, then the
//     disconnect. An expiry found by a socket's reload or the periodic
//     check ends the session with "expired" the same way. Manager.Destroy
//     deletes a session (call End after it). Data that cannot be decoded
//     is no session, on every path (ErrSessionGone).
//   - Values of basic types (string keys; strings, bools, integers, floats,
//     []byte) are stored in a compact format of the package's own, anything
//     else with encoding/gob; gob records of earlier versions still read
//     (see Values).
//   - Every Engine.IO request, WebSocket upgrades included, is refused with
//     403 unless its Origin is the server's own or in the allowlist. The
//     own origin is the request's scheme and Host, Config.PublicURL's
//     (behind a TLS-terminating proxy), or what a trusted proxy's
//     X-Forwarded-Proto names (Config.TrustProxy). A request without
//     Origin and Sec-Fetch-Site is allowed: it does not come from a page
//     of another site (browsers send Origin on every cross-origin request
//     and WebSocket handshake).
//   - Every CheckInterval the sessions of a node's sockets are checked (one
//     store read per session, however many sockets it has): an expired one
//     is ended (End with "expired"); the connections of one deleted
//     elsewhere or renewed are closed, so clients reconnect (into a fresh
//     session, or with their new cookie). Manager.Disconnect ends them
//     cleanly instead (no reconnect), on every node sharing the Socket.IO
//     adapter.
//   - Several nodes: give Attach options carrying the adapter that reaches
//     them (see Example_severalNodes), or set it on the server before
//     Attach; an adapter set afterwards is detected (ErrAdapterChanged).
//   - With an adapter that reaches other nodes (Redis), Emit and Disconnect
//     act on this node's sockets at once and are relayed to the others on
//     one channel, in order; an event emitted from a committed callback is
//     never delivered to a socket that already had a newer commit's (see
//     cluster.go). When the other nodes cannot be reached, the error wraps
//     ErrNodesUnreachable and this node's sockets were still served.
//   - Config.Report, a Reporter, is told what happens: sessions created,
//     sessions ended with their EndReason, refusals with their Cause,
//     every store call with its duration and error, events received from
//     sockets and delivered to them, relay failures. sessionio depends on
//     no metrics library; the application turns the reports into metrics
//     (tandem: Prometheus, in server/metrics) or traces. Causes that the
//     application detects itself (CauseCSRF, CauseConnsPerClient, ...)
//     go through the same Reporter (Manager.Reporter), so that the list
//     of causes lives in one place (report.go).
//
// # Concurrency
//
// All exported methods are safe for concurrent use; Attach succeeds once
// (later calls return ErrAlreadyAttached, or ErrClosed after Shutdown), and
// Shutdown and Close may be called any number of times. Socket.IO runs a
// socket's middleware and event handlers one at a time, in order, on the
// socket's own queue; the reload installed by Attach runs there, before the
// handlers of the packet, and blocks only that socket. Namespace middleware
// (NamespaceMiddleware) runs on the connection's goroutine when a client
// joins the namespace; NamespaceMiddleware then holds that goroutine until the socket's connect has
// completed, so a packet the client sends right after (or with) its CONNECT
// is never read before the socket is registered (zishang520/socket.io
// v3.0.6 would close the connection: "invalid state"). Middlewares installed
// after it must call next before they return for this to cover them.
//
// Manager.Update and Session.Update may call their apply function more than
// once (optimistic stores retry on conflict), so apply must only change the
// values it is given. Their committed callback runs once, on the caller's
// goroutine, after the store committed, while later changes of the same
// session on this node wait: notifications sent from it (Emit) reach
// sockets in commit order. Each session has its own lock, so committed may
// change other sessions, and a slow committed holds up only its own
// session. Across nodes the order of two changes that commit at the same
// moment is not guaranteed. Do not call Update of the same session from
// committed: it would wait for itself (until its context ends).
//
// The Manager calls that take an *http.Request hold that request's state
// while they run: calls of one request run one at a time, and a committed
// callback must not call them for the same request (it would wait for
// itself). Config.OnCreate runs on the goroutine of the call that created
// the session (an HTTP handler's, or the Engine.IO handshake's), OnGone on
// whichever goroutine found the session gone (the periodic check's
// included): neither may block. A Reporter's methods are called
// synchronously, from any of those goroutines, on hot paths: they must be
// safe for concurrent use and must not block.
//
// Emit, Disconnect and End may be called from any goroutine, HTTP handlers
// included, and return ErrNotAttached before Attach. A Session handle is shared by all sockets of its session on a
// node and always holds the newest values this node has seen; it never moves
// back to older ones.
package sessionio
