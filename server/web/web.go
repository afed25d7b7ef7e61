// Package web holds tandem's HTTP API: POST /incr, POST /logout,
// GET /session and GET /healthz, the middleware that guards them, and the one
// place (error.go) where errors become HTTP statuses.
//
// Handlers reach the session through echo-contrib/session and the sessionio
// Manager (a gorilla sessions.Store). They tell the session's sockets about
// what they did through Notifier, which package realtime implements; this
// package knows nothing of Socket.IO.
package web

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/gorilla/sessions"
	"github.com/labstack/echo-contrib/session"
	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"

	"github.com/tandem-go/tandem/server/counter"
	"github.com/tandem-go/tandem/server/sessionio"
	"github.com/tandem-go/tandem/shared"
)

// Notifier tells the sockets of a session what an HTTP request did to it.
type Notifier interface {
	// CountChanged is called once the store committed a new count of the
	// session with the given key (sessionio.Manager.KeyOf).
	CountChanged(sessionKey string, count int)
	// SessionEnded is called once the session is gone from the store
	// after a logout from one of its own tabs.
	SessionEnded(sessionKey string)
}

// Config configures the API.
type Config struct {
	Sessions *sessionio.Manager // required
	Notifier Notifier           // required
	// AllowedOrigins may call the API from another origin, with
	// credentials. The server's own origin always may.
	AllowedOrigins []string
	// MaxBody bounds request bodies ("64KB", echo's BodyLimit syntax).
	// The API reads none, so the default is small.
	MaxBody string
	Logger  *slog.Logger
}

// Register adds the API routes to e, behind CORS (the allowlist, with
// credentials), cross-origin protection for unsafe methods (403 from any
// other origin, checked before anything changes), a body limit, and the
// session store.
func Register(e *echo.Echo, cfg Config) error {
	if cfg.MaxBody == "" {
		cfg.MaxBody = "64KB"
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	csrf := http.NewCrossOriginProtection()
	for _, o := range cfg.AllowedOrigins {
		if err := csrf.AddTrustedOrigin(o); err != nil {
			return err
		}
	}
	csrf.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		cfg.Logger.Info("web: cross-origin request refused", "path", r.URL.Path, "origin", r.Header.Get("Origin"), "sec_fetch_site", r.Header.Get("Sec-Fetch-Site"))
		cfg.Sessions.Reporter().Refused(sessionio.CauseCSRF)
		writeJSON(w, http.StatusForbidden, shared.ErrorBody{Error: "cross-origin request refused"})
	}))

	h := &handlers{sessions: cfg.Sessions, notify: cfg.Notifier, log: cfg.Logger}
	// Middleware per route, not on a Group: a Group with middleware claims
	// every path under its prefix, which for the empty prefix is all of
	// them, the page's included.
	cors := middleware.CORSWithConfig(middleware.CORSConfig{
		AllowOrigins:     cfg.AllowedOrigins,
		AllowMethods:     []string{http.MethodGet, http.MethodPost},
		AllowCredentials: true,
		MaxAge:           600,
	})
	// A cookie signed with an older key is signed again with the current
	// one, so that an old key can be dropped once its clients came back.
	reissue := func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			cfg.Sessions.Reissue(c.Response(), c.Request())
			return next(c)
		}
	}
	mw := []echo.MiddlewareFunc{
		cors,
		echo.WrapMiddleware(csrf.Handler),
		bodyLimit(cfg.MaxBody, cfg.Sessions.Reporter()),
		session.Middleware(cfg.Sessions),
		reissue,
	}
	e.POST(shared.RouteIncr, h.incr, mw...)
	e.POST(shared.RouteLogout, h.logout, mw...)
	e.POST(shared.RouteDevicesRevoke, h.revoke, mw...)
	e.POST(shared.RouteLogin, h.login, mw...)
	// GET /devices never creates a session, but answers who is signed in
	// and their sessions: like GET /session, a cross-site GET is refused.
	e.GET(shared.RouteDevices, h.devices, cors, crossSiteGET(csrf, cfg.Sessions.Reporter(), cfg.Logger), bodyLimit(cfg.MaxBody, cfg.Sessions.Reporter()), reissue)
	// GET /session creates a session when there is none, so a cross-site
	// GET (an <img> on any page) would make the store create one for each
	// of that page's visitors. It gets the POSTs' check, and the same 403.
	e.GET(shared.RouteSession, h.session, cors, crossSiteGET(csrf, cfg.Sessions.Reporter(), cfg.Logger), bodyLimit(cfg.MaxBody, cfg.Sessions.Reporter()), session.Middleware(cfg.Sessions), reissue)
	e.GET(shared.RouteHealth, h.health, mw...)
	// Preflights reach the CORS middleware only through a route.
	preflight := func(c echo.Context) error { return c.NoContent(http.StatusNoContent) }
	for _, p := range []string{shared.RouteIncr, shared.RouteLogout, shared.RouteSession, shared.RouteDevices, shared.RouteDevicesRevoke, shared.RouteLogin} {
		e.OPTIONS(p, preflight, mw...)
	}
	return nil
}

