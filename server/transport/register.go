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

// Register makes opts use this package's transports, under the library's
// transport names: "polling" (Polling) and "websocket".
func Register(opts Options) {
	opts.SetTransports(types.NewSet[transports.TransportCtor](PollingBuilder{}, libraryWebSocketBuilder{&transports.WebSocketBuilder{}}))
}

// libraryWebSocketBuilder makes the library's WebSocket transport, answering
// the HTTP requests the engine may still hand it (see webSocketRequests).
type libraryWebSocketBuilder struct{ *transports.WebSocketBuilder }

func (libraryWebSocketBuilder) New(ctx *types.HttpContext) transports.Transport {
	return webSocketRequests{transports.NewWebSocket(ctx)}
}

// webSocketRequests answers polling requests that reach a connection once it
// is on WebSocket. The engine checks a polling request's transport name
// against the connection's (400 when they differ), then hands the request
// to the connection's transport: an upgrade that completes in between hands
// a polling request to the WebSocket transport, whose OnRequest does
// nothing, and the request would hang until its client gives up.
type webSocketRequests struct{ transports.Websocket }

func (webSocketRequests) OnRequest(ctx *types.HttpContext) {
	refuseRequest(ctx)
}

// refuseRequest answers as the engine answers a transport mismatch.
func refuseRequest(ctx *types.HttpContext) {
	ctx.ResponseHeaders().Set("Content-Type", "application/json")
	_ = ctx.SetStatusCode(http.StatusBadRequest)
	_, _ = ctx.Write([]byte(`{"code":3,"message":"Bad request"}`))
}
