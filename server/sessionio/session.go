package sessionio

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/zishang520/socket.io/servers/socket/v3"

	"github.com/tandem-go/tandem/server/store"
)

// Session is a node's handle on one session, shared by all the sockets of
// that session on the node. It never goes stale: a reload by any socket, a
// change from any socket or HTTP request on this node, and the periodic
// check all move it to the newest committed values, and it never moves
// back to older ones. Its methods are safe for concurrent use.
type Session struct {
	m *Manager

	mu      sync.RWMutex
	key     string
	values  Values
	version uint64
	meta    store.Meta
	expires time.Time // the latest expiry this node has seen

	sockets map[*socket.Socket]struct{} // guarded by m.mu
	ended   atomic.Bool                 // its end was reported (report.go)
}

// Key names the session outside its cookie: its store key, its room and its
// log name. It is a hash of the session ID, which it does not reveal. A
// renewal (SignIn, Renew) does not change it: the renewed session is
// another session, which the old one's sockets never join.
func (s *Session) Key() string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.key
}

// Get returns one value of the session.
func (s *Session) Get(key any) any {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.values[key]
}

// Values returns a copy of the session's values.
func (s *Session) Values() Values {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return cloneValues(s.values)
}

// User is the user the session is bound to (Manager.SignIn), or "".
func (s *Session) User() string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.meta.User
}

// Meta is the session's metadata as the store keeps it.
func (s *Session) Meta() store.Meta {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.meta
}

// expired reports whether the session, found gone, had passed its lifetime
// as far as this node knows (its absolute deadline, or the latest idle
// expiry this node saw), rather than being deleted.
func (s *Session) expired(now time.Time) bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if !s.meta.Deadline.IsZero() && !now.Before(s.meta.Deadline) {
		return true
	}
	return !s.expires.IsZero() && !now.Before(s.expires)
}

// Version is the store version of the values the handle holds.
func (s *Session) Version() uint64 {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.version
}

// snapshot returns the handle's key, a copy of its values and their
// version, as one state.
func (s *Session) snapshot() (string, Values, uint64) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.key, cloneValues(s.values), s.version
}

// Reload reads the session from the store. It returns ErrSessionGone when
// the session is gone or its data cannot be read, ErrSessionRenewed when it
// was renewed.
func (s *Session) Reload(ctx context.Context) error {
	return s.reload(ctx, s.Key())
}

func (s *Session) reload(ctx context.Context, key string) error {
	rec, err := s.fetch(ctx, key)
	if err != nil {
		return err
	}
	s.m.touchIfDue(ctx, key, rec)
	return nil
}

// fetch reads key from the store into the handle, decoding only a version
// the handle does not hold yet. It never touches the record: the periodic
// check uses it too, and must not keep an idle session alive.
func (s *Session) fetch(ctx context.Context, key string) (store.Record, error) {
	rec, err := s.m.cfg.Store.Load(ctx, key)
	if err != nil {
		if errors.Is(err, store.ErrNotFound) {
			s.m.gone(key)
			return rec, ErrSessionGone
		}
		if errors.Is(err, store.ErrRenewed) {
			return rec, ErrSessionRenewed
		}
		return rec, fmt.Errorf("sessionio: reload: %w: %w", ErrStoreUnavailable, err)
	}
	if s.holds(key, rec.Version) {
		s.seen(rec)
		return rec, nil
	}
	v, err := decodeValues(rec.Data)
	if err != nil {
		return rec, s.m.dropUnreadable(ctx, key, err)
	}
	s.set(key, v, rec)
	return rec, nil
}

// Update changes the session atomically, as Manager.Update does for HTTP
// requests, and returns the committed values. It returns ErrSessionGone
// when the session is gone (ErrSessionRenewed when it was renewed); a socket
// cannot set a cookie, so it never creates one. The store calls run under
// ctx: give it a deadline.
func (s *Session) Update(ctx context.Context, apply func(Values) error, committed func(Values)) (Values, error) {
	v, err := s.m.update(ctx, s.Key(), apply, committed)
	if err != nil {
		return nil, err
	}
	return cloneValues(v), nil
}

// Emit sends an event to every socket of the session, on every node.
func (s *Session) Emit(event string, args ...any) error {
	return s.m.Emit(s.Key(), event, args...)
}

// Disconnect disconnects every socket of the session, on every node, with a
// server-side disconnect.
func (s *Session) Disconnect() error {
	return s.m.Disconnect(s.Key())
}

// Room is the session's Socket.IO room (see Manager.Room).
func (s *Session) Room() socket.Room { return s.m.Room(s.Key()) }

// Sockets returns the session's sockets connected to this node.
func (s *Session) Sockets() []*socket.Socket { return s.socketList() }

// set moves the handle to v if rec, read under key, is newer than what it
// holds.
func (s *Session) set(key string, v Values, rec store.Record) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if key != s.key {
		return
	}
	if rec.Version > s.version || s.values == nil {
		s.values, s.version = v, rec.Version
	}
	s.meta = rec.Meta
	if rec.Expires.After(s.expires) {
		s.expires = rec.Expires
	}
}

// seen notes the expiry of a record read whose values the handle holds.
func (s *Session) seen(rec store.Record) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if rec.Expires.After(s.expires) {
		s.expires = rec.Expires
	}
}

func (s *Session) socketList() []*socket.Socket {
	s.m.mu.Lock()
	defer s.m.mu.Unlock()
	list := make([]*socket.Socket, 0, len(s.sockets))
	for so := range s.sockets {
		list = append(list, so)
	}
	return list
}
