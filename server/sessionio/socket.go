package sessionio

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/zishang520/socket.io/servers/socket/v3"
	"github.com/zishang520/socket.io/v3/pkg/types"

	"github.com/tandem-go/tandem/server/store"
)

// handshake is what the HTTP handler learned about the session of an
// Engine.IO handshake request. It travels in the request's context, which
// the Socket.IO server keeps for the life of the connection.
type handshake struct {
	id     string
	cookie *http.Cookie // set when the handshake created the session
}

type handshakeKey struct{}

// Attach wires the Socket.IO server io to the manager and returns the HTTP
// handler to mount at io's path (for Echo: e.Any("/socket.io/*",
// echo.WrapHandler(h))). It must be called once, before the server serves.
//
// The handler refuses, with 403, every Engine.IO request (polling or
// WebSocket, handshake or upgrade) whose Origin is neither the server's own
// nor in Config.AllowedOrigins; it gives a handshake without a valid session
// a new session and its cookie (429 when the client address has made too
// many); it answers 503 when the store fails.
//
// On the main namespace every socket then gets its session (FromSocket),
// joins the session's room, and reloads the session before each incoming
// packet; every CheckInterval the sessions of all sockets are checked. opts
// may be nil; Attach sets its Cors (credentials on, any origin that passed
// the check above).
func (m *Manager) Attach(io *socket.Server, opts *socket.ServerOptions) http.Handler {
	if opts == nil {
		opts = socket.DefaultServerOptions()
	}
	opts.SetCors(&types.Cors{
		Origin:      func(string) bool { return true }, // the handler below already refused the rest
		Credentials: true,
	})
	engine := io.ServeHandler(opts)
	io.Engine().Use(m.setCookie)
	io.Use(m.Middleware)
	if !m.io.CompareAndSwap(nil, io) {
		panic("sessionio: Attach called twice")
	}
	go m.checkLoop()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !m.origins.allows(r) {
			m.log.Info("sessionio: socket refused: origin not allowed", "origin", r.Header.Get("Origin"))
			writeError(w, http.StatusForbidden, "origin not allowed")
			return
		}
		if r.Method == http.MethodGet && r.URL.Query().Get("sid") == "" {
			hs, err := m.handshakeSession(r)
			if err != nil {
				status, msg := http.StatusServiceUnavailable, "session store unavailable"
				if errors.Is(err, ErrTooManySessions) {
					status, msg = http.StatusTooManyRequests, "too many new sessions from this address"
					w.Header().Set("Retry-After", strconv.Itoa(int(1/m.cfg.CreateRate)+1))
				} else {
					m.log.Error("sessionio: handshake", "err", err)
				}
				writeError(w, status, msg)
				return
			}
			r = r.WithContext(context.WithValue(r.Context(), handshakeKey{}, hs))
		}
		engine.ServeHTTP(w, r)
	})
}

// handshakeSession finds the live session named by r's cookie, or creates
// one.
func (m *Manager) handshakeSession(r *http.Request) (*handshake, error) {
	if id, ok := m.idFromRequest(r); ok {
		key := keyOf(id)
		rec, err := m.cfg.Store.Load(r.Context(), key)
		if err == nil {
			m.touchIfDue(r.Context(), key, rec)
			return &handshake{id: id}, nil
		}
		if !errors.Is(err, store.ErrNotFound) {
			return nil, err
		}
	}
	id, _, err := m.create(r.Context(), r, nil)
	if err != nil {
		return nil, err
	}
	return &handshake{id: id, cookie: m.cookie(r, id)}, nil
}

// setCookie is Engine.IO middleware: it puts the cookie of a session made by
// the handshake on the handshake's answer. It is the one place that can, as
// a WebSocket's 101 answer is written by the Engine.IO server itself.
func (m *Manager) setCookie(ctx *types.HttpContext, next func(error)) {
	if hs, ok := ctx.Request().Context().Value(handshakeKey{}).(*handshake); ok && hs.cookie != nil {
		ctx.ResponseHeaders().Add("Set-Cookie", hs.cookie.String())
	}
	next(nil)
}

