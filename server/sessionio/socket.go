package sessionio

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/zishang520/socket.io/servers/engine/v3"
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
	client string       // Config.ClientIP of the handshake request
	slot   *connSlot    // the connection's place under EngineConnsPerClient
	// refused is set, instead of id, when the client address already had
	// its cap of sockets: the handshake made no session, and the socket is
	// refused with this error.
	refused error
}

type handshakeKey struct{}

// Attach wires the Socket.IO server io to the manager and returns the HTTP
// handler to mount at io's path (for Echo: e.Any("/socket.io/*",
// echo.WrapHandler(h))). Call it once, before the server serves: a second
// call returns ErrAlreadyAttached, a call after Close or Shutdown ErrClosed,
// and neither changes io or opts.
//
// The handler refuses, with 403, every Engine.IO request (polling or
// WebSocket, handshake or upgrade) whose Origin is neither the server's own
// nor in Config.AllowedOrigins; it gives a handshake without a valid session
// a new session and its cookie (429 when the client address has made too
// many); it answers 503 when the store fails. Config.ErrorHandler writes
// those answers.
//
// On the main namespace every socket then gets its session (FromSocket),
// joins the session's room, and reloads the session before each incoming
// packet; every CheckInterval the sessions of all sockets are checked. opts
// may be nil; Attach serves io with a copy of opts whose Cors it sets
// (credentials on, any origin that passed the check above): opts itself is
// not changed.
//
// Several nodes: give opts the adapter that reaches them (opts.SetAdapter,
// for example the Redis adapter; Attach sets it on io), or set it on io
// before Attach. The manager wires its relay for the adapter io has at
// Attach; an adapter set on io afterwards would leave Emit, End and
// Disconnect on this node (and drops every socket's rooms), so the manager
// detects it: those calls then return ErrAdapterChanged and handshakes are
// refused with 500 (and one error log line).
func (m *Manager) Attach(io *socket.Server, opts *socket.ServerOptions) (http.Handler, error) {
	if io == nil {
		return nil, errors.New("sessionio: Attach needs a Socket.IO server")
	}
	m.mu.Lock()
	switch {
	case m.closed:
		m.mu.Unlock()
		return nil, ErrClosed
	case m.attached:
		m.mu.Unlock()
		return nil, ErrAlreadyAttached
	}
	m.attached = true
	m.checking = m.cfg.CheckInterval > 0
	m.mu.Unlock()
	if opts != nil && opts.GetRawAdapter() != nil && !sameAdapter(io.Adapter(), opts.Adapter()) {
		// The engine's options do not carry the adapter to io: Attach
		// takes it, before anything is wired.
		io.SetAdapter(opts.Adapter())
	}
	own := socket.DefaultServerOptions()
	if opts != nil {
		own.Assign(opts)
	}
	own.SetCors(&types.Cors{
		Origin:      func(string) bool { return true }, // the handler below already refused the rest
		Credentials: true,
	})
	engine := io.ServeHandler(own)
	m.adapter = io.Adapter()
	maxBody := io.Engine().Opts().MaxHttpBufferSize() // with the engine's defaults
	rules := newHandshakeRules(io)
	io.Engine().Use(m.setCookie)
	_ = io.Engine().On("connection", m.adoptSlot)
	io.Use(m.NamespaceMiddleware)
	m.io.Store(io)
	if m.checking {
		go m.checkLoop()
	}
	if clustered(io) {
		m.clustered.Store(true)
		m.listenRelay(io)
		m.listenUsers(io)
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := m.checkAdapter(io); err != nil {
			m.cfg.ErrorHandler(w, r, http.StatusInternalServerError, err)
			return
		}
		if !m.allowsOrigin(r) {
			m.log.Info("sessionio: socket refused: origin not allowed", "origin", r.Header.Get("Origin"))
			m.report.Refused(CauseOrigin)
			m.cfg.ErrorHandler(w, r, http.StatusForbidden, ErrForbiddenOrigin)
			return
		}
		q, err := readEngineQuery(r)
		if err == nil {
			err = rules.check(r, q)
		}
		if err != nil {
			m.log.Debug("sessionio: socket refused", "err", err)
			m.cfg.ErrorHandler(w, r, http.StatusBadRequest, err)
			return
		}
		if q.isHandshake(r) {
			client := m.cfg.ClientIP(r)
			slot, ok := m.conns.take(client)
			if !ok {
				m.log.Info("sessionio: handshake refused: too many connections for the client address", "client", client)
				m.report.Refused(CauseConnsPerClient)
				w.Header().Set("Retry-After", strconv.Itoa(connRetryAfter))
				m.cfg.ErrorHandler(w, r, http.StatusTooManyRequests, ErrTooManyClientConns)
				return
			}
			// The engine socket adopts the slot (adoptSlot); if the engine
			// made none, the slot ends with the request.
			defer slot.abandon()
			if m.caps.clientFull(client) {
				// Neither load nor create a session for a socket that
				// will be refused; the namespace middleware refuses it
				// with a connect error the client can read.
				m.log.Info("sessionio: socket refused: too many sockets for the client address", "client", client)
				m.report.Refused(CauseSocketsPerClient)
				hs := &handshake{client: client, slot: slot, refused: ErrTooManyClientSockets}
				r = r.WithContext(context.WithValue(r.Context(), handshakeKey{}, hs))
				engine.ServeHTTP(w, r)
				return
			}
			hs, err := m.handshakeSession(r)
			if hs != nil {
				hs.slot = slot
			}
			if err != nil {
				status := http.StatusServiceUnavailable
				if errors.Is(err, ErrSessionRenewed) {
					// Sent before the renewal's answer reached the
					// client: it retries with its new cookie.
					m.cfg.ErrorHandler(w, r, http.StatusConflict, err)
					return
				}
				if ra := (*RetryAfterError)(nil); errors.As(err, &ra) {
					status = http.StatusTooManyRequests
					w.Header().Set("Retry-After", strconv.Itoa(ra.Seconds()))
				} else {
					m.log.Error("sessionio: handshake", "err", err)
					err = fmt.Errorf("%w: %w", ErrStoreUnavailable, err)
				}
				m.cfg.ErrorHandler(w, r, status, err)
				return
			}
			r = r.WithContext(context.WithValue(r.Context(), handshakeKey{}, hs))
		}
		if q.sid != "" && q.transport == "polling" {
			m.servePolling(engine, w, r, q.sid, maxBody)
			return
		}
		engine.ServeHTTP(w, r)
	}), nil
}

