package sessionio

import (
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"

	"github.com/gorilla/websocket"
	"github.com/zishang520/socket.io/servers/socket/v3"
)

// ErrBadHandshake refuses an Engine.IO request that the engine would refuse
// too, or that asks for what sessionio does not serve (JSONP polling). It is
// checked before a handshake may create a session, so a request that fails
// gets no session and no cookie.
var ErrBadHandshake = errors.New("sessionio: bad Engine.IO request")

// handshakeRules are the engine's own checks of a handshake (a request
// without sid), as configured on the Socket.IO server.
type handshakeRules struct {
	transports map[string]bool
	allowEIO3  bool
}

func newHandshakeRules(io *socket.Server) handshakeRules {
	h := handshakeRules{transports: map[string]bool{}, allowEIO3: io.Engine().Opts().AllowEIO3()}
	for _, t := range io.Engine().Transports().Keys() {
		if t == "polling" || t == "websocket" {
			h.transports[t] = true
		}
	}
	return h
}

// check refuses JSONP on every request, and a handshake (GET without sid)
// that the engine would refuse: an unknown or disabled transport, an
// unsupported protocol version, a WebSocket handshake that is not a valid
// upgrade, or a polling one that asks for an upgrade.
func (h handshakeRules) check(r *http.Request, q engineQuery) error {
	if q.jsonp {
		// JSONP answers script to any page that includes it; the official
		// clients never ask for it.
		return fmt.Errorf("%w: JSONP polling is not supported", ErrBadHandshake)
	}
	if !q.isHandshake(r) {
		return nil // not a handshake: it creates nothing
	}
	switch eio := q.eio; {
	case eio == "4", eio == "3" && h.allowEIO3:
	default:
		return fmt.Errorf("%w: unsupported protocol version EIO=%.8q", ErrBadHandshake, eio)
	}
	transport := q.transport
	if !h.transports[transport] {
		return fmt.Errorf("%w: unknown transport %.16q", ErrBadHandshake, transport)
	}
	upgrade := websocket.IsWebSocketUpgrade(r)
	switch {
	case transport == "polling" && upgrade:
		return fmt.Errorf("%w: a polling handshake cannot be a WebSocket upgrade", ErrBadHandshake)
	case transport == "websocket" && !upgrade:
		return fmt.Errorf("%w: a WebSocket handshake must be an upgrade request", ErrBadHandshake)
	case transport == "websocket" && (r.Header.Get("Sec-WebSocket-Version") != "13" || !validChallengeKey(r.Header.Get("Sec-WebSocket-Key"))):
		return fmt.Errorf("%w: a WebSocket upgrade needs Sec-WebSocket-Version 13 and a Sec-WebSocket-Key of 16 bytes in base64", ErrBadHandshake)
	}
	return nil
}

// validChallengeKey is gorilla/websocket's check of Sec-WebSocket-Key
// (RFC 6455: base64 of 16 bytes), which the engine's upgrader makes only
// after the handshake's session and cookie would exist.
func validChallengeKey(s string) bool {
	b, err := base64.StdEncoding.DecodeString(s)
	return err == nil && len(b) == 16
}
