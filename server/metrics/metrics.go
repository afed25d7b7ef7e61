// Package metrics turns what a tandem server does into Prometheus metrics:
// sessionio's reports (Metrics implements sessionio.Reporter), the HTTP
// layer (Middleware), and the sockets Socket.IO holds (WatchSockets). The
// names and labels are those of DESIGN.md's "Observability"; every label
// takes a bounded set of values, fixed when New is called (an event,
// route or cause outside them counts as "other"), and none ever holds a
// session ID or key, a device id or a user name.
//
// Each Metrics has its own registry (two servers in one process count
// apart), with the Go runtime and process collectors; Handler serves it.
package metrics

import (
	"net/http"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/zishang520/socket.io/servers/socket/v3"

	"github.com/tandem-go/tandem/server/sessionio"
)

// Other is the label value of anything outside a label's known values.
const Other = "other"

// Config fixes the label values of a Metrics.
type Config struct {
	// Backend is the store's kind, the backend label of the store
	// metrics: "memory", "bolt", "redis".
	Backend string
	// Events are the Socket.IO event names counted under their own name.
	Events []string
	// Routes maps an Echo route path (echo.Context.Path, e.g. "/incr" or
	// "/*") to its route label. Any other path is "other".
	Routes map[string]string
}

// Metrics holds a server's collectors. Its methods are safe for concurrent
// use.
type Metrics struct {
	reg     *prometheus.Registry
	backend string
	routes  map[string]string

	created   prometheus.Counter
	ended     map[sessionio.EndReason]prometheus.Counter
	endedVec  *prometheus.CounterVec
	refusals  map[sessionio.Cause]prometheus.Counter
	refusalV  *prometheus.CounterVec
	received  map[string]prometheus.Counter
	delivered map[string]prometheus.Counter
	storeDur  *prometheus.HistogramVec
	storeErr  *prometheus.CounterVec
	storeOps  map[string]storeSeries
	relayErr  prometheus.Counter
	httpReqs  *prometheus.CounterVec
	httpDur   *prometheus.HistogramVec
}

type storeSeries struct {
	dur prometheus.Observer
	err prometheus.Counter
}

var _ sessionio.Reporter = (*Metrics)(nil)

// New makes the collectors and registers them, with the Go runtime and
// process collectors, in a registry of their own. Every series of a known
// label value exists from the start, at zero.
func New(cfg Config) *Metrics {
	m := &Metrics{reg: prometheus.NewRegistry(), backend: cfg.Backend, routes: cfg.Routes}
	f := func(c prometheus.Collector) { m.reg.MustRegister(c) }
	f(collectors.NewGoCollector())
	f(collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))

	m.created = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "tandem_sessions_created_total", Help: "Sessions this node created (HTTP or socket handshake).",
	})
	f(m.created)
	m.endedVec = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "tandem_sessions_ended_total", Help: "Sessions this node ended or found ended, by reason.",
	}, []string{"reason"})
	f(m.endedVec)
	m.ended = map[sessionio.EndReason]prometheus.Counter{}
	for _, r := range sessionio.EndReasons {
		m.ended[r] = m.endedVec.WithLabelValues(string(r))
	}
	m.refusalV = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "tandem_refusals_total", Help: "Requests, sockets and events refused by a limit or check, by cause.",
	}, []string{"cause"})
	f(m.refusalV)
	m.refusals = map[sessionio.Cause]prometheus.Counter{}
	for _, c := range sessionio.Causes {
		m.refusals[c] = m.refusalV.WithLabelValues(string(c))
	}

	events := append([]string{Other}, cfg.Events...)
	rv := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "tandem_socket_events_total", Help: "Events received from sockets, by event.",
	}, []string{"event"})
	dv := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "tandem_deliveries_total", Help: "Events sent to sockets of this node, one per socket, by event.",
	}, []string{"event"})
	f(rv)
	f(dv)
	m.received, m.delivered = map[string]prometheus.Counter{}, map[string]prometheus.Counter{}
	for _, e := range events {
		m.received[e] = rv.WithLabelValues(e)
		m.delivered[e] = dv.WithLabelValues(e)
	}

	m.storeDur = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "tandem_store_duration_seconds",
		Help:    "Duration of session store calls, by backend and op.",
		Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
	}, []string{"backend", "op"})
	m.storeErr = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "tandem_store_errors_total", Help: "Session store calls that failed (not found is no failure), by backend and op.",
	}, []string{"backend", "op"})
	f(m.storeDur)
	f(m.storeErr)
	m.storeOps = map[string]storeSeries{}
	for _, op := range sessionio.StoreOps {
		m.storeOps[op] = storeSeries{m.storeDur.WithLabelValues(m.backend, op), m.storeErr.WithLabelValues(m.backend, op)}
	}
	m.relayErr = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "tandem_relay_errors_total", Help: "Emits and disconnects that could not be relayed to the other nodes.",
	})
	f(m.relayErr)

	m.httpReqs = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "tandem_http_requests_total", Help: "HTTP requests answered on PORT, by route and status code.",
	}, []string{"route", "code"})
	m.httpDur = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "tandem_http_request_duration_seconds",
		Help:    "Duration of HTTP requests on PORT (Socket.IO long polls included), by route and status code.",
		Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
	}, []string{"route", "code"})
	f(m.httpReqs)
	f(m.httpDur)
	return m
}

// Handler serves the registry in the Prometheus exposition format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}