// handshakeSession finds the live session named by r's cookie, or creates
// one; a renewed one is ErrSessionRenewed.
func (m *Manager) handshakeSession(r *http.Request) (*handshake, error) {
	if id, ok := m.idFromRequest(r); ok {
		key := keyOf(id)
		_, rec, err := m.load(r.Context(), key)
		if err == nil {
			m.touchIfDue(r.Context(), key, rec)
			return &handshake{id: id, client: m.cfg.ClientIP(r)}, nil
		}
		if !errors.Is(err, ErrSessionGone) {
			return nil, err
		}
	}
	id, _, err := m.create(r.Context(), r, nil)
	if err != nil {
		return nil, err
	}
	return &handshake{id: id, cookie: m.cookie(r, id), client: m.cfg.ClientIP(r)}, nil
}

// connRetryAfter is the Retry-After, in seconds, of a handshake refused by
// EngineConnsPerClient: about the time an idle connection of the client's
// takes to end (the connect timeout of one that joins no namespace).
const connRetryAfter = 10

// adoptSlot is the engine's connection listener: the new engine socket
// takes over its handshake's slot under EngineConnsPerClient, and frees it
// when it closes.
func (m *Manager) adoptSlot(args ...any) {
	if len(args) == 0 {
		return
	}
	conn, ok := args[0].(engine.Socket)
	if !ok {
		return
	}
	if hs, ok := conn.Request().Request().Context().Value(handshakeKey{}).(*handshake); ok && hs.slot != nil {
		hs.slot.adopt(conn)
	}
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

// NamespaceMiddleware is the Socket.IO namespace middleware (not HTTP
// middleware) that gives a socket its session. Attach installs it on the main namespace; install it on any other
// namespace with io.Of(name).Use(m.NamespaceMiddleware).
func (m *Manager) NamespaceMiddleware(s *socket.Socket, next func(*socket.ExtendedError)) {
	hs, ok := s.Request().Request().Context().Value(handshakeKey{}).(*handshake)
	if !ok {
		next(socket.NewExtendedError("sessionio: the handshake did not go through the sessionio handler", nil))
		return
	}
	if hs.refused != nil {
		next(socket.NewExtendedError(hs.refused.Error(), nil))
		return
	}
	// The socket's slot under the caps, taken before any store call and
	// given back exactly once: on a refusal below, or at the socket's end.
	free, err := m.caps.reserve(hs.id, hs.client)
	if err != nil {
		m.log.Info("sessionio: socket refused", "err", err, "session", logKey(keyOf(hs.id)), "client", hs.client)
		if errors.Is(err, ErrTooManyClientSockets) {
			m.report.Refused(CauseSocketsPerClient)
		} else {
			m.report.Refused(CauseSocketsPerSession)
		}
		next(socket.NewExtendedError(err.Error(), nil))
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), m.cfg.StoreTimeout)
	defer cancel()
	h, err := m.acquire(ctx, hs.id, s)
	if err != nil {
		free()
	}
	if errors.Is(err, ErrSessionGone) || errors.Is(err, ErrSessionRenewed) {
		// Gone (or renewed) between handshake and connect: close the
		// connection, so the client reconnects and its handshake gets a
		// new session (or its new cookie's).
		closeConn(s.Conn())
		return
	}
	if err != nil {
		m.log.Warn("sessionio: socket refused: store error", "err", err)
		next(socket.NewExtendedError("session store unavailable", nil))
		return
	}
	s.Join(h.Room())
	m.joinUser(s, h.User())
	if m.cfg.Report != nil {
		s.Use(m.receivedEvent)
	}
	s.Use(m.eventLimit(s))
	s.Use(func(_ []any, next func(error)) {
		ctx, cancel := context.WithTimeout(context.Background(), m.cfg.StoreTimeout)
		defer cancel()
		if err := h.Reload(ctx); err != nil {
			if errors.Is(err, ErrStoreUnavailable) {
				// The store is down, not the session: the handlers run
				// with the values the handle holds, and a change they
				// try fails with the store's error, which they can
				// answer (an ack) while the socket stays connected.
				m.log.Debug("sessionio: reload failed; handling the packet with the values held", "session", logKey(h.Key()), "err", err)
				next(nil)
				return
			}
			m.sessionLost(h, err)
			return
		}
		next(nil)
	})
	release := func(...any) {
		m.release(s, h)
		m.leftUser(s)
		free()
	}
	_ = s.On("disconnect", release)
	// A later middleware may refuse the socket, which then never connects
	// nor disconnects; the connection's end releases it in every case.
	_ = s.Conn().Once("close", release)
	if s.Conn().ReadyState() == "closed" {
		// Closed before the listener was set: it will not fire.
		release()
	}
	next(nil)
	// Read no further packet before the socket is registered: see
	// awaitConnected.
	awaitConnected(s)
}

