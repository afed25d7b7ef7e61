package sessionio

import (
	"context"
	"crypto/hmac"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"time"

	"github.com/tandem-go/tandem/server/store"
)

// Errors of the users API.
var (
	// ErrNotSignedIn is returned by the calls that need the request's
	// session to be signed in, when it has no session or one that is not.
	ErrNotSignedIn = errors.New("sessionio: not signed in")
	// ErrUnknownDevice is returned for a device id that names none of the
	// user's live sessions (another user's included).
	ErrUnknownDevice = errors.New("sessionio: no such device")
)

// Device is one live session of a user, as Devices lists it.
type Device struct {
	// ID names the session to its user: see RevokeDevice. It is neither
	// the session ID nor its key, and no use as a cookie.
	ID string
	// Current is set on the session of the request that listed it.
	Current bool
	// Created is when the session was signed in (or created); LastSeen
	// when a request, socket packet or change last touched it, as often
	// as the store is touched (a tenth of the TTL, at most a minute).
	Created, LastSeen time.Time
	// Agent is the agent name given at sign-in (see AgentName).
	Agent string
	// Tabs is the number of the session's sockets connected to any node
	// right now (see Tabs for the bound on a node that died).
	Tabs int

	key string
}

// requestUser returns the key and the user of the request's live session,
// or ErrNotSignedIn. It never creates a session.
func (m *Manager) requestUser(r *http.Request) (key, user string, err error) {
	id, ok := m.idFromRequest(r)
	if !ok {
		return "", "", ErrNotSignedIn
	}
	key = keyOf(id)
	rec, err := m.cfg.Store.Load(r.Context(), key)
	switch {
	case errors.Is(err, store.ErrNotFound), errors.Is(err, store.ErrRenewed):
		return "", "", ErrNotSignedIn
	case err != nil:
		return "", "", fmt.Errorf("sessionio: load: %w", err)
	case rec.User == "":
		return "", "", ErrNotSignedIn
	}
	return key, rec.User, nil
}

// Devices lists the live sessions of the request's user on every node:
// the request's own first, then by LastSeen, newest first. It returns
// ErrNotSignedIn when the request's session is not signed in, and never
// creates a session.
func (m *Manager) Devices(r *http.Request) (user string, devices []Device, err error) {
	key, user, err := m.requestUser(r)
	if err != nil {
		return "", nil, err
	}
	devices, err = m.UserDevices(r.Context(), user, key)
	return user, devices, err
}

// UserDevices lists the live sessions of user, the one with currentKey
// (if any) first and marked Current, then by LastSeen, newest first.
func (m *Manager) UserDevices(ctx context.Context, user, currentKey string) ([]Device, error) {
	list, err := m.cfg.Store.UserSessions(ctx, user)
	if err != nil {
		return nil, fmt.Errorf("sessionio: user sessions: %w", err)
	}
	keys := make([]string, len(list))
	for i, s := range list {
		keys[i] = s.Key
	}
	tabs, err := m.Tabs(ctx, keys...)
	if err != nil {
		m.log.Warn("sessionio: devices: tabs of other nodes not counted", "err", err)
	}
	devices := make([]Device, len(list))
	for i, s := range list {
		devices[i] = Device{
			ID:       m.deviceID(s.Key),
			Current:  s.Key == currentKey,
			Created:  s.Created,
			LastSeen: s.LastSeen,
			Agent:    s.Agent,
			Tabs:     tabs[s.Key],
			key:      s.Key,
		}
	}
	slices.SortStableFunc(devices, func(a, b Device) int {
		switch {
		case a.Current != b.Current:
			if a.Current {
				return -1
			}
			return 1
		case !a.LastSeen.Equal(b.LastSeen):
			return b.LastSeen.Compare(a.LastSeen)
		default:
			return b.Created.Compare(a.Created)
		}
	})
	return devices, nil
}

