// Command app is the tandem page compiled to WebAssembly:
//
//	GOOS=js GOARCH=wasm go build -ldflags="-s -w" -o public/web/app.wasm ./webclient/cmd/app
//
// (go tool task build:wasm does that). On any other platform it does nothing:
// the server serves the page with webclient.NewHandler.
package main

import (
	"github.com/maxence-charriere/go-app/v10/pkg/app"

	"github.com/tandem-go/tandem/webclient"
)

func main() {
	webclient.Routes()
	app.RunWhenOnBrowser()
}
