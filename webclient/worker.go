//go:build !js

package webclient

import (
	"errors"
	"strings"

	"github.com/maxence-charriere/go-app/v10/pkg/app"
)

// go-app's service worker precaches every resource when it installs and
// answers every request from that cache first. The page's worker does
// neither: it has no fetch handler at all, so Chromium never starts it for
// a request (a navigation or a fetch through a worker that must boot first
// costs tens of milliseconds on every load), and its install does not fetch
// app.wasm a second time and store 12 MB while the first visit is still
// compiling it. The HTTP cache does the worker's job: every asset URL
// carries its content hash and is cached for a year as immutable, and the
// page, /app.js and /wasm_exec.js are revalidated (304s). What remains of
// go-app's worker: taking over at once, deleting the caches of earlier
// versions, and the notification handlers; the page is not usable offline,
// and needs the server anyway.
const (
	goAppInstall = `async function installWorker() {
  const cache = await caches.open(cacheName);
  await cache.addAll(resourcesToCache);
}`
	pageInstall = `async function installWorker() {}`

	goAppFetch = `self.addEventListener("fetch", (event) => {
  event.respondWith(fetchWithCache(event.request));
});

async function fetchWithCache(request) {
  const cachedResponse = await caches.match(request);
  if (cachedResponse) {
    return cachedResponse;
  }
  return await fetch(request);
}`
	pageFetch = `// No fetch handler: requests never wait for this worker to start.`
)

// errWorkerTemplate means go-app's worker no longer has the install and
// fetch handlers this file replaces: compare app.DefaultAppWorkerJS with
// goAppInstall and goAppFetch.
var errWorkerTemplate = errors.New("webclient: go-app's service worker changed: update goAppInstall and goAppFetch in webclient/worker.go")

// workerTemplate is go-app's service worker without its precache and its
// fetch handler.
func workerTemplate() (string, error) {
	w := app.DefaultAppWorkerJS
	if strings.Count(w, goAppFetch) != 1 || strings.Count(w, goAppInstall) != 1 {
		return "", errWorkerTemplate
	}
	w = strings.Replace(w, goAppFetch, pageFetch, 1)
	return strings.Replace(w, goAppInstall, pageInstall, 1), nil
}
