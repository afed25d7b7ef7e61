package sessionio

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/gorilla/sessions"

	"github.com/tandem-go/tandem/server/store"
)

// SignInOptions are the per-call choices of SignIn.
type SignInOptions struct {
	// Remember makes the session cookie persistent: its Max-Age is what
	// remains of the session's absolute lifetime (Config.MaxAge). Without
	// it the cookie lasts for the browser's session.
	Remember bool
	// Agent is a short description of the client ("Firefox on Linux"),
	// kept with the session for the user's device list; see AgentName.
	Agent string
}

// SignIn binds the request's session to user, as an app does once it has
// checked the user's credentials: in one store step the session gets a new
// ID (a new cookie, set on w) bound to user, with its values (a count, a
// cart) kept and a new absolute lifetime (Config.MaxAge from now). A request
// without a live session gets a new one bound to user. Signing in again, as
// the same user or another, renews again.
//
// The old ID is dead at once for everyone: the old session's sockets, on
// every node, have their connections closed (an Engine.IO close: the
// browser's tabs reconnect on their own, with the new cookie) and never join
// the new session, so a socket opened with a planted cookie (session
// fixation) never reads or changes the signed-in session. For
// Config.RenewGrace the old ID is a tombstone: a request or handshake that
// carries it (sent before the sign-in's answer arrived) gets
// ErrSessionRenewed and creates nothing.
//
// user must not be empty. SignIn returns the session under its new ID, or
// ErrSessionRenewed when the request's cookie was renewed meanwhile.
func (m *Manager) SignIn(w http.ResponseWriter, r *http.Request, user string, opts SignInOptions) (*sessions.Session, error) {
	if user == "" {
		return nil, errors.New("sessionio: SignIn needs a user")
	}
	meta := m.newMeta(user, opts.Agent)
	s, err := m.renew(w, r, &meta, opts.Remember, true)
	if err != nil {
		return nil, err
	}
	m.afterSignIn(r.Context(), user, m.KeyOf(s))
	return s, nil
}

// Renew gives the request's session a new ID, as SignIn does, keeping its
// user, its creation time and its absolute lifetime. It returns
// ErrSessionGone when the request has no live session.
func (m *Manager) Renew(w http.ResponseWriter, r *http.Request) (*sessions.Session, error) {
	return m.renew(w, r, nil, false, false)
}

// UserOf returns the user the request's session is bound to (SignIn), or ""
// when it is not signed in or there is no session. It sees what earlier
// calls of the request did.
func (m *Manager) UserOf(r *http.Request) (string, error) {
	st, unlock := m.lockState(r)
	defer unlock()
	if st.id == "" {
		return "", nil
	}
	if st.loaded {
		return st.meta.User, nil
	}
	_, rec, err := m.load(r.Context(), keyOf(st.id))
	switch {
	case errors.Is(err, ErrSessionGone):
		return "", nil
	case err != nil:
		return "", err
	}
	st.remember(rec.Meta)
	return rec.User, nil
}

// newMeta is the metadata of a session created or signed in now.
func (m *Manager) newMeta(user, agent string) store.Meta {
	now := time.Now()
	return store.Meta{User: user, Agent: agent, Created: now, Deadline: now.Add(m.cfg.MaxAge)}
}

// renew moves the request's session to a new ID with meta (nil: the old
// session's), or, with create, makes a new session with meta when there is
// none.
func (m *Manager) renew(w http.ResponseWriter, r *http.Request, meta *store.Meta, remember, create bool) (*sessions.Session, error) {
	st, unlock := m.lockState(r)
	defer unlock()
	ctx := r.Context()
	s := m.gorillaSession(r, m.cfg.Cookie.Name)
	if st.id != "" {
		newID, v, rec, err := m.renewID(ctx, keyOf(st.id), meta)
		switch {
		case err == nil:
			st.id = newID
			st.remember(rec.Meta)
			m.writeCookie(w, m.sessionCookie(r, newID, rec.Meta, remember))
			s.ID, s.IsNew, s.Values = newID, false, v
			return s, nil
		case !errors.Is(err, ErrSessionGone) || !create:
			return nil, err
		}
	}
	if !create {
		return nil, ErrSessionGone
	}
	id, v, err := m.createAs(ctx, r, nil, *meta)
	if err != nil {
		return nil, err
	}
	st.id = id
	st.remember(*meta)
	m.writeCookie(w, m.sessionCookie(r, id, *meta, remember))
	s.ID, s.IsNew, s.Values = id, false, v
	return s, nil
}

