package server

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	goredis "github.com/redis/go-redis/v9"
	sioredis "github.com/zishang520/socket.io/adapters/redis/v3"
	"github.com/zishang520/socket.io/adapters/redis/v3/adapter"
	"github.com/zishang520/socket.io/servers/socket/v3"

	"github.com/tandem-go/tandem/server/store/redis"
)

// cluster is the Socket.IO Redis adapter of a node and what contains its
// failure modes.
//
// The adapter (zishang520/socket.io adapters/redis v3.0.2, the classic
// PUBLISH/PSUBSCRIBE one) reads its two subscriptions in loops that retry
// at once after an error: with Redis down, each failed reconnection is an
// "error" event and the next try follows immediately (about 45,000 a
// second, a full core). Its subscriptions therefore get a client of their
// own whose dials back off (backoffDialer), which paces those loops, and
// its errors are logged at most once per errorLogEvery with a count.
// Publishing uses another client that fails fast, so an emit during an
// outage does not hold up the request that made it.
//
// Redis pub/sub keeps nothing, so what other nodes relay while a
// subscription is down is lost. Each subscription connection of the
// adapter is watched (subscribeWatch): once Redis has answered its
// SUBSCRIBE, onSubscribed runs (sessionio's Resync), whose store reads
// then see every change whose relay this node may have missed.
type cluster struct {
	pub, sub goredis.UniversalClient
	rc       *sioredis.RedisClient
	cancel   context.CancelFunc
	log      *slog.Logger
	errors   atomic.Int64 // "error" events of the adapter, for tests
	logs     logThrottle

	// onSubscribed is called when Redis confirmed a SUBSCRIBE of the
	// adapter on a new connection. Set before the adapter is built.
	onSubscribed func()
	subscribed   atomic.Int64 // confirmed SUBSCRIBEs, for tests
}

// errorLogEvery bounds the adapter's error log lines.
const errorLogEvery = 10 * time.Second

// logThrottle lets one log line through per errorLogEvery and counts the
// ones it held back.
type logThrottle struct {
	mu      sync.Mutex
	last    time.Time
	dropped int
}

// allow reports whether a line may be written now and, if so, how many were
// held back since the last one.
func (t *logThrottle) allow() (dropped int, ok bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := time.Now()
	if now.Sub(t.last) < errorLogEvery {
		t.dropped++
		return 0, false
	}
	dropped = t.dropped
	t.last, t.dropped = now, 0
	return dropped, true
}