// RevokeDevice ends the session named id, one of the request's user's:
// gone from the store (its cookie names no session any more), then its
// sockets, on every node, get Config.EndEvent with EndRevoked and are
// disconnected (End). Revoking the request's own session is a logout: it
// is deleted, and RevokeDevice reports current without ending its sockets;
// the caller ends it as a logout (Destroy, to expire the cookie, then End
// with EndLogout). It returns the session's key. It returns
// ErrNotSignedIn when the request is not signed in and ErrUnknownDevice
// when id is none of its user's live sessions; neither changes anything.
func (m *Manager) RevokeDevice(r *http.Request, id string) (key string, current bool, err error) {
	ownKey, user, err := m.requestUser(r)
	if err != nil {
		return "", false, err
	}
	list, err := m.cfg.Store.UserSessions(r.Context(), user)
	if err != nil {
		return "", false, fmt.Errorf("sessionio: user sessions: %w", err)
	}
	for _, s := range list {
		if hmac.Equal([]byte(m.deviceID(s.Key)), []byte(id)) {
			key = s.Key
			break
		}
	}
	if key == "" {
		return "", false, ErrUnknownDevice
	}
	if err := m.cfg.Store.Delete(r.Context(), key); err != nil {
		return "", false, fmt.Errorf("sessionio: delete: %w", err)
	}
	m.DevicesChanged(user)
	if key == ownKey {
		return key, true, nil
	}
	return key, false, m.endLogged(key, EndRevoked)
}

// EndOtherSessions ends every other live session of the request's user
// ("sign out everywhere else"), as RevokeDevice does, and returns their
// keys. The request's own session
// stays: end it as a logout (Destroy). It returns ErrNotSignedIn when the
// request is not signed in.
func (m *Manager) EndOtherSessions(r *http.Request) ([]string, error) {
	key, user, err := m.requestUser(r)
	if err != nil {
		return nil, err
	}
	return m.EndUserSessions(r.Context(), user, key)
}

// EndUserSessions ends every live session of user but the one with
// exceptKey ("" for none), as RevokeDevice does (EndRevoked), and returns
// their keys. A session that went meanwhile is not an error. When the
// other nodes cannot be reached their sockets still close, at their next
// packet or periodic check, and the error wraps ErrNodesUnreachable.
func (m *Manager) EndUserSessions(ctx context.Context, user, exceptKey string) ([]string, error) {
	list, err := m.cfg.Store.UserSessions(ctx, user)
	if err != nil {
		return nil, fmt.Errorf("sessionio: user sessions: %w", err)
	}
	var ended []string
	var errs error
	for _, s := range list {
		if s.Key == exceptKey {
			continue
		}
		if err := m.cfg.Store.Delete(ctx, s.Key); err != nil {
			errs = errors.Join(errs, err)
			continue
		}
		ended = append(ended, s.Key)
	}
	if len(ended) > 0 {
		m.DevicesChanged(user)
	}
	for _, k := range ended {
		errs = errors.Join(errs, m.endLogged(k, EndRevoked))
	}
	if errs != nil {
		return ended, fmt.Errorf("sessionio: end: %w", errs)
	}
	return ended, nil
}

// endLogged is End for the users API: before Attach there are no sockets
// to tell.
func (m *Manager) endLogged(key string, reason EndReason) error {
	err := m.End(key, reason)
	if errors.Is(err, ErrNotAttached) {
		return nil
	}
	if err != nil {
		m.log.Warn("sessionio: end a user's session", "session", logKey(key), "reason", reason, "err", err)
	}
	return err
}

// afterSignIn runs once SignIn bound key to user: the user's oldest
// sessions beyond UsersConfig.MaxSessions end with EndRevoked, and the
// user's devices hear of the new one.
func (m *Manager) afterSignIn(ctx context.Context, user, key string) {
	ended, err := m.boundUser(ctx, user, key)
	if err != nil {
		m.log.Warn("sessionio: sign-in: bound of the user's sessions", "err", err)
	}
	for _, k := range ended {
		_ = m.endLogged(k, EndRevoked)
	}
	m.DevicesChanged(user)
}

// boundUser deletes from the store the oldest sessions of user (by
// Created) beyond UsersConfig.MaxSessions, never keepKey (the sign-in that
// went over), and returns their keys, for afterSignIn to end.
func (m *Manager) boundUser(ctx context.Context, user, keepKey string) ([]string, error) {
	max := m.cfg.Users.MaxSessions
	if max == Off {
		return nil, nil
	}
	list, err := m.cfg.Store.UserSessions(ctx, user)
	if err != nil || len(list) <= max {
		return nil, err
	}
	slices.SortFunc(list, func(a, b store.UserSession) int {
		switch {
		case a.Key == keepKey:
			return 1 // the newest sign-in stays
		case b.Key == keepKey:
			return -1
		}
		return a.Created.Compare(b.Created)
	})
	var ended []string
	var errs error
	for _, s := range list[:len(list)-max] {
		if err := m.cfg.Store.Delete(ctx, s.Key); err != nil {
			errs = errors.Join(errs, err)
			continue
		}
		ended = append(ended, s.Key)
	}
	if errs != nil {
		return ended, fmt.Errorf("sessionio: delete: %w", errs)
	}
	return ended, nil
}
