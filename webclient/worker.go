//go:build !js

package webclient

import (
	"errors"
	"strings"

	"github.com/maxence-charriere/go-app/v10/pkg/app"
)

// go-app's service worker answers every request from its cache first, so
// after a rebuild the first load runs the old app until the new worker
// takes over, and it also sits in the path of every API and Socket.IO
// request. The page's worker differs in its fetch handler only: what it
// precached with a ?v=hash (content-addressed) comes from the cache, the
// rest of what it precached (the page, /app.js, /wasm_exec.js, ...) from
// the network first (a 304 when unchanged) and from the cache only when
// offline, and it leaves anything else (the API, Socket.IO, other origins,
// unsafe methods) to the browser.
const (
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

	pageFetch = `const precached = new Set(resourcesToCache);

self.addEventListener("fetch", (event) => {
  const request = event.request;
  const url = new URL(request.url);
  if (request.method !== "GET" || url.origin !== self.location.origin ||
    (request.mode !== "navigate" && !precached.has(url.pathname + url.search))) {
    return; // the API, Socket.IO and the rest: the network, untouched
  }
  event.respondWith(fetchWithCache(request, url));
});

async function fetchWithCache(request, url) {
  if (url.searchParams.has("v")) {
    const cached = await caches.match(request);
    if (cached) {
      return cached;
    }
    return fetch(request);
  }
  try {
    return await fetch(request);
  } catch (err) {
    const cached = (await caches.match(request)) ||
      (request.mode === "navigate" ? await caches.match("/") : undefined);
    if (cached) {
      return cached;
    }
    throw err;
  }
}`
)

// errWorkerTemplate means go-app's worker no longer has the fetch handler
// this file replaces: compare app.DefaultAppWorkerJS with goAppFetch.
var errWorkerTemplate = errors.New("webclient: go-app's service worker changed: update goAppFetch in webclient/worker.go")

// workerTemplate is go-app's service worker with the page's fetch handler.
func workerTemplate() (string, error) {
	if !strings.Contains(app.DefaultAppWorkerJS, goAppFetch) {
		return "", errWorkerTemplate
	}
	return strings.Replace(app.DefaultAppWorkerJS, goAppFetch, pageFetch, 1), nil
}