// crossSiteGET refuses a GET that http.CrossOriginProtection would refuse
// were it a POST: Sec-Fetch-Site cross-site or same-site from outside the
// allowlist, or an Origin that is neither the server's own nor allowlisted.
// A request without either header (not a browser) passes, as for POSTs.
// Refusing, rather than answering without creating, keeps one rule for every
// route that may create a session: a browser request from another site
// never reaches the session layer.
// bodyLimit is Echo's BodyLimit, with each 413 counted as a payload
// refusal: a Content-Length over limit, refused before the handler runs,
// and a body that grows past it while the handler reads it (Echo's reader
// returns the same error, which the handler passes on).
func bodyLimit(limit string, report sessionio.Reporter) echo.MiddlewareFunc {
	limited := middleware.BodyLimit(limit)
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		h := limited(next)
		return func(c echo.Context) error {
			err := h(c)
			if errors.Is(err, echo.ErrStatusRequestEntityTooLarge) {
				report.Refused(sessionio.CausePayload)
			}
			return err
		}
	}
}

func crossSiteGET(csrf *http.CrossOriginProtection, report sessionio.Reporter, log *slog.Logger) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			r := *c.Request() // Check passes safe methods: ask as if it were a POST
			r.Method = http.MethodPost
			if err := csrf.Check(&r); err != nil {
				log.Info("web: cross-site GET refused", "path", r.URL.Path, "origin", r.Header.Get("Origin"), "sec_fetch_site", r.Header.Get("Sec-Fetch-Site"))
				report.Refused(sessionio.CauseCSRF)
				return echo.NewHTTPError(http.StatusForbidden, "cross-origin request refused")
			}
			return next(c)
		}
	}
}

type handlers struct {
	sessions *sessionio.Manager
	notify   Notifier
	log      *slog.Logger
}

// incr increments the count atomically and answers the new value; the
// session's sockets hear of it once the store has committed it.
func (h *handlers) incr(c echo.Context) error {
	var n int
	_, err := h.sessions.Update(c.Response(), c.Request(), counter.Incr, func(s *sessions.Session) {
		n = counter.Count(s.Values)
		h.notify.CountChanged(h.sessions.KeyOf(s), n)
	})
	if err != nil {
		return sessionError(err)
	}
	noStore(c)
	return c.String(http.StatusOK, strconv.Itoa(n))
}

// logout ends the session: gone from the store and the cookie expired
// before its sockets are told and disconnected. With {"everywhere": true}
// and a signed-in session, every other session of the user ends first,
// its tabs told they were revoked.
func (h *handlers) logout(c echo.Context) error {
	var req shared.LogoutRequest
	if err := readJSON(c, &req, false); err != nil {
		return err
	}
	if req.Everywhere {
		// The library ends them, their tabs told "revoked", on every node.
		_, err := h.sessions.EndOtherSessions(c.Request())
		switch {
		case errors.Is(err, sessionio.ErrNodesUnreachable):
			h.log.Warn("web: logout everywhere: the other nodes could not be reached; their sockets close at their next packet or check", "err", err)
		case err != nil && !errors.Is(err, sessionio.ErrNotSignedIn):
			return sessionError(err)
		}
	}
	key, err := h.sessions.Destroy(c.Response(), c.Request())
	if err != nil {
		return sessionError(err)
	}
	if key != "" {
		h.notify.SessionEnded(key)
	}
	return c.NoContent(http.StatusNoContent)
}

// session answers the count, creating the session (and its cookie) when the
// request has none. Cross-site requests never get here (crossSiteGET).
func (h *handlers) session(c echo.Context) error {
	s, err := session.Get(h.sessions.CookieName(), c)
	if err != nil {
		return sessionError(err)
	}
	if s.IsNew {
		if err := s.Save(c.Request(), c.Response()); err != nil {
			return sessionError(err)
		}
	}
	user, err := h.sessions.UserOf(c.Request())
	if err != nil {
		return sessionError(err)
	}
	noStore(c)
	return c.JSON(http.StatusOK, shared.SessionInfo{Count: counter.Count(s.Values), User: user})
}

func (h *handlers) health(c echo.Context) error {
	ctx, cancel := context.WithTimeout(c.Request().Context(), 2*time.Second)
	defer cancel()
	if err := h.sessions.Ping(ctx); err != nil {
		h.log.Warn("web: health check: store unavailable", "err", err)
		return echo.NewHTTPError(http.StatusServiceUnavailable, "session store unavailable")
	}
	noStore(c)
	return c.JSON(http.StatusOK, map[string]string{"status": "ok"})
}

func noStore(c echo.Context) { c.Response().Header().Set("Cache-Control", "no-store") }
