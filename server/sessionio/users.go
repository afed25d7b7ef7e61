package sessionio

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/zishang520/socket.io/servers/socket/v3"
)

// Defaults of UsersConfig.
const (
	// DefaultMaxUserSessions bounds the sessions one user can have: enough
	// for every browser and device a person uses, few enough that one name
	// cannot grow the store without bound (each is one record and one index
	// entry, and listing them is one store call plus one cross-node count).
	DefaultMaxUserSessions = 100
	// DefaultDevicesEvent is the event UsersConfig.ChangedEvent defaults to.
	DefaultDevicesEvent = "devices changed"
	// DefaultDevicesEvery is the shortest time between two ChangedEvents to
	// the tabs of one user on one node.
	DefaultDevicesEvery = time.Second
)

// UsersConfig configures what a Manager does for signed-in sessions.
type UsersConfig struct {
	// MaxSessions bounds the live sessions of one user. A sign-in that goes
	// over it ends the user's oldest sessions (by creation) with
	// EndRevoked. Default DefaultMaxUserSessions; Off turns the bound off.
	MaxSessions int
	// ChangedEvent is sent, without payload, to every socket of a user
	// when the user's sessions or their tab counts changed: a sign-in, a
	// tab opened or closed, a session ended. Default DefaultDevicesEvent.
	ChangedEvent string
	// ChangedEvery coalesces ChangedEvent: each socket gets at most one per
	// ChangedEvery, and the last change is always followed by one within
	// ChangedEvery. Default DefaultDevicesEvery.
	ChangedEvery time.Duration
}

func (c *UsersConfig) fill() error {
	if c.MaxSessions == 0 {
		c.MaxSessions = DefaultMaxUserSessions
	}
	if c.ChangedEvent == "" {
		c.ChangedEvent = DefaultDevicesEvent
	}
	if c.ChangedEvery == 0 {
		c.ChangedEvery = DefaultDevicesEvery
	}
	switch {
	case c.MaxSessions < 0 && c.MaxSessions != Off:
		return errors.New("sessionio: Users.MaxSessions must be positive, or Off")
	case c.ChangedEvery < 0:
		return errors.New("sessionio: Users.ChangedEvery must be positive")
	}
	return nil
}

// Relayed between nodes (see cluster.go).
const (
	// relayTabs asks every other node how many sockets it has of some
	// sessions: a JSON list of keys, with an ack that gets a JSON object
	// key -> count. Only counts travel, never a socket's handshake (the
	// adapter's FetchSockets sends every socket's headers, cookie included).
	relayTabs = "sessionio:tabs"
	// relayDevices tells every other node that a user's devices changed:
	// the user's room (a hash of the name, never the name).
	relayDevices = "sessionio:devices"
)

// maxTabKeys bounds the keys one relayTabs request may ask about.
const maxTabKeys = 1024

// userRoom is the Socket.IO room of every socket of a user: a hash of the
// name, so that no user name travels through the adapter or reaches a log.
func userRoom(user string) socket.Room {
	sum := sha256.Sum256([]byte("sessionio user\x00" + user))
	return socket.Room("u:" + hex.EncodeToString(sum[:16]))
}

// deviceID is the name of a session shown to its user: an HMAC of its
// key with the signing key, so it reveals neither the session ID nor the
// key (which names the session in the store and the adapter), and, having
// no signature, it is no use as a cookie.
func (m *Manager) deviceID(key string) string {
	mac := hmac.New(sha256.New, m.cfg.Keys[0])
	mac.Write([]byte("sessionio device\x00" + key))
	return base64.RawURLEncoding.EncodeToString(mac.Sum(nil)[:16])
}

// localTabs counts this node's sockets of each key.
func (m *Manager) localTabs(keys []string) map[string]int {
	counts := make(map[string]int, len(keys))
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, k := range keys {
		if h := m.live[k]; h != nil && len(h.sockets) > 0 {
			counts[k] = len(h.sockets)
		}
	}
	return counts
}

