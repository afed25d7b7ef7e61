package sessionio

import (
	"context"
	"errors"
	"time"

	"github.com/zishang520/socket.io/servers/socket/v3"

	"github.com/tandem-go/tandem/server/store"
)

// Reporter receives what a Manager does, for metrics, traces or logs of
// the application's choosing (Config.Report); sessionio itself depends on
// no metrics library. Its methods are called synchronously, from any
// goroutine (the HTTP request's, a socket's queue, the check loop), often
// on hot paths: they must be safe for concurrent use, fast, and never
// block. No argument ever holds a session ID, key, or anything a client
// chose but the event names of Received and Delivered, which a Reporter
// must map onto a bounded set of its own.
//
// Embed NopReporter to implement only some methods: methods added to
// Reporter later then do nothing in your type.
type Reporter interface {
	// SessionCreated is called once per session the manager created (by
	// Update, Save or a socket handshake), after the store has it.
	SessionCreated()
	// SessionEnded is called once per session that this node ended or
	// found ended, with the reason: a logout by the Destroy (or Save with
	// a negative MaxAge) that deleted it (End does not report it again),
	// any other reason by End, by the sockets' reload or the periodic
	// check.
	SessionEnded(reason EndReason)
	// Refused is called for every request, socket or event refused by one
	// of the limits or checks, with its cause.
	Refused(cause Cause)
	// StoreDone is called when a call to Config.Store returned: which call
	// (StoreCreate, StoreLoad, ...), how long it took, and its error (nil
	// when it succeeded; the expected outcomes store.ErrNotFound and
	// store.ErrExists and an UpdateFunc's own error count as success).
	StoreDone(op string, took time.Duration, err error)
	// Received is called for each event a socket sent, before the event
	// limit (refused events are counted too).
	Received(event string)
	// Delivered is called when event was sent to sockets of this node:
	// sockets is how many.
	Delivered(event string, sockets int)
	// RelayFailed is called when an Emit or Disconnect could not be relayed
	// to the other nodes (the error wraps ErrNodesUnreachable).
	RelayFailed()
}

// NopReporter is a Reporter that does nothing; embed it in a Reporter of
// your own.
type NopReporter struct{}

func (NopReporter) SessionCreated()                                  {}
func (NopReporter) SessionEnded(EndReason)                           {}
func (NopReporter) Refused(Cause)                                    {}
func (NopReporter) StoreDone(op string, took time.Duration, e error) {}
func (NopReporter) Received(string)                                  {}
func (NopReporter) Delivered(string, int)                            {}
func (NopReporter) RelayFailed()                                     {}

var _ Reporter = NopReporter{}

// EndReason says why a session ended.
type EndReason string

// The reasons of Reporter.SessionEnded. They are the values of the
// "session ended" event's reason, plus gone.
const (
	// EndLogout: the application ended it (Destroy, or Save with a
	// negative MaxAge).
	EndLogout EndReason = "logout"
	// EndRevoked: ended from another session of its user.
	EndRevoked EndReason = "revoked"
	// EndExpired: its idle or absolute lifetime ran out.
	EndExpired EndReason = "expired"
	// EndGone: the sockets of this node held a session that the store no
	// longer has, for a reason this node does not know (deleted on another
	// node, expired, unreadable).
	EndGone EndReason = "gone"
)

// EndReasons lists every EndReason, for a Reporter that wants its series
// to exist before the first event.
var EndReasons = []EndReason{EndLogout, EndRevoked, EndExpired, EndGone}

// Cause says why something was refused. The list is in one place, here:
// a new limit adds its Cause to the const block and to Causes. Some causes
// are the application's (its HTTP layer's), not sessionio's: it reports
// them through the same Reporter (Manager.Reporter), so that every refusal
// is counted under one name.
type Cause string

// The causes of Reporter.Refused.
const (
	// CauseOrigin: a socket request from an origin outside the allowlist.
	CauseOrigin Cause = "origin"
	// CauseCSRF: an HTTP request refused by the cross-origin protection
	// (reported by the application).
	CauseCSRF Cause = "csrf"
	// CauseSessionRate: a new session over the creation bound of its
	// client address or of all clients.
	CauseSessionRate Cause = "session_rate"
	// CauseSocketsPerSession and CauseSocketsPerClient: a socket over a
	// socket cap.
	CauseSocketsPerSession Cause = "sockets_per_session"
	CauseSocketsPerClient  Cause = "sockets_per_client"
	// CauseEventRate: an event over its socket's event limit.
	CauseEventRate Cause = "event_rate"
	// CausePayload: a message or body over its size bound (a Socket.IO
	// message, or an HTTP request body the application refuses with 413).
	CausePayload Cause = "payload"
	// CauseConnsPerClient: a connection over the bound of its client
	// address: a TCP connection (reported by the application's listener)
	// or an Engine.IO handshake over Config.EngineConnsPerClient.
	CauseConnsPerClient Cause = "conns_per_client"
	// CauseBodyTimeout: a request body that did not arrive in time
	// (reported by the application).
	CauseBodyTimeout Cause = "body_timeout"
)

