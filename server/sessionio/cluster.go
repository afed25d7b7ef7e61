package sessionio

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"sync"
	"time"

	"github.com/zishang520/socket.io/servers/socket/v3"
)

// ErrNodesUnreachable is wrapped by the error of an Emit or Disconnect that
// was done on this node but could not be sent to the other nodes (the
// adapter's Redis is down). Once a relay can be published again, the
// other nodes are asked to resync the session (see catchup.go); until
// then its sockets on other nodes learn of a change at their next packet,
// and of a session's end within Config.CheckInterval at the latest.
var ErrNodesUnreachable = errors.New("sessionio: other nodes not reached")

// Events relayed between nodes through the adapter (Socket.IO's
// server-side emit). Both travel on the one request channel of the
// adapter, so every node handles them in the order they were sent: a
// session's last event reaches its sockets before they are disconnected.
// (The Redis adapter's own room broadcasts and DisconnectSockets travel on
// two different channels, read by two goroutines, so a remote node may
// disconnect before it delivers; and its DisconnectSockets does nothing on
// any node, this one included, while Redis is unreachable.)
const (
	relayEmit       = "emit"       // key, version, event, args
	relayDisconnect = "disconnect" // key
	relayClose      = "close"      // key: close the connections (a renewed session)
	relayResync     = "resync"     // keys, or all: resync them (see catchup.go)
)

// Order across nodes. Two nodes commit changes of one session one after
// the other, but their notifications can cross on the way to a third node
// (and the committing node delivers its own at once). An event emitted from
// a committed callback therefore carries the version of that commit, and
// every node delivers it only to the sockets that have not had a newer
// version of the same event, nor connected after a newer commit (a
// socket's floors start at the version its session had when it connected).
// A socket thus never sees an older state after a newer one; it may skip
// states, never go back. Floors are kept per event name: a versioned event
// is one whole piece of a session's state (the count, the signed-in user),
// never a delta, and two events of different names are two pieces.
//
// Convergence. Redis pub/sub keeps nothing: what other nodes relayed while
// this node's subscription was down (a Redis restart, a killed connection)
// is lost. Resync makes up for it: it reads each session with sockets on
// this node once and sends its sockets the state (OnResync) of every event
// they have not had at that version. The adapter's owner calls it when the
// subscription is back; the periodic check does the same (on a clustered
// node), so a relay message lost any other way is made up for within
// Config.CheckInterval. A relay that this node failed to PUBLISH is made up
// sooner: once a PUBLISH works again, the other nodes are asked to resync
// its session (catchup.go).

// floors is the newest version each socket of a key was sent (per event)
// or connected at, on this node. Deliveries of one key wait for each other
// (they must, to keep each socket's floors exact); deliveries of different
// keys do not.
type floors struct {
	mu sync.Mutex
	m  map[string]*keyFloors // guarded by mu
}

type keyFloors struct {
	users int // adds not yet removed, plus deliveries running; guarded by floors.mu

	mu sync.Mutex
	m  map[socket.SocketId]*socketFloors
}

// socketFloors are one socket's floors: base for every event it was not
// sent yet, ev for those it was.
type socketFloors struct {
	base uint64
	ev   map[string]uint64
}

func (s *socketFloors) of(event string) uint64 {
	if v, ok := s.ev[event]; ok {
		return v
	}
	return s.base
}

func (s *socketFloors) raise(event string, version uint64) {
	if version <= s.of(event) {
		return
	}
	if s.ev == nil {
		s.ev = map[string]uint64{}
	}
	s.ev[event] = version
}

// get returns key's floors, counting the caller among its users.
func (f *floors) get(key string) *keyFloors {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.m == nil {
		f.m = map[string]*keyFloors{}
	}
	k := f.m[key]
	if k == nil {
		k = &keyFloors{m: map[socket.SocketId]*socketFloors{}}
		f.m[key] = k
	}
	k.users++
	return k
}

