package server

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"math"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/tandem-go/tandem/server/sessionio"
	"github.com/tandem-go/tandem/server/store"
	"github.com/tandem-go/tandem/server/store/bolt"
	"github.com/tandem-go/tandem/server/store/memory"
	"github.com/tandem-go/tandem/server/store/redis"
	"github.com/tandem-go/tandem/server/web"
)

// Config is the whole configuration of a tandem server. Each field matches
// one environment variable (and flag) of server/cmd/tandem, named in its
// comment; the zero value of a field means its documented default.
type Config struct {
	// Addr is the API listener, host:port (PORT gives ":PORT").
	// Default ":3000". Use "127.0.0.1:0" in tests.
	Addr string
	// SPAAddr, when set, also serves the page on this address, configured
	// to call PublicURL cross-origin (SPA_PORT gives ":SPA_PORT").
	SPAAddr string
	// ListenHost is the host that Addr and SPAAddr listen on when they name
	// none (LISTEN_HOST): an IP address, or localhost. Default: every
	// interface. "127.0.0.1" (or "::1") keeps the server off the network,
	// as go tool task dev and cluster do.
	ListenHost string
	// Listener and SPAListener, when set, are served instead of listening
	// on Addr and SPAAddr (which default to their addresses): a test
	// listens on 127.0.0.1:0, knows the address before the server starts,
	// and hands the listener over, so no other test can take the port in
	// between. The server closes them.
	Listener, SPAListener net.Listener
	// PublicURL is the API origin the cross-origin page calls (PUBLIC_URL).
	// Default http://localhost:<API port>.
	PublicURL string
	// CORSOrigins may call the API and open sockets from another origin,
	// with credentials (CORS_ORIGINS). Default http://localhost:<SPA port>
	// when SPAAddr is set.
	CORSOrigins []string

	// Store selects the session store (SESSION_STORE): "memory",
	// "bolt:PATH" or "redis://[:password@]host:port/db" ("rediss://" for
	// TLS, "unix:///path/to/redis.sock?db=N" for a Unix socket), or a
	// Sentinel or Cluster form (redis.NewClient). Default
	// "bolt:<DataDir>/sessions.db". A Redis store also switches Socket.IO
	// to the Redis adapter, so room emits and disconnects reach every node.
	Store string
	// RedisPrefix is put before every Redis key and Socket.IO channel
	// (REDIS_PREFIX), so one Redis can serve several apps. Default
	// "tandem:".
	RedisPrefix string
	// Backend, when set, is used instead of opening Store: for embedding
	// tandem with a store of your own, and for tests. The server closes it.
	// A Redis URL in Store then still selects the Socket.IO Redis adapter.
	Backend store.Store
	// DataDir keeps the bolt file and the generated secret (DATA_DIR).
	// Default "./data".
	DataDir string
	// SessionSecrets sign the session cookie, first signs, all verify
	// (SESSION_SECRET, comma-separated). Default: a random key generated
	// once and kept in DataDir/session.key.
	SessionSecrets []string
	// SessionTTL is a session's idle lifetime (SESSION_TTL). Default 24h.
	SessionTTL time.Duration
	// SessionMaxAge is a session's absolute lifetime, from sign-in or
	// creation, never extended (SESSION_MAX_AGE). Default 168h.
	SessionMaxAge time.Duration
	// SessionCheckInterval is how often sockets' sessions are checked
	// (SESSION_CHECK_INTERVAL). Default 30s.
	SessionCheckInterval time.Duration
	// SessionCreateBurst and SessionCreateRate bound the sessions one client
	// address can create (SESSION_CREATE_BURST, SESSION_CREATE_RATE per
	// second). Defaults 200 and 2.
	SessionCreateBurst int
	SessionCreateRate  float64
	// SocketEventBurst and SocketEventRate bound the events one socket may
	// send (SOCKET_EVENT_BURST, SOCKET_EVENT_RATE per second); excess events
	// are acked with an error, and a socket that keeps flooding is
	// disconnected. Defaults 200 and 100.
	SocketEventBurst int
	SocketEventRate  float64
	// SocketsPerSession and SocketsPerClient cap the sockets one session,
	// and one client address, may have open on this server at once
	// (SOCKETS_PER_SESSION, SOCKETS_PER_CLIENT); a socket over a cap gets a
	// connect error. Defaults 32 and 128; sessionio.Off (-1) turns a cap
	// off.
	SocketsPerSession int
	SocketsPerClient  int
	// EngineConnsPerClient caps the Engine.IO connections one client
	// address may have open on this server at once, from the handshake to
	// the close, whether or not they join a namespace
	// (ENGINE_CONNS_PER_CLIENT); a handshake over it gets 429. Default
	// sessionio.DefaultEngineConnsPerClient (128); sessionio.Off turns it
	// off.
	EngineConnsPerClient int
	// SessionCreateGlobalRate bounds the sessions all clients together can
	// create per second (SESSION_CREATE_GLOBAL_RATE), with a burst of ten
	// seconds' worth (at least 1000). Default 100; sessionio.Off (-1) turns
	// the bound off.
	SessionCreateGlobalRate float64

	// CookieSecure forces the cookie's Secure flag (COOKIE_SECURE). It is
	// also on when PublicURL is https (the server sits behind a TLS proxy
	// and never sees TLS itself); otherwise it is set on TLS requests.
	// A Secure cookie is named with the __Host- prefix (see cookieName).
	CookieSecure bool
	// CookieSameSite is "lax", "strict" or "none" (COOKIE_SAMESITE).
	// Default "lax"; "none" requires CookieSecure.
	CookieSameSite string

	// MaxSocketPayload bounds one Socket.IO message in bytes
	// (MAX_SOCKET_PAYLOAD). Default 1 MB.
	MaxSocketPayload int64
	// BodyReadTimeout bounds the time a client may take to send a request
	// body once its headers arrived (BODY_READ_TIMEOUT). Default 10s.
	BodyReadTimeout time.Duration
	// MaxConnsPerClient bounds the connections one client address may hold
	// open at once on each listener (MAX_CONNS_PER_CLIENT); trusted proxies
	// are not bounded. Default 512.
	MaxConnsPerClient int
	// TrustedProxies are the CIDRs (or addresses) of the reverse proxies
	// whose X-Forwarded-For names the client (TRUSTED_PROXIES). Default
	// none: the client is the TCP peer.
	TrustedProxies []string

	// AdminAddr, when set, is the operator's listener, host:port
	// (ADMIN_ADDR): Prometheus metrics at /metrics and Go's profiles at
	// /debug/pprof/, never served on Addr or SPAAddr. Default off. Without
	// AdminToken it must be a loopback address (127.0.0.1, ::1,
	// localhost).
	AdminAddr string
	// AdminListener, when set, is served instead of listening on
	// AdminAddr (as Listener is for Addr).
	AdminListener net.Listener
	// AdminToken, when set, lets AdminAddr be any address and makes every
	// request to it need "Authorization: Bearer <AdminToken>" (ADMIN_TOKEN);
	// anything else gets 401. At least 16 characters.
	AdminToken string

	// WebDir holds the built client: app.wasm, the socket.io client, css
	// and icons (WEB_DIR). Default "public/web".
	WebDir string

	// Logger receives every log line. Default slog.Default().
	Logger *slog.Logger
}

