package sessionio

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
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
	DefaultCookieName        = "tandem.sid"
	DefaultTTL               = 24 * time.Hour
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
)

// goneError is ErrSessionGone: it also matches store.ErrNotFound, so code
// written against the store keeps working.
type goneError struct{}

func (goneError) Error() string        { return "sessionio: session gone" }
func (goneError) Is(target error) bool { return target == store.ErrNotFound }

// gone returns ErrSessionGone for err when err is the store's not-found,
// and err otherwise.
func gone(err error) error {
	if errors.Is(err, store.ErrNotFound) {
		return ErrSessionGone
	}
	return err
}

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

	// Cookie sets the attributes of the session cookie.
	Cookie Cookie

	// AllowedOrigins are the other origins whose pages may open sockets with
	// the user's cookie. A page from the server's own origin always may.
	AllowedOrigins []string

	// CheckInterval is how often every socket's session is checked in the
	// store; a socket whose session is gone gets its connection closed.
	// Default 30s; Off turns the periodic check off (sockets still notice
	// at their next packet).
	CheckInterval time.Duration

	// CreateBurst and CreateRate bound the sessions one client address can
	// make the server create: CreateBurst at once, then CreateRate per
	// second. Defaults 200 and 2; CreateRate Off turns this bound off.
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

	// StoreTimeout bounds each store call made outside an HTTP request
	// (socket packets, periodic checks). Default 5s.
	StoreTimeout time.Duration

	// Logger receives the manager's logs; session IDs never appear in them.
	// Default slog.Default().
	Logger *slog.Logger

	// OnCreate, if set, is called with the key of every session the
	// manager creates (by Update, Save or a socket handshake), after the
	// store has it. Renew does not create a session: it renames one.
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

	// Report, if set, is told what the manager does: sessions created and
	// ended, refusals, store calls and their durations, events received
	// and delivered (see Reporter). Default: nothing is reported.
	Report Reporter
}

