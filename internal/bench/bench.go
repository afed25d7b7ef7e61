// Package bench is tandem's load generator: the Go twin of
// ../shared/bench/bench.mjs, with the same method and the same JSON report,
// so that the two compare.
//
// Run opens Config.Sockets WebSocket Socket.IO connections, PerSession per
// session (the sockets of a session share its cookie), then for
// Config.Duration sends POST /incr over the sessions, at most one request in
// flight per session so that every value is known in advance:
//
//   - closed loop (Rate 0): Concurrency workers, each sending its next
//     request when the previous one is answered;
//   - open loop (Rate R): R requests per second on a schedule, whether or not
//     earlier ones are answered; each goes to the session idle longest, and
//     is counted as skipped when every session has a request in flight.
//
// For every answered /incr it measures the delivery latency to each socket
// of the session (POST sent → "current count" with that value received) and
// counts the deliveries still missing after a grace period. With the
// server's pid it also reads the server's RSS before and after connecting
// the sockets (bytes per socket) and its CPU time over the load and the
// drain (per answered request), from /proc.
//
// Every loop is bounded in count and in time. Loopback targets only.
package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Limits.
const (
	MaxSockets  = 20000
	MaxDuration = 600 * time.Second
	MaxRate     = 100000
	maxRequests = 5_000_000 // hard cap on the requests of one run
	maxSamples  = 5_000_000 // cap on stored latency samples (counters keep counting)
)

// Config is one run.
type Config struct {
	URL                string        // http://127.0.0.1:PORT
	SocketPath         string        // default /socket.io/
	Sockets            int           // WebSocket connections (default 100)
	PerSession         int           // sockets per session (default 10)
	Duration           time.Duration // load phase (default 10s)
	Rate               float64       // open loop rate in requests/s; 0 = closed loop
	Concurrency        int           // closed loop workers (default 32)
	Grace              time.Duration // wait for late deliveries (default 2s)
	ConnectConcurrency int           // sockets connecting at once (default 50)
	PID                int           // server process, for RSS and CPU (0: not measured)
	Log                io.Writer     // progress lines; nil discards
	// OnLoad, if set, runs in its own goroutine when the load phase starts
	// (e.g. to take a CPU profile of the server).
	OnLoad func(ctx context.Context)
	// OnConnected, if set, runs once the sockets are connected and settled,
	// before the load (e.g. to take a heap profile).
	OnConnected func(ctx context.Context)
}

func (c *Config) check() error {
	if c.SocketPath == "" {
		c.SocketPath = "/socket.io/"
	}
	if c.Sockets == 0 {
		c.Sockets = 100
	}
	if c.PerSession == 0 {
		c.PerSession = 10
	}
	if c.Duration == 0 {
		c.Duration = 10 * time.Second
	}
	if c.Concurrency == 0 {
		c.Concurrency = 32
	}
	if c.Grace == 0 {
		c.Grace = 2 * time.Second
	}
	if c.ConnectConcurrency == 0 {
		c.ConnectConcurrency = 50
	}
	if c.Log == nil {
		c.Log = io.Discard
	}
	u, err := url.Parse(c.URL)
	if err != nil || u.Scheme != "http" || u.Host == "" {
		return fmt.Errorf("-url %q: want http://127.0.0.1:PORT", c.URL)
	}
	if h := u.Hostname(); h != "127.0.0.1" && h != "localhost" && h != "::1" {
		return fmt.Errorf("-url %q: refusing a non-loopback target (use 127.0.0.1)", c.URL)
	}
	c.URL = u.Scheme + "://" + u.Host
	switch {
	case c.Sockets < 1 || c.Sockets > MaxSockets:
		return fmt.Errorf("-sockets %d: must be 1..%d", c.Sockets, MaxSockets)
	case c.PerSession < 1:
		return fmt.Errorf("-per-session %d: must be at least 1", c.PerSession)
	case c.Duration <= 0 || c.Duration > MaxDuration:
		return fmt.Errorf("-duration %v: must be in (0, %v]", c.Duration, MaxDuration)
	case c.Rate < 0 || c.Rate > MaxRate:
		return fmt.Errorf("-rate %v: must be 0 (closed loop) .. %d requests/s", c.Rate, MaxRate)
	case c.Concurrency < 1 || c.Concurrency > 1024:
		return fmt.Errorf("-concurrency %d: must be 1..1024", c.Concurrency)
	case c.Grace < 0 || c.Grace > time.Minute:
		return fmt.Errorf("-grace %v: must be in [0, 1m]", c.Grace)
	case c.ConnectConcurrency < 1 || c.ConnectConcurrency > 1000:
		return fmt.Errorf("-connect-concurrency %d: must be 1..1000", c.ConnectConcurrency)
	}
	return nil
}

