//go:build !unix

package transport

import "syscall"

// writeNonBlocking writes nothing: without a non-blocking write, every
// frame goes through the connection's writing goroutine.
func writeNonBlocking(syscall.RawConn, []byte) (int, error) { return 0, nil }