// sessionLost acts on a session found gone by a socket's reload or the
// periodic check. Past its lifetime: End(key, EndExpired), so every socket
// on every node hears "expired" before it is disconnected. Renewed: its
// connections are closed (the browser reconnects with the new cookie).
// Gone otherwise (deleted elsewhere, unreadable): its connections are
// closed, so the clients reconnect into a new session.
func (m *Manager) sessionLost(h *Session, err error) {
	key := h.Key()
	switch {
	case errors.Is(err, ErrSessionGone) && h.expired(time.Now()):
		m.log.Info("sessionio: session expired; ending it", "session", logKey(key))
		if err := m.End(key, EndExpired); err != nil {
			m.log.Warn("sessionio: end an expired session", "session", logKey(key), "err", err)
			m.closeAll(h) // at least this node's
		}
		return
	case errors.Is(err, ErrSessionRenewed):
		m.log.Info("sessionio: session renewed; closing its old connections", "session", logKey(key))
	case errors.Is(err, ErrSessionGone):
		m.log.Info("sessionio: session gone; closing its connections", "session", logKey(key))
		m.endSession(key, EndGone)
	default:
		m.log.Warn("sessionio: session reload failed; closing its connections", "session", logKey(key), "err", err)
	}
	m.closeAll(h)
}

