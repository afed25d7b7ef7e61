//go:build !js

package webclient

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/andybalholm/brotli"

	"github.com/tandem-go/tandem/shared"
)

// webDir writes a web directory with every build output; wasm is the
// content of app.wasm. extra files are added or, when empty, removed.
func webDir(tb testing.TB, wasm string, extra map[string]string) string {
	tb.Helper()
	dir := tb.TempDir()
	files := map[string]string{
		"app.wasm":         wasm,
		"socket.io.min.js": strings.Repeat("/* socket.io */ var io = function () {};\n", 50),
		"app.css":          strings.Repeat("body { color: black; }\n", 50),
		"icon.svg":         `<svg xmlns="http://www.w3.org/2000/svg"></svg>`,
		"icon-192.png":     "\x89PNG fake",
		"icon-512.png":     "\x89PNG fake",
	}
	for name, content := range extra {
		if content == "" {
			delete(files, name)
			continue
		}
		files[name] = content
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			tb.Fatal(err)
		}
	}
	return dir
}

// wasmBytes is a compressible stand-in for app.wasm.
func wasmBytes(seed string) string {
	return "\x00asm" + strings.Repeat("wasm "+seed+" ", 20000)
}

func newTestHandler(tb testing.TB, cfg HandlerConfig) http.Handler {
	tb.Helper()
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	h, err := NewHandler(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	return h
}

func get(tb testing.TB, h http.Handler, target string, header map[string]string) *http.Response {
	tb.Helper()
	req := httptest.NewRequest(http.MethodGet, target, nil)
	for k, v := range header {
		req.Header.Set(k, v)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec.Result()
}

func body(tb testing.TB, res *http.Response) string {
	tb.Helper()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		tb.Fatal(err)
	}
	return string(b)
}

func decode(tb testing.TB, enc string, data string) string {
	tb.Helper()
	var r io.Reader
	switch enc {
	case "br":
		r = brotli.NewReader(strings.NewReader(data))
	case "gzip":
		zr, err := gzip.NewReader(strings.NewReader(data))
		if err != nil {
			tb.Fatal(err)
		}
		r = zr
	case "":
		return data
	default:
		tb.Fatalf("unexpected encoding %q", enc)
	}
	b, err := io.ReadAll(r)
	if err != nil {
		tb.Fatal(err)
	}
	return string(b)
}

func TestNewHandlerErrors(t *testing.T) {
	tests := []struct {
		name      string
		given     HandlerConfig
		missing   string
		expectIs  error
		expectMsg string
	}{
		{name: "nok, app.wasm not built", missing: "app.wasm", expectIs: ErrNotBuilt, expectMsg: "go tool task build:wasm"},
		{name: "nok, socket.io client not copied", missing: "socket.io.min.js", expectIs: ErrNotBuilt, expectMsg: "go tool task build:js"},
		{name: "nok, no web directory at all", given: HandlerConfig{WebDir: "no/such/dir"}, expectIs: ErrNotBuilt, expectMsg: "go tool task build"},
		{name: "nok, origin with a path", given: HandlerConfig{APIOrigin: "http://localhost:3000/api"}, expectMsg: "APIOrigin"},
		{name: "nok, not http", given: HandlerConfig{APIOrigin: "ftp://localhost"}, expectMsg: "APIOrigin"},
		{name: "nok, no scheme", given: HandlerConfig{APIOrigin: "localhost:3000"}, expectMsg: "APIOrigin"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := tt.given
			if cfg.WebDir == "" {
				cfg.WebDir = webDir(t, wasmBytes("a"), map[string]string{tt.missing: ""})
			} else {
				cfg.WebDir = filepath.Join(t.TempDir(), cfg.WebDir)
			}
			cfg.Logger = slog.New(slog.DiscardHandler)
			_, err := NewHandler(cfg)
			if err == nil {
				t.Fatal("NewHandler succeeded")
			}
			if tt.expectIs != nil && !errors.Is(err, tt.expectIs) {
				t.Errorf("err %v, want it to wrap %v", err, tt.expectIs)
			}
			if !strings.Contains(err.Error(), tt.expectMsg) {
				t.Errorf("err %q, want it to mention %q", err, tt.expectMsg)
			}
		})
	}
}