// HardLimit bounds a whole run: set-up, connect (10 ms per socket), load,
// grace and a margin, as bench.mjs does.
func (c Config) HardLimit() time.Duration {
	return c.Duration + c.Grace + 2*time.Minute + time.Duration(c.Sockets)*10*time.Millisecond
}

// entry is one answered or in-flight POST /incr and its deliveries.
type entry struct {
	v    int64
	t0   time.Time
	n    int // sockets expected to receive it
	got  int
	done bool // the response is in
}

type session struct {
	cookie string
	n      int // sockets connected

	mu      sync.Mutex
	last    int64
	pending map[int64]*entry
	early   map[int64][]time.Time // arrivals not yet attributable
	lat     []float64             // delivery latencies, ms
	dup     int

	// credited, if set, gets a token (never blocking) each time a delivery
	// is credited, so the drain can wait for deliveries instead of polling.
	credited chan struct{}
}

// arrive records a "current count" v received at t.
func (s *session) arrive(v int64, t time.Time, samples *atomic.Int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if e := s.pending[v]; e != nil {
		if e.got < e.n {
			e.got++
			if samples.Add(1) <= maxSamples {
				s.lat = append(s.lat, ms(t.Sub(e.t0)))
			}
			if e.got >= e.n && e.done {
				delete(s.pending, v)
			}
			select {
			case s.credited <- struct{}{}:
			default:
			}
		} else {
			s.dup++
		}
		return
	}
	if len(s.early) < 1000 {
		s.early[v] = append(s.early[v], t)
	} else {
		s.dup++
	}
}

// attachEarly credits e with arrivals that came before its response.
func (s *session) attachEarly(e *entry, samples *atomic.Int64) {
	ts, ok := s.early[e.v]
	if !ok {
		return
	}
	delete(s.early, e.v)
	for _, t := range ts {
		if e.got < e.n {
			e.got++
			if samples.Add(1) <= maxSamples {
				s.lat = append(s.lat, ms(t.Sub(e.t0)))
			}
		} else {
			s.dup++
		}
	}
}

// outstanding is the deliveries still missing for answered requests.
func (s *session) outstanding() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := 0
	for _, e := range s.pending {
		if e.done {
			m += e.n - e.got
		}
	}
	return m
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// runner holds one run's state.
type runner struct {
	cfg    Config
	client *http.Client
	log    func(format string, args ...any)

	samples   atomic.Int64 // delivery samples stored
	httpMu    sync.Mutex
	httpLat   []float64
	ok, errs  atomic.Int64
	anomalies atomic.Int64
	issued    atomic.Int64
	expected  atomic.Int64
	errKinds  sync.Map // string -> *atomic.Int64
	nonNum    atomic.Int64
	discons   atomic.Int64
	loading   atomic.Bool
}

// Run runs one benchmark and returns its report.
func Run(ctx context.Context, cfg Config) (*Result, error) {
	if err := cfg.check(); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, cfg.HardLimit())
	defer cancel()
	tr := &http.Transport{
		MaxIdleConns:        2048,
		MaxIdleConnsPerHost: 2048,
		IdleConnTimeout:     30 * time.Second,
		DialContext:         (&net.Dialer{Timeout: 10 * time.Second}).DialContext,
	}
	defer tr.CloseIdleConnections()
	r := &runner{
		cfg:    cfg,
		client: &http.Client{Transport: tr, Timeout: 10 * time.Second},
		log: func(format string, args ...any) {
			fmt.Fprintf(cfg.Log, "[bench] "+format+"\n", args...)
		},
	}
	return r.run(ctx)
}