// put ends a use of key's floors; the last one forgets them.
func (f *floors) put(key string, k *keyFloors) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if k.users--; k.users == 0 && f.m[key] == k {
		delete(f.m, key)
	}
}

func (f *floors) add(key string, id socket.SocketId, version uint64) {
	k := f.get(key) // put by remove
	k.mu.Lock()
	k.m[id] = &socketFloors{base: version}
	k.mu.Unlock()
}

func (f *floors) remove(key string, id socket.SocketId) {
	f.mu.Lock()
	k := f.m[key]
	f.mu.Unlock()
	if k == nil {
		return
	}
	k.mu.Lock()
	_, ok := k.m[id]
	delete(k.m, id)
	k.mu.Unlock()
	if ok {
		f.put(key, k)
	}
}

// deliver emits event to this node's sockets of key; with a version, only
// to those whose floor of event is not above it, and raises their floors.
// It returns how many sockets of the room it skipped.
func (f *floors) deliver(io *socket.Server, key string, version uint64, event string, args ...any) (int, error) {
	if version == 0 {
		return 0, io.Local().To(socket.Room(key)).Emit(event, args...)
	}
	k := f.get(key)
	defer f.put(key, k)
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.deliver(io, key, version, false, event, args...)
}

// deliver is floors.deliver with k locked. With strict, a socket whose
// floor is the version already is skipped too: it has that state.
func (k *keyFloors) deliver(io *socket.Server, key string, version uint64, strict bool, event string, args ...any) (int, error) {
	var skip []socket.Room
	for id, s := range k.m {
		if f := s.of(event); f > version || strict && f == version {
			skip = append(skip, socket.Room(id)) // each socket is in a room of its own ID
		}
	}
	if strict && len(skip) == len(k.m) {
		return len(skip), nil
	}
	err := io.Local().To(socket.Room(key)).Except(skip...).Emit(event, args...)
	for _, s := range k.m {
		s.raise(event, version)
	}
	return len(skip), err
}

// Event is one event and its arguments, as OnResync's functions return
// them.
type Event struct {
	Name string
	Args []any
}

// OnResync adds fn to the functions that describe a session's state as
// events: fn gets a session's key and its values at one version, and
// returns the events that carry that state (each a whole piece of it,
// named as the events that committed callbacks emit with Emit). A resync
// (see Resync) sends each of them to the session's sockets on this node
// that have not had that event at that version or a newer one. fn is
// called from the resync's goroutine, must not block, and must not change
// v. Add every function before Attach.
func (m *Manager) OnResync(fn func(key string, v Values) []Event) {
	m.resyncMu.Lock()
	defer m.resyncMu.Unlock()
	m.resyncFns = append(m.resyncFns, fn)
}

// Resync makes every socket of this node converge to its session's
// current state after relayed events may have been lost: it reads each
// session with sockets on this node once (one store read per session,
// whatever its number of sockets), sends them the state they lack (see
// OnResync), and closes the connections of sessions that are gone, as the
// periodic check does; then it sends every signed-in tab of this node
// Config.Users.ChangedEvent, so that device lists read themselves again. Call it when this node's subscription to the other
// nodes' relay is back after a break, once the subscription is in place:
// a change committed before it is then in the store, one committed after
// it reaches this node. It returns at once; the reads run in a goroutine
// of their own, and calls made meanwhile make one more pass after it.
func (m *Manager) Resync() {
	if m.resyncQueued.Swap(true) {
		return // a pass that has not read anything yet is queued
	}
	go func() {
		m.resyncRun.Lock()
		defer m.resyncRun.Unlock()
		m.resyncQueued.Store(false)
		m.checkAll()
		m.resyncUsers() // the device lists: their tabs read them again
	}()
}