// Registry is where the collectors are registered, for one of your own.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// SessionCreated implements sessionio.Reporter.
func (m *Metrics) SessionCreated() { m.created.Inc() }

// SessionEnded implements sessionio.Reporter.
func (m *Metrics) SessionEnded(reason sessionio.EndReason) {
	if c, ok := m.ended[reason]; ok {
		c.Inc()
		return
	}
	m.endedVec.WithLabelValues(Other).Inc()
}

// Refused implements sessionio.Reporter.
func (m *Metrics) Refused(cause sessionio.Cause) {
	if c, ok := m.refusals[cause]; ok {
		c.Inc()
		return
	}
	m.refusalV.WithLabelValues(Other).Inc()
}

// StoreDone implements sessionio.Reporter.
func (m *Metrics) StoreDone(op string, took time.Duration, err error) {
	s, ok := m.storeOps[op]
	if !ok {
		// An op sessionio added later: still bounded (sessionio's own
		// constants), just not made in advance.
		s = storeSeries{m.storeDur.WithLabelValues(m.backend, op), m.storeErr.WithLabelValues(m.backend, op)}
	}
	s.dur.Observe(took.Seconds())
	if err != nil {
		s.err.Inc()
	}
}

// Received implements sessionio.Reporter.
func (m *Metrics) Received(event string) { count(m.received, event, 1) }

// Delivered implements sessionio.Reporter.
func (m *Metrics) Delivered(event string, sockets int) { count(m.delivered, event, sockets) }

func count(byEvent map[string]prometheus.Counter, event string, n int) {
	c, ok := byEvent[event]
	if !ok {
		c = byEvent[Other]
	}
	c.Add(float64(n))
}

// RelayFailed implements sessionio.Reporter.
func (m *Metrics) RelayFailed() { m.relayErr.Inc() }

// Middleware counts and times every request by route and code. It goes
// first (outside Recover), and hands an error to Echo's error handler
// itself, so that the code counted is the one the client gets. A request
// whose connection was hijacked (a WebSocket upgrade) answered nothing
// through Echo: it counts as 101.
func (m *Metrics) Middleware() echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			start := time.Now()
			if err := next(c); err != nil {
				c.Error(err)
			}
			route, ok := m.routes[c.Path()]
			if !ok {
				route = Other
			}
			status := c.Response().Status
			if !c.Response().Committed {
				status = http.StatusSwitchingProtocols
			}
			code := strconv.Itoa(status)
			m.httpReqs.WithLabelValues(route, code).Inc()
			m.httpDur.WithLabelValues(route, code).Observe(time.Since(start).Seconds())
			return nil
		}
	}
}

// WatchSockets adds tandem_sockets{transport}: the sockets of io's main
// namespace by the transport their connection uses now (after an
// upgrade, the new one), read from Socket.IO at each scrape, so it costs
// the sockets nothing and always returns to 0 when they close.
func (m *Metrics) WatchSockets(io *socket.Server) {
	m.reg.MustRegister(&socketCollector{io: io})
}

var socketsDesc = prometheus.NewDesc("tandem_sockets", "Socket.IO sockets connected to this node, by transport.", []string{"transport"}, nil)

type socketCollector struct{ io *socket.Server }

func (c *socketCollector) Describe(ch chan<- *prometheus.Desc) { ch <- socketsDesc }

func (c *socketCollector) Collect(ch chan<- prometheus.Metric) {
	n := map[string]int{"polling": 0, "websocket": 0}
	c.io.Sockets().Sockets().Range(func(_ socket.SocketId, s *socket.Socket) bool {
		name := Other
		if t := s.Conn().Transport(); t != nil {
			if _, known := n[t.Name()]; known {
				name = t.Name()
			}
		}
		n[name]++
		return true
	})
	for t, v := range n {
		ch <- prometheus.MustNewConstMetric(socketsDesc, prometheus.GaugeValue, float64(v), t)
	}
}

// WatchBroadcasts adds tandem_broadcast_deliveries_total{path}: the
// deliveries of this node's room broadcasts by how they were written, as
// deliveries (server/transport.BroadcastBuilder.Deliveries) counts them at
// each scrape: "preframed" (the broadcast's one frame written to a
// WebSocket), "library" (Socket.IO's per-socket path: polling, an upgrade
// under way, a packet of the socket's still waiting). Many "library"
// deliveries mean many polling clients, each costing the fan-out several
// times what a WebSocket does.
func (m *Metrics) WatchBroadcasts(deliveries func() (preframed, library uint64)) {
	m.reg.MustRegister(&broadcastCollector{deliveries: deliveries})
}

var broadcastDesc = prometheus.NewDesc("tandem_broadcast_deliveries_total", "Deliveries of room broadcasts on this node, by write path (preframed: one shared WebSocket frame; library: Socket.IO's per-socket path).", []string{"path"}, nil)

type broadcastCollector struct {
	deliveries func() (preframed, library uint64)
}

func (c *broadcastCollector) Describe(ch chan<- *prometheus.Desc) { ch <- broadcastDesc }

func (c *broadcastCollector) Collect(ch chan<- prometheus.Metric) {
	pre, lib := c.deliveries()
	ch <- prometheus.MustNewConstMetric(broadcastDesc, prometheus.CounterValue, float64(pre), "preframed")
	ch <- prometheus.MustNewConstMetric(broadcastDesc, prometheus.CounterValue, float64(lib), "library")
}
