//go:build !js

package webclient

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/maxence-charriere/go-app/v10/pkg/app"

	"github.com/tandem-go/tandem/shared"
)

// DefaultWebDir is where the build puts the page's assets, relative to the
// repository root.
const DefaultWebDir = "public/web"

// ErrNotBuilt is wrapped by the error of NewHandler when a build output is
// missing from the web directory; the message names the task that makes it.
var ErrNotBuilt = errors.New("webclient: build output missing")

// buildOutputs are the files NewHandler needs, with the task that makes each.
var buildOutputs = []struct{ name, task string }{
	{"app.wasm", "go tool task build:wasm"},
	{"socket.io.min.js", "go tool task build:js"},
	{"app.css", "git checkout public/web"},
	{"icon.svg", "git checkout public/web"},
	{"icon-192.png", "git checkout public/web"},
	{"icon-512.png", "git checkout public/web"},
}

// HandlerConfig configures NewHandler. The zero value serves public/web
// (relative to the working directory) to a page that calls its own origin.
type HandlerConfig struct {
	// APIOrigin is the origin the page calls, such as
	// "http://localhost:3000" (scheme, host and port; no path). Empty means
	// the origin that served the page. The listener on SPA_PORT sets it to
	// PUBLIC_URL.
	APIOrigin string

	// WebDir holds the assets served under /web/: the build outputs
	// (app.wasm and its .br/.gz copies, socket.io.min.js) and the committed
	// ones (app.css, icons). Defaults to DefaultWebDir. It is read once, in
	// NewHandler.
	WebDir string

	// Version is mixed into the app version, which is otherwise a hash of
	// every asset and of APIOrigin: set it (to a VCS revision, say) when the
	// server changes what it renders without a new app.wasm.
	Version string

	// Logger receives notes such as a stale pre-compressed copy. Defaults to
	// slog.Default().
	Logger *slog.Logger

	// Count, when set, reads the count of the request's session, so that
	// the page's first HTML shows it before the WebAssembly runs; ok is
	// false when the request has no session (or it cannot be read in
	// time). It must only read: never create a session, never set a
	// cookie. Only the listener whose page is same-origin with the API
	// sets it.
	Count func(r *http.Request) (count int, ok bool)
}

// handler serves the page (go-app), its generated scripts and the assets.
type handler struct {
	assets map[string]*asset
	page   *app.Handler
	csp    string
	count  func(*http.Request) (int, bool)
}

// contentSecurityPolicy allows what the page uses and nothing else: its own
// scripts, styles, images, manifest and service worker; compiling
// WebAssembly ('wasm-unsafe-eval', for instantiateStreaming); requests to
// its own origin and to apiOrigin, WebSocket included. No inline script, no
// eval, no inline style (go-app sets none: the page uses no .Style()), no
// plugins, no <base>, no forms, and no framing.
func contentSecurityPolicy(apiOrigin string) string {
	connect := "'self'"
	if apiOrigin != "" {
		// CSP Level 3 lets 'self' match ws(s): of the page's own origin;
		// another origin needs its WebSocket scheme spelled out.
		ws := "ws" + strings.TrimPrefix(apiOrigin, "http")
		connect += " " + apiOrigin + " " + ws
	}
	return strings.Join([]string{
		"default-src 'none'",
		"script-src 'self' 'wasm-unsafe-eval'",
		"style-src 'self'",
		"img-src 'self'",
		"connect-src " + connect,
		"worker-src 'self'",
		"manifest-src 'self'",
		"object-src 'none'",
		"base-uri 'none'",
		"form-action 'none'",
		"frame-ancestors 'none'",
	}, "; ")
}