// Tabs counts the sockets of each session key connected to any node right
// now: this node's at once, the others' through the adapter. A node that
// does not answer within the adapter's requests timeout (a node that is
// gone but that Redis still counts as subscribed) is not waited for any
// longer, and its sockets are not counted; a node whose process died is
// not counted at all, as Redis drops its subscriptions when its connection
// closes. With Redis unreachable only this node's sockets are counted, and
// the error wraps ErrNodesUnreachable. ctx bounds the wait too.
func (m *Manager) Tabs(ctx context.Context, keys ...string) (map[string]int, error) {
	if len(keys) > maxTabKeys {
		counts, err := m.Tabs(ctx, keys[maxTabKeys:]...)
		first, err2 := m.Tabs(ctx, keys[:maxTabKeys]...)
		for k, n := range first {
			counts[k] = n
		}
		return counts, errors.Join(err, err2)
	}
	counts := m.localTabs(keys)
	io := m.io.Load()
	if io == nil || !m.clustered.Load() || len(keys) == 0 {
		return counts, nil
	}
	ask, err := json.Marshal(keys)
	if err != nil {
		return counts, err
	}
	type answer struct {
		data []any
		err  error
	}
	done := make(chan answer, 1)
	payload, mac := m.seal(string(ask))
	err = io.Of("/", nil).ServerSideEmit(relayTabs, payload, mac, socket.Ack(func(data []any, err error) {
		done <- answer{data, err}
	}))
	if err != nil {
		return counts, fmt.Errorf("%w: %v", ErrNodesUnreachable, err)
	}
	var a answer
	select {
	case a = <-done:
	case <-ctx.Done():
		return counts, fmt.Errorf("sessionio: tabs: %w", context.Cause(ctx))
	}
	for _, d := range a.data {
		m.addTabs(counts, d)
	}
	if a.err != nil {
		// Some node did not answer in time: what the others said stands.
		m.log.Debug("sessionio: tabs: a node did not answer", "err", a.err)
	}
	return counts, nil
}

// addTabs adds one node's answer to relayTabs to counts. An answer in any
// other shape, or not sealed by a node of ours, is ignored.
func (m *Manager) addTabs(counts map[string]int, d any) {
	list, ok := d.([]any)
	if !ok {
		return
	}
	s, err := m.unseal(list)
	if err != nil {
		return
	}
	var theirs map[string]int
	if json.Unmarshal([]byte(s), &theirs) != nil {
		return
	}
	for k, n := range theirs {
		if _, asked := counts[k]; asked || n > 0 {
			counts[k] += max(n, 0)
		}
	}
}

// answerTabs answers another node's relayTabs.
func (m *Manager) answerTabs(args ...any) {
	if len(args) < 2 {
		return
	}
	ack, ok := args[len(args)-1].(socket.Ack)
	if !ok {
		return
	}
	var keys []string
	s, err := m.unseal(args[:len(args)-1])
	if err != nil || json.Unmarshal([]byte(s), &keys) != nil || len(keys) > maxTabKeys {
		keys = nil // a forged or malformed question gets no counts
	}
	b, _ := json.Marshal(m.localTabs(keys))
	payload, mac := m.seal(string(b))
	ack([]any{payload, mac}, nil)
}

// EmitUser sends an event to every socket of the user, on every node: the
// sockets of every session signed in as user. When the other nodes cannot
// be reached the sockets of this node still get it and the error wraps
// ErrNodesUnreachable. It returns ErrNotAttached before Attach.
func (m *Manager) EmitUser(user, event string, args ...any) error {
	io := m.io.Load()
	if io == nil {
		return ErrNotAttached
	}
	return m.emit(io, string(userRoom(user)), event, args...)
}

// DevicesChanged tells every socket of the user, on every node, that the
// user's sessions or their tabs changed (UsersConfig.ChangedEvent,
// coalesced). The manager calls it itself on sign-in, socket connect and
// disconnect, and ends; an app calls it when it changed something else a
// device list shows.
func (m *Manager) DevicesChanged(user string) {
	if user == "" {
		return
	}
	m.devicesChanged(userRoom(user))
}

