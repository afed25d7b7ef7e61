package webclient

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/tandem-go/tandem/webclient/socketio"
)

func TestSocketProblem(t *testing.T) {
	tests := []struct {
		name   string
		given  error
		expect string // a part of the message
	}{
		{"ok, server refusal in the ack", &socketio.AckError{Message: "session ended"}, "the server answered: session ended"},
		{"ok, ack timeout", socketio.ErrAckTimeout, "no answer from the server in time"},
		{"ok, never connected before the deadline", context.DeadlineExceeded, "no answer from the server in time"},
		{"ok, wrapped disconnect", fmt.Errorf("incr: %w", socketio.ErrDisconnected), "dropped before the server answered"},
		{"ok, polling handshake refused or down", errors.New("socketio: connect: xhr poll error"), "refuses connections from this page's origin"},
		{"ok, websocket refused", errors.New("socketio: connect: websocket error"), "cannot reach the server"},
		{"ok, a middleware's message shown as is", errors.New("socketio: connect: session store unavailable"), "session store unavailable"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := socketProblem(tt.given)
			if !strings.Contains(got, tt.expect) || strings.HasPrefix(got, "socketio:") {
				t.Errorf("socketProblem(%v) = %q, want it to say %q", tt.given, got, tt.expect)
			}
		})
	}
}