// Cookie holds the attributes of the session cookie. It is always HttpOnly.
// It has no Max-Age by default: the browser keeps it for its session, and
// the store decides when the session ends.
type Cookie struct {
	// Name is the cookie's name. Default "tandem.sid". A name starting with
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
	log     *slog.Logger
	report  Reporter // never nil: NopReporter when Config.Report is

	// locks serialize changes of one session on this node, so the
	// notifications sent after each commit leave in commit order: one lock
	// per session key, made on demand and dropped when no one holds or
	// waits for it.
	locksMu sync.Mutex
	locks   map[string]*keyLock

	io         atomic.Pointer[socket.Server]
	clustered  atomic.Bool // io's adapter reaches other nodes
	floors     floors      // see cluster.go
	committing committing

	resyncMu     sync.Mutex
	resyncFns    []func(key string, v Values) []Event // guarded by resyncMu
	resyncQueued atomic.Bool                          // a Resync pass is waiting to start
	resyncRun    sync.Mutex                           // held by the running Resync pass

	relayKeys    [][]byte     // see cluster.go
	relayDropped atomic.Int64 // relay messages that failed verification

	mu       sync.Mutex
	live     map[string]*Session // by key: sessions with sockets on this node
	attached bool                // Attach has begun; guarded by mu
	closed   bool                // Shutdown has begun; guarded by mu
	checking bool                // the check loop was started; guarded by mu

	sockets sync.Map // *socket.Socket -> *Session, for FromSocket

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
	case cfg.CheckInterval < 0 && cfg.CheckInterval != Off:
		return nil, fmt.Errorf("sessionio: CheckInterval %v must be positive, or Off", cfg.CheckInterval)
	case cfg.CreateRate < 0 && cfg.CreateRate != Off, cfg.CreateGlobalRate < 0 && cfg.CreateGlobalRate != Off:
		return nil, errors.New("sessionio: CreateRate and CreateGlobalRate must be positive, or Off")
	case cfg.SocketsPerSession < 0 && cfg.SocketsPerSession != Off, cfg.SocketsPerClient < 0 && cfg.SocketsPerClient != Off:
		return nil, errors.New("sessionio: SocketsPerSession and SocketsPerClient must be positive, or Off")
	case isNaNOrInf(cfg.CreateRate) || isNaNOrInf(cfg.CreateGlobalRate) || isNaNOrInf(cfg.EventRate):
		return nil, errors.New("sessionio: CreateRate, CreateGlobalRate and EventRate must be finite numbers")
	case cfg.CreateBurst < 0 || cfg.CreateGlobalBurst < 0:
		return nil, errors.New("sessionio: CreateBurst and CreateGlobalBurst must not be negative")
	}
	origins, err := newOriginPolicy(cfg.AllowedOrigins)
	if err != nil {
		return nil, err
	}
	return &Manager{
		cfg:     cfg,
		signer:  signer{keys: cfg.Keys},
		origins: origins,
		caps:    newSocketCaps(cfg.SocketsPerSession, cfg.SocketsPerClient),
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
// gone. Nothing is created in the store until Save or Update. It implements
// sessions.Store.
func (m *Manager) New(r *http.Request, name string) (*sessions.Session, error) {
	s := m.gorillaSession(r, name)
	if name != m.cfg.Cookie.Name {
		return s, fmt.Errorf("sessionio: unknown session %q; this store serves %q", name, m.cfg.Cookie.Name)
	}
	id, ok := m.idFromRequest(r)
	if !ok {
		return s, nil
	}
	key := keyOf(id)
	v, rec, err := m.load(r.Context(), key)
	if errors.Is(err, ErrSessionGone) {
		return s, nil
	}
	if err != nil {
		return s, err
	}
	m.touchIfDue(r.Context(), key, rec)
	m.refresh(key, v, rec)
	s.ID, s.Values, s.IsNew = id, v, false
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
	if maxAge < 0 {
		if s.ID != "" {
			if err := m.cfg.Store.Delete(ctx, keyOf(s.ID)); err != nil {
				return fmt.Errorf("sessionio: delete: %w", err)
			}
			m.endSession(keyOf(s.ID), EndLogout)
		}
		http.SetCookie(w, m.cookie(r, ""))
		return nil
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
				http.SetCookie(w, c)
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
	c := m.cookie(r, id)
	c.MaxAge = maxAge
	http.SetCookie(w, c)
	return nil
}

// Update changes the request's session atomically: apply gets the current
// values and changes them in place; the store commits the result only if no
// other change of the session came in between (otherwise apply runs again
// on the newer values, so it must not have side effects). When the request
// has no live session, a new one is created already holding the change, and
// its cookie is set on w.
//
// committed, if not nil, runs after the commit with the session as
// committed (its own copy of the values), before any later change of the
// same session on this node commits: notifications sent from it reach
// sockets in commit order.
//
// Update returns the session as committed. A *sessions.Session obtained
// earlier in the same request keeps its old values.
func (m *Manager) Update(w http.ResponseWriter, r *http.Request, apply func(Values) error, committed func(*sessions.Session)) (*sessions.Session, error) {
	ctx := r.Context()
	s := m.gorillaSession(r, m.cfg.Cookie.Name)
	if id, ok := m.idFromRequest(r); ok {
		s.ID, s.IsNew = id, false
		var then func(Values)
		if committed != nil {
			then = func(v Values) {
				c := *s
				c.Values = v
				committed(&c)
			}
		}
		v, err := m.update(ctx, keyOf(id), apply, then)
		if err == nil {
			s.Values = v
			return s, nil
		}
		if !errors.Is(err, ErrSessionGone) {
			return nil, err
		}
	}
	id, v, err := m.create(ctx, r, apply)
	if err != nil {
		return nil, err
	}
	http.SetCookie(w, m.cookie(r, id))
	s.ID, s.IsNew, s.Values = id, false, v
	if committed != nil {
		c := *s
		c.Values = cloneValues(v)
		committed(&c)
	}
	return s, nil
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

// Emit sends an event to every socket of the session with the given key, on
// this node and, through the Socket.IO adapter, on every other. When the
// other nodes cannot be reached the sockets of this node still get it and
// the error wraps ErrNodesUnreachable. It returns ErrNotAttached before
// Attach.
func (m *Manager) Emit(key, event string, args ...any) error {
	io := m.io.Load()
	if io == nil {
		return ErrNotAttached
	}
	return m.emit(io, key, event, args...)
}

// Disconnect disconnects every socket of the session with the given key, on
// every node, with a server-side disconnect: clients see "io server
// disconnect" and do not reconnect by themselves. It returns ErrNotAttached
// before Attach.
//
// The sockets of this node are disconnected at once, whatever the adapter;
// when the other nodes cannot be reached the error wraps
// ErrNodesUnreachable. Events emitted before Disconnect reach every node's
// sockets before they are disconnected.
func (m *Manager) Disconnect(key string) error {
	io := m.io.Load()
	if io == nil {
		return ErrNotAttached
	}
	return m.disconnect(io, key)
}

// Sockets returns the sockets of the session with the given key that are
// connected to this node. For every node, use
// io.In(m.Room(key)).FetchSockets().
func (m *Manager) Sockets(key string) []*socket.Socket {
	m.mu.Lock()
	h := m.live[key]
	m.mu.Unlock()
	if h == nil {
		return nil
	}
	return h.socketList()
}

// Destroy ends the request's session: the record is deleted from the store
// and the cookie expired on w. It returns the key the session had (for Emit
// and Disconnect), or "" when the request had no session. Its sockets are
// not disconnected: call Disconnect(key) for that, after telling them why.
func (m *Manager) Destroy(w http.ResponseWriter, r *http.Request) (string, error) {
	id, ok := m.idFromRequest(r)
	key := ""
	if ok {
		key = keyOf(id)
		if err := m.cfg.Store.Delete(r.Context(), key); err != nil {
			return "", fmt.Errorf("sessionio: delete: %w", err) // the cookie stays: the session is still there
		}
		m.endSession(key, EndLogout)
	}
	http.SetCookie(w, m.cookie(r, ""))
	return key, nil
}

// update is the one atomic read-modify-write path, for HTTP and sockets.
func (m *Manager) update(ctx context.Context, key string, apply func(Values) error, committed func(Values)) (Values, error) {
	unlock, err := m.lockKey(ctx, key)
	if err != nil {
		return nil, err
	}
	defer unlock()
	var out Values
	var unreadable, own error
	rec, err := m.cfg.Store.Update(ctx, key, m.cfg.TTL, func(data []byte) ([]byte, error) {
		unreadable, own = nil, nil
		v, err := decodeValues(data)
		if err != nil {
			unreadable = err
			return nil, err
		}
		if err := apply(v); err != nil {
			own = err
			return nil, err
		}
		out = v
		data, err = encodeValues(v)
		own = err
		return data, err
	})
	switch {
	case err == nil:
	case unreadable != nil:
		return nil, m.dropUnreadable(ctx, key, unreadable)
	case own != nil:
		return nil, own // apply's error as it is, or an encoding error
	case errors.Is(err, store.ErrNotFound):
		m.gone(key)
		return nil, ErrSessionGone
	default:
		return nil, fmt.Errorf("sessionio: update: %w", err)
	}
	m.refresh(key, out, rec)
	if committed != nil {
		m.committing.m.Store(key, rec.Version)
		defer m.committing.m.Delete(key)
		committed(cloneValues(out))
	}
	return out, nil
}

// create makes a new session holding apply's values, within the creation
// bound of r's client address.
func (m *Manager) create(ctx context.Context, r *http.Request, apply func(Values) error) (string, Values, error) {
	if !m.limiter.allow(m.cfg.ClientIP(r), time.Now()) {
		m.report.Refused(CauseSessionRate)
		return "", nil, &RetryAfterError{After: m.retryAfter()}
	}
	v := Values{}
	if apply != nil {
		if err := apply(v); err != nil {
			return "", nil, err
		}
	}
	data, err := encodeValues(v)
	if err != nil {
		return "", nil, err
	}
	id, key, err := m.createRecord(ctx, data)
	if err != nil {
		return "", nil, err
	}
	m.report.SessionCreated()
	if m.cfg.OnCreate != nil {
		m.cfg.OnCreate(key)
	}
	return id, v, nil
}

// load reads a session. A session that is missing or whose data cannot be
// read is ErrSessionGone; an unreadable record is deleted, so that every
// path treats it the same way.
func (m *Manager) load(ctx context.Context, key string) (Values, store.Record, error) {
	rec, err := m.cfg.Store.Load(ctx, key)
	if err != nil {
		if errors.Is(err, store.ErrNotFound) {
			m.gone(key)
			return nil, rec, ErrSessionGone
		}
		return nil, rec, fmt.Errorf("sessionio: load: %w", err)
	}
	v, err := decodeValues(rec.Data)
	if err != nil {
		return nil, rec, m.dropUnreadable(ctx, key, err)
	}
	return v, rec, nil
}

// dropUnreadable deletes a record whose data cannot be decoded (written by
// an incompatible version, or with a type not registered with gob) and
// returns ErrSessionGone: such a session is no session.
func (m *Manager) dropUnreadable(ctx context.Context, key string, cause error) error {
	m.log.Warn("sessionio: unreadable session data; the session is treated as gone", "session", logKey(key), "err", cause)
	if err := m.cfg.Store.Delete(ctx, key); err != nil {
		m.log.Warn("sessionio: delete of an unreadable session failed", "session", logKey(key), "err", err)
	}
	m.gone(key)
	return ErrSessionGone
}

// gone calls the OnGone hook.
func (m *Manager) gone(key string) {
	if m.cfg.OnGone != nil {
		m.cfg.OnGone(key)
	}
}

// touchIfDue extends a session's life when a tenth of its TTL (at most a
// minute) has passed since it was last written or touched, so activity keeps
// a session alive without a store write on every request.
func (m *Manager) touchIfDue(ctx context.Context, key string, rec store.Record) {
	every := min(m.cfg.TTL/10, time.Minute)
	if time.Until(rec.Expires) > m.cfg.TTL-every {
		return
	}
	if err := m.cfg.Store.Touch(ctx, key, m.cfg.TTL); err != nil && !errors.Is(err, store.ErrNotFound) {
		m.log.Warn("sessionio: touch failed", "session", logKey(key), "err", err)
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

func (m *Manager) secure(r *http.Request) bool { return m.cfg.Cookie.Secure || r.TLS != nil }

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
