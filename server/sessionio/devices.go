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

// RevokeDevice ends the session named id, one of the request's user's,
// in the store: its cookie names no session any more. It returns the
// session's key, to tell its sockets why and disconnect them on every node
// (the app's end notice, then Disconnect), and whether it was the
// request's own session (revoking it is a logout). It returns
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
	return key, key == ownKey, nil
}

// EndOtherSessions ends, in the store, every other live session of the
// request's user ("sign out everywhere else") and returns their keys:
// tell their sockets why and disconnect them. The request's own session
// stays: end it as a logout (Destroy). It returns ErrNotSignedIn when the
// request is not signed in.
func (m *Manager) EndOtherSessions(r *http.Request) ([]string, error) {
	key, user, err := m.requestUser(r)
	if err != nil {
		return nil, err
	}
	return m.EndUserSessions(r.Context(), user, key)
}

// EndUserSessions ends, in the store, every live session of user but the
// one with exceptKey ("" for none), and returns their keys: tell their
// sockets why and disconnect them. A session that went meanwhile is not
// an error.
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
	if errs != nil {
		return ended, fmt.Errorf("sessionio: delete: %w", errs)
	}
	return ended, nil
}

// boundUser ends, in the store, the oldest sessions of user (by Created)
// beyond UsersConfig.MaxSessions, never keepKey (the sign-in that went
// over), and returns their keys: tell their sockets and disconnect them.
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
