// Package redis is a store.Store kept in Redis (go-redis v9), for several
// tandem nodes sharing their sessions.
//
// Each record is one Redis hash under Prefix+key with three fields: d (the
// data), v (the version) and g (a random generation, new at every Create).
// Its idle lifetime is the key's TTL, so Redis itself removes expired
// sessions. Every operation that must see a whole record, or change one
// only if it is still the record that was read, is a Lua script, which
// Redis runs atomically; a key holding anything else (another type, a
// missing field) is a corrupt record and every method treats it as absent.
//
// Update is optimistic: it reads the record, runs fn in Go, and commits
// with a script that checks the version and generation did not change in
// between; on a conflict it runs fn again on the newer record, at most
// MaxConflicts times (then ErrConflict). Updates of
// one key from one Store wait for each other before they read, so
// conflicts (and retries) happen only between nodes.
package redis

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/tandem-go/tandem/server/store"
)

// DefaultPrefix namespaces tandem's keys when Options.Prefix is empty.
const DefaultPrefix = "tandem:session:"

// ErrClosed is returned by every method after Close.
var ErrClosed = errors.New("redis store: closed")

// ErrConflict is returned by an Update that met MaxConflicts conflicting
// updates from other nodes in a row: the store is answering, but the
// record keeps changing (or is damaged in a way the scripts do not see).
var ErrConflict = errors.New("redis store: too many conflicting updates")

// MaxConflicts bounds the tries of one Update.
const MaxConflicts = 64

// Options configures a Store.
type Options struct {
	// Prefix is put before every key, so one Redis can serve several apps
	// (or several tandem deployments). Default DefaultPrefix.
	Prefix string

	// WaitReplicas, when positive, makes every write wait until that many
	// replicas have it (WAIT, on the connection that wrote), for at most
	// WaitTimeout (default 1s), before it succeeds: a write the store
	// acknowledged then survives a failover to one of those replicas. A
	// write whose replicas did not confirm in time fails with
	// ErrNotReplicated (it may still be on the master). Only with a
	// one-server or Sentinel client (Open's URL: wait_replicas=N, default
	// 1 for Sentinel).
	WaitReplicas int
	WaitTimeout  time.Duration
}

// ErrNotReplicated is the error of a write that Options.WaitReplicas
// replicas did not confirm within Options.WaitTimeout.
var ErrNotReplicated = errors.New("redis store: write not confirmed by the replicas")

// Store is a store.Store in Redis. It is safe for concurrent use, also by
// several processes sharing one Redis.
type Store struct {
	rdb    goredis.UniversalClient
	own    bool // Close closes rdb
	prefix string
	wait   int
	waitTO time.Duration
	closed atomic.Bool

	mu    sync.Mutex
	locks map[string]*keyLock
}

var _ store.Store = (*Store)(nil)

type keyLock struct {
	ch   chan struct{} // holds a token while the lock is held
	refs int           // guarded by Store.mu
}

// New returns a Store using rdb. Close does not close rdb, which belongs to
// the caller.
func New(rdb goredis.UniversalClient, opts Options) *Store {
	if opts.Prefix == "" {
		opts.Prefix = DefaultPrefix
	}
	if opts.WaitTimeout <= 0 {
		opts.WaitTimeout = time.Second
	}
	if _, ok := rdb.(*goredis.Client); !ok {
		opts.WaitReplicas = 0 // WAIT needs one connection for the write and the wait
	}
	return &Store{rdb: rdb, prefix: opts.Prefix, wait: opts.WaitReplicas, waitTO: opts.WaitTimeout, locks: map[string]*keyLock{}}
}

// scripter returns what a write runs its script on: with WaitReplicas, a
// connection of its own (closed by done), so that WAIT counts that write.
func (s *Store) scripter() (goredis.Scripter, *goredis.Conn) {
	if s.wait > 0 {
		c := s.rdb.(*goredis.Client).Conn()
		return c, c
	}
	return s.rdb, nil
}

