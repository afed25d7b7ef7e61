package sessionio

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/sessions"
	"github.com/zishang520/socket.io/servers/socket/v3"

	"github.com/tandem-go/tandem/server/store"
)

// Defaults for the zero values of Config.
const (
	DefaultCookieName        = "sid"
	DefaultTTL               = 24 * time.Hour
	DefaultMaxAge            = 168 * time.Hour
	DefaultRenewGrace        = 10 * time.Second
	DefaultEndEvent          = "session ended"
	DefaultCheckInterval     = 30 * time.Second
	DefaultCreateBurst       = 200
	DefaultCreateRate        = 2.0
	DefaultCreateGlobalBurst = 1000
	DefaultCreateGlobalRate  = 100.0
	DefaultStoreTimeout      = 5 * time.Second
)

// Off turns off a Config feature whose zero value means its default:
// CheckInterval, CreateRate, CreateGlobalRate, SocketsPerSession,
// SocketsPerClient.
const Off = -1

// MinKeyLen is the shortest signing key New accepts.
const MinKeyLen = 32

// Errors a caller can test for with errors.Is.
var (
	// ErrSessionGone is returned when a session is not in the store any
	// more: never created, deleted, expired, renewed, or holding data that
	// cannot be read. It matches store.ErrNotFound too.
	ErrSessionGone error = goneError{}
	// ErrTooManySessions is returned when a client address has created more
	// sessions than Config.CreateBurst and Config.CreateRate allow (or all
	// clients more than CreateGlobalBurst and CreateGlobalRate). The error
	// returned is a *RetryAfterError, which matches it.
	ErrTooManySessions = errors.New("sessionio: too many new sessions from this address")
	// ErrForbiddenOrigin is the error of a socket request refused for its
	// Origin (see Config.AllowedOrigins).
	ErrForbiddenOrigin = errors.New("sessionio: origin not allowed")
	// ErrStoreUnavailable wraps the store error of a socket handshake that
	// could not read or create its session, and of a socket packet's reload.
	ErrStoreUnavailable = errors.New("sessionio: session store unavailable")
	// ErrNotAttached is returned by the methods that need a Socket.IO server
	// (Emit, Disconnect, Renew's socket moves) before Attach.
	ErrNotAttached = errors.New("sessionio: no Socket.IO server attached")
	// ErrAlreadyAttached is returned by a second Attach.
	ErrAlreadyAttached = errors.New("sessionio: a Socket.IO server is already attached")
	// ErrClosed is returned by Attach after Close or Shutdown.
	ErrClosed = errors.New("sessionio: manager closed")
	// ErrSessionRenewed is returned for a request whose cookie names a
	// session that got a new ID (SignIn, Renew) less than
	// Config.RenewGrace ago: the request was sent before the renewal's
	// answer reached its client, which now holds the new cookie. Nothing
	// was created and no cookie set; answer it with a refusal the client
	// retries (tandem: 409 {"error":"session renewed"}). A socket
	// handshake that carries it is refused with 409. It matches
	// store.ErrRenewed, and not ErrSessionGone.
	ErrSessionRenewed error = renewedError{}
)

type renewedError struct{}

func (renewedError) Error() string        { return "sessionio: session renewed" }
func (renewedError) Is(target error) bool { return target == store.ErrRenewed }

// goneError is ErrSessionGone: it also matches store.ErrNotFound, so code
// written against the store keeps working.
type goneError struct{}

func (goneError) Error() string        { return "sessionio: session gone" }
func (goneError) Is(target error) bool { return target == store.ErrNotFound }