func (m *Manager) devicesChanged(room socket.Room) {
	io := m.io.Load()
	if io == nil {
		return
	}
	m.users.trigger(room, m.cfg.Users.ChangedEvery, func() {
		_ = io.Local().To(room).Emit(m.cfg.Users.ChangedEvent)
	})
	if m.clustered.Load() {
		payload, mac := m.seal(string(room))
		if err := io.Of("/", nil).ServerSideEmit(relayDevices, payload, mac); err != nil {
			m.log.Debug("sessionio: devices changed: other nodes not reached", "err", err)
		}
	}
}

// listenUsers handles what other nodes relay to this one about users.
func (m *Manager) listenUsers(io *socket.Server) {
	nsp := io.Of("/", nil)
	_ = nsp.On(relayTabs, m.answerTabs)
	_ = nsp.On(relayDevices, func(args ...any) {
		if room, err := m.unseal(args); err == nil && len(room) < 64 {
			r := socket.Room(room)
			m.users.trigger(r, m.cfg.Users.ChangedEvery, func() {
				_ = io.Local().To(r).Emit(m.cfg.Users.ChangedEvent)
			})
		}
	})
}

// joinUser puts a socket of a signed-in session into its user's room and
// tells the user's devices a tab opened.
func (m *Manager) joinUser(s *socket.Socket, user string) {
	if user == "" {
		return
	}
	room := userRoom(user)
	m.users.sockets.Store(s, room)
	s.Join(room)
	m.devicesChanged(room)
}

// leftUser tells a user's devices that one of their tabs closed. It may be
// called more than once for one socket.
func (m *Manager) leftUser(s *socket.Socket) {
	if room, ok := m.users.sockets.LoadAndDelete(s); ok {
		m.devicesChanged(room.(socket.Room))
	}
}

// resyncUsers sends, coalesced, the devices-changed event to every user
// room with sockets on this node, without relaying it: after this node's
// adapter subscription came back, the device lists of its tabs may have
// missed changes made elsewhere meanwhile, and reading them again makes
// them converge. The resync of cluster convergence calls it.
func (m *Manager) resyncUsers() {
	io := m.io.Load()
	if io == nil {
		return
	}
	rooms := map[socket.Room]struct{}{}
	m.users.sockets.Range(func(_, room any) bool {
		rooms[room.(socket.Room)] = struct{}{}
		return true
	})
	for r := range rooms {
		m.users.trigger(r, m.cfg.Users.ChangedEvery, func() {
			_ = io.Local().To(r).Emit(m.cfg.Users.ChangedEvent)
		})
	}
}

// userHub coalesces the ChangedEvents of each user room on this node. Its
// zero value is ready; afterFunc is time.AfterFunc unless a test sets it.
type userHub struct {
	sockets sync.Map // *socket.Socket -> its user's socket.Room

	mu        sync.Mutex
	rooms     map[socket.Room]*coalesced
	afterFunc func(time.Duration, func()) *time.Timer
}

// coalesced is a room that was sent an event less than `every` ago.
type coalesced struct {
	pending bool // a change came in since: send once the quiet time is over
}

// trigger runs send at once when room had none in the last `every`, and
// otherwise once `every` after the last one: at most one send per `every`,
// and never a change left without a send after it.
func (u *userHub) trigger(room socket.Room, every time.Duration, send func()) {
	u.mu.Lock()
	if c := u.rooms[room]; c != nil {
		c.pending = true
		u.mu.Unlock()
		return
	}
	if u.rooms == nil {
		u.rooms = map[socket.Room]*coalesced{}
	}
	c := &coalesced{}
	u.rooms[room] = c
	u.mu.Unlock()
	send()
	u.quiet(room, c, every, send)
}

// quiet waits `every`, then sends what came in meanwhile, or forgets the
// room.
func (u *userHub) quiet(room socket.Room, c *coalesced, every time.Duration, send func()) {
	after := u.afterFunc
	if after == nil {
		after = time.AfterFunc
	}
	after(every, func() {
		u.mu.Lock()
		if !c.pending {
			delete(u.rooms, room)
			u.mu.Unlock()
			return
		}
		c.pending = false
		u.mu.Unlock()
		send()
		u.quiet(room, c, every, send)
	})
}