func (r *runner) run(ctx context.Context) (*Result, error) {
	cfg := r.cfg
	tStart := time.Now()
	res := &Result{Tool: "tandem bench (Go)", URL: cfg.URL, Client: "internal/bench Engine.IO v4 over gorilla/websocket"}
	res.Host.LoadavgStart = opt(loadavg1())
	res.Host.PressureStart = opt(cpuPressure())
	res.Host.NProc = nproc()

	// ------------------------------------------------------------ sessions
	nsess := (cfg.Sockets + cfg.PerSession - 1) / cfg.PerSession
	sessions := make([]*session, nsess)
	credited := make(chan struct{}, 1)
	for i := range sessions {
		sessions[i] = &session{pending: map[int64]*entry{}, early: map[int64][]time.Time{}, credited: credited}
	}
	if err := pool(ctx, len(sessions), 32, func(i int) error {
		return r.newSession(ctx, sessions[i])
	}); err != nil {
		return nil, fmt.Errorf("session set-up (lift SESSION_CREATE_BURST and SESSION_CREATE_RATE for load from one address): %w", err)
	}
	r.log("%d sessions created", nsess)
	if err := sleep(ctx, time.Second); err != nil {
		return nil, err
	}
	rssBefore, rssBeforeOK := rssKB(cfg.PID)

	// ------------------------------------------------------------ sockets
	var (
		socketsMu   sync.Mutex
		socks       []*Socket
		connected   atomic.Int64
		failed      atomic.Int64
		connErrsMu  sync.Mutex
		connectErrs = map[string]int{}
	)
	tc0 := time.Now()
	_ = pool(ctx, cfg.Sockets, cfg.ConnectConcurrency, func(k int) error {
		s := sessions[k/cfg.PerSession]
		dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		sock, err := Dial(dctx, cfg.URL, cfg.SocketPath, s.cookie, func(name string, args []byte, at time.Time) {
			if name != "current count" {
				return
			}
			v, ok := firstNumber(args)
			if !ok {
				r.nonNum.Add(1)
				return
			}
			s.arrive(v, at, &r.samples)
		})
		if err != nil {
			failed.Add(1)
			msg := err.Error()
			if len(msg) > 120 {
				msg = msg[:120]
			}
			connErrsMu.Lock()
			connectErrs[msg]++
			connErrsMu.Unlock()
			return nil
		}
		connected.Add(1)
		s.mu.Lock()
		s.n++
		s.mu.Unlock()
		socketsMu.Lock()
		socks = append(socks, sock)
		socketsMu.Unlock()
		go func() {
			<-sock.Done()
			if r.loading.Load() {
				r.discons.Add(1)
			}
		}()
		return nil
	})
	defer func() {
		for _, s := range socks {
			s.Close()
		}
	}()
	connectMs := ms(time.Since(tc0))
	r.log("%d/%d sockets connected in %.0f ms (%d failed)", connected.Load(), cfg.Sockets, connectMs, failed.Load())
	for msg, n := range connectErrs {
		r.log("%d sockets failed: %s", n, msg)
		if strings.Contains(msg, "429") {
			r.log("a 429 from tandem: lift MAX_CONNS_PER_CLIENT for load from one address")
		}
	}
	if err := sleep(ctx, time.Second); err != nil {
		return nil, err
	}
	rssAfter, rssAfterOK := rssKB(cfg.PID)
	for _, s := range sessions {
		s.mu.Lock()
		clear(s.early) // nothing is expected before the load
		s.mu.Unlock()
	}
	if cfg.OnConnected != nil {
		cfg.OnConnected(ctx)
	}

	// ------------------------------------------------------------ load
	free := make(chan *session, nsess) // sessions with no request in flight, idle longest first
	for _, s := range sessions {
		free <- s
	}
	var (
		lag       []float64
		scheduled int
		skipped   int
	)
	r.loading.Store(true)
	client0 := selfCPU()
	srv0, srv0OK := procCPU(cfg.PID)
	busy0, busy0OK := hostBusy()
	tl0 := time.Now()
	deadline := tl0.Add(cfg.Duration)
	if cfg.OnLoad != nil {
		go cfg.OnLoad(ctx)
	}
	var inflight sync.WaitGroup
	if cfg.Rate == 0 {
		workers := min(cfg.Concurrency, nsess)
		var wg sync.WaitGroup
		for range workers {
			wg.Go(func() {
				timer := time.NewTimer(time.Until(deadline))
				defer timer.Stop()
				for time.Now().Before(deadline) && r.issued.Load() < maxRequests {
					var s *session
					select {
					case s = <-free:
					case <-timer.C:
						return
					case <-ctx.Done():
						return
					}
					if !time.Now().Before(deadline) {
						free <- s
						return
					}
					r.fire(ctx, s)
					free <- s
				}
			})
		}
		wg.Wait()
	} else {
		interval := float64(time.Second) / cfg.Rate
		total := min(maxRequests, int(cfg.Duration.Seconds()*cfg.Rate))
		lag = make([]float64, 0, min(total, maxSamples))
		for scheduled < total && ctx.Err() == nil {
			due := tl0.Add(time.Duration(float64(scheduled) * interval))
			if sleep(ctx, time.Until(due)) != nil {
				break
			}
			now := time.Now()
			for scheduled < total {
				due := tl0.Add(time.Duration(float64(scheduled) * interval))
				if due.After(now) {
					break
				}
				if len(lag) < maxSamples {
					lag = append(lag, ms(now.Sub(due)))
				}
				scheduled++
				select {
				case s := <-free:
					inflight.Go(func() {
						r.fire(ctx, s)
						free <- s
					})
				default:
					skipped++
				}
			}
		}
		_ = sleep(ctx, time.Until(deadline))
		inflight.Wait()
	}
	loadDur := time.Since(tl0)
	srv1, srv1OK := procCPU(cfg.PID)

	// ------------------------------------------------------------ drain
	outstanding := func() int {
		m := 0
		for _, s := range sessions {
			m += s.outstanding()
		}
		return m
	}
	// Every request has its answer (inflight.Wait above); wait for the
	// deliveries still missing, each arrival waking the check, until none is
	// missing or the grace period ends.
	grace := time.NewTimer(cfg.Grace)
drain:
	for outstanding() > 0 {
		select {
		case <-credited:
		case <-grace.C:
			break drain
		case <-ctx.Done():
			break drain
		}
	}
	grace.Stop()
	drainDur := time.Since(tl0)
	srv2, srv2OK := procCPU(cfg.PID)
	client2 := selfCPU()
	busy2, busy2OK := hostBusy()
	r.loading.Store(false)
	missed := outstanding()
	rssLoad, rssLoadOK := rssKB(cfg.PID)

	// ------------------------------------------------------------ report
	var deliv []float64
	dup := 0
	for _, s := range sessions {
		s.mu.Lock()
		deliv = append(deliv, s.lat...)
		dup += s.dup
		for _, ts := range s.early {
			dup += len(ts)
		}
		s.mu.Unlock()
	}
	slices.Sort(deliv)
	r.httpMu.Lock()
	httpLat := slices.Clone(r.httpLat)
	r.httpMu.Unlock()
	slices.Sort(httpLat)
	slices.Sort(lag)
	ok, errs := r.ok.Load(), r.errs.Load()
	expected := r.expected.Load()

	res.Sockets = SocketsReport{
		Requested: cfg.Sockets, Connected: int(connected.Load()), Failed: int(failed.Load()),
		Sessions: nsess, PerSession: cfg.PerSession, ConnectMs: round(connectMs, 0), Errors: connectErrs,
	}
	res.Load = LoadReport{DurationS: round(loadDur.Seconds(), 2), DrainS: round(drainDur.Seconds(), 2)}
	if cfg.Rate > 0 {
		res.Load.Mode = "open loop, <=1 in-flight POST /incr per session"
		res.Load.Rate = cfg.Rate
		res.Load.Scheduled = scheduled
		res.Load.Sent = int(r.issued.Load())
		res.Load.Skipped = skipped
		res.Load.AchievedRPS = round(float64(ok)/cfg.Duration.Seconds(), 1)
		res.Load.LagMs = &Percentiles{P50: pct(lag, 50), P99: pct(lag, 99), Max: last(lag)}
	} else {
		res.Load.Mode = "closed loop, <=1 in-flight POST /incr per session"
		res.Load.Concurrency = cfg.Concurrency
		res.Load.EffectiveConcurrency = min(cfg.Concurrency, nsess)
	}
	kinds := map[string]int64{}
	r.errKinds.Range(func(k, v any) bool {
		kinds[k.(string)] = v.(*atomic.Int64).Load()
		return true
	})
	res.HTTP = HTTPReport{
		Requests: ok + errs, OK: ok, Errors: errs, ErrorKinds: kinds,
		RPS:   round(float64(ok)/loadDur.Seconds(), 1),
		P50Ms: pct(httpLat, 50), P99Ms: pct(httpLat, 99), MaxMs: last(httpLat),
		CountAnomalies: r.anomalies.Load(),
	}
	res.Delivery = DeliveryReport{
		Expected: expected, Received: expected - int64(missed), Missed: int64(missed),
		P50Ms: pct(deliv, 50), P99Ms: pct(deliv, 99), MaxMs: last(deliv),
		EventsPerS:            round(float64(expected-int64(missed))/loadDur.Seconds(), 0),
		DuplicateOrUntracked:  dup,
		NonNumeric:            r.nonNum.Load(),
		DisconnectsDuringLoad: r.discons.Load(),
		SamplesCapped:         r.samples.Load() > maxSamples,
	}
	if cfg.PID > 0 {
		sr := &ServerReport{PID: cfg.PID}
		if rssBeforeOK {
			sr.RSSBeforeKB = &rssBefore
		}
		if rssAfterOK {
			sr.RSSAfterKB = &rssAfter
		}
		if rssLoadOK {
			sr.RSSAfterLoadKB = &rssLoad
		}
		if rssBeforeOK && rssAfterOK && connected.Load() > 0 {
			b := int64(math.Round(float64((rssAfter-rssBefore)*1024) / float64(connected.Load())))
			sr.BytesPerSocket = &b
		}
		if srv0OK && srv1OK {
			sr.CPULoad = ptr(round(srv1.user+srv1.sys-srv0.user-srv0.sys, 2))
		}
		if srv0OK && srv2OK {
			all := srv2.user + srv2.sys - srv0.user - srv0.sys
			sr.CPULoadDrain = ptr(round(all, 2))
			sr.CPUUserLoadDrain = ptr(round(srv2.user-srv0.user, 2))
			sr.CPUSysLoadDrain = ptr(round(srv2.sys-srv0.sys, 2))
			if ok > 0 {
				sr.CPUUsPerRequest = ptr(round(all*1e6/float64(ok), 1))
				sr.CPUUserUsPerRequest = ptr(round((srv2.user-srv0.user)*1e6/float64(ok), 1))
			}
		}
		res.Server = sr
	}
	res.ClientCPULoadDrain = round(client2-client0, 2)
	res.Host.LoadavgEnd = opt(loadavg1())
	res.Host.PressureEnd = opt(cpuPressure())
	if busy0OK && busy2OK {
		res.Host.BusyCPULoadDrain = ptr(round(busy2-busy0, 2))
	}
	res.WallS = round(time.Since(tStart).Seconds(), 1)
	if err := ctx.Err(); err != nil {
		return res, fmt.Errorf("bench: hard time limit (%v) reached: %w", cfg.HardLimit(), err)
	}
	return res, nil
}

