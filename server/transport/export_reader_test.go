package transport

import "io"

// NewPausingReader is NewReader with the epoll path's ready: when ready
// says no, Next returns ErrNoFrame between two frames.
func NewPausingReader(r io.Reader, limit int64, ready func() bool) *Reader {
	rd := NewReader(r, limit)
	rd.ready = ready
	return rd
}

// ErrNoFrame is what Next returns when ready said no.
var ErrNoFrame = errNoFrame

// Park does what a read goroutine of the epoll path does with the Reader
// when it returns: lets go of its message buffer unless a fragmented
// message is under way.
func Park(r *Reader) { r.release() }
