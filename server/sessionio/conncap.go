package sessionio

import (
	"errors"
	"sync"
	"sync/atomic"

	"github.com/zishang520/socket.io/servers/engine/v3"
)

// DefaultEngineConnsPerClient caps the Engine.IO connections one client
// address may have open on one node at once, whether or not they ever join a
// namespace. It matches DefaultSocketsPerClient: a connection of the
// official client holds one socket per namespace it joins, so a client
// within its socket cap stays within this one, while one that opens
// connections and never sends CONNECT (each costs the engine its buffers,
// timers and goroutines until the connect timeout) is stopped at the same
// number.
const DefaultEngineConnsPerClient = 128

// ErrTooManyClientConns refuses an Engine.IO handshake from a client
// address that already has Config.EngineConnsPerClient connections open.
var ErrTooManyClientConns = errors.New("sessionio: too many connections for this client address")

// connCaps counts the open Engine.IO connections by client address.
type connCaps struct {
	per int // ≤ 0: no cap

	mu       sync.Mutex
	byClient map[string]int
}

func newConnCaps(per int) *connCaps {
	return &connCaps{per: per, byClient: map[string]int{}}
}

// connSlot is one connection's place under the cap. It is taken at the
// handshake, before anything else is done for it, and given back exactly
// once: when the engine socket closes, or, if the engine never made one
// (it refused the handshake), when the handshake's request ends.
type connSlot struct {
	caps   *connCaps
	client string
	state  atomic.Int32 // slotPending, slotAdopted or slotFreed
}

const (
	slotPending int32 = iota
	slotAdopted
	slotFreed
)

// take reserves a slot for client, or reports that client is at its cap.
func (c *connCaps) take(client string) (*connSlot, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.per > 0 && c.byClient[client] >= c.per {
		return nil, false
	}
	c.byClient[client]++
	return &connSlot{caps: c, client: client}, true
}

// count is the number of connections counted for client.
func (c *connCaps) count(client string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.byClient[client]
}

func (s *connSlot) free() {
	if s.state.Swap(slotFreed) == slotFreed {
		return
	}
	s.caps.mu.Lock()
	decr(s.caps.byClient, s.client)
	s.caps.mu.Unlock()
}

// adopt hands the slot to the engine socket conn: it is freed when conn
// closes. The engine emits its connection during the handshake request, so
// the slot is still pending; should it come later, after abandon, the
// connection is counted again, so that no open connection goes uncounted.
func (s *connSlot) adopt(conn engine.Socket) {
	if !s.state.CompareAndSwap(slotPending, slotAdopted) {
		s.caps.mu.Lock()
		s.caps.byClient[s.client]++
		s.caps.mu.Unlock()
		s.state.Store(slotAdopted)
	}
	_ = conn.Once("close", func(...any) { s.free() })
	if conn.ReadyState() == "closed" {
		s.free() // closed before the listener was set
	}
}

// abandon frees the slot if no engine socket adopted it: the handshake
// request has ended and the engine refused it.
func (s *connSlot) abandon() {
	if s.state.CompareAndSwap(slotPending, slotFreed) {
		s.caps.mu.Lock()
		decr(s.caps.byClient, s.client)
		s.caps.mu.Unlock()
	}
}
