// Package server is tandem's composition root: New turns a Config into a
// running set of parts (store, session manager, Echo API, Socket.IO server,
// page), Start listens, Close shuts down. It is importable, so tests start a
// real server on 127.0.0.1:0 in-process; server/cmd/tandem only turns
// environment variables and flags into a Config.
package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"
	"github.com/zishang520/socket.io/servers/socket/v3"

	"github.com/tandem-go/tandem/server/counter"
	"github.com/tandem-go/tandem/server/metrics"
	"github.com/tandem-go/tandem/server/realtime"
	"github.com/tandem-go/tandem/server/sessionio"
	"github.com/tandem-go/tandem/server/store"
	"github.com/tandem-go/tandem/server/transport"
	"github.com/tandem-go/tandem/server/web"
	"github.com/tandem-go/tandem/shared"
	"github.com/tandem-go/tandem/webclient"
)

// The HTTP handlers reach sockets through their own small interface, which
// the Socket.IO side implements; neither package imports the other.
var _ web.Notifier = (*realtime.Hub)(nil)

// Server is a configured tandem server.
type Server struct {
	cfg      *resolved
	log      *slog.Logger
	store    store.Store
	sessions *sessionio.Manager
	io       *socket.Server
	cluster  *cluster // nil unless SESSION_STORE is Redis
	// broadcast is the Socket.IO adapter: room emits pre-framed for
	// WebSocket recipients (server/transport).
	broadcast *transport.BroadcastBuilder
	echo      *echo.Echo
	metrics   *metrics.Metrics // nil unless ADMIN_ADDR is set

	api, spa, admin       *http.Server
	apiLn, spaLn, adminLn net.Listener

	closeOnce sync.Once
	closeErr  error
}

// New checks cfg and builds the server without listening yet. Every
// configuration error is a *ConfigError naming the variable at fault.
func New(cfg Config) (*Server, error) {
	r, err := cfg.resolve()
	if err != nil {
		return nil, err
	}
	keys, err := r.signingKeys()
	if err != nil {
		return nil, err
	}
	st, err := r.openStore()
	if err != nil {
		return nil, err
	}
	s := &Server{cfg: r, log: r.Logger, store: st}
	if err := s.build(keys); err != nil {
		if s.cluster != nil {
			_ = s.cluster.close()
		}
		_ = st.Close()
		return nil, err
	}
	return s, nil
}

