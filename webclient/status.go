package webclient

// connStatus is what the status element shows: the state of the live
// connection as the person should understand it.
type connStatus string

const (
	statusConnecting   connStatus = "connecting"
	statusConnected    connStatus = "connected"
	statusReconnecting connStatus = "reconnecting"
	statusDisconnected connStatus = "disconnected"
	statusLoggedOut    connStatus = "logged out"
)

// connEvent is something that happened to the socket or the session.
type connEvent int

const (
	evDial             connEvent = iota // the page asked the socket to connect
	evConnect                           // the socket connected
	evDisconnect                        // the socket lost its connection
	evConnectError                      // a connection attempt failed
	evReconnectAttempt                  // the client retries by itself
	evLoggedOut                         // POST /logout answered, or the server sent session ended
)

// next is the status after ev. active tells whether the JavaScript client
// will reconnect by itself (socket.active): after a disconnect decided by
// the server it will not, and the page says "disconnected" until the next
// increment reconnects it. "logged out" sticks until the page connects
// again: the disconnect that follows a logout must not hide it.
func (s connStatus) next(ev connEvent, active bool) connStatus {
	switch ev {
	case evDial:
		return statusConnecting
	case evConnect:
		return statusConnected
	case evLoggedOut:
		return statusLoggedOut
	}
	if s == statusLoggedOut {
		return s
	}
	switch ev {
	case evReconnectAttempt:
		return statusReconnecting
	case evDisconnect, evConnectError:
		if active {
			return statusReconnecting
		}
		return statusDisconnected
	}
	return s
}