// newSession creates a session with POST /incr and keeps its cookie.
func (r *runner) newSession(ctx context.Context, s *session) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, r.cfg.URL+"/incr", nil)
	if err != nil {
		return err
	}
	resp, err := r.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("POST /incr: %s %.80s", resp.Status, body)
	}
	var pairs []string
	for _, c := range resp.Cookies() {
		pairs = append(pairs, c.Name+"="+c.Value)
	}
	if len(pairs) == 0 {
		return errors.New("POST /incr set no cookie")
	}
	v, err := strconv.ParseInt(strings.TrimSpace(string(body)), 10, 64)
	if err != nil {
		return fmt.Errorf("POST /incr answered %.40q, not a count", body)
	}
	s.cookie, s.last = strings.Join(pairs, "; "), v
	return nil
}

// fire sends one POST /incr on s, which has no other request in flight.
func (r *runner) fire(ctx context.Context, s *session) {
	r.issued.Add(1)
	s.mu.Lock()
	e := &entry{v: s.last + 1, n: s.n, t0: time.Now()}
	s.pending[e.v] = e
	s.mu.Unlock()
	v, err := r.post(ctx, s.cookie)
	t1 := time.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	if err != nil {
		r.errs.Add(1)
		delete(s.pending, e.v)
		r.errKind(err)
		return
	}
	r.ok.Add(1)
	r.httpMu.Lock()
	if len(r.httpLat) < maxSamples {
		r.httpLat = append(r.httpLat, ms(t1.Sub(e.t0)))
	}
	r.httpMu.Unlock()
	if v != e.v {
		r.anomalies.Add(1)
		delete(s.pending, e.v)
		e.v = v
		s.pending[v] = e
	}
	s.attachEarly(e, &r.samples)
	s.last = v
	e.done = true
	r.expected.Add(int64(e.n))
	if e.got >= e.n {
		delete(s.pending, e.v)
	}
}

