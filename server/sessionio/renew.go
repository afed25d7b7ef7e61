package sessionio

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/gorilla/sessions"
	"github.com/zishang520/socket.io/servers/socket/v3"

	"github.com/tandem-go/tandem/server/store"
)

// Renew gives the request's session a new ID, as an app must at login to
// stop session fixation: the values move to a record under the new ID, the
// old ID is dead at once (its record is deleted, and its cookie names no
// session any more), and the new cookie is set on w. The session's sockets
// follow it: on this node they move to the new room and their handle
// (FromSocket) to the new key at once; on other nodes the adapter moves them
// to the new room, and a socket whose node still reloads the old key is
// closed at its next packet, so that its client reconnects with the new
// cookie.
//
// Renew returns the session under its new ID, or ErrSessionGone when the
// request has no live session. Changes of the session wait for it, and
// one that was waiting for the old ID finds it gone.
func (m *Manager) Renew(w http.ResponseWriter, r *http.Request) (*sessions.Session, error) {
	id, ok := m.idFromRequest(r)
	if !ok {
		return nil, ErrSessionGone
	}
	ctx := r.Context()
	oldKey := keyOf(id)
	unlock, err := m.lockKey(ctx, oldKey)
	if err != nil {
		return nil, err
	}
	defer unlock()
	v, rec, err := m.load(ctx, oldKey)
	if err != nil {
		return nil, err
	}
	newID, newKey, err := m.createRecord(ctx, rec.Data)
	if err != nil {
		return nil, err
	}
	if err := m.cfg.Store.Delete(ctx, oldKey); err != nil {
		_ = m.cfg.Store.Delete(context.WithoutCancel(ctx), newKey)
		return nil, fmt.Errorf("sessionio: renew: delete the old ID: %w", err)
	}
	m.moveSockets(oldKey, newKey, v)
	http.SetCookie(w, m.cookie(r, newID))
	s := m.gorillaSession(r, m.cfg.Cookie.Name)
	s.ID, s.IsNew, s.Values = newID, false, v
	return s, nil
}

// createRecord stores data under a new, unused ID.
func (m *Manager) createRecord(ctx context.Context, data []byte) (string, string, error) {
	for {
		id := newID()
		key := keyOf(id)
		err := m.cfg.Store.Create(ctx, key, data, store.Meta{}, m.cfg.TTL)
		if errors.Is(err, store.ErrExists) {
			continue // 2^-256; but never overwrite someone's session
		}
		if err != nil {
			return "", "", fmt.Errorf("sessionio: create: %w", err)
		}
		return id, key, nil
	}
}

// moveSockets re-keys this node's handle of oldKey to newKey, and moves
// the sockets of the session, on every node, to the new room.
func (m *Manager) moveSockets(oldKey, newKey string, v Values) {
	m.mu.Lock()
	h := m.live[oldKey]
	if h != nil {
		delete(m.live, oldKey)
		m.live[newKey] = h
		h.mu.Lock()
		h.key, h.values, h.version = newKey, cloneValues(v), 1 // Create starts at version 1
		h.mu.Unlock()
	}
	m.mu.Unlock()
	m.floors.rekey(oldKey, newKey, 1)
	io := m.io.Load()
	if io == nil {
		return
	}
	if h != nil {
		for _, s := range h.socketList() {
			s.Join(socket.Room(newKey))
			s.Leave(socket.Room(oldKey))
		}
	}
	if m.clustered.Load() {
		io.In(socket.Room(oldKey)).SocketsJoin(socket.Room(newKey))
		io.In(socket.Room(oldKey)).SocketsLeave(socket.Room(oldKey))
	}
}

// rekey moves the floors of oldKey's sockets to newKey, at version: a
// renewed session's versions start again.
func (f *floors) rekey(oldKey, newKey string, version uint64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	k := f.m[oldKey]
	if k == nil {
		return
	}
	delete(f.m, oldKey)
	k.mu.Lock()
	for id := range k.m {
		k.m[id] = version
	}
	if to := f.m[newKey]; to != nil {
		to.mu.Lock()
		for id, v := range k.m {
			to.m[id] = v
		}
		to.mu.Unlock()
		to.users += len(k.m) // in-flight deliveries put k, not to
	} else {
		f.m[newKey] = k
	}
	k.mu.Unlock()
}
