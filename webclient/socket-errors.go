package webclient

import (
	"context"
	"errors"
	"strings"

	"github.com/tandem-go/tandem/webclient/socketio"
)

// socketProblem says in plain words why the live connection or an
// increment over it failed. The JavaScript client cannot see the status of
// a refused handshake (the browser hides a 403 from a foreign origin), so
// a transport error names both likely causes.
func socketProblem(err error) string {
	var ackErr *socketio.AckError
	switch {
	case errors.As(err, &ackErr):
		return "the server answered: " + ackErr.Message
	case errors.Is(err, socketio.ErrAckTimeout), errors.Is(err, context.DeadlineExceeded):
		return "no answer from the server in time; the live connection may be down"
	case errors.Is(err, socketio.ErrDisconnected):
		return "the live connection dropped before the server answered"
	case errors.Is(err, socketio.ErrNotLoaded):
		return "the Socket.IO client script did not load"
	}
	msg := err.Error()
	for _, transport := range []string{"xhr poll error", "websocket error", "timeout"} {
		if strings.HasSuffix(msg, transport) {
			return "cannot reach the server, or it refuses connections from this page's origin (" + transport + ")"
		}
	}
	return strings.TrimPrefix(strings.TrimPrefix(msg, "socketio: connect: "), "socketio: ")
}