// NewHandler returns the handler of the page: every client route (any path
// without a dot) answers the page, /web/... the assets, and the paths
// go-app generates (/app.js, /app-worker.js, /wasm_exec.js, /app.css,
// /manifest.webmanifest) its scripts. Anything else is a 404, as is any
// method but GET and HEAD. The server mounts it for every route it does not
// own.
//
// Assets are compressed (brotli or gzip, from the build's pre-compressed
// copies when they match, else once in memory) and carry a strong ETag;
// referenced with their ?v=hash they are cached for a year as immutable.
// The app version, which names go-app's service-worker cache, is a hash of
// all assets; the service worker serves only content-addressed URLs from
// its cache first and the rest from the network first (see worker.go), so
// a rebuilt app is never served from a stale cache.
//
// Like go-app's own handler, it sets the process environment variables of
// the go-app environment (EnvAPIOrigin among them) on its first request.
func NewHandler(cfg HandlerConfig) (http.Handler, error) {
	if cfg.WebDir == "" {
		cfg.WebDir = DefaultWebDir
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	origin, err := normalizeOrigin(cfg.APIOrigin)
	if err != nil {
		return nil, err
	}
	assets, err := loadAssets(cfg.WebDir, cfg.Logger)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w: %s does not exist: run `go tool task build` (or set the web directory)", ErrNotBuilt, cfg.WebDir)
	}
	if err != nil {
		return nil, err
	}
	for _, out := range buildOutputs {
		if _, ok := assets[out.name]; !ok {
			return nil, fmt.Errorf("%w: %s/%s is missing: run `%s`", ErrNotBuilt, cfg.WebDir, out.name, out.task)
		}
	}

	worker, err := workerTemplate()
	if err != nil {
		return nil, err
	}

	Routes()
	url := func(name string) string { return "/web/" + name + "?v=" + assets[name].hash }
	page := &app.Handler{
		Name:        "tandem",
		ShortName:   "tandem",
		Title:       "tandem · one session, every tab",
		Description: "A counter shared by every tab of one browser session, over HTTP and Socket.IO.",
		Lang:        "en",
		Icon: app.Icon{
			Default:  url("icon-192.png"),
			Large:    url("icon-512.png"),
			Maskable: url("icon-512.png"),
			SVG:      url("icon.svg"),
		},
		BackgroundColor:       "#f4f5fb",
		ThemeColor:            "#4338ca",
		LoadingLabel:          "Loading tandem… {progress}%",
		Styles:                []string{url("app.css")},
		Scripts:               []string{url("socket.io.min.js")},
		Env:                   map[string]string{EnvAPIOrigin: origin},
		Resources:             resolver{assets: assets},
		Version:               version(cfg.Version, origin, assets),
		WasmContentLength:     strconv.Itoa(len(assets["app.wasm"].raw)),
		ServiceWorkerTemplate: worker,
	}
	if origin != "" {
		page.Preconnect = []string{origin}
	}
	return &handler{assets: assets, page: page, csp: contentSecurityPolicy(origin), count: cfg.Count}, nil
}

// goAppPaths are the paths the go-app handler generates.
var goAppPaths = map[string]bool{
	"/app.js":               true,
	"/app-worker.js":        true,
	"/wasm_exec.js":         true,
	"/app.css":              true,
	"/manifest.webmanifest": true,
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	hdr := w.Header()
	hdr.Set("X-Content-Type-Options", "nosniff")
	// On every answer, not only the page's: the service worker's script
	// carries the policy its fetches run under.
	hdr.Set("Content-Security-Policy", h.csp)
	// The page's URL is for its own origin only; requests to the API keep
	// their Origin header (no-referrer would make it "null").
	hdr.Set("Referrer-Policy", "same-origin")
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		writeError(w, http.StatusMethodNotAllowed, "method not allowed")
		return
	}
	p := r.URL.Path
	switch {
	case strings.HasPrefix(p, "/web/"):
		h.serveAsset(w, r, strings.TrimPrefix(p, "/web/"))
	case goAppPaths[p]:
		h.page.ServeHTTP(w, fixedRequest(r, p))
	case !strings.Contains(p, "."):
		h.servePage(w, r)
	default:
		// go-app would answer /robots.txt and friends by requesting
		// /web/robots.txt from the Host the client named: not here.
		writeError(w, http.StatusNotFound, "not found")
	}
}

// fixedRequest is what go-app sees of r: its method, context and
// If-None-Match, for the fixed path p. go-app v10.1.11 renders the request
// URL into the page (og:url), in attributes quoted with Go string escaping
// rather than HTML escaping, so any request text that reached it could end
// up as markup: none does.
func fixedRequest(r *http.Request, p string) *http.Request {
	f := &http.Request{
		Method:     r.Method,
		URL:        &url.URL{Path: p},
		RequestURI: p,
		Proto:      "HTTP/1.1",
		ProtoMajor: 1,
		ProtoMinor: 1,
		Header:     http.Header{},
		Body:       http.NoBody,
		Host:       "localhost",
	}
	if etag := r.Header.Get("If-None-Match"); etag != "" {
		f.Header.Set("If-None-Match", etag)
	}
	return f.WithContext(r.Context())
}