// closeAll closes the connections of h's sockets on this node.
func (m *Manager) closeAll(h *Session) {
	for _, s := range h.socketList() {
		closeConn(s.Conn())
	}
}

// FromSocket returns the session of a socket connected through this
// Manager's NamespaceMiddleware, or nil for any other socket.
func (m *Manager) FromSocket(s *socket.Socket) *Session {
	h, _ := m.sockets.Load(s)
	sess, _ := h.(*Session)
	return sess
}

// acquire loads the session id and returns this node's handle for it, with
// s counted among its sockets.
func (m *Manager) acquire(ctx context.Context, id string, s *socket.Socket) (*Session, error) {
	key := keyOf(id)
	v, rec, err := m.load(ctx, key)
	if err != nil {
		return nil, err
	}
	m.touchIfDue(ctx, key, rec)
	m.mu.Lock()
	h, ok := m.live[key]
	if !ok {
		h = &Session{m: m, key: key, sockets: map[*socket.Socket]struct{}{}}
		m.live[key] = h
	}
	h.sockets[s] = struct{}{}
	m.mu.Unlock()
	m.floors.add(key, s.Id(), rec.Version)
	h.set(key, v, rec)
	m.sockets.Store(s, h)
	return h, nil
}

func (m *Manager) release(s *socket.Socket, h *Session) {
	m.sockets.Delete(s)
	m.floors.remove(h.Key(), s.Id())
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(h.sockets, s)
	if key := h.Key(); len(h.sockets) == 0 && m.live[key] == h {
		delete(m.live, key)
	}
}

// refresh hands newly read or committed values to this node's handle of the
// session, if it has one.
func (m *Manager) refresh(key string, v Values, rec store.Record) {
	m.mu.Lock()
	h := m.live[key]
	m.mu.Unlock()
	if h != nil {
		h.set(key, cloneValues(v), rec) // v belongs to the caller
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
// and ends those that expired, closes the connections of those that are
// gone (sessionLost); on a clustered node it also sends the sockets the
// state they lack (see Resync). It does not extend any session's life: an
// idle tab must not keep its session alive.
func (m *Manager) checkAll() {
	io := m.io.Load()
	clustered := io != nil && m.clustered.Load()
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
		m.checkOne(io, clustered, h)
	}
}

// writeError is the default Config.ErrorHandler: a plain-text answer that
// names the reason without internal details.
func writeError(w http.ResponseWriter, _ *http.Request, status int, err error) {
	msg := http.StatusText(status)
	for _, e := range []error{ErrForbiddenOrigin, ErrTooManySessions, ErrTooManyClientConns, ErrStoreUnavailable} {
		if errors.Is(err, e) {
			msg = strings.TrimPrefix(e.Error(), "sessionio: ")
			break
		}
	}
	w.Header().Set("Cache-Control", "no-store")
	http.Error(w, msg, status)
}