// ConfigError names the configuration variable at fault and the fix.
type ConfigError struct {
	Var     string // environment variable, e.g. "SESSION_STORE"
	Problem string
}

func (e *ConfigError) Error() string { return e.Var + ": " + e.Problem }

func configErr(v, format string, args ...any) error {
	return &ConfigError{Var: v, Problem: fmt.Sprintf(format, args...)}
}

// resolved is a Config with its defaults filled in and its values parsed.
type resolved struct {
	Config
	sameSite http.SameSite
	origins  []string // CORS_ORIGINS, normalized
	public   string   // PUBLIC_URL's origin
	client   *web.ClientAddr
	// cookieName is the session cookie's name (CookieName): __Host-tandem.sid when the
	// cookie is always Secure. Browsers accept a __Host- cookie only if it
	// is Secure, has Path=/ and no Domain, so a sibling subdomain (or a
	// plain-http page of the same host) cannot set one that shadows ours:
	// without the prefix, the first cookie with a valid signature wins and
	// such a cookie could be tossed in ahead of it.
	cookieName string
}

func (cfg Config) resolve() (*resolved, error) {
	r := &resolved{Config: cfg}
	if r.Addr == "" && r.Listener != nil {
		r.Addr = r.Listener.Addr().String()
	}
	if r.SPAAddr == "" && r.SPAListener != nil {
		r.SPAAddr = r.SPAListener.Addr().String()
	}
	if r.Addr == "" {
		r.Addr = ":3000"
	}
	if h := r.ListenHost; h != "" && h != "localhost" && net.ParseIP(h) == nil {
		return nil, configErr("LISTEN_HOST", "%q is not an IP address or localhost; use 127.0.0.1 for loopback only", h)
	}
	host, port, err := net.SplitHostPort(r.Addr)
	if err != nil {
		return nil, configErr("PORT", "%q is not host:port: %v", r.Addr, err)
	}
	if host == "" && r.ListenHost != "" && r.Listener == nil {
		r.Addr = net.JoinHostPort(r.ListenHost, port)
	}
	if r.SPAAddr != "" {
		spaHost, spaPort, err := net.SplitHostPort(r.SPAAddr)
		if err != nil {
			return nil, configErr("SPA_PORT", "%q is not host:port: %v", r.SPAAddr, err)
		}
		if spaHost == "" && r.ListenHost != "" && r.SPAListener == nil {
			r.SPAAddr = net.JoinHostPort(r.ListenHost, spaPort)
		}
		if r.CORSOrigins == nil && spaPort != "0" {
			r.CORSOrigins = []string{"http://localhost:" + spaPort}
		}
	}
	if r.PublicURL == "" && port != "0" {
		r.PublicURL = "http://localhost:" + port
	}
	if r.PublicURL != "" {
		u, err := url.Parse(r.PublicURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, configErr("PUBLIC_URL", "%q is not an absolute http(s) URL; use e.g. http://localhost:%s", r.PublicURL, port)
		}
		r.public = strings.ToLower(u.Scheme + "://" + u.Host)
	}
	for _, o := range r.CORSOrigins {
		n, err := sessionio.NormalizeOrigin(o)
		if err != nil {
			return nil, configErr("CORS_ORIGINS", "%v", err)
		}
		r.origins = append(r.origins, n)
	}
	if r.DataDir == "" {
		r.DataDir = "data"
	}
	if r.Store == "" {
		r.Store = "bolt:" + filepath.Join(r.DataDir, "sessions.db")
	}
	if r.RedisPrefix == "" {
		r.RedisPrefix = "tandem:"
	}
	if r.Backend == nil {
		// Here, not in openStore: New generates and keeps a signing key
		// before it opens the store, and a typo must not leave a key file
		// and a log line behind it.
		if err := checkStore(r.Store); err != nil {
			return nil, err
		}
	}
	switch {
	case r.SessionTTL == 0:
		r.SessionTTL = sessionio.DefaultTTL
	case r.SessionTTL < time.Second:
		return nil, configErr("SESSION_TTL", "%v is too short; use a duration of at least 1s, e.g. 24h", r.SessionTTL)
	}
	switch {
	case r.SessionMaxAge == 0:
		r.SessionMaxAge = sessionio.DefaultMaxAge
	case r.SessionMaxAge < time.Second:
		return nil, configErr("SESSION_MAX_AGE", "%v is too short; use a duration of at least 1s, e.g. 168h", r.SessionMaxAge)
	}
	switch {
	case r.SessionCheckInterval == 0:
		r.SessionCheckInterval = sessionio.DefaultCheckInterval
	case r.SessionCheckInterval < 100*time.Millisecond:
		return nil, configErr("SESSION_CHECK_INTERVAL", "%v is too short; use at least 100ms, e.g. 30s", r.SessionCheckInterval)
	}
	if r.SessionCreateBurst < 0 {
		return nil, configErr("SESSION_CREATE_BURST", "%d must be positive", r.SessionCreateBurst)
	}
	if r.SessionCreateRate < 0 || !finite(r.SessionCreateRate) {
		return nil, configErr("SESSION_CREATE_RATE", "%v must be positive", r.SessionCreateRate)
	}
	if r.SocketEventBurst < 0 {
		return nil, configErr("SOCKET_EVENT_BURST", "%d must be positive", r.SocketEventBurst)
	}
	if r.SocketEventRate < 0 || !finite(r.SocketEventRate) {
		return nil, configErr("SOCKET_EVENT_RATE", "%v must be positive", r.SocketEventRate)
	}
	if r.SocketsPerSession < 0 && r.SocketsPerSession != sessionio.Off {
		return nil, configErr("SOCKETS_PER_SESSION", "%d must be positive, or off", r.SocketsPerSession)
	}
	if r.SocketsPerClient < 0 && r.SocketsPerClient != sessionio.Off {
		return nil, configErr("SOCKETS_PER_CLIENT", "%d must be positive, or off", r.SocketsPerClient)
	}
	if r.EngineConnsPerClient < 0 && r.EngineConnsPerClient != sessionio.Off {
		return nil, configErr("ENGINE_CONNS_PER_CLIENT", "%d must be positive, or off", r.EngineConnsPerClient)
	}
	if r.SessionCreateGlobalRate < 0 && r.SessionCreateGlobalRate != sessionio.Off || !finite(r.SessionCreateGlobalRate) {
		return nil, configErr("SESSION_CREATE_GLOBAL_RATE", "%v must be positive, or off", r.SessionCreateGlobalRate)
	}
	if strings.HasPrefix(r.public, "https://") {
		r.CookieSecure = true
	}
	r.cookieName = CookieName
	if r.CookieSecure {
		r.cookieName = "__Host-" + CookieName
	}
	switch strings.ToLower(r.CookieSameSite) {
	case "", "lax":
		r.sameSite = http.SameSiteLaxMode
	case "strict":
		r.sameSite = http.SameSiteStrictMode
	case "none":
		if !r.CookieSecure {
			return nil, configErr("COOKIE_SAMESITE", "none requires Secure cookies; set COOKIE_SECURE=true or an https PUBLIC_URL (and serve over HTTPS)")
		}
		r.sameSite = http.SameSiteNoneMode
	default:
		return nil, configErr("COOKIE_SAMESITE", "%q is not lax, strict or none", r.CookieSameSite)
	}
	switch {
	case r.MaxSocketPayload == 0:
		r.MaxSocketPayload = 1_000_000
	case r.MaxSocketPayload < 1024:
		return nil, configErr("MAX_SOCKET_PAYLOAD", "%d bytes is too small; use at least 1024", r.MaxSocketPayload)
	}
	switch {
	case r.BodyReadTimeout == 0:
		r.BodyReadTimeout = 10 * time.Second
	case r.BodyReadTimeout < 100*time.Millisecond:
		return nil, configErr("BODY_READ_TIMEOUT", "%v is too short; use at least 100ms, e.g. 10s", r.BodyReadTimeout)
	}
	switch {
	case r.MaxConnsPerClient == 0:
		r.MaxConnsPerClient = 512
	case r.MaxConnsPerClient < 0:
		return nil, configErr("MAX_CONNS_PER_CLIENT", "%d must be positive", r.MaxConnsPerClient)
	}
	trusted, err := web.ParseTrustedProxies(r.TrustedProxies)
	if err != nil {
		return nil, configErr("TRUSTED_PROXIES", "%v", err)
	}
	r.client = web.NewClientAddr(trusted)
	if r.WebDir == "" {
		r.WebDir = filepath.Join("public", "web")
	}
	if err := r.checkAdmin(); err != nil {
		return nil, err
	}
	if r.Logger == nil {
		r.Logger = slog.Default()
	}
	return r, nil
}