type statusError int

func (e statusError) Error() string { return "status " + strconv.Itoa(int(e)) }

func (r *runner) post(ctx context.Context, cookie string) (int64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, r.cfg.URL+"/incr", nil)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Cookie", cookie)
	resp, err := r.client.Do(req)
	if err != nil {
		return 0, err
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1024))
	resp.Body.Close()
	if err != nil {
		return 0, err
	}
	if resp.StatusCode != http.StatusOK {
		return 0, statusError(resp.StatusCode)
	}
	return strconv.ParseInt(strings.TrimSpace(string(body)), 10, 64)
}

func (r *runner) errKind(err error) {
	k := "error"
	var se statusError
	var ne net.Error
	switch {
	case errors.As(err, &se):
		k = se.Error()
	case errors.As(err, &ne) && ne.Timeout():
		k = "timeout"
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		k = "cancelled"
	}
	c, _ := r.errKinds.LoadOrStore(k, new(atomic.Int64))
	c.(*atomic.Int64).Add(1)
}

// pool runs fn(0..n-1) on at most limit goroutines; it stops at the first
// error or when ctx ends.
func pool(ctx context.Context, n, limit int, fn func(i int) error) error {
	var (
		next     atomic.Int64
		wg       sync.WaitGroup
		errOnce  sync.Once
		firstErr error
	)
	for range min(limit, n) {
		wg.Go(func() {
			for ctx.Err() == nil {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				if err := fn(i); err != nil {
					errOnce.Do(func() { firstErr = err })
					next.Store(int64(n)) // stop the others
					return
				}
			}
		})
	}
	wg.Wait()
	if firstErr != nil {
		return firstErr
	}
	return ctx.Err()
}

func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// pct is the p-th percentile of sorted, the way util.mjs computes it.
func pct(sorted []float64, p float64) *float64 {
	if len(sorted) == 0 {
		return nil
	}
	i := int(math.Ceil(p/100*float64(len(sorted)))) - 1
	i = max(0, min(len(sorted)-1, i))
	return ptr(round(sorted[i], 2))
}

func last(sorted []float64) *float64 {
	if len(sorted) == 0 {
		return nil
	}
	return ptr(round(sorted[len(sorted)-1], 2))
}

func round(x float64, d int) float64 {
	p := math.Pow(10, float64(d))
	return math.Round(x*p) / p
}

func ptr[T any](v T) *T { return &v }

func opt(x float64, ok bool) *float64 {
	if !ok {
		return nil
	}
	return &x
}
