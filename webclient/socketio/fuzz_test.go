package socketio

import (
	"encoding/json"
	"math"
	"strconv"
	"testing"

	"github.com/maxence-charriere/go-app/v10/pkg/app"
)

// fromJSON turns a JSON value into the fake JavaScript value socket.io's
// JSON.parse would have handed the page.
func fromJSON(v any) app.Value {
	switch x := v.(type) {
	case nil:
		return null()
	case bool:
		return boolean(x)
	case float64:
		return num(x)
	case string:
		return str(x)
	case []any:
		props := map[string]app.Value{"length": num(float64(len(x)))}
		for i, e := range x {
			props[strconv.Itoa(i)] = fromJSON(e)
		}
		return object(props)
	case map[string]any:
		props := map[string]app.Value{}
		for k, e := range x {
			props[k] = fromJSON(e)
		}
		return object(props)
	}
	return undefined()
}

// FuzzEventPayloads: whatever a server (or anything in between) sends as
// the payload of each event of shared/ that the page decodes (current
// count, session ended, and the ack of incr), the page's decoders never
// panic and accept only what the contract allows: a count is a
// non-negative integer equal to the number sent, a session end has the
// reason sent, a failed ack carries the error message sent.
func FuzzEventPayloads(f *testing.F) {
	f.Fuzz(func(t *testing.T, payload []byte) {
		var v any
		if json.Unmarshal(payload, &v) != nil {
			return
		}
		val := fromJSON(v)

		if n, err := parseCount(val); err == nil {
			f, ok := v.(float64)
			if !ok || n < 0 || float64(n) != f || f != math.Trunc(f) {
				t.Fatalf("parseCount(%s) = %d, want an error", payload, n)
			}
		}
		if se, err := parseSessionEnded(val); err == nil {
			m, ok := v.(map[string]any)
			if !ok || m["reason"] != se.Reason {
				t.Fatalf("parseSessionEnded(%s) = %+v, want an error", payload, se)
			}
		}
		// The ack of incr: (null, payload) from the server, (payload) as
		// the client's own error.
		n, err := parseAck([]app.Value{null(), val})
		if err == nil {
			if c, cerr := parseCount(val); cerr != nil || c != n {
				t.Fatalf("parseAck(null, %s) = %d, want what parseCount says (%d, %v)", payload, n, c, cerr)
			}
		} else if ae, ok := err.(*AckError); ok {
			m, isObj := v.(map[string]any)
			if !isObj || m["error"] != ae.Message {
				t.Fatalf("parseAck(null, %s): AckError %q from a payload without that error", payload, ae.Message)
			}
		}
		if _, err := parseAck([]app.Value{val}); err == nil && v != nil {
			t.Fatalf("parseAck(%s) succeeded; a client-side error must be an error", payload)
		}
		_ = connectError([]app.Value{val})
	})
}
