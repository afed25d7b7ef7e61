package transport

// WriteFrame writes frame, one whole frame (see Frame), after everything
// already written to the connection, exactly as Send writes the frames it
// makes: inline if the connection takes it now, otherwise in order through
// the connection's goroutine, under the same cap. frame is not changed and
// may be shared by many connections (the pre-framed broadcast writes one
// frame to all its recipients). It emits nothing: the caller accounts for
// the engine's events.
func (w *WebSocket) WriteFrame(frame []byte) { w.write(frame, false) }
