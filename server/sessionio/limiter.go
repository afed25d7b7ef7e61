package sessionio

import (
	"container/list"
	"math"
	"net"
	"net/http"
	"net/netip"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// maxLimiterClients bounds the per-address table of the creation limiter.
const maxLimiterClients = 100_000

// createLimiter bounds how many sessions the server creates: token buckets
// per client address and its enclosing prefixes (burst, then rate per
// second), and one for all addresses together.
//
// The prefixes are hierarchical, because one subscriber routinely holds many
// addresses: an IPv6 client is counted in its /64, its /56 and its /48, an
// IPv4 client in its address and its /24 (see prefixLevels). A creation
// takes a token from every level; without the upper levels, a home /56 (256
// /64s, each with a full bucket) could empty the global bucket in a moment
// and lock every other visitor out. No prefix's bucket is larger than half
// the global one, so no single prefix can ever take all of it.
//
// The table is a fixed-size LRU: when it is full, the bucket seen least
// recently is dropped. A prefix that comes back after that starts with a
// full bucket again, so a spray of addresses can at most reset the buckets
// of idle ones; the global bucket still bounds them all. Every operation is
// O(1) under the mutex.
type createLimiter struct {
	rate  float64 // per address, tokens per second; 0: no per-address bound
	burst float64
	max   int
	// globalRate and globalBurst, when the global bound is on, cap every
	// prefix's bucket at half of them.
	globalRate, globalBurst float64

	mu      sync.Mutex
	clients map[string]*list.Element // of *clientBucket, by prefix
	lru     *list.List               // front: most recently used
	global  *rate.Limiter            // nil: no global bound
}

// clientBucket is the token bucket of one address or prefix.
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
		l.globalRate, l.globalBurst = globalPerSecond, float64(globalBurst)
	}
	return l
}

// level is one prefix of a client address and the size of its bucket, as a
// multiple of the per-address burst and rate.
type level struct {
	key    string
	factor float64
}

// prefixLevels names the buckets of addr, the client's own first. addr is
// what Config.ClientIP returned: an IP address, an IPv6 prefix such as
// "2001:db8:1:2::/64", or anything else, which is one bucket of its own.
//
//	IPv6: /64 ×1, /56 ×2, /48 ×4 (a subscriber's /64, a home's /56, a site's /48)
//	IPv4: the address ×1, its /24 ×4
func prefixLevels(addr string) []level {
	a, err := netip.ParseAddr(addr)
	if err != nil {
		p, perr := netip.ParsePrefix(addr)
		if perr != nil {
			return []level{{key: addr, factor: 1}}
		}
		a = p.Addr()
	}
	a = a.Unmap().WithZone("")
	pfx := func(bits int) string {
		p, _ := a.Prefix(bits)
		return p.String()
	}
	if a.Is4() {
		return []level{{key: addr, factor: 1}, {key: pfx(24), factor: 4}}
	}
	return []level{{key: addr, factor: 1}, {key: pfx(56), factor: 2}, {key: pfx(48), factor: 4}}
}

// size of a level's bucket: factor times the per-address one, at most half
// of the global bucket when there is one.
func (l *createLimiter) levelSize(factor float64) (burst, perSecond float64) {
	burst, perSecond = l.burst*factor, l.rate*factor
	if l.global != nil {
		burst = min(burst, max(1, l.globalBurst/2))
		perSecond = min(perSecond, l.globalRate/2)
	}
	return burst, perSecond
}

// allow takes one token for addr from each of its levels, and one from the
// global bucket, and reports whether there were all. A refused creation
// takes no token.
func (l *createLimiter) allow(addr string, now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	var buckets []*clientBucket
	if l.rate > 0 {
		levels := prefixLevels(addr)
		buckets = make([]*clientBucket, 0, len(levels))
		for _, lv := range levels {
			burst, perSecond := l.levelSize(lv.factor)
			b := l.bucket(lv.key, burst, now)
			if elapsed := now.Sub(b.last); elapsed > 0 {
				b.tokens = min(burst, b.tokens+elapsed.Seconds()*perSecond)
				b.last = now
			}
			if b.tokens < 1 {
				return false
			}
			buckets = append(buckets, b)
		}
	}
	if l.global != nil && !l.global.AllowN(now, 1) {
		return false
	}
	for _, b := range buckets {
		b.tokens--
	}
	return true
}

// bucket returns the bucket of key, making it full (burst tokens) if key
// has none; when the table is full, the least recently used bucket is taken
// over.
func (l *createLimiter) bucket(key string, burst float64, now time.Time) *clientBucket {
	if e, ok := l.clients[key]; ok {
		l.lru.MoveToFront(e)
		return e.Value.(*clientBucket)
	}
	if l.lru.Len() >= l.max {
		e := l.lru.Back()
		b := e.Value.(*clientBucket)
		delete(l.clients, b.addr)
		*b = clientBucket{addr: key, tokens: burst, last: now}
		l.clients[key] = e
		l.lru.MoveToFront(e)
		return b
	}
	b := &clientBucket{addr: key, tokens: burst, last: now}
	l.clients[key] = l.lru.PushFront(b)
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
