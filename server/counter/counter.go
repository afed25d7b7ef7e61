// Package counter is the app's one piece of session state: the count that
// POST /incr and the socket event incr increase. HTTP handlers and socket
// handlers both change it through these functions, inside an atomic session
// update, so they agree on its key and type.
package counter

import (
	"errors"
	"math"

	"github.com/tandem-go/tandem/server/sessionio"
)

// key is the session value that holds the count.
const key = "count"

// ErrOverflow is returned by Incr when the count cannot grow any more.
var ErrOverflow = errors.New("counter: count overflow")

// Count returns the count held in v; 0 when there is none or it is not an
// int (it is only ever written by Incr).
func Count(v sessionio.Values) int {
	n, _ := v[key].(int)
	return n
}

// Incr adds one to the count held in v. It is an apply function for
// sessionio's Update.
func Incr(v sessionio.Values) error {
	n := Count(v)
	if n == math.MaxInt {
		return ErrOverflow
	}
	v[key] = n + 1
	return nil
}