// Config configures a Manager. Zero values get the documented defaults.
type Config struct {
	// Store keeps the sessions. Required.
	Store store.Store

	// Keys sign the session cookie: the first signs, every one verifies, so a
	// new key can be put first and the old one dropped once its cookies are
	// gone. At least one key of at least MinKeyLen bytes is required.
	Keys [][]byte

	// TTL is the idle lifetime of a session: it ends TTL after the last
	// request, socket packet or change that touched it. Default 24h.
	TTL time.Duration
	// MaxAge is the absolute lifetime of a session: it ends MaxAge after it
	// was created or signed in (SignIn), however busy, never extended. The
	// store enforces it, with TTL. Default DefaultMaxAge (7 days).
	MaxAge time.Duration
	// RenewGrace is how long the old ID of a renewed session (SignIn,
	// Renew) stays a tombstone: requests and handshakes that carry it get
	// ErrSessionRenewed instead of a new session. Default
	// DefaultRenewGrace; Off makes the old ID plain "no session" at once.
	RenewGrace time.Duration
	// EndEvent is the event End sends to a session's sockets, with an
	// EndNotice, before it disconnects them; the periodic check and the
	// reload before each packet send it with EndExpired for a session past
	// its lifetime. Default DefaultEndEvent ("session ended").
	EndEvent string

	// Cookie sets the attributes of the session cookie.
	Cookie Cookie

	// AllowedOrigins are the other origins whose pages may open sockets with
	// the user's cookie. A page from the server's own origin always may:
	// the request's own scheme and Host, PublicURL's origin, and, from a
	// TrustProxy request, the X-Forwarded-Proto and X-Forwarded-Host it
	// names. A request with no Origin (and no Sec-Fetch-Site) is allowed:
	// it does not come from a page on another site (browsers send Origin
	// on every cross-origin request and every WebSocket handshake), and
	// refusing it would only refuse non-browser clients.
	AllowedOrigins []string

	// PublicURL is the server's own public URL (https://app.example.com)
	// when it differs from what requests show, behind a TLS-terminating
	// proxy: its origin is always allowed, and an https PublicURL makes
	// the cookie Secure.
	PublicURL string
	// TrustProxy, if set, tells whether a request came through a proxy
	// whose X-Forwarded-Proto and X-Forwarded-Host may be trusted to name
	// the server's own origin (for example: the TCP peer is in
	// TRUSTED_PROXIES). Default: never.
	TrustProxy func(*http.Request) bool

	// CheckInterval is how often every socket's session is checked in the
	// store; a socket whose session is gone gets its connection closed.
	// Default 30s; Off turns the periodic check off (sockets still notice
	// at their next packet).
	CheckInterval time.Duration

	// CreateBurst and CreateRate bound the sessions one client address can
	// make the server create: CreateBurst at once, then CreateRate per
	// second. The prefixes around the address are bounded too: an IPv6 /56
	// at twice these, a /48 and an IPv4 /24 at four times, and none at more
	// than half of CreateGlobalBurst and CreateGlobalRate. Defaults 200 and
	// 2; CreateRate Off turns this bound off.
	CreateBurst int
	CreateRate  float64
	// CreateGlobalBurst and CreateGlobalRate bound the sessions all clients
	// together can make the server create, whatever their addresses.
	// Defaults 1000 and 100 per second; CreateGlobalRate Off turns this
	// bound off.
	CreateGlobalBurst int
	CreateGlobalRate  float64
	// ClientIP names the client address of a request for the per-address
	// bound. Default: the TCP peer address (forwarding headers can be
	// forged).
	ClientIP func(*http.Request) string

	// StoreTimeout bounds each store call the manager makes on its own,
	// outside an HTTP request: the reload before each socket packet, a
	// socket's connect, the periodic checks. Calls made for the app use
	// the app's context: Manager.Update, SignIn and Get the request's (give
	// requests a deadline to bound them), Session.Update the ctx it is
	// given. Default 5s.
	StoreTimeout time.Duration

	// Logger receives the manager's logs; session IDs never appear in them.
	// Default slog.Default().
	Logger *slog.Logger

	// OnCreate, if set, is called with the key of every session the
	// manager creates (by Update, Save, SignIn without a session, or a
	// socket handshake), after the store has it, on the goroutine of the
	// call that created it (the HTTP handler's, or the Engine.IO
	// handshake's): it must not block. Renew and SignIn of an existing
	// session do not create one: they rename it.
	OnCreate func(key string)
	// OnGone, if set, is called with the key of a session the manager finds
	// gone (missing, expired, deleted, unreadable, or the old key of a
	// renewed session) when a cookie, a socket or the periodic check names
	// it. It may be called more than once for one session, from any
	// goroutine, and must not block.
	OnGone func(key string)

	// ErrorHandler writes the answer to a socket request the manager
	// refuses: status 403 with ErrForbiddenOrigin, 429 with
	// ErrTooManySessions (Retry-After is already set), 503 with an error
	// wrapping ErrStoreUnavailable. Test err with errors.Is; its text may
	// hold internal details, already logged, that clients should not see.
	// Default: http.Error with the status text and a short reason.
	ErrorHandler func(w http.ResponseWriter, r *http.Request, status int, err error)

	// EventBurst and EventRate bound the events one socket may send:
	// EventBurst at once, then EventRate per second. An event over the
	// limit is acked with an EventRefusal (or dropped when it has no ack);
	// a socket with more than EventBurst refused events in a row is
	// disconnected. Defaults DefaultEventBurst and DefaultEventRate; a
	// negative value turns the limit off.
	EventBurst int
	EventRate  float64

	// SocketsPerSession and SocketsPerClient cap the sockets one session,
	// and one client address (ClientIP), may have open on this node at
	// once. A socket over a cap is refused with a connect error
	// (ErrTooManySessionSockets, ErrTooManyClientSockets); a handshake
	// from a client address at its cap creates no session. Defaults
	// DefaultSocketsPerSession and DefaultSocketsPerClient; Off turns a cap
	// off.
	SocketsPerSession int
	SocketsPerClient  int

	// Users configures what the manager does for signed-in sessions: the
	// bound on a user's sessions and the devices-changed event.
	Users UsersConfig

	// Report, if set, is told what the manager does: sessions created and
	// ended, refusals, store calls and their durations, events received
	// and delivered (see Reporter). Default: nothing is reported.
	Report Reporter

	// EngineConnsPerClient caps the Engine.IO connections one client
	// address (ClientIP) may have open on this node at once, counted from
	// the handshake to the connection's close whether or not it ever joins
	// a namespace. A handshake over it is refused with 429 and
	// ErrTooManyClientConns, and creates no session. Default
	// DefaultEngineConnsPerClient; Off turns the cap off.
	EngineConnsPerClient int
}

