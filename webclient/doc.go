// Package webclient is the tandem page: go-app components compiled to
// WebAssembly (webclient/cmd/app), and, on the server side, the
// http.Handler that serves that page and its assets (NewHandler).
//
// The page talks to the API through the shared contract only: GET /session
// on start, then a Socket.IO socket (package webclient/socketio) for live
// counts; POST /incr, an acked incr event and POST /logout from its
// buttons. The API origin comes from the handler's environment
// (EnvAPIOrigin), so one build serves both the API origin and a second,
// cross-origin port.
//
// Components run on go-app's UI goroutine; network calls run in
// Context.Async goroutines and come back with Context.Dispatch. The state
// rules that do not need a browser (connection status, which count wins,
// HTTP answers) live in plain types tested on linux.
package webclient

// EnvAPIOrigin names the go-app environment variable that holds the API
// origin the page calls, such as "http://localhost:3000". Empty means the
// origin that served the page. NewHandler sets it from HandlerConfig.
const EnvAPIOrigin = "TANDEM_API_ORIGIN"
