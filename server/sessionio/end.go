package sessionio

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/zishang520/socket.io/servers/socket/v3"
)

// Emit sends an event to every socket of the session with the given key, on
// this node and, through the Socket.IO adapter, on every other. When the
// other nodes cannot be reached the sockets of this node still get it and
// the error wraps ErrNodesUnreachable. It returns ErrNotAttached before
// Attach.
func (m *Manager) Emit(key, event string, args ...any) error {
	io := m.io.Load()
	if io == nil {
		return ErrNotAttached
	}
	if err := m.checkAdapter(io); err != nil {
		return err
	}
	return m.emit(io, key, event, args...)
}

// Disconnect disconnects every socket of the session with the given key, on
// every node, with a server-side disconnect: clients see "io server
// disconnect" and do not reconnect by themselves. It returns ErrNotAttached
// before Attach.
//
// The sockets of this node are disconnected at once, whatever the adapter;
// when the other nodes cannot be reached the error wraps
// ErrNodesUnreachable. Events emitted before Disconnect reach every node's
// sockets before they are disconnected.
func (m *Manager) Disconnect(key string) error {
	io := m.io.Load()
	if io == nil {
		return ErrNotAttached
	}
	if err := m.checkAdapter(io); err != nil {
		return err
	}
	return m.disconnect(io, key)
}

// Sockets returns the sockets of the session with the given key that are
// connected to this node. For every node, use
// io.In(m.Room(key)).FetchSockets().
func (m *Manager) Sockets(key string) []*socket.Socket {
	m.mu.Lock()
	h := m.live[key]
	m.mu.Unlock()
	if h == nil {
		return nil
	}
	return h.socketList()
}

// Destroy ends the request's session: the record is deleted from the store
// and the cookie expired on w. It returns the key the session had (for End,
// Emit and Disconnect), or "" when the request had no session; a session an
// earlier call of the request created is the one destroyed. Its sockets are
// not disconnected: call End(key, EndLogout) for that.
func (m *Manager) Destroy(w http.ResponseWriter, r *http.Request) (string, error) {
	st, unlock := m.lockState(r)
	defer unlock()
	key := ""
	if st.id != "" {
		key = keyOf(st.id)
		if err := m.cfg.Store.Delete(r.Context(), key); err != nil {
			return "", fmt.Errorf("sessionio: delete: %w", err) // the cookie stays: the session is still there
		}
		st.id, st.loaded = "", false
		m.endSession(key, EndLogout) // End does not report a logout again
	}
	m.writeCookie(w, m.cookie(r, ""))
	return key, nil
}

// EndNotice is the payload of Config.EndEvent: {"reason": "logout"}.
type EndNotice struct {
	Reason EndReason `json:"reason"`
}

// End tells every socket of the session with the given key why it ended
// (Config.EndEvent with an EndNotice), then disconnects them all, on every
// node, with a server-side disconnect (clients do not reconnect by
// themselves). The notice and the disconnect travel to the other nodes on
// one channel, in that order, so every socket hears why before it is
// disconnected. End returns once this node's sockets were told and
// disconnected; when the other nodes cannot be reached the error wraps
// ErrNodesUnreachable (their sockets close at their next packet or periodic
// check, since the session is gone from the store). It works for a key
// whose sockets are all on other nodes. The end is reported
// (Reporter.SessionEnded) once, here, but for EndLogout, which the Destroy
// (or Save) that deleted the session reported.
//
// End does not touch the store: delete the session first (Destroy), so no
// socket can reconnect into it.
func (m *Manager) End(key string, reason EndReason) error {
	io := m.io.Load()
	if io == nil {
		return ErrNotAttached
	}
	if err := m.checkAdapter(io); err != nil {
		return err
	}
	if reason != EndLogout {
		m.endSession(key, reason) // a logout was reported by its Destroy
	}
	err := m.emit(io, key, m.cfg.EndEvent, EndNotice{Reason: reason})
	return errors.Join(err, m.disconnect(io, key))
}