// allowedOrigins is the one allowlist behind CORS, cross-origin protection
// and the socket Origin check: CORS_ORIGINS plus PUBLIC_URL's origin.
func (r *resolved) allowedOrigins() []string {
	list := append([]string(nil), r.origins...)
	if r.public != "" {
		list = append(list, r.public)
	}
	return list
}

// openStore opens the store named by SESSION_STORE.
func (r *resolved) openStore() (store.Store, error) {
	if r.Backend != nil {
		return r.Backend, nil
	}
	if err := checkStore(r.Store); err != nil {
		return nil, err
	}
	if r.Store == "memory" {
		return memory.New(), nil
	}
	if isRedis(r.Store) {
		st, err := redis.Open(r.Store, redis.Options{Prefix: r.RedisPrefix + "session:"})
		if err != nil {
			return nil, configErr("SESSION_STORE", "%v", err)
		}
		return st, nil
	}
	st, err := bolt.Open(strings.TrimPrefix(r.Store, "bolt:"), bolt.Options{})
	if err != nil {
		return nil, configErr("SESSION_STORE", "%v", err)
	}
	return st, nil
}

// checkStore refuses a SESSION_STORE that names no store openStore can
// open, without touching anything.
func checkStore(s string) error {
	switch {
	case s == "memory":
		return nil
	case strings.HasPrefix(s, "bolt:"):
		if strings.TrimPrefix(s, "bolt:") == "" {
			return configErr("SESSION_STORE", "bolt: needs a file path, e.g. bolt:./data/sessions.db")
		}
		return nil
	case isRedis(s):
		if err := redis.Check(s); err != nil {
			return configErr("SESSION_STORE", "%v; use e.g. redis://:password@host:6379/0 (rediss:// for TLS), redis+sentinel://host:26379/0?master_name=NAME&addr=host2:26379 or redis+cluster://host:7000?addr=host2:7000", redactErr(err, s))
		}
		return nil
	default:
		return configErr("SESSION_STORE", "%q is not a store; use memory, bolt:PATH or redis://host:port/db", s)
	}
}

