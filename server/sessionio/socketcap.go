package sessionio

import (
	"errors"
	"sync"
)

// Default caps on the sockets one session, and one client address, may
// have open on one node at once.
//
// 32 per session: every tab of a browser shares its session, and a tab
// holds one socket per namespace it uses; 32 is more tabs than a person
// works with, and small enough that one stolen or scripted cookie cannot
// pin thousands of sockets (each costs the server goroutines, buffers and
// a file descriptor) onto one session's room, whose every change is sent
// to each of them.
//
// 128 per client address: enough for a few users behind one NAT or proxy
// each with several tabs, while one host can hold at most an eighth of a
// common 1024 file descriptor limit. A deployment behind a large NAT
// should raise it.
const (
	DefaultSocketsPerSession = 32
	DefaultSocketsPerClient  = 128
)

// Errors of a socket refused by the socket caps; the client gets the text
// in its connect_error.
var (
	ErrTooManySessionSockets = errors.New("too many sockets for this session")
	ErrTooManyClientSockets  = errors.New("too many sockets for this client address")
)

// socketCaps counts the open sockets by session ID and by client address.
// A reservation is taken before a socket gets its session and given back
// exactly once, whichever of its ends (refusal, disconnect, connection
// close) comes first.
type socketCaps struct {
	perSession, perClient int // ≤ 0: no cap

	mu        sync.Mutex
	bySession map[string]int
	byClient  map[string]int
}

func newSocketCaps(perSession, perClient int) *socketCaps {
	return &socketCaps{perSession: perSession, perClient: perClient, bySession: map[string]int{}, byClient: map[string]int{}}
}

// clientFull reports whether client already has its cap of sockets. The
// handshake asks, so that a client at its cap makes no session.
func (c *socketCaps) clientFull(client string) bool {
	if c.perClient <= 0 {
		return false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.byClient[client] >= c.perClient
}

// reserve takes a slot for one socket of session id from client, or
// returns the cap it would exceed. release gives the slot back; it may be
// called any number of times, from any goroutine.
func (c *socketCaps) reserve(id, client string) (release func(), err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.perClient > 0 && c.byClient[client] >= c.perClient {
		return nil, ErrTooManyClientSockets
	}
	if c.perSession > 0 && c.bySession[id] >= c.perSession {
		return nil, ErrTooManySessionSockets
	}
	c.byClient[client]++
	c.bySession[id]++
	var once sync.Once
	return func() {
		once.Do(func() {
			c.mu.Lock()
			defer c.mu.Unlock()
			decr(c.byClient, client)
			decr(c.bySession, id)
		})
	}, nil
}

func decr(m map[string]int, k string) {
	if m[k] <= 1 {
		delete(m, k)
		return
	}
	m[k]--
}

// counts reports the sockets counted for session id and for client.
func (c *socketCaps) counts(id, client string) (session, perClient int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.bySession[id], c.byClient[client]
}
