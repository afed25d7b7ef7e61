package socketio

import (
	"errors"
	"fmt"
	"math"

	"github.com/maxence-charriere/go-app/v10/pkg/app"

	"github.com/tandem-go/tandem/shared"
)

// Errors of EmitIncr that the JavaScript client reports in place of an ack.
var (
	ErrAckTimeout   = errors.New("socketio: no ack before the timeout")
	ErrDisconnected = errors.New("socketio: socket disconnected before the ack")
)

// AckError is the ack of a failed shared.EventIncr: the server answered
// with a shared.ErrorBody.
type AckError struct {
	Message string
}

func (e *AckError) Error() string { return "socketio: server: " + e.Message }

// maxSafeInteger is Number.MAX_SAFE_INTEGER: past it a JavaScript number no
// longer holds every integer.
const maxSafeInteger = 1<<53 - 1

// parseCount reads a count: a non-negative integral JavaScript number.
func parseCount(v app.Value) (int, error) {
	if t := typeOf(v); t != app.TypeNumber {
		return 0, fmt.Errorf("want a number, got %s", t)
	}
	f := v.Float()
	if math.IsNaN(f) || f != math.Trunc(f) || f < 0 || f > maxSafeInteger {
		return 0, fmt.Errorf("want a non-negative integer, got %v", f)
	}
	return int(f), nil
}

// parseAck reads the arguments of an ack registered with socket.timeout():
// (err) when the client gave up, (null, count) or (null, {"error": "..."})
// when the server answered.
func parseAck(args []app.Value) (int, error) {
	if len(args) == 0 {
		return 0, errors.New("socketio: ack without arguments")
	}
	if t := typeOf(args[0]); t != app.TypeNull && t != app.TypeUndefined {
		switch msg := errorMessage(args[0]); msg {
		case "operation has timed out":
			return 0, ErrAckTimeout
		case "socket has been disconnected":
			return 0, ErrDisconnected
		default:
			return 0, fmt.Errorf("socketio: ack: %s", msg)
		}
	}
	v := arg(args, 1)
	switch typeOf(v) {
	case app.TypeNumber:
		n, err := parseCount(v)
		if err != nil {
			return 0, fmt.Errorf("socketio: ack: %w", err)
		}
		return n, nil
	case app.TypeObject:
		if msg := v.Get("error"); typeOf(msg) == app.TypeString {
			return 0, &AckError{Message: msg.String()}
		}
	}
	return 0, fmt.Errorf("socketio: ack: want a number or %T, got %s", shared.ErrorBody{}, typeOf(v))
}

// parseSessionEnded reads a shared.SessionEnded: {"reason": "..."}.
func parseSessionEnded(v app.Value) (shared.SessionEnded, error) {
	if t := typeOf(v); t != app.TypeObject {
		return shared.SessionEnded{}, fmt.Errorf("want an object, got %s", t)
	}
	reason := v.Get("reason")
	if t := typeOf(reason); t != app.TypeString {
		return shared.SessionEnded{}, fmt.Errorf("reason: want a string, got %s", t)
	}
	return shared.SessionEnded{Reason: reason.String()}, nil
}

// connectError turns the argument of connect_error into an error.
func connectError(args []app.Value) error {
	return fmt.Errorf("socketio: connect: %s", errorMessage(arg(args, 0)))
}

// errorMessage is the message of a JavaScript Error, or a description of
// whatever else was thrown.
func errorMessage(v app.Value) string {
	switch typeOf(v) {
	case app.TypeObject:
		if m := v.Get("message"); typeOf(m) == app.TypeString && m.String() != "" {
			return m.String()
		}
		return "unknown error"
	case app.TypeString:
		return v.String()
	default:
		return "unknown error (" + typeOf(v).String() + ")"
	}
}

// typeOf is v.Type(), with a missing value as undefined.
func typeOf(v app.Value) app.Type {
	if v == nil {
		return app.TypeUndefined
	}
	return v.Type()
}

func arg(args []app.Value, i int) app.Value {
	if i < len(args) {
		return args[i]
	}
	return nil
}

func stringArg(args []app.Value, i int) string {
	if v := arg(args, i); typeOf(v) == app.TypeString {
		return v.String()
	}
	return ""
}
