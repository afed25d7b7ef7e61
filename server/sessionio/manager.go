package sessionio

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/sessions"
	"github.com/zishang520/socket.io/servers/socket/v3"

	"github.com/tandem-go/tandem/server/store"
)

// Defaults for the zero values of Config.
const (
	DefaultCookieName    = "tandem.sid"
	DefaultTTL           = 24 * time.Hour
	DefaultCheckInterval = 30 * time.Second
	DefaultCreateBurst   = 200
	DefaultCreateRate    = 2.0
	DefaultStoreTimeout  = 5 * time.Second
)

// MinKeyLen is the shortest signing key New accepts.
const MinKeyLen = 32

// ErrTooManySessions is returned when a client address has created more
// sessions than Config.CreateBurst and Config.CreateRate allow.
var ErrTooManySessions = errors.New("sessionio: too many new sessions from this address")

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

	// CookieName is the name of the session cookie. Default "tandem.sid".
	CookieName string
	// CookieSecure forces the Secure attribute; otherwise the cookie is
	// Secure on TLS requests only.
	CookieSecure bool
	// CookieSameSite is the SameSite attribute. Default http.SameSiteLaxMode.
	// http.SameSiteNoneMode requires CookieSecure.
	CookieSameSite http.SameSite

	// AllowedOrigins are the other origins whose pages may open sockets with
	// the user's cookie. A page from the server's own origin always may.
	AllowedOrigins []string

	// CheckInterval is how often every socket's session is checked in the
	// store; a socket whose session is gone gets its connection closed.
	// Default 30s.
	CheckInterval time.Duration

	// CreateBurst and CreateRate bound the sessions one client address can
	// make the server create: CreateBurst at once, then CreateRate per
	// second. Defaults 200 and 2.
	CreateBurst int
	CreateRate  float64
	// ClientIP names the client address of a request for that bound.
	// Default: the TCP peer address (forwarding headers can be forged).
	ClientIP func(*http.Request) string

	// StoreTimeout bounds each store call made outside an HTTP request
	// (socket packets, periodic checks). Default 5s.
	StoreTimeout time.Duration

	// Logger receives the manager's logs; session IDs never appear in them.
	// Default slog.Default().
	Logger *slog.Logger
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
	log     *slog.Logger

	// locks serialize changes of one session on this node, so the
	// notifications sent after each commit leave in commit order: one lock
	// per session key, made on demand and dropped when no one holds or
	// waits for it.
	locksMu sync.Mutex
	locks   map[string]*keyLock

	io atomic.Pointer[socket.Server]

	mu   sync.Mutex
	live map[string]*Session // by key: sessions with sockets on this node

	closeOnce sync.Once
	stop      chan struct{}
	done      chan struct{}
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
	if cfg.CookieName == "" {
		cfg.CookieName = DefaultCookieName
	}
	if cfg.CookieSameSite == 0 || cfg.CookieSameSite == http.SameSiteDefaultMode {
		cfg.CookieSameSite = http.SameSiteLaxMode
	}
	if cfg.CookieSameSite == http.SameSiteNoneMode && !cfg.CookieSecure {
		return nil, errors.New("sessionio: SameSite=None cookies must be Secure; set CookieSecure")
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
	if cfg.ClientIP == nil {
		cfg.ClientIP = remoteIP
	}
	if cfg.StoreTimeout == 0 {
		cfg.StoreTimeout = DefaultStoreTimeout
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	switch {
	case cfg.TTL < 0:
		return nil, fmt.Errorf("sessionio: TTL %v must be positive", cfg.TTL)
	case cfg.CheckInterval < 0:
		return nil, fmt.Errorf("sessionio: CheckInterval %v must be positive", cfg.CheckInterval)
	case cfg.CreateBurst < 0 || cfg.CreateRate < 0:
		return nil, errors.New("sessionio: CreateBurst and CreateRate must not be negative")
	}
	origins, err := newOriginPolicy(cfg.AllowedOrigins)
	if err != nil {
		return nil, err
	}
	return &Manager{
		cfg:     cfg,
		signer:  signer{keys: cfg.Keys},
		origins: origins,
		limiter: newCreateLimiter(cfg.CreateRate, cfg.CreateBurst),
		log:     cfg.Logger,
		locks:   map[string]*keyLock{},
		live:    map[string]*Session{},
		stop:    make(chan struct{}),
		done:    make(chan struct{}),
	}, nil
}

// CookieName is the name of the session cookie, and of the gorilla session
// to ask for: session.Get(m.CookieName(), c).
func (m *Manager) CookieName() string { return m.cfg.CookieName }

// Ping reports whether the store answers.
func (m *Manager) Ping(ctx context.Context) error { return m.cfg.Store.Ping(ctx) }

// Close stops the periodic checks. It does not close the store or the
// Socket.IO server, which belong to the caller.
func (m *Manager) Close() error {
	m.closeOnce.Do(func() {
		close(m.stop)
		if m.io.Load() == nil {
			close(m.done)
		}
	})
	<-m.done
	return nil
}

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
	if name != m.cfg.CookieName {
		return s, fmt.Errorf("sessionio: unknown session %q; this store serves %q", name, m.cfg.CookieName)
	}
	id, ok := m.idFromRequest(r)
	if !ok {
		return s, nil
	}
	key := keyOf(id)
	rec, err := m.cfg.Store.Load(r.Context(), key)
	if errors.Is(err, store.ErrNotFound) {
		return s, nil
	}
	if err != nil {
		return s, fmt.Errorf("sessionio: load: %w", err)
	}
	v, err := decodeValues(rec.Data)
	if err != nil {
		m.log.Warn("sessionio: unreadable session treated as none", "session", logKey(key), "err", err)
		return s, nil
	}
	m.touchIfDue(r.Context(), key, rec)
	m.refresh(key, v, rec)
	s.ID, s.Values, s.IsNew = id, v, false
	return s, nil
}