func isRedis(s string) bool { return redis.IsURL(s) }

// redactErr is err's message without the password of url, which a parse
// error may quote.
func redactErr(err error, raw string) string {
	msg := err.Error()
	if u, perr := url.Parse(raw); perr == nil && u.User != nil {
		if pw, ok := u.User.Password(); ok && pw != "" {
			msg = strings.ReplaceAll(msg, pw, "xxxxx")
		}
		if name := u.User.Username(); name != "" {
			msg = strings.ReplaceAll(msg, name, "xxxxx")
		}
	}
	return msg
}

// signingKeys returns SESSION_SECRET's keys, or the key kept in the data
// directory, generated on first use.
func (r *resolved) signingKeys() ([][]byte, error) {
	var keys [][]byte
	for i, s := range r.SessionSecrets {
		s = strings.TrimSpace(s)
		if len(s) < sessionio.MinKeyLen {
			return nil, configErr("SESSION_SECRET", "key %d is %d characters; use at least %d random characters (e.g. openssl rand -hex 32)", i+1, len(s), sessionio.MinKeyLen)
		}
		keys = append(keys, []byte(s))
	}
	if len(keys) > 0 {
		return keys, nil
	}
	if r.Store == "memory" && r.Backend == nil {
		// Nothing outlives the process, so neither need the key.
		var raw [32]byte
		_, _ = rand.Read(raw[:])
		r.Logger.Info("SESSION_SECRET is not set: signing cookies with a random key that lives as long as the memory store")
		return [][]byte{[]byte(hex.EncodeToString(raw[:]))}, nil
	}
	path := filepath.Join(r.DataDir, "session.key")
	b, err := os.ReadFile(path)
	switch {
	case err == nil:
		// A key others can read lets them forge any session: refuse it
		// rather than warn, since a warning is read after the fact.
		if fi, err := os.Stat(path); err == nil && fi.Mode().Perm()&0o077 != 0 {
			return nil, configErr("SESSION_SECRET", "%s is open to other users (mode %04o); run chmod 600 %s (and consider a new key), or set SESSION_SECRET", path, fi.Mode().Perm(), path)
		}
		key := strings.TrimSpace(string(b))
		if len(key) < sessionio.MinKeyLen {
			return nil, configErr("SESSION_SECRET", "%s holds a key of %d characters; delete the file to generate a new one, or set SESSION_SECRET", path, len(key))
		}
		r.Logger.Info("SESSION_SECRET is not set: using the signing key kept in the data directory", "path", path)
		return [][]byte{[]byte(key)}, nil
	case errors.Is(err, fs.ErrNotExist):
		var raw [32]byte
		_, _ = rand.Read(raw[:])
		key := hex.EncodeToString(raw[:])
		if err := os.MkdirAll(r.DataDir, 0o700); err != nil {
			return nil, configErr("DATA_DIR", "cannot create %s: %v", r.DataDir, err)
		}
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			return nil, configErr("DATA_DIR", "cannot keep a generated key in %s: %v; set SESSION_SECRET instead", path, err)
		}
		_, werr := f.WriteString(key + "\n")
		if cerr := f.Close(); werr == nil {
			werr = cerr
		}
		if werr != nil {
			return nil, configErr("DATA_DIR", "cannot write %s: %v", path, werr)
		}
		r.Logger.Info("SESSION_SECRET is not set: generated a signing key and kept it in the data directory (mode 0600); set SESSION_SECRET to share one key between nodes", "path", path)
		return [][]byte{[]byte(key)}, nil
	default:
		return nil, configErr("DATA_DIR", "cannot read %s: %v", path, err)
	}
}