// Cookie holds the attributes of the session cookie. It is always HttpOnly.
// It has no Max-Age by default: the browser keeps it for its session, and
// the store decides when the session ends.
type Cookie struct {
	// Name is the cookie's name. Default DefaultCookieName ("sid"). A name starting with
	// "__Host-" requires Secure, Path "/" and no Domain.
	Name string
	// Path is the cookie's Path. Default "/". Sockets only get the session
	// if the Socket.IO path is under it.
	Path string
	// Domain is the cookie's Domain; empty (the default) makes it a
	// host-only cookie.
	Domain string
	// Secure forces the Secure attribute; otherwise the cookie is Secure on
	// TLS requests only.
	Secure bool
	// SameSite is the SameSite attribute. Default http.SameSiteLaxMode.
	// http.SameSiteNoneMode requires Secure.
	SameSite http.SameSite
	// Partitioned sets the Partitioned attribute (CHIPS); it requires
	// Secure.
	Partitioned bool
}

// Manager shares sessions between HTTP handlers and Socket.IO sockets.
//
// For HTTP it is a gorilla sessions.Store (use it with echo-contrib/session
// or gorilla directly) whose cookie holds only a signed, opaque session ID.
// For Socket.IO, Attach wires a server so that every socket gets the session
// of its handshake (FromSocket) and joins a room named after it.
type Manager struct {
	cfg     Config
	signer  signer
	origins originPolicy
	limiter *createLimiter
	caps    *socketCaps
	conns   *connCaps
	log     *slog.Logger
	report  Reporter // never nil: NopReporter when Config.Report is

	// locks serialize changes of one session on this node, so the
	// notifications sent after each commit leave in commit order: one lock
	// per session key, made on demand and dropped when no one holds or
	// waits for it.
	locksMu sync.Mutex
	locks   map[string]*keyLock

	io            atomic.Pointer[socket.Server]
	adapter       socket.AdapterConstructor // io's adapter at Attach
	adapterWarned atomic.Bool
	public        string      // PublicURL's origin, "" when unset
	clustered     atomic.Bool // io's adapter reaches other nodes
	floors        floors      // see cluster.go
	committing    committing

	resyncMu     sync.Mutex
	resyncFns    []func(key string, v Values) []Event // guarded by resyncMu
	resyncQueued atomic.Bool                          // a Resync pass is waiting to start
	resyncRun    sync.Mutex                           // held by the running Resync pass

	relayKeys    [][]byte     // see cluster.go
	relayDropped atomic.Int64 // relay messages that failed verification
	unrelayed    unrelayed    // see catchup.go

	mu       sync.Mutex
	live     map[string]*Session // by key: sessions with sockets on this node
	attached bool                // Attach has begun; guarded by mu
	closed   bool                // Shutdown has begun; guarded by mu
	checking bool                // the check loop was started; guarded by mu

	sockets sync.Map // *socket.Socket -> *Session, for FromSocket
	users   userHub  // see users.go

	stop chan struct{} // closed by Shutdown
	done chan struct{} // closed once the background work has ended
}

