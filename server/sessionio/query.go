package sessionio

import (
	"fmt"
	"net/http"
)

// engineQuery is the Engine.IO part of a request's query, read once.
//
// The engine reads its parameters from r.URL.Query() and takes the last
// value of each (types.ParameterBag.Get); url.Values.Get, which the rest of
// Go reads, takes the first. A request that repeats one of them would be
// read two ways: POST ...&sid=&sid=REAL would be a handshake attempt to
// sessionio (no gate, no body pre-read) and a POST of connection REAL to the
// engine; GET ...&sid=&sid=REAL would create a session and set its cookie
// on another connection's long poll. So a repeated parameter is refused
// before anything reads it, and the single values below are the ones the
// engine will read.
type engineQuery struct {
	sid       string
	transport string
	eio       string
	jsonp     bool // j is present, with any value
}

// engineParams are the query parameters the engine acts on.
var engineParams = []string{"sid", "transport", "EIO", "j"}

// readEngineQuery parses r's query the way the engine does and refuses a
// parameter of engineParams given more than once (ErrBadHandshake).
func readEngineQuery(r *http.Request) (engineQuery, error) {
	q := r.URL.Query()
	for _, p := range engineParams {
		if n := len(q[p]); n > 1 {
			return engineQuery{}, fmt.Errorf("%w: query parameter %s given %d times", ErrBadHandshake, p, n)
		}
	}
	return engineQuery{sid: q.Get("sid"), transport: q.Get("transport"), eio: q.Get("EIO"), jsonp: q.Has("j")}, nil
}

// isHandshake reports whether the request opens a new Engine.IO connection:
// a GET without sid (the engine refuses any other request without one).
func (q engineQuery) isHandshake(r *http.Request) bool {
	return r.Method == http.MethodGet && q.sid == ""
}