// servePage answers the page. Every client route shows the same page,
// rendered from "/"; on the listener that knows the session, with its
// count (see counterPage.OnPreRender), which only this handler can tell
// go-app: it pre-renders with the URL alone.
func (h *handler) servePage(w http.ResponseWriter, r *http.Request) {
	f := fixedRequest(r, "/")
	if h.count == nil {
		h.page.ServeHTTP(w, f)
		return
	}
	w.Header().Add("Vary", "Cookie")
	n, ok := h.count(r)
	if !ok {
		h.page.ServeHTTP(w, f)
		return
	}
	f.URL.RawQuery = url.Values{prerenderCount: {strconv.Itoa(n)}}.Encode()
	// go-app's ETag names the build, not the count: a 304 would show the
	// count of an earlier visit.
	f.Header.Del("If-None-Match")
	h.page.ServeHTTP(dropETag{w}, f)
}

// dropETag removes the ETag header before the answer is written.
type dropETag struct{ http.ResponseWriter }

func (d dropETag) WriteHeader(code int) {
	d.Header().Del("ETag")
	d.ResponseWriter.WriteHeader(code)
}

func (d dropETag) Write(b []byte) (int, error) {
	d.Header().Del("ETag")
	return d.ResponseWriter.Write(b)
}

func (h *handler) serveAsset(w http.ResponseWriter, r *http.Request, name string) {
	a, ok := h.assets[name]
	if !ok {
		writeError(w, http.StatusNotFound, "not found")
		return
	}
	hdr := w.Header()
	hdr.Set("Content-Type", a.contentType)
	var offers []string
	if a.variants != nil {
		hdr.Add("Vary", "Accept-Encoding")
		offers = []string{encBrotli, encGzip}
	}
	body, enc := a.encoded(negotiate(r.Header.Get("Accept-Encoding"), offers...))
	etag := a.hash
	if enc != "" {
		hdr.Set("Content-Encoding", enc)
		etag += "-" + enc
	}
	hdr.Set("ETag", `"`+etag+`"`)
	if r.URL.Query().Get("v") == a.hash {
		hdr.Set("Cache-Control", "public, max-age=31536000, immutable")
	} else {
		hdr.Set("Cache-Control", "no-cache")
	}
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(body))
}

func writeError(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(shared.ErrorBody{Error: msg})
}

// normalizeOrigin checks that origin is empty or an http(s) origin, and
// drops a trailing slash.
func normalizeOrigin(origin string) (string, error) {
	if origin == "" {
		return "", nil
	}
	u, err := url.Parse(origin)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" ||
		(u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return "", fmt.Errorf("webclient: APIOrigin %q: want an origin such as http://localhost:3000 (scheme, host and port only)", origin)
	}
	return u.Scheme + "://" + u.Host, nil
}

// version hashes everything that makes the served app what it is.
func version(extra, origin string, assets map[string]*asset) string {
	h := sha256.New()
	fmt.Fprintf(h, "tandem\x00%s\x00%s\x00", extra, origin)
	names := make([]string, 0, len(assets))
	for name := range assets {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		fmt.Fprintf(h, "%s\x00%x\x00", name, assets[name].sum)
	}
	return hex.EncodeToString(h.Sum(nil))[:20]
}

// resolver tells go-app where /web/ resources are: on this handler, with
// the ?v=hash that lets browsers cache them for good. It is deliberately
// not an http.Handler, so that go-app never serves /web/ itself.
type resolver struct {
	assets map[string]*asset
}

func (r resolver) Resolve(location string) string {
	if location == "" || location == "/" {
		return "/"
	}
	if strings.HasPrefix(location, "http://") || strings.HasPrefix(location, "https://") {
		return location
	}
	p := "/" + strings.Trim(location, "/")
	if p != "/web" && !strings.HasPrefix(p, "/web/") {
		return location
	}
	if a, ok := r.assets[strings.TrimPrefix(p, "/web/")]; ok {
		return p + "?v=" + a.hash
	}
	return p
}