func (s *Server) build(keys [][]byte) error {
	r := s.cfg
	origins := r.allowedOrigins()
	// Metrics only when someone can read them: without ADMIN_ADDR nothing
	// is counted at all.
	var report sessionio.Reporter
	if r.AdminAddr != "" {
		s.metrics = newMetrics(backendKind(r))
		report = s.metrics
	}
	sessions, err := sessionio.New(sessionio.Config{
		Store:  s.store,
		Keys:   keys,
		TTL:    r.SessionTTL,
		MaxAge: r.SessionMaxAge,
		// The app's event: the library names none of its own.
		EndEvent:   shared.EventSessionEnded,
		PublicURL:  r.PublicURL,
		TrustProxy: r.client.FromProxy, // TRUSTED_PROXIES' X-Forwarded-Proto names the own origin
		Cookie: sessionio.Cookie{
			Name:     r.cookieName,
			Secure:   r.CookieSecure,
			SameSite: r.sameSite,
		},
		AllowedOrigins:       origins,
		CheckInterval:        r.SessionCheckInterval,
		CreateBurst:          r.SessionCreateBurst,
		CreateRate:           r.SessionCreateRate,
		EventBurst:           r.SocketEventBurst,
		EventRate:            r.SocketEventRate,
		SocketsPerSession:    r.SocketsPerSession,
		SocketsPerClient:     r.SocketsPerClient,
		EngineConnsPerClient: r.EngineConnsPerClient,
		CreateGlobalBurst:    r.sessionCreateGlobalBurst(),
		CreateGlobalRate:     r.SessionCreateGlobalRate,
		ClientIP:             r.client.Of,
		Logger:               s.log,
		ErrorHandler:         web.SocketRefusal,
		Report:               report,
	})
	if err != nil {
		return fmt.Errorf("server: %w", err)
	}
	s.sessions = sessions

	opts := socket.DefaultServerOptions()
	opts.SetServeClient(false)
	opts.SetPath(shared.SocketPath)
	opts.SetMaxHttpBufferSize(r.MaxSocketPayload)
	// tandem's transports (server/transport): no polling response is
	// written by a goroutine other than its request's; WebSocket frames are
	// written inline, never compressed (no PerMessageDeflate: the engine's
	// upgrader never accepts the extension), and read under the payload
	// limit.
	transport.Register(opts, transport.WebSocketBuilder{MaxPayload: r.MaxSocketPayload, TooBig: func() {
		sessions.Reporter().Refused(sessionio.CausePayload)
	}})
	opts.SetConnectTimeout(connectTimeout)
	if isRedis(r.Store) {
		// Several nodes: room emits and disconnects go through Redis.
		c, err := newCluster(r.Store, s.log)
		if err != nil {
			return configErr("SESSION_STORE", "%v", err)
		}
		s.cluster = c
		// Once the adapter's subscription is back after a break, every
		// socket of this node gets what it may have missed meanwhile.
		c.onSubscribed = sessions.Resync
		// This node's deliveries of a local emit are pre-framed too.
		s.broadcast = &transport.BroadcastBuilder{Inner: c.builder(r.RedisPrefix)}
	} else {
		// A room emit is framed once for all WebSocket recipients.
		s.broadcast = &transport.BroadcastBuilder{}
	}
	opts.SetAdapter(s.broadcast)
	// The adapter is chosen when the server is made (ServeHandler does not
	// change the main namespace's), so the options go to NewServer too.
	s.io = socket.NewServer(nil, opts)
	socketHandler, err := sessions.Attach(s.io, opts)
	if err != nil {
		return fmt.Errorf("server: %w", err)
	}
	hub := realtime.New(s.io, sessions, s.log)
	if s.metrics != nil {
		s.metrics.WatchSockets(s.io)
		s.metrics.WatchBroadcasts(s.broadcast.Deliveries)
	}
	sessions.OnResync(hub.State)

	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	e.HTTPErrorHandler = web.ErrorHandler(s.log, r.client.Of)
	// c.RealIP() anywhere names the client as the limits do.
	e.IPExtractor = r.client.Of
	if s.metrics != nil {
		e.Use(s.metrics.Middleware()) // first: it sees the code of a recovered panic
	}
	e.Use(middleware.Recover())
	e.Use(func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			// No answer of the API is ever to be read as another type.
			c.Response().Header().Set("X-Content-Type-Options", "nosniff")
			return next(c)
		}
	})
	if s.log.Enabled(context.Background(), slog.LevelDebug) {
		// Paths only: query strings and cookies stay out of the logs.
		e.Use(middleware.RequestLoggerWithConfig(middleware.RequestLoggerConfig{
			LogMethod: true, LogURIPath: true, LogStatus: true, LogLatency: true,
			LogValuesFunc: func(_ echo.Context, v middleware.RequestLoggerValues) error {
				s.log.Debug("request", "method", v.Method, "path", v.URIPath, "status", v.Status, "latency", v.Latency)
				return nil
			},
		}))
	}
	if err := web.Register(e, web.Config{
		Sessions:       sessions,
		Notifier:       hub,
		AllowedOrigins: origins,
		Logger:         s.log,
	}); err != nil {
		return configErr("CORS_ORIGINS", "%v", err)
	}
	e.Any(shared.SocketPath+"*", echo.WrapHandler(websocketUpgrades(socketHandler)))

	page, err := s.pageHandler("", s.firstCount)
	if err != nil {
		return err
	}
	e.GET("/*", echo.WrapHandler(page))
	e.HEAD("/*", echo.WrapHandler(page))
	s.echo = e
	return nil
}

