package webclient

import (
	"sync"

	"github.com/maxence-charriere/go-app/v10/pkg/app"
)

// pagePattern matches every client route: any path without a dot, so that
// /, /anything and /deep/link all show the page while /favicon.ico or
// /missing.png stay 404s.
const pagePattern = `^[^.]*$`

var routesOnce sync.Once

// Routes registers the page with go-app for every client route. Both the
// WebAssembly main and NewHandler call it (go-app renders the page on the
// server too); it may be called any number of times.
func Routes() {
	routesOnce.Do(func() {
		app.RouteWithRegexp(pagePattern, newCounterPage)
	})
}
