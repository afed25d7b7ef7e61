package server

import "github.com/zishang520/socket.io/servers/socket/v3"

// SocketServer gives tests the server's Socket.IO server, to install
// test-only middleware (see TestEventRightAfterConnect).
func SocketServer(s *Server) *socket.Server { return s.io }