// renewID moves the session oldKey to a new ID in one store step, leaving a
// tombstone, and closes the old session's connections on every node.
func (m *Manager) renewID(ctx context.Context, oldKey string, meta *store.Meta) (string, Values, store.Record, error) {
	unlock, err := m.lockKey(ctx, oldKey)
	if err != nil {
		return "", nil, store.Record{}, err
	}
	defer unlock()
	if meta == nil {
		_, rec, err := m.load(ctx, oldKey)
		if err != nil {
			return "", nil, store.Record{}, err
		}
		meta = &rec.Meta
	}
	for {
		id := newID()
		rec, err := m.cfg.Store.Renew(ctx, oldKey, keyOf(id), *meta, m.cfg.TTL, m.cfg.RenewGrace)
		switch {
		case errors.Is(err, store.ErrExists):
			continue // 2^-256; but never overwrite someone's session
		case errors.Is(err, store.ErrNotFound):
			m.gone(oldKey)
			return "", nil, store.Record{}, ErrSessionGone
		case errors.Is(err, store.ErrRenewed):
			return "", nil, store.Record{}, ErrSessionRenewed
		case err != nil:
			return "", nil, store.Record{}, fmt.Errorf("sessionio: renew: %w", err)
		}
		v, err := decodeValues(rec.Data)
		if err != nil {
			// Unreadable: the new record is no session either.
			return "", nil, store.Record{}, m.dropUnreadable(ctx, keyOf(id), err)
		}
		m.closeRenewed(oldKey)
		return id, v, rec, nil
	}
}

// createRecord stores data under a new, unused ID.
func (m *Manager) createRecord(ctx context.Context, data []byte, meta store.Meta) (string, string, error) {
	for {
		id := newID()
		key := keyOf(id)
		err := m.cfg.Store.Create(ctx, key, data, meta, m.cfg.TTL)
		if errors.Is(err, store.ErrExists) {
			continue // 2^-256; but never overwrite someone's session
		}
		if err != nil {
			return "", "", fmt.Errorf("sessionio: create: %w", err)
		}
		return id, key, nil
	}
}

// closeRenewed closes the connections of the renewed session oldKey's
// sockets, here and on every other node. Their handles keep the old key,
// which is a tombstone: whatever they still do fails, and their clients
// reconnect with the cookie their browser now holds.
func (m *Manager) closeRenewed(oldKey string) {
	m.gone(oldKey)
	io := m.io.Load()
	if io == nil {
		return
	}
	for _, s := range m.Sockets(oldKey) {
		closeConn(s.Conn())
	}
	if err := m.relayClose(io, oldKey); err != nil {
		m.log.Warn("sessionio: renew: the other nodes could not be told to close the old session's connections; theirs close at their next packet or periodic check", "session", logKey(oldKey), "err", err)
	}
}

// sessionCookie is the cookie of a session with meta: persistent (Max-Age
// what remains of its absolute lifetime) when remember is set.
func (m *Manager) sessionCookie(r *http.Request, id string, meta store.Meta, remember bool) *http.Cookie {
	c := m.cookie(r, id)
	if remember && !meta.Deadline.IsZero() {
		c.MaxAge = max(int(time.Until(meta.Deadline)/time.Second), 1)
	}
	return c
}