func TestHandlerRoutes(t *testing.T) {
	h := newTestHandler(t, HandlerConfig{WebDir: webDir(t, wasmBytes("a"), nil)})
	tests := []struct {
		name        string
		method      string
		target      string
		expect      int
		contentType string
		contains    string
	}{
		{name: "ok, page", target: "/", expect: 200, contentType: "text/html", contains: `data-testid="count"`},
		{name: "ok, client route falls back to the page", target: "/some/client/route", expect: 200, contentType: "text/html", contains: `data-testid="incr-socket"`},
		{name: "ok, go-app script", target: "/app.js", expect: 200, contentType: "application/javascript", contains: "goappEnv"},
		{name: "ok, service worker", target: "/app-worker.js", expect: 200, contentType: "application/javascript"},
		{name: "ok, manifest", target: "/manifest.webmanifest", expect: 200, contentType: "application/manifest+json"},
		{name: "ok, asset", target: "/web/app.css", expect: 200, contentType: "text/css"},
		{name: "nok, unknown asset", target: "/web/nope.js", expect: 404, contentType: "application/json", contains: `"error"`},
		{name: "nok, directory listing", target: "/web/", expect: 404, contentType: "application/json"},
		{name: "nok, pre-compressed copy by name", target: "/web/app.wasm.gz", expect: 404},
		{name: "nok, file outside the web directory", target: "/web/../go.mod", expect: 404},
		{name: "nok, unknown file at the root", target: "/favicon.ico", expect: 404, contentType: "application/json"},
		{name: "nok, go-app's robots.txt proxy", target: "/robots.txt", expect: 404},
		{name: "nok, POST", method: http.MethodPost, target: "/", expect: 405, contentType: "application/json"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			method := tt.method
			if method == "" {
				method = http.MethodGet
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(method, tt.target, nil))
			res := rec.Result()
			if res.StatusCode != tt.expect {
				t.Fatalf("%s %s: %d, want %d", method, tt.target, res.StatusCode, tt.expect)
			}
			if ct := res.Header.Get("Content-Type"); !strings.HasPrefix(ct, tt.contentType) {
				t.Errorf("Content-Type %q, want %q", ct, tt.contentType)
			}
			b := body(t, res)
			if !strings.Contains(b, tt.contains) {
				t.Errorf("body does not contain %q:\n%.400s", tt.contains, b)
			}
			if tt.expect >= 400 && tt.contentType == "application/json" {
				var eb shared.ErrorBody
				if err := json.Unmarshal([]byte(b), &eb); err != nil || eb.Error == "" {
					t.Errorf("error body %q, want a shared.ErrorBody", b)
				}
			}
		})
	}
}

func TestHandlerServesCompressedWasm(t *testing.T) {
	raw := wasmBytes("a")
	h := newTestHandler(t, HandlerConfig{WebDir: webDir(t, raw, nil)})
	tests := []struct {
		name           string
		acceptEncoding string
		expect         string
	}{
		{name: "ok, brotli preferred", acceptEncoding: "gzip, deflate, br, zstd", expect: "br"},
		{name: "ok, gzip over plain http", acceptEncoding: "gzip, deflate", expect: "gzip"},
		{name: "ok, brotli refused", acceptEncoding: "br;q=0, gzip", expect: "gzip"},
		{name: "ok, anything", acceptEncoding: "*", expect: "br"},
		{name: "ok, identity", acceptEncoding: "", expect: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := get(t, h, "/web/app.wasm", map[string]string{"Accept-Encoding": tt.acceptEncoding})
			if res.StatusCode != 200 {
				t.Fatalf("status %d", res.StatusCode)
			}
			if ct := res.Header.Get("Content-Type"); ct != "application/wasm" {
				t.Errorf("Content-Type %q, want application/wasm", ct)
			}
			if enc := res.Header.Get("Content-Encoding"); enc != tt.expect {
				t.Errorf("Content-Encoding %q, want %q", enc, tt.expect)
			}
			if v := res.Header.Get("Vary"); v != "Accept-Encoding" {
				t.Errorf("Vary %q", v)
			}
			b := body(t, res)
			if tt.expect != "" && len(b) >= len(raw)/10 {
				t.Errorf("%s body is %d bytes for %d raw: not compressed", tt.expect, len(b), len(raw))
			}
			if decode(t, tt.expect, b) != raw {
				t.Error("body does not decode to app.wasm")
			}
		})
	}
}