// replicated waits, with WaitReplicas, until the replicas have what conn
// wrote.
func (s *Store) replicated(ctx context.Context, conn *goredis.Conn) error {
	if conn == nil {
		return nil
	}
	n, err := conn.Wait(ctx, s.wait, s.waitTO).Result()
	if err != nil {
		return s.wrap("wait", err)
	}
	if n < int64(s.wait) {
		return fmt.Errorf("%w: %d of %d within %v", ErrNotReplicated, n, s.wait, s.waitTO)
	}
	return nil
}

// Open connects to the Redis named by url (redis://[:password@]host:port/db,
// rediss:// for TLS, or unix:///path/to/socket?db=N) and returns a Store
// that closes its client on Close. It does not wait for Redis to answer:
// a Redis that is down at start-up makes calls fail until it comes up.
//
// url may name a Sentinel or a Cluster deployment too (see NewClient). Its
// own query option wait_replicas=N sets Options.WaitReplicas (default 1
// for Sentinel, 0 otherwise) and is not passed on to go-redis.
func Open(url string, opts Options) (*Store, error) {
	url, wait, err := WaitReplicas(url)
	if err != nil {
		return nil, err
	}
	if opts.WaitReplicas == 0 {
		opts.WaitReplicas = wait
	}
	c, _, err := NewClient(url)
	if err != nil {
		return nil, err
	}
	s := New(c, opts)
	s.own = true
	return s, nil
}

// ParseURL turns a Redis URL into client options with tandem's timeouts: a
// Redis that is down or unreachable makes calls fail within about a second
// instead of go-redis's default five, so requests fail fast.
func ParseURL(url string) (*goredis.Options, error) {
	o, err := goredis.ParseURL(url)
	if err != nil {
		return nil, fmt.Errorf("redis store: %w", err)
	}
	if !strings.Contains(url, "dial_timeout=") {
		o.DialTimeout = time.Second
	}
	if !strings.Contains(url, "read_timeout=") {
		o.ReadTimeout = 2 * time.Second
	}
	if !strings.Contains(url, "write_timeout=") {
		o.WriteTimeout = 2 * time.Second
	}
	if !strings.Contains(url, "pool_timeout=") {
		o.PoolTimeout = 2 * time.Second
	}
	// Each failed dial waits out DialTimeout; go-redis's default of retrying
	// three times with back-off would make a call during an outage last
	// several seconds.
	if !strings.Contains(url, "max_retries=") {
		o.MaxRetries = 1
	}
	return o, nil
}

// Client is the Redis client the store uses.
func (s *Store) Client() goredis.UniversalClient { return s.rdb }

// Scripts. KEYS[1] is the record's key. A record is valid when the key is a
// hash whose v is a canonical version (validVersion) and which has d and g;
// liveness is Redis's own expiry. "pttl" answers are PTTL in milliseconds.
//
// A version is compared as a string in Lua and parsed as a number in Go,
// so both must agree on its one spelling: decimal digits without a leading
// zero, at most 18 of them (HINCRBY stays within int64). Anything else
// ("01", "1.0", " 1") is a damaged record, absent to every method; before,
// "01" passed as a number and failed every string compare, so each update
// of the session retried forever.
const validVersion = `local function valid(v) return v and #v <= 18 and string.match(v, '^[1-9][0-9]*$') ~= nil end
`

