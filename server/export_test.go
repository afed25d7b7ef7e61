package server

import "github.com/zishang520/socket.io/servers/socket/v3"

// SocketServer gives tests the server's Socket.IO server, to install
// test-only middleware (see TestEventRightAfterConnect).
func SocketServer(s *Server) *socket.Server { return s.io }

// AdapterErrors is the number of "error" events the Socket.IO Redis
// adapter of s reported (0 without Redis).
func AdapterErrors(s *Server) int64 {
	if s.cluster == nil {
		return 0
	}
	return s.cluster.errors.Load()
}

// RelayDropped is the number of relay messages s dropped as forged.
func RelayDropped(s *Server) int64 { return s.Sessions().RelayDropped() }
