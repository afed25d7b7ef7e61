// Package e2e holds the browser tests: headless Chromium, driven with
// chromedp, against real tandem servers started in the test (see
// internal/tandemtest). They need Chromium and the built page (`go tool
// task build:js build:wasm`); without them they skip, or fail under
// CI=true.
package e2e
