package sessionio

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/zishang520/socket.io/servers/socket/v3"
)

// Catching up on relays that failed. A relay message that could not be
// published (Redis unreachable, a Cluster master failing over) never
// reaches the other nodes, and a node whose subscription did not break
// has no reason to resync by itself: its sockets would miss the change
// until the periodic check (Config.CheckInterval). So this node keeps the
// keys whose relays failed and, once a PUBLISH works again, asks the other
// nodes to resync those sessions (relayResync): each reads them from the
// store once and sends its sockets the state they lack, floors keeping out
// anything older than what they have. It tries after catchUpFirst, then
// backs off to catchUpMax while publishing still fails, and at once when
// another relay was published. Past maxUnrelayed keys it asks for a
// resync of every session instead.
const (
	maxUnrelayed   = 10_000
	catchUpFirst   = 250 * time.Millisecond
	catchUpMax     = 5 * time.Second
	resyncKeysEach = 500 // keys per relayResync message
)

type unrelayed struct {
	pending atomic.Bool // keys or all is set: read without mu by relayed

	mu      sync.Mutex
	keys    map[string]struct{} // guarded by mu
	all     bool                // more than maxUnrelayed keys; guarded by mu
	timer   *time.Timer         // the next try; guarded by mu
	delay   time.Duration       // before the next try after a failed one; guarded by mu
	running bool                // a try is publishing; guarded by mu
}

// addLocked notes keys (or all of them) as not relayed.
func (u *unrelayed) addLocked(all bool, keys ...string) {
	if all {
		u.all, u.keys = true, nil
	}
	if !u.all {
		if u.keys == nil {
			u.keys = map[string]struct{}{}
		}
		for _, k := range keys {
			u.keys[k] = struct{}{}
		}
		if len(u.keys) > maxUnrelayed {
			u.all, u.keys = true, nil
		}
	}
	u.pending.Store(u.all || len(u.keys) > 0)
}

// relayFailed notes that key's relay could not be published and
// schedules a try.
func (m *Manager) relayFailed(key string) {
	u := &m.unrelayed
	u.mu.Lock()
	defer u.mu.Unlock()
	u.addLocked(false, key)
	if u.delay == 0 {
		u.delay = catchUpFirst
	}
	m.scheduleCatchUpLocked(u.delay)
}

// relayed notes that a relay was published: a pending catch-up is tried
// at once. It runs after every relay, so it locks only when one is
// pending.
func (m *Manager) relayed() {
	u := &m.unrelayed
	if !u.pending.Load() {
		return
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.pending.Load() {
		m.scheduleCatchUpLocked(0)
	}
}

// scheduleCatchUpLocked (re)arms the try to run after d, unless one is
// publishing now (it schedules the next itself).
func (m *Manager) scheduleCatchUpLocked(d time.Duration) {
	u := &m.unrelayed
	if u.running {
		return
	}
	if u.timer != nil {
		u.timer.Stop()
	}
	u.timer = time.AfterFunc(d, m.catchUp)
}

// catchUp publishes the resync requests of the keys whose relays failed;
// what it cannot publish stays for the next try.
func (m *Manager) catchUp() {
	u := &m.unrelayed
	u.mu.Lock()
	if u.running || !u.pending.Load() {
		u.mu.Unlock()
		return
	}
	select {
	case <-m.stop:
		u.mu.Unlock()
		return
	default:
	}
	keys := make([]string, 0, len(u.keys))
	for k := range u.keys {
		keys = append(keys, k)
	}
	all := u.all
	u.keys, u.all, u.running = nil, false, true
	u.pending.Store(false)
	u.mu.Unlock()

	var err error
	sent := 0 // keys[:sent] were published
	if io := m.io.Load(); io == nil {
		err = ErrNotAttached
	} else if all {
		err = m.publish(io, relayMsg{Op: relayResync, All: true})
	} else {
		for sent < len(keys) && err == nil {
			batch := keys[sent:min(sent+resyncKeysEach, len(keys))]
			if err = m.publish(io, relayMsg{Op: relayResync, Keys: batch}); err == nil {
				sent += len(batch)
			}
		}
	}

	u.mu.Lock()
	defer u.mu.Unlock()
	u.running = false
	if err == nil {
		u.delay = 0
		if u.pending.Load() { // failed meanwhile
			m.scheduleCatchUpLocked(catchUpFirst)
		}
		return
	}
	// Put back what was not sent, and try again later.
	u.addLocked(all, keys[sent:]...)
	u.delay = min(max(2*u.delay, catchUpFirst), catchUpMax)
	m.scheduleCatchUpLocked(u.delay)
}

// stopCatchUp stops the pending try (Shutdown).
func (m *Manager) stopCatchUp() {
	u := &m.unrelayed
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.timer != nil {
		u.timer.Stop()
	}
}

// resyncKeys reads each of keys with sockets on this node from the store
// once and sends its sockets what they lack, or closes them when the
// session is gone (as the periodic check does), in a goroutine of its own.
func (m *Manager) resyncKeys(io *socket.Server, keys []string) {
	go func() {
		for _, key := range keys {
			m.mu.Lock()
			h := m.live[key]
			m.mu.Unlock()
			if h == nil {
				continue
			}
			select {
			case <-m.stop:
				return
			default:
			}
			m.checkOne(io, true, h)
		}
	}()
}

// checkOne loads h's session (decoding only a new version): a session gone
// or renewed is lost (sessionLost); with resync, its sockets get the state
// they lack.
func (m *Manager) checkOne(io *socket.Server, resync bool, h *Session) {
	key := h.Key()
	ctx, cancel := context.WithTimeout(context.Background(), m.cfg.StoreTimeout)
	_, err := h.fetch(ctx, key)
	cancel()
	switch {
	case errors.Is(err, ErrSessionGone), errors.Is(err, ErrSessionRenewed):
		m.sessionLost(h, err)
	case err != nil:
		m.log.Warn("sessionio: session check failed", "session", logKey(key), "err", err)
	case resync:
		m.resync(io, h)
	}
}
