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

// Update changes the request's session atomically: apply gets the current
// values and changes them in place; the store commits the result only if no
// other change of the session came in between (otherwise apply runs again
// on the newer values, so it must not have side effects). When the request
// has no live session, a new one is created already holding the change, and
// its cookie is set on w. A request whose cookie names a session renewed a
// moment ago (Config.RenewGrace) gets ErrSessionRenewed: nothing is created
// and no cookie set, as its client already holds the new cookie.
//
// Every call of one request sees what the earlier ones did: a second Update
// changes the session the first created, an Update after Renew or SignIn
// changes the renewed session; one request sets one session cookie.
//
// The store calls run under r's context: a request that ends (the client
// went away) or passes its deadline stops waiting for the store, and the
// change is then either committed or not, as the store decided. Give the
// request a deadline (Echo's timeout middleware, http.TimeoutHandler) to
// bound them; Config.StoreTimeout bounds only the calls made outside a
// request (socket packets, periodic checks).
//
// committed, if not nil, runs after the commit with the session as
// committed (its own copy of the values), before any later change of the
// same session on this node commits: notifications sent from it reach
// sockets in commit order.
//
// Update returns the session as committed. A *sessions.Session obtained
// earlier in the same request keeps its old values.
func (m *Manager) Update(w http.ResponseWriter, r *http.Request, apply func(Values) error, committed func(*sessions.Session)) (*sessions.Session, error) {
	st, unlock := m.lockState(r)
	defer unlock()
	ctx := r.Context()
	s := m.gorillaSession(r, m.cfg.Cookie.Name)
	if st.id != "" {
		s.ID, s.IsNew = st.id, false
		var then func(Values)
		if committed != nil {
			then = func(v Values) {
				c := *s
				c.Values = v
				committed(&c)
			}
		}
		v, err := m.update(ctx, keyOf(st.id), apply, then)
		if err == nil {
			s.Values = v
			return s, nil
		}
		if !errors.Is(err, ErrSessionGone) {
			return nil, err
		}
	}
	id, v, err := m.create(ctx, r, apply)
	if err != nil {
		return nil, err
	}
	st.id = id
	m.writeCookie(w, m.cookie(r, id))
	s.ID, s.IsNew, s.Values = id, false, v
	if committed != nil {
		c := *s
		c.Values = cloneValues(v)
		committed(&c)
	}
	return s, nil
}

// update is the one atomic read-modify-write path, for HTTP and sockets.
func (m *Manager) update(ctx context.Context, key string, apply func(Values) error, committed func(Values)) (Values, error) {
	unlock, err := m.lockKey(ctx, key)
	if err != nil {
		return nil, err
	}
	defer unlock()
	var out Values
	var unreadable, own error
	rec, err := m.cfg.Store.Update(ctx, key, m.cfg.TTL, func(data []byte) ([]byte, error) {
		unreadable, own = nil, nil
		v, err := decodeValues(data)
		if err != nil {
			unreadable = err
			return nil, err
		}
		if err := apply(v); err != nil {
			own = err
			return nil, err
		}
		out = v
		data, err = encodeValues(v)
		own = err
		return data, err
	})
	switch {
	case err == nil:
	case unreadable != nil:
		return nil, m.dropUnreadable(ctx, key, unreadable)
	case own != nil:
		return nil, own // apply's error as it is, or an encoding error
	case errors.Is(err, store.ErrNotFound):
		m.gone(key)
		return nil, ErrSessionGone
	case errors.Is(err, store.ErrRenewed):
		return nil, ErrSessionRenewed
	default:
		return nil, fmt.Errorf("sessionio: update: %w", err)
	}
	m.refresh(key, out, rec)
	if committed != nil {
		m.committing.m.Store(key, rec.Version)
		defer m.committing.m.Delete(key)
		committed(cloneValues(out))
	}
	return out, nil
}

// create makes a new session holding apply's values, within the creation
// bound of r's client address.
func (m *Manager) create(ctx context.Context, r *http.Request, apply func(Values) error) (string, Values, error) {
	return m.createAs(ctx, r, apply, m.newMeta("", ""))
}

// createAs is create with the record's metadata.
func (m *Manager) createAs(ctx context.Context, r *http.Request, apply func(Values) error, meta store.Meta) (string, Values, error) {
	if !m.limiter.allow(m.cfg.ClientIP(r), time.Now()) {
		m.report.Refused(CauseSessionRate)
		return "", nil, &RetryAfterError{After: m.retryAfter()}
	}
	v := Values{}
	if apply != nil {
		if err := apply(v); err != nil {
			return "", nil, err
		}
	}
	data, err := encodeValues(v)
	if err != nil {
		return "", nil, err
	}
	id, key, err := m.createRecord(ctx, data, meta)
	if err != nil {
		return "", nil, err
	}
	m.report.SessionCreated()
	if m.cfg.OnCreate != nil {
		m.cfg.OnCreate(key)
	}
	return id, v, nil
}

// load reads a session. A session that is missing or whose data cannot be
// read is ErrSessionGone; an unreadable record is deleted, so that every
// path treats it the same way.
func (m *Manager) load(ctx context.Context, key string) (Values, store.Record, error) {
	rec, err := m.cfg.Store.Load(ctx, key)
	if err != nil {
		if errors.Is(err, store.ErrNotFound) {
			m.gone(key)
			return nil, rec, ErrSessionGone
		}
		if errors.Is(err, store.ErrRenewed) {
			return nil, rec, ErrSessionRenewed
		}
		return nil, rec, fmt.Errorf("sessionio: load: %w", err)
	}
	v, err := decodeValues(rec.Data)
	if err != nil {
		return nil, rec, m.dropUnreadable(ctx, key, err)
	}
	return v, rec, nil
}

// dropUnreadable deletes a record whose data cannot be decoded (written by
// an incompatible version, or with a type not registered with gob) and
// returns ErrSessionGone: such a session is no session.
func (m *Manager) dropUnreadable(ctx context.Context, key string, cause error) error {
	m.log.Warn("sessionio: unreadable session data; the session is treated as gone", "session", logKey(key), "err", cause)
	if err := m.cfg.Store.Delete(ctx, key); err != nil {
		m.log.Warn("sessionio: delete of an unreadable session failed", "session", logKey(key), "err", err)
	}
	m.gone(key)
	return ErrSessionGone
}

// gone returns ErrSessionGone for err when err is the store's not-found,
// and err otherwise.
func gone(err error) error {
	if errors.Is(err, store.ErrNotFound) {
		return ErrSessionGone
	}
	return err
}

// touchIfDue extends a session's life when a tenth of its TTL (at most a
// minute) has passed since it was last written or touched, so activity keeps
// a session alive without a store write on every request (and the session's
// LastSeen is that coarse). It never extends past the absolute lifetime:
// the store caps it.
func (m *Manager) touchIfDue(ctx context.Context, key string, rec store.Record) {
	every := min(m.cfg.TTL/10, time.Minute)
	switch {
	case !rec.LastSeen.IsZero() && time.Since(rec.LastSeen) < every:
		return
	case rec.LastSeen.IsZero() && time.Until(rec.Expires) > m.cfg.TTL-every:
		return // a record of a store that keeps no LastSeen
	case !rec.Deadline.IsZero() && !rec.Expires.Before(rec.Deadline):
		return // already lives to its absolute end
	}
	if err := m.cfg.Store.Touch(ctx, key, m.cfg.TTL); err != nil && !errors.Is(err, store.ErrNotFound) {
		m.log.Warn("sessionio: touch failed", "session", logKey(key), "err", err)
	}
}