// Causes lists every Cause.
var Causes = []Cause{
	CauseOrigin, CauseCSRF, CauseSessionRate, CauseSocketsPerSession, CauseSocketsPerClient,
	CauseEventRate, CausePayload, CauseConnsPerClient, CauseBodyTimeout,
}

// The ops of Reporter.StoreDone: the store.Store method called.
const (
	StoreCreate = "create"
	StoreLoad   = "load"
	StoreUpdate = "update"
	StoreTouch  = "touch"
	StoreDelete = "delete"
	StorePing   = "ping"
	// StoreRenew and StoreUserSessions: Renew (SignIn, Renew) and
	// UserSessions.
	StoreRenew        = "renew"
	StoreUserSessions = "user_sessions"
)

// StoreOps lists the ops of StoreDone.
var StoreOps = []string{StoreCreate, StoreLoad, StoreUpdate, StoreTouch, StoreDelete, StorePing, StoreRenew, StoreUserSessions}

// Reporter returns the manager's Reporter (a NopReporter when
// Config.Report is nil), for the application to report its own refusals
// (CauseCSRF, CauseConnsPerClient, ...) under the same names.
func (m *Manager) Reporter() Reporter { return m.report }

// endSession reports the end of the session key once per handle on this
// node: a logout, and the sockets' later discovery that it is gone, count
// as one end.
func (m *Manager) endSession(key string, reason EndReason) {
	m.mu.Lock()
	h := m.live[key]
	m.mu.Unlock()
	if h != nil && !h.ended.CompareAndSwap(false, true) {
		return
	}
	m.report.SessionEnded(reason)
}

// receivedEvent is socket middleware that reports each event the socket
// sent. Attach installs it only when Config.Report is set.
func (m *Manager) receivedEvent(args []any, next func(error)) {
	if len(args) > 0 {
		if event, ok := args[0].(string); ok {
			m.report.Received(event)
		}
	}
	next(nil)
}

// delivered reports an event sent to the room key on this node: to as
// many sockets as the room holds here (the adapter's count, without
// locking any socket), less those skipped.
func (m *Manager) delivered(io *socket.Server, key, event string, skipped int) {
	if m.cfg.Report == nil {
		return
	}
	n := 0
	if set, ok := io.Sockets().Adapter().Rooms().Load(socket.Room(key)); ok {
		n = set.Len()
	}
	if n -= skipped; n > 0 {
		m.report.Delivered(event, n)
	}
}

// reportingStore times every call of the store it wraps, for
// Reporter.StoreDone. New wraps Config.Store in it when Config.Report is
// set. Methods of store.Store that it does not override reach the store
// untimed.
type reportingStore struct {
	store.Store
	r Reporter
}

// storeErr is what StoreDone is told of err: the outcomes that are answers
// (not found, exists) are successes.
func storeErr(err error) error {
	if errors.Is(err, store.ErrNotFound) || errors.Is(err, store.ErrExists) || errors.Is(err, store.ErrRenewed) {
		return nil
	}
	return err
}

func (s reportingStore) done(op string, start time.Time, err error) {
	s.r.StoreDone(op, time.Since(start), storeErr(err))
}

func (s reportingStore) Create(ctx context.Context, key string, data []byte, meta store.Meta, ttl time.Duration) error {
	start := time.Now()
	err := s.Store.Create(ctx, key, data, meta, ttl)
	s.done(StoreCreate, start, err)
	return err
}

func (s reportingStore) Renew(ctx context.Context, oldKey, newKey string, meta store.Meta, ttl, grace time.Duration) (store.Record, error) {
	start := time.Now()
	rec, err := s.Store.Renew(ctx, oldKey, newKey, meta, ttl, grace)
	s.done(StoreRenew, start, err)
	return rec, err
}

func (s reportingStore) UserSessions(ctx context.Context, user string) ([]store.UserSession, error) {
	start := time.Now()
	list, err := s.Store.UserSessions(ctx, user)
	s.done(StoreUserSessions, start, err)
	return list, err
}

func (s reportingStore) Load(ctx context.Context, key string) (store.Record, error) {
	start := time.Now()
	rec, err := s.Store.Load(ctx, key)
	s.done(StoreLoad, start, err)
	return rec, err
}

func (s reportingStore) Update(ctx context.Context, key string, ttl time.Duration, fn store.UpdateFunc) (store.Record, error) {
	var own error // fn's error: the caller's answer, not the store's failure
	start := time.Now()
	rec, err := s.Store.Update(ctx, key, ttl, func(data []byte) ([]byte, error) {
		out, err := fn(data)
		own = err
		return out, err
	})
	failed := err
	if own != nil && errors.Is(err, own) {
		failed = nil
	}
	s.done(StoreUpdate, start, failed)
	return rec, err
}

func (s reportingStore) Touch(ctx context.Context, key string, ttl time.Duration) error {
	start := time.Now()
	err := s.Store.Touch(ctx, key, ttl)
	s.done(StoreTouch, start, err)
	return err
}

func (s reportingStore) Delete(ctx context.Context, key string) error {
	start := time.Now()
	err := s.Store.Delete(ctx, key)
	s.done(StoreDelete, start, err)
	return err
}

func (s reportingStore) Ping(ctx context.Context) error {
	start := time.Now()
	err := s.Store.Ping(ctx)
	s.done(StorePing, start, err)
	return err
}