// Save writes s to the store, or ends it when s.Options.MaxAge < 0: the
// record is deleted and the cookie expired. A new session gets a fresh ID and
// its cookie. Save replaces the stored values wholesale (last writer wins);
// use Update to change a session atomically. Save never revives a session
// that was deleted meanwhile: it makes a new one. It implements
// sessions.Store.
func (m *Manager) Save(r *http.Request, w http.ResponseWriter, s *sessions.Session) error {
	ctx := r.Context()
	if s.Options != nil && s.Options.MaxAge < 0 {
		if s.ID != "" {
			if err := m.cfg.Store.Delete(ctx, keyOf(s.ID)); err != nil {
				return fmt.Errorf("sessionio: delete: %w", err)
			}
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
		if !errors.Is(err, store.ErrNotFound) {
			return err
		}
	}
	id, _, err := m.create(ctx, r, replace)
	if err != nil {
		return err
	}
	s.ID, s.IsNew = id, false
	http.SetCookie(w, m.cookie(r, id))
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
	s := m.gorillaSession(r, m.cfg.CookieName)
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
		if !errors.Is(err, store.ErrNotFound) {
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

// Emit sends an event to every socket of the session with the given ID, on
// every node sharing the Socket.IO adapter.
func (m *Manager) Emit(id, event string, args ...any) error {
	io := m.io.Load()
	if io == nil {
		return errors.New("sessionio: Emit before Attach")
	}
	return io.To(socket.Room(keyOf(id))).Emit(event, args...)
}

// Disconnect disconnects every socket of the session with the given ID, on
// every node, with a server-side disconnect: clients see "io server
// disconnect" and do not reconnect by themselves.
func (m *Manager) Disconnect(id string) error {
	io := m.io.Load()
	if io == nil {
		return errors.New("sessionio: Disconnect before Attach")
	}
	io.In(socket.Room(keyOf(id))).DisconnectSockets(false)
	return nil
}

// update is the one atomic read-modify-write path, for HTTP and sockets.
func (m *Manager) update(ctx context.Context, key string, apply func(Values) error, committed func(Values)) (Values, error) {
	unlock, err := m.lockKey(ctx, key)
	if err != nil {
		return nil, err
	}
	defer unlock()
	var out Values
	rec, err := m.cfg.Store.Update(ctx, key, m.cfg.TTL, func(data []byte) ([]byte, error) {
		v, err := decodeValues(data)
		if err != nil {
			return nil, err
		}
		if err := apply(v); err != nil {
			return nil, err
		}
		out = v
		return encodeValues(v)
	})
	if err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return nil, err
		}
		return nil, fmt.Errorf("sessionio: update: %w", err)
	}
	m.refresh(key, out, rec)
	if committed != nil {
		committed(cloneValues(out))
	}
	return out, nil
}

// create makes a new session holding apply's values, within the creation
// bound of r's client address.
func (m *Manager) create(ctx context.Context, r *http.Request, apply func(Values) error) (string, Values, error) {
	if !m.limiter.allow(m.cfg.ClientIP(r), time.Now()) {
		return "", nil, ErrTooManySessions
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
	for {
		id := newID()
		err := m.cfg.Store.Create(ctx, keyOf(id), data, m.cfg.TTL)
		if errors.Is(err, store.ErrExists) {
			continue // 2^-256; but never overwrite someone's session
		}
		if err != nil {
			return "", nil, fmt.Errorf("sessionio: create: %w", err)
		}
		return id, v, nil
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
	for _, c := range r.CookiesNamed(m.cfg.CookieName) {
		if id, err := m.signer.verify(c.Value); err == nil {
			return id, true
		}
	}
	return "", false
}

func (m *Manager) gorillaSession(r *http.Request, name string) *sessions.Session {
	s := sessions.NewSession(m, name)
	s.IsNew = true
	s.Options = &sessions.Options{
		Path:     "/",
		HttpOnly: true,
		Secure:   m.secure(r),
		SameSite: m.cfg.CookieSameSite,
	}
	return s
}

func (m *Manager) secure(r *http.Request) bool { return m.cfg.CookieSecure || r.TLS != nil }

// cookie returns the session cookie for id, or an expired one when id is "".
// It has no Max-Age: the browser keeps it for its session, and the store
// decides when the session ends.
func (m *Manager) cookie(r *http.Request, id string) *http.Cookie {
	c := &http.Cookie{
		Name:     m.cfg.CookieName,
		Path:     "/",
		HttpOnly: true,
		Secure:   m.secure(r),
		SameSite: m.cfg.CookieSameSite,
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
