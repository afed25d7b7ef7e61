// Package realtime holds tandem's Socket.IO handlers: the acked incr event,
// and the notifications HTTP handlers send through web.Notifier (current
// count, session ended). Sessions, rooms and reloads are sessionio's job;
// this package only speaks the app's events, all named in package shared.
package realtime

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/zishang520/socket.io/servers/socket/v3"

	"github.com/tandem-go/tandem/server/counter"
	"github.com/tandem-go/tandem/server/sessionio"
	"github.com/tandem-go/tandem/shared"
)

// Hub serves the app's events on a Socket.IO server wired by a sessionio
// Manager.
type Hub struct {
	sessions *sessionio.Manager
	log      *slog.Logger
	timeout  time.Duration
}

// New registers the app's handlers on io's main namespace.
func New(io *socket.Server, sessions *sessionio.Manager, log *slog.Logger) *Hub {
	h := &Hub{sessions: sessions, log: log, timeout: 5 * time.Second}
	_ = io.On("connection", func(args ...any) {
		if s, ok := args[0].(*socket.Socket); ok {
			h.connected(s)
		}
	})
	return h
}

// CountChanged sends the new count to every socket of the session.
func (h *Hub) CountChanged(sessionKey string, count int) {
	if err := h.sessions.Emit(sessionKey, shared.EventCurrentCount, count); err != nil {
		h.log.Error("realtime: emit current count", "err", err)
	}
}

// State is the session's state as events, for sessionio's resync
// (Manager.OnResync): the current count.
func (h *Hub) State(_ string, v sessionio.Values) []sessionio.Event {
	return []sessionio.Event{{Name: shared.EventCurrentCount, Args: []any{counter.Count(v)}}}
}

// SessionEnded tells every socket of the session why, then disconnects them
// all (on every node), cleanly, so the clients do not reconnect by
// themselves into a new session.
//
// This node's sockets are always told and disconnected at once. When the
// other nodes cannot be reached (Redis down), it says so: the session is
// gone from the store all the same, so their sockets close at their next
// packet or periodic check.
func (h *Hub) SessionEnded(sessionKey string) {
	err := h.sessions.End(sessionKey, sessionio.EndReason(shared.ReasonLogout))
	switch {
	case errors.Is(err, sessionio.ErrNodesUnreachable):
		h.log.Warn("realtime: logout: this node's sockets of the session were disconnected, but the other nodes could not be reached; theirs close at their next packet or within SESSION_CHECK_INTERVAL",
			"session", sessionKey[:12], "err", err)
	case err != nil:
		h.log.Error("realtime: logout: tell and disconnect the session's sockets", "session", sessionKey[:12], "err", err)
	}
}

func (h *Hub) connected(s *socket.Socket) {
	sess := h.sessions.FromSocket(s)
	if sess == nil {
		h.log.Error("realtime: socket without a session; closing it")
		s.Disconnect(true)
		return
	}
	_ = s.On(shared.EventIncr, func(args ...any) { h.incr(sess, args) })
}

// incr increments the count, sends it to every socket of the session and
// acks it. It ignores any argument; without an ack function it still
// increments and notifies. A failure is acked as a shared.ErrorBody.
func (h *Hub) incr(sess *sessionio.Session, args []any) {
	var ack socket.Ack
	if len(args) > 0 {
		ack, _ = args[len(args)-1].(socket.Ack)
	}
	ctx, cancel := context.WithTimeout(context.Background(), h.timeout)
	defer cancel()
	var n int
	_, err := sess.Update(ctx, counter.Incr, func(v sessionio.Values) {
		n = counter.Count(v)
		if err := sess.Emit(shared.EventCurrentCount, n); err != nil {
			h.log.Error("realtime: emit current count", "err", err)
		}
	})
	if err != nil {
		msg := "session store unavailable"
		switch {
		case errors.Is(err, sessionio.ErrSessionGone):
			msg = "session ended"
		case errors.Is(err, sessionio.ErrSessionRenewed):
			msg = "session renewed"
		case errors.Is(err, counter.ErrOverflow):
			msg = "the count cannot grow any more"
		default:
			h.log.Error("realtime: incr", "session", sess.Key()[:12], "err", err)
		}
		if ack != nil {
			ack([]any{shared.ErrorBody{Error: msg}}, nil)
		}
		return
	}
	if ack != nil {
		ack([]any{n}, nil)
	}
}