func TestHandlerUsesMatchingPrecompressedCopies(t *testing.T) {
	raw := wasmBytes("new build")
	var fresh, stale bytes.Buffer
	bw := brotli.NewWriterLevel(&fresh, 1)
	bw.Write([]byte(raw))
	bw.Close()
	zw := gzip.NewWriter(&stale)
	zw.Write([]byte(wasmBytes("old build")))
	zw.Close()
	// The fresh brotli copy is recognisable: it is not what compressing in
	// memory would give (quality 1, not 5).
	h := newTestHandler(t, HandlerConfig{WebDir: webDir(t, raw, map[string]string{
		"app.wasm.br": fresh.String(),
		"app.wasm.gz": stale.String(),
	})})

	res := get(t, h, "/web/app.wasm", map[string]string{"Accept-Encoding": "br"})
	if b := body(t, res); b != fresh.String() {
		t.Error("the matching .br copy was not served as is")
	}
	res = get(t, h, "/web/app.wasm", map[string]string{"Accept-Encoding": "gzip"})
	if b := body(t, res); decode(t, "gzip", b) != raw {
		t.Error("a stale .gz copy was served: an old build under the new version")
	}
}

func TestHandlerCacheHeaders(t *testing.T) {
	h := newTestHandler(t, HandlerConfig{WebDir: webDir(t, wasmBytes("a"), nil)})

	// The page references the wasm with its hash.
	appJS := body(t, get(t, h, "/app.js", nil))
	m := regexp.MustCompile(`/web/app\.wasm\?v=([0-9a-f]+)`).FindStringSubmatch(appJS)
	if m == nil {
		t.Fatalf("app.js does not load /web/app.wasm?v=<hash>:\n%s", appJS)
	}
	versioned := m[0]

	res := get(t, h, versioned, map[string]string{"Accept-Encoding": "gzip"})
	if cc := res.Header.Get("Cache-Control"); cc != "public, max-age=31536000, immutable" {
		t.Errorf("versioned URL: Cache-Control %q, want immutable", cc)
	}
	etag := res.Header.Get("ETag")
	if !strings.HasPrefix(etag, `"`+m[1]) {
		t.Errorf("ETag %q, want the hash %s", etag, m[1])
	}

	res = get(t, h, "/web/app.wasm", map[string]string{"Accept-Encoding": "gzip"})
	if cc := res.Header.Get("Cache-Control"); cc != "no-cache" {
		t.Errorf("plain URL: Cache-Control %q, want no-cache", cc)
	}

	// A reload revalidates for free.
	res = get(t, h, "/web/app.wasm", map[string]string{"Accept-Encoding": "gzip", "If-None-Match": etag})
	if res.StatusCode != http.StatusNotModified {
		t.Errorf("If-None-Match: %d, want 304", res.StatusCode)
	}
	// The ETag names the coding: a gzip ETag does not validate brotli.
	res = get(t, h, "/web/app.wasm", map[string]string{"Accept-Encoding": "br", "If-None-Match": etag})
	if res.StatusCode != http.StatusOK {
		t.Errorf("If-None-Match of another coding: %d, want 200", res.StatusCode)
	}

	page := get(t, h, "/", nil)
	if cc := page.Header.Get("Cache-Control"); cc != "no-cache" {
		t.Errorf("page: Cache-Control %q, want no-cache", cc)
	}
	res = get(t, h, "/", map[string]string{"If-None-Match": page.Header.Get("ETag")})
	if res.StatusCode != http.StatusNotModified {
		t.Errorf("page If-None-Match: %d, want 304", res.StatusCode)
	}
}

func TestHandlerVersionFollowsTheBuild(t *testing.T) {
	etag := func(wasm, origin string) string {
		h := newTestHandler(t, HandlerConfig{WebDir: webDir(t, wasm, nil), APIOrigin: origin})
		return get(t, h, "/", nil).Header.Get("ETag")
	}
	a := etag(wasmBytes("a"), "")
	if a == "" {
		t.Fatal("no ETag on the page")
	}
	if again := etag(wasmBytes("a"), ""); again != a {
		t.Errorf("same build, version %s then %s: every restart would reload every client", a, again)
	}
	if b := etag(wasmBytes("b"), ""); b == a {
		t.Error("a rebuilt app.wasm kept the version: the service worker would serve the old app")
	}
	if c := etag(wasmBytes("a"), "http://localhost:3000"); c == a {
		t.Error("another API origin kept the version: the cached app.js would call the old origin")
	}
}