var (
	// ARGV: data, ttl ms, generation. Returns 1 if created, 0 if a valid
	// record exists.
	createScript = goredis.NewScript(validVersion + `
local t = redis.call('TYPE', KEYS[1]).ok
if t == 'hash' then
  local f = redis.call('HMGET', KEYS[1], 'v', 'd', 'g')
  if valid(f[1]) and f[2] and f[3] then return 0 end
end
if t ~= 'none' then redis.call('DEL', KEYS[1]) end
redis.call('HSET', KEYS[1], 'v', 1, 'd', ARGV[1], 'g', ARGV[3])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1`)

	// Returns {v, d, g, pttl} or false.
	loadScript = goredis.NewScript(validVersion + `
if redis.call('TYPE', KEYS[1]).ok ~= 'hash' then return false end
local f = redis.call('HMGET', KEYS[1], 'v', 'd', 'g')
if not valid(f[1]) or not f[2] or not f[3] then return false end
return {f[1], f[2], f[3], redis.call('PTTL', KEYS[1])}`)

	// ARGV: expected version, expected generation, new data, ttl ms.
	// Returns {v, pttl} when committed, 0 on a conflict, false when the
	// record is gone.
	commitScript = goredis.NewScript(validVersion + `
if redis.call('TYPE', KEYS[1]).ok ~= 'hash' then return false end
local f = redis.call('HMGET', KEYS[1], 'v', 'd', 'g')
if not valid(f[1]) or not f[2] or not f[3] then return false end
if f[1] ~= ARGV[1] or f[3] ~= ARGV[2] then return 0 end
local v = redis.call('HINCRBY', KEYS[1], 'v', 1)
redis.call('HSET', KEYS[1], 'd', ARGV[3])
redis.call('PEXPIRE', KEYS[1], ARGV[4])
return {v, redis.call('PTTL', KEYS[1])}`)

	// ARGV: ttl ms. Returns 1 when touched, 0 when the record is gone.
	touchScript = goredis.NewScript(validVersion + `
if redis.call('TYPE', KEYS[1]).ok ~= 'hash' then return 0 end
local f = redis.call('HMGET', KEYS[1], 'v', 'd', 'g')
if not valid(f[1]) or not f[2] or not f[3] then return 0 end
redis.call('PEXPIRE', KEYS[1], ARGV[1])
return 1`)
)

func (s *Store) check(ctx context.Context, ttl *time.Duration) error {
	if s.closed.Load() {
		return ErrClosed
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if ttl != nil && *ttl <= 0 {
		return fmt.Errorf("redis store: ttl %v must be positive", *ttl)
	}
	return nil
}

// ms is a TTL in whole milliseconds, at least one.
func ms(ttl time.Duration) int64 { return max(ttl.Milliseconds(), 1) }

// Create implements store.Store.
func (s *Store) Create(ctx context.Context, key string, data []byte, ttl time.Duration) error {
	if err := s.check(ctx, &ttl); err != nil {
		return err
	}
	run, conn := s.scripter()
	if conn != nil {
		defer conn.Close()
	}
	n, err := createScript.Run(ctx, run, []string{s.prefix + key}, data, ms(ttl), newGeneration()).Int()
	if err != nil {
		return s.wrap("create", err)
	}
	if n == 0 {
		return store.ErrExists
	}
	return s.replicated(ctx, conn)
}

// record is a loaded record and the generation that identifies it.
type record struct {
	store.Record
	gen string
}

func (s *Store) load(ctx context.Context, key string) (record, error) {
	res, err := loadScript.Run(ctx, s.rdb, []string{s.prefix + key}).Slice()
	if errors.Is(err, goredis.Nil) {
		return record{}, store.ErrNotFound
	}
	if err != nil {
		return record{}, s.wrap("load", err)
	}
	if len(res) != 4 {
		return record{}, fmt.Errorf("redis store: load: %d values in the answer, want 4", len(res))
	}
	v, _ := res[0].(string)
	d, _ := res[1].(string)
	g, _ := res[2].(string)
	pttl, _ := res[3].(int64)
	version, err := strconv.ParseUint(v, 10, 64)
	if err != nil || strconv.FormatUint(version, 10) != v || pttl <= 0 {
		// No expiry (-1) is not a record this store wrote.
		return record{}, store.ErrNotFound
	}
	return record{
		Record: store.Record{Data: []byte(d), Expires: time.Now().Add(time.Duration(pttl) * time.Millisecond), Version: version},
		gen:    g,
	}, nil
}

// Load implements store.Store.
func (s *Store) Load(ctx context.Context, key string) (store.Record, error) {
	if err := s.check(ctx, nil); err != nil {
		return store.Record{}, err
	}
	r, err := s.load(ctx, key)
	return r.Record, err
}

// Update implements store.Store.
func (s *Store) Update(ctx context.Context, key string, ttl time.Duration, fn store.UpdateFunc) (store.Record, error) {
	if err := s.check(ctx, &ttl); err != nil {
		return store.Record{}, err
	}
	unlock, err := s.lock(ctx, key)
	if err != nil {
		return store.Record{}, err
	}
	defer unlock()
	run, conn := s.scripter()
	if conn != nil {
		defer conn.Close()
	}
	for attempt := 0; ; attempt++ {
		if attempt == MaxConflicts {
			return store.Record{}, fmt.Errorf("%w (%d tries)", ErrConflict, attempt)
		}
		if s.closed.Load() {
			return store.Record{}, ErrClosed
		}
		cur, err := s.load(ctx, key)
		if err != nil {
			return store.Record{}, err
		}
		data, err := fn(cur.Data)
		if err != nil {
			return store.Record{}, err
		}
		res, err := commitScript.Run(ctx, run, []string{s.prefix + key},
			strconv.FormatUint(cur.Version, 10), cur.gen, data, ms(ttl)).Result()
		if errors.Is(err, goredis.Nil) {
			return store.Record{}, store.ErrNotFound
		}
		if err != nil {
			return store.Record{}, s.wrap("update", err)
		}
		if vals, ok := res.([]any); ok && len(vals) == 2 {
			v, _ := vals[0].(int64)
			pttl, _ := vals[1].(int64)
			if err := s.replicated(ctx, conn); err != nil {
				return store.Record{}, err
			}
			return store.Record{
				Data:    append([]byte(nil), data...),
				Expires: time.Now().Add(time.Duration(pttl) * time.Millisecond),
				Version: uint64(v),
			}, nil
		}
		// Another node committed in between: back off a little (more
		// after each conflict, with jitter) and run fn on the new record.
		if err := backoff(ctx, attempt); err != nil {
			return store.Record{}, err
		}
	}
}

// backoff waits before the attempt+1-th try of a conflicting update: a
// random time up to 1ms << attempt, at most 50ms.
func backoff(ctx context.Context, attempt int) error {
	limit := min(time.Millisecond<<min(attempt, 6), 50*time.Millisecond)
	var b [2]byte
	_, _ = rand.Read(b[:])
	d := time.Duration(int64(b[0])<<8|int64(b[1])) * limit / (1 << 16)
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// Touch implements store.Store.
func (s *Store) Touch(ctx context.Context, key string, ttl time.Duration) error {
	if err := s.check(ctx, &ttl); err != nil {
		return err
	}
	n, err := touchScript.Run(ctx, s.rdb, []string{s.prefix + key}, ms(ttl)).Int()
	if err != nil {
		return s.wrap("touch", err)
	}
	if n == 0 {
		return store.ErrNotFound
	}
	return nil
}

// Delete implements store.Store.
func (s *Store) Delete(ctx context.Context, key string) error {
	if err := s.check(ctx, nil); err != nil {
		return err
	}
	return s.wrap("delete", s.rdb.Del(ctx, s.prefix+key).Err())
}

// Ping implements store.Store.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.check(ctx, nil); err != nil {
		return err
	}
	return s.wrap("ping", s.rdb.Ping(ctx).Err())
}