var _ sessions.Store = (*Manager)(nil)

// New checks cfg, fills in defaults and returns a Manager.
func New(cfg Config) (*Manager, error) {
	if cfg.Store == nil {
		return nil, errors.New("sessionio: Config.Store is required")
	}
	if len(cfg.Keys) == 0 {
		return nil, errors.New("sessionio: Config.Keys needs at least one signing key")
	}
	for i, k := range cfg.Keys {
		if len(k) < MinKeyLen {
			return nil, fmt.Errorf("sessionio: signing key %d is %d bytes; use at least %d random bytes", i+1, len(k), MinKeyLen)
		}
	}
	if cfg.TTL == 0 {
		cfg.TTL = DefaultTTL
	}
	if cfg.MaxAge == 0 {
		cfg.MaxAge = DefaultMaxAge
	}
	switch cfg.RenewGrace {
	case 0:
		cfg.RenewGrace = DefaultRenewGrace
	case Off:
		cfg.RenewGrace = 0
	}
	if cfg.EndEvent == "" {
		cfg.EndEvent = DefaultEndEvent
	}
	if cfg.TrustProxy == nil {
		cfg.TrustProxy = func(*http.Request) bool { return false }
	}
	c := &cfg.Cookie
	if c.Name == "" {
		c.Name = DefaultCookieName
	}
	if c.Path == "" {
		c.Path = "/"
	}
	if c.SameSite == 0 || c.SameSite == http.SameSiteDefaultMode {
		c.SameSite = http.SameSiteLaxMode
	}
	switch {
	case !validCookieName(c.Name):
		return nil, fmt.Errorf("sessionio: Config.Cookie.Name %q is not a valid cookie name", c.Name)
	case c.SameSite == http.SameSiteNoneMode && !c.Secure:
		return nil, errors.New("sessionio: SameSite=None cookies must be Secure; set Config.Cookie.Secure")
	case c.Partitioned && !c.Secure:
		return nil, errors.New("sessionio: Partitioned cookies must be Secure; set Config.Cookie.Secure")
	case strings.HasPrefix(c.Name, "__Host-") && (!c.Secure || c.Path != "/" || c.Domain != ""):
		return nil, errors.New("sessionio: a __Host- cookie must be Secure, with Path \"/\" and no Domain")
	}
	if cfg.CheckInterval == 0 {
		cfg.CheckInterval = DefaultCheckInterval
	}
	if cfg.CreateBurst == 0 {
		cfg.CreateBurst = DefaultCreateBurst
	}
	if cfg.CreateRate == 0 {
		cfg.CreateRate = DefaultCreateRate
	}
	if cfg.CreateGlobalBurst == 0 {
		cfg.CreateGlobalBurst = DefaultCreateGlobalBurst
	}
	if cfg.CreateGlobalRate == 0 {
		cfg.CreateGlobalRate = DefaultCreateGlobalRate
	}
	if cfg.SocketsPerSession == 0 {
		cfg.SocketsPerSession = DefaultSocketsPerSession
	}
	if cfg.SocketsPerClient == 0 {
		cfg.SocketsPerClient = DefaultSocketsPerClient
	}
	if cfg.EngineConnsPerClient == 0 {
		cfg.EngineConnsPerClient = DefaultEngineConnsPerClient
	}
	if cfg.ClientIP == nil {
		cfg.ClientIP = remoteIP
	}
	if cfg.StoreTimeout == 0 {
		cfg.StoreTimeout = DefaultStoreTimeout
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.ErrorHandler == nil {
		cfg.ErrorHandler = writeError
	}
	report := cfg.Report
	if report == nil {
		report = NopReporter{}
	} else {
		cfg.Store = reportingStore{Store: cfg.Store, r: report}
	}
	switch {
	case cfg.TTL < 0:
		return nil, fmt.Errorf("sessionio: TTL %v must be positive", cfg.TTL)
	case cfg.MaxAge < 0:
		return nil, fmt.Errorf("sessionio: MaxAge %v must be positive", cfg.MaxAge)
	case cfg.RenewGrace < 0:
		return nil, fmt.Errorf("sessionio: RenewGrace %v must be positive, or Off", cfg.RenewGrace)
	case cfg.CheckInterval < 0 && cfg.CheckInterval != Off:
		return nil, fmt.Errorf("sessionio: CheckInterval %v must be positive, or Off", cfg.CheckInterval)
	case cfg.CreateRate < 0 && cfg.CreateRate != Off, cfg.CreateGlobalRate < 0 && cfg.CreateGlobalRate != Off:
		return nil, errors.New("sessionio: CreateRate and CreateGlobalRate must be positive, or Off")
	case cfg.SocketsPerSession < 0 && cfg.SocketsPerSession != Off, cfg.SocketsPerClient < 0 && cfg.SocketsPerClient != Off:
		return nil, errors.New("sessionio: SocketsPerSession and SocketsPerClient must be positive, or Off")
	case cfg.EngineConnsPerClient < 0 && cfg.EngineConnsPerClient != Off:
		return nil, errors.New("sessionio: EngineConnsPerClient must be positive, or Off")
	case isNaNOrInf(cfg.CreateRate) || isNaNOrInf(cfg.CreateGlobalRate) || isNaNOrInf(cfg.EventRate):
		return nil, errors.New("sessionio: CreateRate, CreateGlobalRate and EventRate must be finite numbers")
	case cfg.CreateBurst < 0 || cfg.CreateGlobalBurst < 0:
		return nil, errors.New("sessionio: CreateBurst and CreateGlobalBurst must not be negative")
	}
	if err := cfg.Users.fill(); err != nil {
		return nil, err
	}
	origins, err := newOriginPolicy(cfg.AllowedOrigins)
	if err != nil {
		return nil, err
	}
	public := ""
	if cfg.PublicURL != "" {
		u, err := url.Parse(cfg.PublicURL)
		if err != nil || u.Host == "" {
			return nil, fmt.Errorf("sessionio: PublicURL %q is not an absolute URL", cfg.PublicURL)
		}
		if public, err = NormalizeOrigin(u.Scheme + "://" + u.Host); err != nil {
			return nil, fmt.Errorf("sessionio: PublicURL %w", err)
		}
		origins[public] = struct{}{}
	}
	return &Manager{
		cfg:     cfg,
		signer:  signer{keys: cfg.Keys},
		origins: origins,
		public:  public,
		caps:    newSocketCaps(cfg.SocketsPerSession, cfg.SocketsPerClient),
		conns:   newConnCaps(cfg.EngineConnsPerClient),
		limiter: newCreateLimiter(cfg.CreateRate, cfg.CreateBurst, cfg.CreateGlobalRate, cfg.CreateGlobalBurst, maxLimiterClients),
		log:     cfg.Logger,
		report:  report,
		locks:   map[string]*keyLock{},
		live:    map[string]*Session{},

		relayKeys: relayKeys(cfg.Keys),
		stop:      make(chan struct{}),
		done:      make(chan struct{}),
	}, nil
}

// CookieName is the name of the session cookie, and of the gorilla session
// to ask for: session.Get(m.CookieName(), c).
func (m *Manager) CookieName() string { return m.cfg.Cookie.Name }

// Ping reports whether the store answers.
func (m *Manager) Ping(ctx context.Context) error { return m.cfg.Store.Ping(ctx) }

// Shutdown stops the manager's background work (the periodic checks) and
// waits until it has ended or ctx is done, whichever comes first. It may be
// called any number of times, from any goroutine; Attach fails after it.
// HTTP requests and sockets keep being served: the store and the Socket.IO
// server belong to the caller, who closes them after.
func (m *Manager) Shutdown(ctx context.Context) error {
	m.mu.Lock()
	if !m.closed {
		m.closed = true
		close(m.stop)
		if !m.checking {
			close(m.done)
		}
	}
	m.mu.Unlock()
	m.stopCatchUp()
	select {
	case <-m.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Close is Shutdown without a deadline. It always returns nil.
func (m *Manager) Close() error { return m.Shutdown(context.Background()) }

// Get returns the request's session, cached for the rest of the request
// (gorilla's registry). It implements sessions.Store.
func (m *Manager) Get(r *http.Request, name string) (*sessions.Session, error) {
	return sessions.GetRegistry(r).Get(m, name)
}

// New loads the request's session from the store, or returns a new empty
// one (IsNew) when the cookie is missing, forged, or names a session that is
// gone. Nothing is created in the store until Save or Update. A cookie that
// names a session renewed a moment ago gets ErrSessionRenewed with the empty
// session: answer it without saving (tandem: 409). It implements
// sessions.Store.
func (m *Manager) New(r *http.Request, name string) (*sessions.Session, error) {
	s := m.gorillaSession(r, name)
	if name != m.cfg.Cookie.Name {
		return s, fmt.Errorf("sessionio: unknown session %q; this store serves %q", name, m.cfg.Cookie.Name)
	}
	st, unlock := m.lockState(r)
	defer unlock()
	if st.id == "" {
		return s, nil
	}
	key := keyOf(st.id)
	v, rec, err := m.load(r.Context(), key)
	if errors.Is(err, ErrSessionGone) {
		return s, nil
	}
	if err != nil {
		return s, err
	}
	st.remember(rec.Meta)
	m.touchIfDue(r.Context(), key, rec)
	m.refresh(key, v, rec)
	s.ID, s.Values, s.IsNew = st.id, v, false
	return s, nil
}

// Save writes s to the store, or ends it when s.Options.MaxAge < 0: the
// record is deleted and the cookie expired. A new session gets a fresh ID and
// its cookie. A positive s.Options.MaxAge gives the cookie that Max-Age (the
// store's TTL still ends an idle session); the other Options must be the
// configured cookie's (Config.Cookie), or Save returns an error and writes
// nothing; so does a session of another name than the cookie's. It
// implements sessions.Store.
//
// Save replaces the stored values wholesale with s.Values: last writer wins.
// A session read by Get and saved after a change made meanwhile (by Update,
// a socket, another request) undoes that change. Use Update to change a
// session atomically, and Save only for sessions no one else changes. Save
// never revives a session that was deleted meanwhile: it makes a new one.
func (m *Manager) Save(r *http.Request, w http.ResponseWriter, s *sessions.Session) error {
	ctx := r.Context()
	if s.Name() != m.cfg.Cookie.Name {
		// gorilla's registry saves every session a request asked for, even
		// one New refused: saving it as ours would replace the user's session.
		return fmt.Errorf("sessionio: Save: unknown session %q; this store serves %q", s.Name(), m.cfg.Cookie.Name)
	}
	if err := m.checkOptions(r, s.Options); err != nil {
		return err
	}
	maxAge := 0
	if s.Options != nil {
		maxAge = s.Options.MaxAge
	}
	st, unlock := m.lockState(r)
	defer unlock()
	if maxAge < 0 {
		if s.ID != "" {
			if err := m.cfg.Store.Delete(ctx, keyOf(s.ID)); err != nil {
				return fmt.Errorf("sessionio: delete: %w", err)
			}
			m.endSession(keyOf(s.ID), EndLogout)
		}
		if s.ID == st.id {
			st.id, st.loaded = "", false
		}
		m.writeCookie(w, m.cookie(r, ""))
		return nil
	}
	if s.ID == "" && st.id != "" {
		// An earlier call of the request made the session this one
		// would create: save into it.
		s.ID = st.id
	}
	replace := func(v Values) error {
		clear(v)
		for k, x := range s.Values {
			v[k] = x
		}
		return nil
	}
	if s.ID != "" {
		_, err := m.update(ctx, keyOf(s.ID), replace, nil)
		if err == nil {
			if maxAge > 0 {
				c := m.cookie(r, s.ID)
				c.MaxAge = maxAge
				m.writeCookie(w, c)
			}
			return nil
		}
		if !errors.Is(err, ErrSessionGone) {
			return err
		}
	}
	id, _, err := m.create(ctx, r, replace)
	if err != nil {
		return err
	}
	s.ID, s.IsNew = id, false
	st.id, st.loaded = id, false
	c := m.cookie(r, id)
	c.MaxAge = maxAge
	m.writeCookie(w, c)
	return nil
}

// KeyOf returns the key of a session obtained from Get, New or Update: the
// name the session has outside its cookie (its store key, its Socket.IO room,
// its log name), a hash of its ID that does not reveal it. It is "" for a
// session that is not in the store yet.
func (m *Manager) KeyOf(s *sessions.Session) string {
	if s == nil || s.ID == "" {
		return ""
	}
	return keyOf(s.ID)
}

// Room is the Socket.IO room of the session with the given key: every socket
// of the session is in it, on every node. Use it with io.In(room) for
// FetchSockets and the like.
func (m *Manager) Room(key string) socket.Room { return socket.Room(key) }

// gone calls the OnGone hook.
func (m *Manager) gone(key string) {
	if m.cfg.OnGone != nil {
		m.cfg.OnGone(key)
	}
}

// idFromRequest returns the ID of the first session cookie on r whose
// signature verifies. Browsers do not separate cookies by port, so a request
// may carry several cookies of the same name.
func (m *Manager) idFromRequest(r *http.Request) (string, bool) {
	for _, c := range r.CookiesNamed(m.cfg.Cookie.Name) {
		if id, err := m.signer.verify(c.Value); err == nil {
			return id, true
		}
	}
	return "", false
}

func (m *Manager) gorillaSession(r *http.Request, name string) *sessions.Session {
	s := sessions.NewSession(m, name)
	s.IsNew = true
	s.Options = m.options(r)
	return s
}

// options are the gorilla Options matching the configured cookie.
func (m *Manager) options(r *http.Request) *sessions.Options {
	c := m.cfg.Cookie
	return &sessions.Options{
		Path:        c.Path,
		Domain:      c.Domain,
		HttpOnly:    true,
		Secure:      m.secure(r),
		SameSite:    c.SameSite,
		Partitioned: c.Partitioned,
	}
}

// checkOptions accepts the Options of a session to Save only when they
// match the configured cookie, but for MaxAge: a cookie with another Path or
// Domain would be a second session cookie that the sockets never see.
func (m *Manager) checkOptions(r *http.Request, o *sessions.Options) error {
	if o == nil {
		return nil
	}
	want := m.options(r)
	got := *o
	got.MaxAge = 0
	if got != *want {
		return fmt.Errorf("sessionio: Save: session Options %+v differ from the configured cookie %+v; set them in Config.Cookie (only MaxAge may change per session)", got, *want)
	}
	return nil
}

// secure reports whether the cookie gets the Secure attribute for r: forced,
// a TLS request, an https PublicURL, or https named by a trusted proxy.
func (m *Manager) secure(r *http.Request) bool {
	return m.cfg.Cookie.Secure || r.TLS != nil || strings.HasPrefix(m.public, "https://") ||
		(m.cfg.TrustProxy(r) && strings.EqualFold(r.Header.Get("X-Forwarded-Proto"), "https"))
}

// cookie returns the session cookie for id, or an expired one when id is "".
// It has no Max-Age: the browser keeps it for its session, and the store
// decides when the session ends.
func (m *Manager) cookie(r *http.Request, id string) *http.Cookie {
	c := &http.Cookie{
		Name:        m.cfg.Cookie.Name,
		Path:        m.cfg.Cookie.Path,
		Domain:      m.cfg.Cookie.Domain,
		HttpOnly:    true,
		Secure:      m.secure(r),
		SameSite:    m.cfg.Cookie.SameSite,
		Partitioned: m.cfg.Cookie.Partitioned,
	}
	if id == "" {
		c.MaxAge = -1
	} else {
		c.Value = m.signer.sign(id)
	}
	return c
}

// keyLock is the lock of one session key; refs counts the holder and the
// waiters, and the entry leaves Manager.locks when it drops to zero.
type keyLock struct {
	ch   chan struct{} // holds one token while locked
	refs int           // guarded by Manager.locksMu
}

// lockKey locks key for one change of its session and returns the unlock
// function. Locks of different keys never wait for each other, so a
// committed callback may change another session. Waiting ends early with
// ctx's error.
func (m *Manager) lockKey(ctx context.Context, key string) (func(), error) {
	m.locksMu.Lock()
	l := m.locks[key]
	if l == nil {
		l = &keyLock{ch: make(chan struct{}, 1)}
		m.locks[key] = l
	}
	l.refs++
	m.locksMu.Unlock()
	drop := func() {
		m.locksMu.Lock()
		if l.refs--; l.refs == 0 {
			delete(m.locks, key)
		}
		m.locksMu.Unlock()
	}
	select {
	case l.ch <- struct{}{}:
	case <-ctx.Done():
		drop()
		return nil, fmt.Errorf("sessionio: waiting for an earlier change of the session: %w", context.Cause(ctx))
	}
	return func() {
		<-l.ch
		drop()
	}, nil
}

// validCookieName reports whether name is a cookie name net/http keeps: a
// non-empty token.
func validCookieName(name string) bool {
	return name != "" && strings.IndexFunc(name, func(r rune) bool {
		return r <= ' ' || r >= 0x7f || strings.ContainsRune("()<>@,;:\\\"/[]?={}", r)
	}) < 0
}
