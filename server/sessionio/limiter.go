package sessionio

import (
	"net"
	"net/http"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// createLimiter bounds how many sessions one client address can make the
// server create: a token bucket per address (burst, then rate per second).
// Its table is bounded too: when it reaches maxClients it drops the buckets
// that have refilled completely, which are indistinguishable from new ones.
type createLimiter struct {
	rate  rate.Limit
	burst int

	mu      sync.Mutex
	clients map[string]*rate.Limiter
}

const maxLimiterClients = 100_000

func newCreateLimiter(perSecond float64, burst int) *createLimiter {
	return &createLimiter{rate: rate.Limit(perSecond), burst: burst, clients: map[string]*rate.Limiter{}}
}

// allow takes one token for addr and reports whether there was one.
func (l *createLimiter) allow(addr string, now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	lim, ok := l.clients[addr]
	if !ok {
		if len(l.clients) >= maxLimiterClients {
			l.prune(now)
		}
		lim = rate.NewLimiter(l.rate, l.burst)
		l.clients[addr] = lim
	}
	return lim.AllowN(now, 1)
}

func (l *createLimiter) prune(now time.Time) {
	for addr, lim := range l.clients {
		if lim.TokensAt(now) >= float64(l.burst) {
			delete(l.clients, addr)
		}
	}
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

// retryAfter is the Retry-After, in seconds, of a refused creation: the time
// one token takes to come back, rounded up.
func (m *Manager) retryAfter() int {
	if m.cfg.CreateRate <= 0 {
		return 1
	}
	return int(1/m.cfg.CreateRate) + 1
}