// connectTimeout closes an Engine.IO connection that has joined no
// namespace this long after its handshake (the library's default is 45 s).
// The official client sends its CONNECT as soon as the connection opens;
// a connection that sends none only holds a slot of its client's
// ENGINE_CONNS_PER_CLIENT and the engine's buffers and timers.
const connectTimeout = 10 * time.Second

// pageHandler serves the go-app page calling apiOrigin ("" for its own),
// showing the count that count reads (nil: none). A missing build is not
// fatal: the API works without the page, which answers 503 with the
// command that builds it.
func (s *Server) pageHandler(apiOrigin string, count func(*http.Request) (int, bool)) (http.Handler, error) {
	h, err := webclient.NewHandler(webclient.HandlerConfig{APIOrigin: apiOrigin, WebDir: s.cfg.WebDir, Logger: s.log, Count: count})
	if errors.Is(err, webclient.ErrNotBuilt) {
		s.log.Warn("the page is not built; serving the API only", "err", err)
		msg := err.Error()
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json; charset=utf-8")
			w.WriteHeader(http.StatusServiceUnavailable)
			_ = json.NewEncoder(w).Encode(shared.ErrorBody{Error: msg})
		}), nil
	}
	if err != nil {
		return nil, configErr("WEB_DIR", "%v", err)
	}
	return h, nil
}

// firstCountWait bounds the store read of the page's first count: a slow
// store delays the page by at most this, and the app reads the count then.
const firstCountWait = 500 * time.Millisecond

// firstCount reads the count of r's session for the page's first HTML. It
// only loads, and sets no cookie: a request without a valid session is
// shown 0, the count of the session that the page's GET /session will
// create; a store error shows no count (the app reports it).
func (s *Server) firstCount(r *http.Request) (int, bool) {
	ctx, cancel := context.WithTimeout(r.Context(), firstCountWait)
	defer cancel()
	sess, err := s.sessions.New(r.WithContext(ctx), s.sessions.CookieName())
	if err != nil {
		return 0, false
	}
	return counter.Count(sess.Values), true
}

// Handler is the API's HTTP handler (what Start serves on Addr).
func (s *Server) Handler() http.Handler { return s.echo }

// Start listens on Addr (and SPAAddr) and serves in the background.
func (s *Server) Start() error {
	ln, err := listen(s.cfg.Listener, s.cfg.Addr)
	if err != nil {
		return configErr("PORT", "cannot listen on %s: %v", s.cfg.Addr, err)
	}
	s.apiLn = ln
	s.api = s.newHTTPServer(s.echo)
	go s.serve(s.api, ln, "api")
	s.log.Info("API listening", "url", s.URL(), "store", storeKind(s.cfg.Store), "cors_origins", s.cfg.origins)
	if s.cfg.SPAAddr != "" {
		// The same build, calling PUBLIC_URL (by default the API listener)
		// cross-origin. Cookies are not separated by port, so this listener
		// has no session middleware: it never sets or reads the cookie.
		api := s.cfg.public
		if api == "" {
			api = s.URL()
		}
		page, err := s.pageHandler(api, nil)
		if err != nil {
			return err
		}
		ln, err := listen(s.cfg.SPAListener, s.cfg.SPAAddr)
		if err != nil {
			return configErr("SPA_PORT", "cannot listen on %s: %v", s.cfg.SPAAddr, err)
		}
		s.spaLn = ln
		s.spa = s.newHTTPServer(page)
		go s.serve(s.spa, ln, "spa")
		s.log.Info("cross-origin page listening", "url", s.SPAURL(), "api", api)
	}
	if s.cfg.AdminAddr != "" {
		ln, err := listen(s.cfg.AdminListener, s.cfg.AdminAddr)
		if err != nil {
			return configErr("ADMIN_ADDR", "cannot listen on %s: %v", s.cfg.AdminAddr, err)
		}
		s.adminLn = ln
		s.admin = &http.Server{
			Handler:           s.adminHandler(),
			ReadHeaderTimeout: 10 * time.Second,
			ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
		}
		go func() {
			if err := s.admin.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				s.log.Error("listener stopped", "listener", "admin", "err", err)
			}
		}()
		s.log.Info("operator's listener (metrics, pprof)", "url", s.AdminURL()+"/metrics", "token", s.cfg.AdminToken != "")
	}
	return nil
}