// resync sends the sockets of h on this node that are behind the version
// h holds the state of h at that version.
func (m *Manager) resync(io *socket.Server, h *Session) {
	key, v, version := h.snapshot()
	if version == 0 {
		return
	}
	m.resyncMu.Lock()
	fns := m.resyncFns
	m.resyncMu.Unlock()
	var events []Event
	for _, fn := range fns {
		events = append(events, fn(key, v)...)
	}
	if len(events) == 0 {
		return
	}
	k := m.floors.get(key)
	defer m.floors.put(key, k)
	k.mu.Lock()
	defer k.mu.Unlock()
	for _, e := range events {
		skipped, err := k.deliver(io, key, version, true, e.Name, e.Args...)
		if err != nil {
			m.log.Warn("sessionio: resync emit failed", "session", logKey(key), "event", e.Name, "err", err)
			continue
		}
		m.delivered(io, key, e.Name, skipped)
	}
}

// committing notes, while a committed callback runs, the version it
// reports, so that Emit can stamp its events with it.
type committing struct{ m sync.Map } // key -> uint64

func (c *committing) version(key string) uint64 {
	v, _ := c.m.Load(key)
	n, _ := v.(uint64)
	return n
}

// clustered reports whether io's adapter reaches other nodes: anything
// but Socket.IO's own in-memory adapters. An adapter constructor that
// wraps another one (an Unwrap() socket.AdapterConstructor method, as
// server/transport's pre-framed broadcast has) is judged by the one it
// wraps.
func clustered(io *socket.Server) bool {
	a := io.Adapter()
	for {
		w, ok := a.(interface {
			Unwrap() socket.AdapterConstructor
		})
		if !ok {
			break
		}
		a = w.Unwrap()
	}
	switch a.(type) {
	case nil, *socket.AdapterBuilder, *socket.SessionAwareAdapterBuilder:
		return false
	}
	return true
}

// Relay messages are authenticated. Anyone who may PUBLISH on the Redis
// could otherwise deliver any event to any session's sockets, disconnect
// them, or silence a session's later events with one huge version. Each
// message is a JSON payload and an HMAC-SHA256 of it, with a key derived
// from the first signing key (every signing key's derived key verifies, so
// a key rotation rolls through the nodes); a message whose MAC does not
// verify, older or newer than relayMaxSkew, or whose version is beyond
// maxVersion is dropped. A message can still be replayed within
// relayMaxSkew by someone who can SUBSCRIBE: floors make a replayed emit
// deliver nothing older, a replayed disconnect ends sockets of a session
// that was already logged out. The adapter's own requests (room
// broadcasts, remote join, leave and disconnect) are not ours to sign:
// the Redis ACL is the boundary (README, "Running several nodes").
const (
	relayEvent   = "sessionio:relay"
	relayMaxSkew = time.Minute
	// maxVersion is the highest version a relay message may carry: what
	// JSON numbers hold exactly. A store's versions grow by one per
	// change.
	maxVersion = 1 << 53
)

type relayMsg struct {
	Op      string `json:"op"` // relayEmit, relayDisconnect, relayClose or relayResync
	Key     string `json:"k"`
	Version uint64 `json:"v,omitempty"`
	Event   string `json:"e,omitempty"`
	Args    []any  `json:"a,omitempty"`
	Sent    int64  `json:"t"` // Unix milliseconds

	Keys []string `json:"ks,omitempty"`  // relayResync: the sessions to resync
	All  bool     `json:"all,omitempty"` // relayResync: every session
}

// relayKeys are the MAC keys of the relay, derived from the signing keys:
// the first signs.
func relayKeys(keys [][]byte) [][]byte {
	out := make([][]byte, len(keys))
	for i, k := range keys {
		h := hmac.New(sha256.New, k)
		h.Write([]byte("tandem sessionio relay v1"))
		out[i] = h.Sum(nil)
	}
	return out
}

func relayMAC(key []byte, payload string) string {
	h := hmac.New(sha256.New, key)
	h.Write([]byte(payload))
	return hex.EncodeToString(h.Sum(nil))
}