// Middleware is the namespace middleware that gives a socket its session.
// Attach installs it on the main namespace; install it on any other
// namespace with io.Of(name).Use(m.Middleware).
func (m *Manager) Middleware(s *socket.Socket, next func(*socket.ExtendedError)) {
	hs, ok := s.Request().Request().Context().Value(handshakeKey{}).(*handshake)
	if !ok {
		next(socket.NewExtendedError("sessionio: the handshake did not go through the sessionio handler", nil))
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), m.cfg.StoreTimeout)
	defer cancel()
	h, err := m.acquire(ctx, hs.id, s)
	if errors.Is(err, store.ErrNotFound) {
		// Gone between handshake and connect: close the connection, so the
		// client reconnects and its handshake gets a new session.
		s.Conn().Close(true)
		return
	}
	if err != nil {
		m.log.Warn("sessionio: socket refused: store error", "err", err)
		next(socket.NewExtendedError("session store unavailable", nil))
		return
	}
	s.Join(h.room())
	s.Use(func(_ []any, next func(error)) {
		ctx, cancel := context.WithTimeout(context.Background(), m.cfg.StoreTimeout)
		defer cancel()
		if err := h.Reload(ctx); err != nil {
			m.dropSocket(s, h, err)
			return
		}
		next(nil)
	})
	release := func(...any) { m.release(s, h) }
	_ = s.On("disconnect", release)
	// A later middleware may refuse the socket, which then never connects
	// nor disconnects; the connection's end releases it in every case.
	_ = s.Conn().Once("close", release)
	next(nil)
	// Read no further packet before the socket is registered: see
	// awaitConnected.
	awaitConnected(s)
}

// dropSocket closes a socket's connection after its session failed to
// reload: gone (the client reconnects into a new session) or unreadable.
func (m *Manager) dropSocket(s *socket.Socket, h *Session, err error) {
	if errors.Is(err, store.ErrNotFound) {
		m.log.Info("sessionio: session gone; closing its socket", "session", logKey(h.key))
	} else {
		m.log.Warn("sessionio: session reload failed; closing its socket", "session", logKey(h.key), "err", err)
	}
	s.Conn().Close(true)
}

var sockets sync.Map // *socket.Socket -> *Session

// FromSocket returns the session of a socket connected through a Manager's
// Middleware, or nil for any other socket.
func FromSocket(s *socket.Socket) *Session {
	h, _ := sockets.Load(s)
	sess, _ := h.(*Session)
	return sess
}

// acquire loads the session id and returns this node's handle for it, with
// s counted among its sockets.
func (m *Manager) acquire(ctx context.Context, id string, s *socket.Socket) (*Session, error) {
	key := keyOf(id)
	rec, err := m.cfg.Store.Load(ctx, key)
	if err != nil {
		return nil, err
	}
	v, err := decodeValues(rec.Data)
	if err != nil {
		return nil, err
	}
	m.touchIfDue(ctx, key, rec)
	m.mu.Lock()
	h, ok := m.live[key]
	if !ok {
		h = &Session{m: m, id: id, key: key, sockets: map[*socket.Socket]struct{}{}}
		m.live[key] = h
	}
	h.sockets[s] = struct{}{}
	m.mu.Unlock()
	h.set(v, rec)
	sockets.Store(s, h)
	return h, nil
}

func (m *Manager) release(s *socket.Socket, h *Session) {
	sockets.Delete(s)
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(h.sockets, s)
	if len(h.sockets) == 0 && m.live[h.key] == h {
		delete(m.live, h.key)
	}
}

// refresh hands newly read or committed values to this node's handle of the
// session, if it has one.
func (m *Manager) refresh(key string, v Values, rec store.Record) {
	m.mu.Lock()
	h := m.live[key]
	m.mu.Unlock()
	if h != nil {
		h.set(cloneValues(v), rec) // v belongs to the caller
	}
}

// checkLoop checks the sessions of this node's sockets every CheckInterval.
func (m *Manager) checkLoop() {
	defer close(m.done)
	t := time.NewTicker(m.cfg.CheckInterval)
	defer t.Stop()
	for {
		select {
		case <-m.stop:
			return
		case <-t.C:
			m.checkAll()
		}
	}
}

// checkAll loads each live session once, whatever its number of sockets,
// and closes the connections of those that are gone. It does not extend
// any session's life: an idle tab must not keep its session alive.
func (m *Manager) checkAll() {
	m.mu.Lock()
	handles := make([]*Session, 0, len(m.live))
	for _, h := range m.live {
		handles = append(handles, h)
	}
	m.mu.Unlock()
	for _, h := range handles {
		select {
		case <-m.stop:
			return
		default:
		}
		ctx, cancel := context.WithTimeout(context.Background(), m.cfg.StoreTimeout)
		rec, err := m.cfg.Store.Load(ctx, h.key)
		cancel()
		switch {
		case errors.Is(err, store.ErrNotFound):
			m.log.Info("sessionio: session expired; closing its sockets", "session", logKey(h.key))
			for _, s := range h.socketList() {
				s.Conn().Close(true)
			}
		case err != nil:
			m.log.Warn("sessionio: session check failed", "session", logKey(h.key), "err", err)
		default:
			if v, err := decodeValues(rec.Data); err == nil {
				h.set(v, rec)
			}
		}
	}
}

// writeError answers with the JSON error body every tandem error has.
func writeError(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": msg})
}
