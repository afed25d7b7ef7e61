package transport

import (
	"io"
	"net/http"
	"strings"
	"sync"

	"github.com/zishang520/socket.io/servers/engine/v3/transports"
	"github.com/zishang520/socket.io/v3/pkg/types"
)

// PollingBuilder makes Polling transports; it is the engine's constructor
// for the "polling" transport name.
type PollingBuilder struct{}

var _ transports.TransportCtor = PollingBuilder{}

// Name is the Engine.IO transport name.
func (PollingBuilder) Name() string { return transports.POLLING }

// HandlesUpgrades is false: a polling request is never an upgrade.
func (PollingBuilder) HandlesUpgrades() bool { return false }

// UpgradesTo lists what a polling connection may upgrade to (the library's
// list).
func (PollingBuilder) UpgradesTo() []string {
	return []string{transports.WEBSOCKET, transports.WEBTRANSPORT}
}

// New makes the transport of one connection. JSONP polling (a "j" query
// parameter) is not served: the transport is born closed, which the engine
// answers with 400.
func (PollingBuilder) New(ctx *types.HttpContext) transports.Transport {
	p := newPolling(ctx)
	if ctx.Query().Has("j") {
		p.SetReadyState("closed")
	}
	return p
}

// Polling is the library's long-polling transport except for data requests
// (POSTs): those are read, handed to the engine and answered here, and a
// close of the transport while one is in the engine does not answer it:
// it marks it, and the POST's goroutine answers 429 (as the library
// would) once the engine is done with it. No goroutine but a request's own
// ever writes that request's response.
type Polling struct {
	transports.Polling

	mu    sync.Mutex
	data  *types.HttpContext // the POST in the engine, if any
	abort bool               // the transport closed while data was in the engine
}

var _ transports.Polling = (*Polling)(nil)

func newPolling(ctx *types.HttpContext) *Polling {
	p := &Polling{Polling: transports.MakePolling()}
	// The library's methods reach the outermost type through Proto(): its
	// Close calls our DoClose, its OnRequest is ours.
	p.Prototype(p)
	p.Construct(ctx)
	return p
}

// OnRequest handles a request of the connection: POSTs here, the rest
// (GETs) as the library does.
func (p *Polling) OnRequest(ctx *types.HttpContext) {
	if ctx.IsDone() || ctx.Context().Err() != nil {
		return
	}
	if ctx.Method() == http.MethodPost {
		p.onDataRequest(ctx)
		return
	}
	p.Polling.OnRequest(ctx)
}

// DoClose closes the transport. A POST in the engine is left to its own
// goroutine, which answers it 429 with "Connection: close"; the library's
// DoClose then never sees one (it knows only the POSTs it handled).
func (p *Polling) DoClose(fn types.Callable) {
	p.mu.Lock()
	if p.data != nil {
		p.abort = true
	}
	p.mu.Unlock()
	p.Polling.DoClose(fn)
}

// onDataRequest is the library's (transports/polling.go onDataRequest)
// with the answer kept on this goroutine, and a body over
// MaxHttpBufferSize refused with 413 where the library would cut it short
// and decode the rest.
func (p *Polling) onDataRequest(ctx *types.HttpContext) {
	p.mu.Lock()
	if p.data != nil {
		p.mu.Unlock()
		p.OnError("data request overlap from client", nil)
		answer(ctx, http.StatusBadRequest, false)
		return
	}
	binary := ctx.Headers().Peek("Content-Type") == "application/octet-stream"
	if binary && p.Protocol() == 4 {
		p.mu.Unlock()
		p.OnError("invalid content", nil)
		answer(ctx, http.StatusBadRequest, false)
		return
	}
	p.data, p.abort = ctx, false
	p.mu.Unlock()

	onClose := types.EventListener(func(...any) {
		p.endData(ctx)
		p.OnError("data request connection closed prematurely", nil)
	})
	_ = ctx.Once("close", onClose)
	done := func() bool {
		ctx.RemoveListener("close", onClose)
		return p.endData(ctx)
	}

	limit := p.MaxHttpBufferSize()
	if ctx.Request().ContentLength > limit {
		done()
		answer(ctx, http.StatusRequestEntityTooLarge, false)
		return
	}
	var payload types.BufferInterface
	if binary {
		payload = types.NewBytesBuffer(nil)
	} else {
		payload = types.NewStringBuffer(nil)
	}
	if body := ctx.Request().Body; body != nil {
		n, err := payload.ReadFrom(io.LimitReader(body, limit+1))
		_ = body.Close()
		if n > limit || err != nil {
			done()
			status := http.StatusBadRequest
			if n > limit {
				status = http.StatusRequestEntityTooLarge
			}
			answer(ctx, status, false)
			return
		}
	}
	p.Proto().OnData(payload)

	if aborted := done(); aborted {
		answer(ctx, http.StatusTooManyRequests, true)
		return
	}
	headers := types.NewParameterBag(map[string][]string{
		// text/html, not text/plain: some user agents offer text/plain as
		// a download (the library's comment, GH-43).
		"Content-Type":   {"text/html"},
		"Content-Length": {"2"},
	})
	if ua := ctx.UserAgent(); strings.Contains(ua, ";MSIE") || strings.Contains(ua, "Trident/") {
		headers.Set("X-XSS-Protection", "0")
	}
	headers.Set("Cache-Control", "no-store")
	p.Emit("headers", headers, ctx)
	ctx.ResponseHeaders().With(headers.All())
	_ = ctx.SetStatusCode(http.StatusOK)
	_, _ = io.WriteString(ctx, "ok")
}

// endData forgets ctx as the POST in the engine and reports whether the
// transport was closed meanwhile.
func (p *Polling) endData(ctx *types.HttpContext) (aborted bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.data != ctx {
		return false
	}
	aborted = p.abort
	p.data, p.abort = nil, false
	return aborted
}

// answer writes an empty answer with status, asking the client to close the
// connection if closing.
func answer(ctx *types.HttpContext, status int, closing bool) {
	if closing {
		ctx.ResponseHeaders().Set("Connection", "close")
	}
	_ = ctx.SetStatusCode(status)
	_, _ = ctx.Write(nil)
}