func newCluster(url string, log *slog.Logger) (*cluster, error) {
	url, _, err := redis.WaitReplicas(url)
	if err != nil {
		return nil, err
	}
	quietRedisOnce.Do(func() { goredis.SetLogger(&quietRedis{}) })
	c := &cluster{log: log}
	d := &backoffDialer{min: 50 * time.Millisecond, max: time.Second}
	if c.pub, _, err = redis.NewClient(url); err != nil {
		return nil, err
	}
	if c.sub, _, err = redis.NewClient(url, d, subscribeWatch{c.subscribedAgain}); err != nil {
		_ = c.pub.Close()
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	c.cancel = cancel
	c.rc = sioredis.NewRedisClientWithSub(ctx, c.pub, c.sub)
	_ = c.rc.On("error", c.onError)
	return c, nil
}

// builder is the adapter to set on the Socket.IO server's options.
func (c *cluster) builder(prefix string) socket.AdapterConstructor {
	opts := adapter.DefaultRedisAdapterOptions()
	opts.SetKey(prefix + "socket.io")
	return &adapter.RedisAdapterBuilder{Redis: c.rc, Opts: opts}
}

func (c *cluster) onError(args ...any) {
	n := c.errors.Add(1)
	var err error
	if len(args) > 0 {
		err, _ = args[0].(error)
	}
	if errors.Is(err, context.Canceled) {
		return // shutting down
	}
	quiet, ok := c.logs.allow()
	if !ok {
		return
	}
	c.log.Error("socket.io redis adapter: Redis unreachable; emits and disconnects reach this node's sockets only; its sockets are resynced from the store once the subscription is back",
		"err", err, "errors_since_last_line", quiet, "errors_total", n)
}

func (c *cluster) subscribedAgain() {
	c.subscribed.Add(1)
	if c.onSubscribed != nil {
		c.onSubscribed()
	}
}

// subscribeWatch is a go-redis hook that wraps each connection it dials
// so that it calls done once Redis has executed a SUBSCRIBE sent on it:
// the first bytes read after that command was written are its answer (a
// pub/sub connection sends SUBSCRIBE, on a new connection, after the
// connection's set-up commands have all been answered), and Redis answers
// a command only after running it. Any PUBLISH Redis runs after that
// reaches the connection. PSUBSCRIBE (the adapter's room broadcasts, which
// tandem's relay does not use) is not watched.
type subscribeWatch struct{ done func() }

func (w subscribeWatch) DialHook(next goredis.DialHook) goredis.DialHook {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		conn, err := next(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return &watchedConn{Conn: conn, done: w.done}, nil
	}
}

func (w subscribeWatch) ProcessHook(next goredis.ProcessHook) goredis.ProcessHook { return next }

func (w subscribeWatch) ProcessPipelineHook(next goredis.ProcessPipelineHook) goredis.ProcessPipelineHook {
	return next
}

// watchedConn is a connection of the adapter's subscription client.
type watchedConn struct {
	net.Conn
	done  func()
	state atomic.Int32 // 0: no SUBSCRIBE written yet; 1: written, not answered; 2: answered
}

// subscribeCommand is how go-redis writes the SUBSCRIBE command's name
// (RESP, as a bulk string; UNSUBSCRIBE does not match it).
var subscribeCommand = []byte("$9\r\nsubscribe\r\n")

func (c *watchedConn) Write(p []byte) (int, error) {
	if c.state.Load() == 0 && bytes.Contains(p, subscribeCommand) {
		c.state.Store(1)
	}
	return c.Conn.Write(p)
}

func (c *watchedConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if n > 0 && c.state.CompareAndSwap(1, 2) {
		c.done()
	}
	return n, err
}

// close stops the adapter's loops and closes its clients. The Socket.IO
// server must be closed first.
func (c *cluster) close() error {
	c.cancel()
	return errors.Join(c.sub.Close(), c.pub.Close())
}

// backoffDialer is a go-redis hook whose dials wait after a failed one:
// min, then twice as long after each further failure, up to max; one
// success resets it. A dial waiting ends early when its context does.
type backoffDialer struct {
	min, max time.Duration

	mu    sync.Mutex
	next  time.Time     // no dial before this
	delay time.Duration // the wait after the next failure
}

func (d *backoffDialer) DialHook(next goredis.DialHook) goredis.DialHook {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		d.mu.Lock()
		wait := time.Until(d.next)
		d.mu.Unlock()
		if wait > 0 {
			t := time.NewTimer(wait)
			select {
			case <-ctx.Done():
				t.Stop()
				return nil, ctx.Err()
			case <-t.C:
			}
		}
		conn, err := next(ctx, network, addr)
		d.mu.Lock()
		defer d.mu.Unlock()
		if err != nil {
			d.delay = min(max(d.delay*2, d.min), d.max)
			d.next = time.Now().Add(d.delay)
			return nil, fmt.Errorf("%w (next try in %v)", err, d.delay)
		}
		d.delay, d.next = 0, time.Time{}
		return conn, nil
	}
}

func (d *backoffDialer) ProcessHook(next goredis.ProcessHook) goredis.ProcessHook { return next }

func (d *backoffDialer) ProcessPipelineHook(next goredis.ProcessPipelineHook) goredis.ProcessPipelineHook {
	return next
}

// go-redis logs through one logger for the whole process, and during an
// outage it writes a line for every failed dial of every pool. quietRedis
// turns those into at most one warning per errorLogEvery, through slog's
// default logger, with the number of lines it held back.
type quietRedis struct {
	logs logThrottle
}

var quietRedisOnce sync.Once

func (q *quietRedis) Printf(ctx context.Context, format string, v ...any) {
	dropped, ok := q.logs.allow()
	if !ok {
		return
	}
	slog.Default().WarnContext(ctx, "go-redis: "+fmt.Sprintf(format, v...), "similar_lines_dropped", dropped)
}