// listen returns ln when the caller handed one over, or listens on addr.
func listen(ln net.Listener, addr string) (net.Listener, error) {
	if ln != nil {
		return ln, nil
	}
	return net.Listen("tcp", addr)
}

// newHTTPServer bounds what a slow or greedy client can hold: the time to
// send headers (ReadHeaderTimeout) and a body (BODY_READ_TIMEOUT, per
// request, so long polls and WebSockets are not cut), idle keep-alives, and
// (in serve) the connections per client address.
func (s *Server) newHTTPServer(h http.Handler) *http.Server {
	return &http.Server{
		Handler: web.BodyDeadline(h, s.cfg.BodyReadTimeout, func() {
			s.sessions.Reporter().Refused(sessionio.CauseBodyTimeout)
		}),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
}

func (s *Server) serve(h *http.Server, ln net.Listener, name string) {
	ln = web.LimitConns(ln, s.cfg.MaxConnsPerClient, s.cfg.client.Peer, func() {
		s.sessions.Reporter().Refused(sessionio.CauseConnsPerClient)
	})
	if err := h.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		s.log.Error("listener stopped", "listener", name, "err", err)
	}
}

// URL is the API's base URL once Start returned, e.g. http://127.0.0.1:3000.
func (s *Server) URL() string { return listenerURL(s.apiLn) }

// SPAURL is the cross-origin page's base URL, or "" when there is none.
func (s *Server) SPAURL() string { return listenerURL(s.spaLn) }

func listenerURL(ln net.Listener) string {
	if ln == nil {
		return ""
	}
	addr := ln.Addr().(*net.TCPAddr)
	host := addr.IP.String()
	if addr.IP.IsUnspecified() {
		host = "localhost" // listening on every interface
	}
	return "http://" + net.JoinHostPort(host, strconv.Itoa(addr.Port))
}

// Sessions is the server's session manager.
func (s *Server) Sessions() *sessionio.Manager { return s.sessions }

// Close shuts down gracefully: stop accepting connections, close every
// socket (clients see the server going away), finish running requests
// until ctx ends, then close the store.
func (s *Server) Close(ctx context.Context) error {
	s.closeOnce.Do(func() {
		var (
			mu   sync.Mutex
			errs []error
			wg   sync.WaitGroup
		)
		if err := s.sessions.Shutdown(ctx); err != nil {
			errs = append(errs, err)
		}
		for _, h := range []*http.Server{s.api, s.spa, s.admin} {
			if h == nil {
				continue
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := h.Shutdown(ctx); err != nil {
					mu.Lock()
					errs = append(errs, err)
					mu.Unlock()
				}
			}()
		}
		// Shutdown waits for running requests, long polls included; closing
		// the sockets ends those, and hijacked WebSockets, at once.
		s.io.Close(nil)
		wg.Wait()
		if s.cluster != nil {
			if err := s.cluster.close(); err != nil {
				errs = append(errs, err)
			}
		}
		if err := s.store.Close(); err != nil {
			errs = append(errs, err)
		}
		s.closeErr = errors.Join(errs...)
	})
	return s.closeErr
}

func storeKind(s string) string {
	if isRedis(s) {
		return "redis" // the URL may hold a password
	}
	return s
}
