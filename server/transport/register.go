package transport

import (
	"net/http"

	"github.com/zishang520/socket.io/servers/engine/v3/transports"
	"github.com/zishang520/socket.io/v3/pkg/types"
)

// Options is the part of the engine's (and Socket.IO's) server options that
// names the transports.
type Options interface {
	SetTransports(*types.Set[transports.TransportCtor])
}

// Register makes opts use this package's transports under the library's
// transport names: "polling" (Polling) and "websocket" (WebSocket, made by
// ws).
func Register(opts Options, ws WebSocketBuilder) {
	// The set is a map: a pointer keeps a builder with a func field
	// (TooBig) hashable.
	opts.SetTransports(types.NewSet[transports.TransportCtor](PollingBuilder{}, &ws))
}

// refuseRequest answers as the engine answers a transport mismatch.
func refuseRequest(ctx *types.HttpContext) {
	ctx.ResponseHeaders().Set("Content-Type", "application/json")
	_ = ctx.SetStatusCode(http.StatusBadRequest)
	_, _ = ctx.Write([]byte(`{"code":3,"message":"Bad request"}`))
}