func TestHandlerPageConfig(t *testing.T) {
	h := newTestHandler(t, HandlerConfig{WebDir: webDir(t, wasmBytes("a"), nil), APIOrigin: "http://localhost:3000/"})
	appJS := body(t, get(t, h, "/app.js", nil))
	if !strings.Contains(appJS, fmt.Sprintf(`"%s":"http://localhost:3000"`, EnvAPIOrigin)) {
		t.Errorf("app.js does not pass the API origin:\n%.600s", appJS)
	}

	// Every resource the service worker precaches is local: one remote URL
	// (go-app's default icons) makes the precache fail on a closed network.
	worker := body(t, get(t, h, "/app-worker.js", nil))
	list := regexp.MustCompile(`resourcesToCache = (\[.*?\]);`).FindStringSubmatch(worker)
	if list == nil {
		t.Fatalf("no resourcesToCache in app-worker.js")
	}
	var resources []string
	if err := json.Unmarshal([]byte(list[1]), &resources); err != nil {
		t.Fatal(err)
	}
	for _, r := range resources {
		if !strings.HasPrefix(r, "/") {
			t.Errorf("service worker precaches %q: not local", r)
			continue
		}
		if res := get(t, h, r, nil); res.StatusCode != 200 {
			t.Errorf("service worker precaches %s: %d", r, res.StatusCode)
		}
	}

	page := body(t, get(t, h, "/", nil))
	for _, want := range []string{"<title>tandem", `rel="icon"`, "/web/icon.svg?v=", "/web/socket.io.min.js?v=", "/web/app.css?v="} {
		if !strings.Contains(page, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	// (go-app's og: metadata says "https://" without a Domain: not a load.)
	for _, m := range regexp.MustCompile(`(?:src|href)="(https?://[^"]*)"`).FindAllStringSubmatch(page, -1) {
		if m[1] != "http://localhost:3000" { // the preconnect to the API
			t.Errorf("page loads a remote URL: %s", m[1])
		}
	}
}

func TestHandlerVersionProbe(t *testing.T) {
	// The page asks for the served version with a HEAD of versionProbe and
	// compares its ETag with GOAPP_VERSION of app.js: both must agree.
	h := newTestHandler(t, HandlerConfig{WebDir: webDir(t, wasmBytes("a"), nil)})
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodHead, versionProbe, nil))
	served := etagValue(rec.Result().Header.Get("ETag"))
	appJS := body(t, get(t, h, "/app.js", nil))
	if served == "" || !strings.Contains(appJS, fmt.Sprintf(`"%s":"%s"`, envVersion, served)) {
		t.Errorf("HEAD %s answers version %q, app.js does not carry it", versionProbe, served)
	}
}

func TestHandlerServiceWorker(t *testing.T) {
	h := newTestHandler(t, HandlerConfig{WebDir: webDir(t, wasmBytes("a"), nil)})
	worker := body(t, get(t, h, "/app-worker.js", nil))
	if strings.Contains(worker, `addEventListener("fetch"`) || strings.Contains(worker, "cache.addAll(") {
		t.Errorf("app-worker.js has a fetch handler or a precache:\n%s", worker)
	}
	if !strings.Contains(worker, `self.addEventListener("push"`) {
		t.Error("app-worker.js lost the rest of go-app's worker")
	}
}

func TestNegotiate(t *testing.T) {
	tests := []struct {
		name   string
		given  string
		expect string
	}{
		{name: "ok, chromium over https", given: "gzip, deflate, br, zstd", expect: "br"},
		{name: "ok, gzip only", given: "gzip", expect: "gzip"},
		{name: "ok, case and spaces", given: " GZIP ;q=0.5 ", expect: "gzip"},
		{name: "ok, refused brotli", given: "br;q=0, gzip;q=1", expect: "gzip"},
		{name: "ok, wildcard", given: "*;q=0.1", expect: "br"},
		{name: "ok, wildcard minus brotli", given: "br;q=0, *", expect: "gzip"},
		{name: "ok, nothing", given: "", expect: ""},
		{name: "ok, identity only", given: "identity", expect: ""},
		{name: "ok, all refused", given: "*;q=0", expect: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := negotiate(tt.given, encBrotli, encGzip); got != tt.expect {
				t.Errorf("negotiate(%q) = %q, want %q", tt.given, got, tt.expect)
			}
		})
	}
}
