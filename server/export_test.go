package server

import (
	"log/slog"

	"github.com/zishang520/socket.io/adapters/redis/v3/adapter"
	"github.com/zishang520/socket.io/servers/socket/v3"
)

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

// Broadcasts is how many recipients of s's room emits were written
// pre-framed and how many through the library's path.
func Broadcasts(s *Server) (preframed, library uint64) { return s.broadcast.Deliveries() }

// RelayDropped is the number of relay messages s dropped as forged.
func RelayDropped(s *Server) int64 { return s.Sessions().RelayDropped() }

// BenchAdapter is a node's Socket.IO Redis adapter as the server builds it
// (streams: the Redis Streams adapter on the same clients instead), its
// count of "error" events, and its close, for TestAdapterCompare.
func BenchAdapter(url string, streams bool) (socket.AdapterConstructor, func() int64, func() error, error) {
	c, err := newCluster(url, slog.New(slog.DiscardHandler))
	if err != nil {
		return nil, nil, nil, err
	}
	b := c.builder("bench:")
	if streams {
		so := adapter.DefaultRedisStreamsAdapterOptions()
		so.SetStreamName("bench:socket.io-stream")
		so.SetBlockTimeInMs(1000) // below the client's 2 s read timeout
		b = &adapter.RedisStreamsAdapterBuilder{Redis: c.rc, Opts: so}
	}
	return b, c.errors.Load, c.close, nil
}