// Close implements store.Store. It closes the client only if Open made it.
func (s *Store) Close() error {
	if s.closed.Swap(true) {
		return nil
	}
	if s.own {
		return s.rdb.Close()
	}
	return nil
}

// wrap names the operation and turns a closed client into ErrClosed.
func (s *Store) wrap(op string, err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, goredis.ErrClosed) || s.closed.Load() {
		return fmt.Errorf("redis store: %s: %w", op, ErrClosed)
	}
	return fmt.Errorf("redis store: %s: %w", op, err)
}

// lock serializes this Store's updates of one key, so that a node's own
// concurrent updates queue instead of conflicting in Redis. Waiting ends
// with ctx.
func (s *Store) lock(ctx context.Context, key string) (unlock func(), err error) {
	s.mu.Lock()
	l := s.locks[key]
	if l == nil {
		l = &keyLock{ch: make(chan struct{}, 1)}
		s.locks[key] = l
	}
	l.refs++
	s.mu.Unlock()
	release := func() {
		s.mu.Lock()
		if l.refs--; l.refs == 0 {
			delete(s.locks, key)
		}
		s.mu.Unlock()
	}
	select {
	case l.ch <- struct{}{}:
		return func() { <-l.ch; release() }, nil
	case <-ctx.Done():
		release()
		return nil, ctx.Err()
	}
}

func newGeneration() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