// relay sends msg about a session to the other nodes, signed. When it
// cannot be published, the other nodes are asked to resync the session
// once publishing works again (see catchup.go).
func (m *Manager) relay(io *socket.Server, msg relayMsg) error {
	if err := m.publish(io, msg); err != nil {
		m.relayFailed(msg.Key)
		return err
	}
	m.relayed()
	return nil
}

// publish sends msg to the other nodes, signed.
func (m *Manager) publish(io *socket.Server, msg relayMsg) error {
	msg.Sent = time.Now().UnixMilli()
	b, err := json.Marshal(msg)
	if err != nil {
		return err
	}
	payload := string(b)
	if err := io.Of("/", nil).ServerSideEmit(relayEvent, payload, relayMAC(m.relayKeys[0], payload)); err != nil {
		m.report.RelayFailed()
		return fmt.Errorf("%w: %v", ErrNodesUnreachable, err)
	}
	return nil
}

// openRelay verifies a relayed message and decodes it.
func (m *Manager) openRelay(args []any) (relayMsg, error) {
	var msg relayMsg
	if len(args) != 2 {
		return msg, fmt.Errorf("%d arguments", len(args))
	}
	payload, ok1 := args[0].(string)
	mac, ok2 := args[1].(string)
	if !ok1 || !ok2 {
		return msg, errors.New("not two strings")
	}
	verified := false
	for _, k := range m.relayKeys {
		if hmac.Equal([]byte(relayMAC(k, payload)), []byte(mac)) {
			verified = true
			break
		}
	}
	if !verified {
		return msg, errors.New("bad MAC")
	}
	if err := json.Unmarshal([]byte(payload), &msg); err != nil {
		return msg, err
	}
	if skew := time.Since(time.UnixMilli(msg.Sent)); skew > relayMaxSkew || skew < -relayMaxSkew {
		return msg, fmt.Errorf("sent %v ago", skew)
	}
	if msg.Version > maxVersion || msg.Key == "" && msg.Op != relayResync {
		return msg, errors.New("version out of range or no key")
	}
	return msg, nil
}

// RelayDropped is the number of relay messages from other nodes that this
// node dropped because they failed verification (see relayEvent): forged,
// altered, stale, or signed with a key this node does not have.
func (m *Manager) RelayDropped() int64 { return m.relayDropped.Load() }

// listenRelay handles the events other nodes relay to this one.
func (m *Manager) listenRelay(io *socket.Server) {
	nsp := io.Of("/", nil)
	_ = nsp.On(relayEvent, func(args ...any) {
		msg, err := m.openRelay(args)
		if err != nil {
			m.relayDropped.Add(1)
			m.log.Debug("sessionio: relay message dropped", "err", err)
			return
		}
		switch msg.Op {
		case relayEmit:
			if msg.Event != "" {
				skipped, _ := m.floors.deliver(io, msg.Key, msg.Version, msg.Event, msg.Args...)
				m.delivered(io, msg.Key, msg.Event, skipped)
			}
		case relayDisconnect:
			io.In(socket.Room(msg.Key)).Local().DisconnectSockets(false)
		case relayClose:
			for _, s := range m.Sockets(msg.Key) {
				closeConn(s.Conn())
			}
		case relayResync:
			if msg.All {
				m.Resync()
			} else {
				m.resyncKeys(io, msg.Keys)
			}
		}
	})
}

// emit sends event to the room key on this node, then relays it to the
// others.
func (m *Manager) emit(io *socket.Server, key, event string, args ...any) error {
	version := m.committing.version(key)
	skipped, err := m.floors.deliver(io, key, version, event, args...)
	if err != nil {
		return err
	}
	m.delivered(io, key, event, skipped)
	if !m.clustered.Load() {
		return nil
	}
	return m.relay(io, relayMsg{Op: relayEmit, Key: key, Version: version, Event: event, Args: args})
}

