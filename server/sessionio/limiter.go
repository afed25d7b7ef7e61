package sessionio

import (
	"container/list"
	"math"
	"net"
	"net/http"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// maxLimiterClients bounds the per-address table of the creation limiter.
const maxLimiterClients = 100_000

// createLimiter bounds how many sessions the server creates: a token bucket
// per client address (burst, then rate per second) and one for all
// addresses together.
//
// The per-address table is a fixed-size LRU: when it is full, the address
// seen least recently loses its bucket. An address that comes back after
// that starts with a full bucket again, so a spray of addresses can at most
// reset the buckets of idle ones; the global bucket still bounds them all.
// Every operation is O(1) under the mutex.
type createLimiter struct {
	rate  float64 // per address, tokens per second; 0: no per-address bound
	burst float64
	max   int

	mu      sync.Mutex
	clients map[string]*list.Element // of *clientBucket
	lru     *list.List               // front: most recently used
	global  *rate.Limiter            // nil: no global bound
}

// clientBucket is the token bucket of one address.
type clientBucket struct {
	addr   string
	tokens float64
	last   time.Time
}

// newCreateLimiter returns a limiter; a rate <= 0 turns its bound off.
func newCreateLimiter(perSecond float64, burst int, globalPerSecond float64, globalBurst int, maxClients int) *createLimiter {
	l := &createLimiter{max: maxClients, clients: map[string]*list.Element{}, lru: list.New()}
	if perSecond > 0 {
		l.rate, l.burst = perSecond, float64(burst)
	}
	if globalPerSecond > 0 {
		l.global = rate.NewLimiter(rate.Limit(globalPerSecond), globalBurst)
	}
	return l
}

// allow takes one token for addr, and one from the global bucket, and
// reports whether there were both. A refused creation takes no token.
func (l *createLimiter) allow(addr string, now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	var b *clientBucket
	if l.rate > 0 {
		b = l.bucket(addr, now)
		if elapsed := now.Sub(b.last); elapsed > 0 {
			b.tokens = min(l.burst, b.tokens+elapsed.Seconds()*l.rate)
			b.last = now
		}
		if b.tokens < 1 {
			return false
		}
	}
	if l.global != nil && !l.global.AllowN(now, 1) {
		return false
	}
	if b != nil {
		b.tokens--
	}
	return true
}

// bucket returns addr's bucket, making it full if addr has none; when the
// table is full, the least recently used bucket is taken over.
func (l *createLimiter) bucket(addr string, now time.Time) *clientBucket {
	if e, ok := l.clients[addr]; ok {
		l.lru.MoveToFront(e)
		return e.Value.(*clientBucket)
	}
	if l.lru.Len() >= l.max {
		e := l.lru.Back()
		b := e.Value.(*clientBucket)
		delete(l.clients, b.addr)
		*b = clientBucket{addr: addr, tokens: l.burst, last: now}
		l.clients[addr] = e
		l.lru.MoveToFront(e)
		return b
	}
	b := &clientBucket{addr: addr, tokens: l.burst, last: now}
	l.clients[addr] = l.lru.PushFront(b)
	return b
}

// size is the number of addresses the table holds.
func (l *createLimiter) size() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.clients)
}

// remoteIP is the default client address: the peer of the TCP connection.
// Forwarding headers are ignored because any client can forge them; behind a
// trusted proxy, set Config.ClientIP.
func remoteIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// RetryAfterError is the error of a refused session creation. It matches
// ErrTooManySessions; After is how long the client should wait before it
// tries again: the time one creation token takes to come back at the slower
// of the two rates (Config.CreateRate, Config.CreateGlobalRate).
type RetryAfterError struct {
	After time.Duration
}

func (e *RetryAfterError) Error() string { return ErrTooManySessions.Error() }

func (e *RetryAfterError) Unwrap() error { return ErrTooManySessions }

// Seconds is After in whole seconds, rounded up and at least 1: the value of
// a Retry-After header.
func (e *RetryAfterError) Seconds() int {
	return max(1, int(math.Ceil(e.After.Seconds())))
}

// retryAfter is how long a refused creation should wait: the time one
// token takes to come back at the slower of the two rates.
func (m *Manager) retryAfter() time.Duration {
	r := m.cfg.CreateRate
	if g := m.cfg.CreateGlobalRate; g > 0 && (r <= 0 || g < r) {
		r = g
	}
	if r <= 0 {
		return time.Second
	}
	return time.Duration(float64(time.Second) / r)
}

// isNaNOrInf reports a rate that would turn its limit off: NaN passes every
// comparison's false branch, Inf every bound.
func isNaNOrInf(f float64) bool { return math.IsNaN(f) || math.IsInf(f, 0) }