// sessionCreateGlobalBurst is the burst of the global creation bound: ten
// seconds at its rate, at least sessionio.DefaultCreateGlobalBurst.
func (r *resolved) sessionCreateGlobalBurst() int {
	return max(sessionio.DefaultCreateGlobalBurst, int(10*r.SessionCreateGlobalRate))
}

// CookieName is the app's session cookie ("__Host-" + CookieName when
// Secure); the library's own default (sessionio.DefaultCookieName) is a
// neutral one.
const CookieName = "tandem.sid"

// finite reports whether f is neither NaN nor infinite: NaN passes every
// "< 0" check and Inf every bound, and either would turn a limit off.
func finite(f float64) bool { return !math.IsNaN(f) && !math.IsInf(f, 0) }

// minAdminToken is the shortest ADMIN_TOKEN accepted.
const minAdminToken = 16

// checkAdmin refuses an operator's listener that anyone could reach: a
// non-loopback ADMIN_ADDR (an empty host is every interface) needs
// ADMIN_TOKEN.
func (r *resolved) checkAdmin() error {
	if r.AdminAddr == "" && r.AdminListener != nil {
		r.AdminAddr = r.AdminListener.Addr().String()
	}
	if r.AdminToken != "" && len(r.AdminToken) < minAdminToken {
		return configErr("ADMIN_TOKEN", "is %d characters; use at least %d random characters (e.g. openssl rand -hex 32)", len(r.AdminToken), minAdminToken)
	}
	if r.AdminAddr == "" {
		if r.AdminToken != "" {
			return configErr("ADMIN_TOKEN", "is set but ADMIN_ADDR is not; set ADMIN_ADDR (e.g. 127.0.0.1:9464) or unset ADMIN_TOKEN")
		}
		return nil
	}
	host, _, err := net.SplitHostPort(r.AdminAddr)
	if err != nil {
		return configErr("ADMIN_ADDR", "%q is not host:port, e.g. 127.0.0.1:9464: %v", r.AdminAddr, err)
	}
	if r.AdminToken == "" && !isLoopback(host) {
		return configErr("ADMIN_ADDR", "%q is not a loopback address; use 127.0.0.1:PORT, or set ADMIN_TOKEN to serve it elsewhere behind a bearer token", r.AdminAddr)
	}
	return nil
}

func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
