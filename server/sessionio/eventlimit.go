package sessionio

import (
	"time"

	"github.com/zishang520/socket.io/servers/socket/v3"
)

// Defaults of Config.EventRate and Config.EventBurst.
const (
	DefaultEventRate  = 100.0
	DefaultEventBurst = 200
)

// EventRefusal is the ack argument of an event refused by the per-socket
// rate limit.
type EventRefusal struct {
	Error string `json:"error"`
}

const tooManyEvents = "too many events; slow down"

// eventBucket is one socket's token bucket. It is used only on the
// socket's task queue, one event at a time.
type eventBucket struct {
	rate, burst float64
	tokens      float64
	last        time.Time
	refused     int // in a row
}

func (b *eventBucket) take(now time.Time) bool {
	b.tokens = min(b.burst, b.tokens+now.Sub(b.last).Seconds()*b.rate)
	b.last = now
	if b.tokens < 1 {
		b.refused++
		return false
	}
	b.tokens--
	b.refused = 0
	return true
}

// eventLimit returns the socket middleware that bounds the events a socket
// may send: EventBurst at once, then EventRate per second. An event over
// the limit is not handled: it is acked with EventRefusal when it asked for
// an ack, and dropped otherwise. A socket that keeps sending (more than
// EventBurst refused events in a row) has its connection closed. It runs
// before the session's reload, so refused events cost no store read.
func (m *Manager) eventLimit(s *socket.Socket) func([]any, func(error)) {
	rate, burst := m.cfg.EventRate, m.cfg.EventBurst
	if rate == 0 {
		rate = DefaultEventRate
	}
	if burst == 0 {
		burst = DefaultEventBurst
	}
	if rate < 0 || burst < 0 {
		return func(_ []any, next func(error)) { next(nil) }
	}
	b := &eventBucket{rate: rate, burst: float64(burst), tokens: float64(burst), last: time.Now()}
	return func(args []any, next func(error)) {
		if b.take(time.Now()) {
			next(nil)
			return
		}
		m.report.Refused(CauseEventRate)
		if len(args) > 0 {
			if ack, ok := args[len(args)-1].(socket.Ack); ok {
				ack([]any{EventRefusal{Error: tooManyEvents}}, nil)
			}
		}
		if b.refused == burst+1 {
			m.log.Info("sessionio: socket keeps flooding; closing its connection", "refused", b.refused)
			closeConn(s.Conn())
		}
	}
}