// disconnect disconnects the sockets of the room key on this node, then
// relays the disconnect to the others.
func (m *Manager) disconnect(io *socket.Server, key string) error {
	io.In(socket.Room(key)).Local().DisconnectSockets(false)
	if !m.clustered.Load() {
		return nil
	}
	return m.relay(io, relayMsg{Op: relayDisconnect, Key: key})
}

// relayClose asks the other nodes to close the connections of key's
// sockets (Renew, SignIn).
func (m *Manager) relayClose(io *socket.Server, key string) error {
	if !m.clustered.Load() {
		return nil
	}
	return m.relay(io, relayMsg{Op: relayClose, Key: key})
}

// ErrAdapterChanged is returned by Emit, Disconnect and End, and a socket
// handshake is refused with it (500), when the Socket.IO server's adapter
// was replaced after Attach: the manager's namespace still uses the adapter
// it was attached with, so emits and disconnects would silently stay on this
// node. Set the adapter (ServerOptions.SetAdapter, or io.SetAdapter) before
// Attach.
var ErrAdapterChanged = errors.New("sessionio: the Socket.IO adapter was replaced after Attach; set it before Attach, or emits and disconnects stay on this node")

// sameAdapter reports whether a and b are the same adapter constructor.
func sameAdapter(a, b socket.AdapterConstructor) bool {
	va, vb := reflect.ValueOf(a), reflect.ValueOf(b)
	if !va.IsValid() || !vb.IsValid() {
		return va.IsValid() == vb.IsValid()
	}
	if va.Type() != vb.Type() {
		return false
	}
	if va.Kind() == reflect.Pointer {
		return va.Pointer() == vb.Pointer()
	}
	return !va.Comparable() || va.Equal(vb)
}

// checkAdapter returns ErrAdapterChanged (logged once) when io's adapter is
// not the one it had at Attach.
func (m *Manager) checkAdapter(io *socket.Server) error {
	if sameAdapter(io.Adapter(), m.adapter) {
		return nil
	}
	if m.adapterWarned.CompareAndSwap(false, true) {
		m.log.Error(ErrAdapterChanged.Error())
	}
	return ErrAdapterChanged
}

// sealed is the signed envelope of the users relays (relayTabs, its
// answers, relayDevices): a body and when it was sent, as JSON, with the
// relay MAC beside it, so that only a node holding the signing keys can
// ask for, answer or announce anything.
type sealed struct {
	Body string `json:"b"`
	Sent int64  `json:"t"` // Unix milliseconds
}

// seal returns the payload and MAC that carry body.
func (m *Manager) seal(body string) (string, string) {
	b, _ := json.Marshal(sealed{Body: body, Sent: time.Now().UnixMilli()})
	return string(b), relayMAC(m.relayKeys[0], string(b))
}

// unseal returns the body of a sealed payload and MAC, or an error (and
// counts the message in RelayDropped) when it is not one of ours, was
// altered, or is stale.
func (m *Manager) unseal(args []any) (string, error) {
	body, err := m.openSealed(args)
	if err != nil {
		m.relayDropped.Add(1)
		m.log.Debug("sessionio: relay message dropped", "err", err)
	}
	return body, err
}

func (m *Manager) openSealed(args []any) (string, error) {
	if len(args) < 2 {
		return "", fmt.Errorf("%d arguments", len(args))
	}
	payload, ok1 := args[0].(string)
	mac, ok2 := args[1].(string)
	if !ok1 || !ok2 {
		return "", errors.New("not two strings")
	}
	verified := false
	for _, k := range m.relayKeys {
		if hmac.Equal([]byte(relayMAC(k, payload)), []byte(mac)) {
			verified = true
			break
		}
	}
	if !verified {
		return "", errors.New("bad MAC")
	}
	var s sealed
	if err := json.Unmarshal([]byte(payload), &s); err != nil {
		return "", err
	}
	if skew := time.Since(time.UnixMilli(s.Sent)); skew > relayMaxSkew || skew < -relayMaxSkew {
		return "", fmt.Errorf("sent %v ago", skew)
	}
	return s.Body, nil
}
