// Package redis is a store.Store kept in Redis (go-redis v9), for several
// tandem nodes sharing their sessions.
//
// Each record is one Redis hash under Prefix+{g}+key (RecordKey; g is the
// key's group, a hash tag that keeps a record and its user-index entry in
// one Redis Cluster slot) with the fields d (the data), v (the version), g
// (a random generation, new at every Create), and the metadata u (user), a
// (agent), c (created), dl (deadline) and ls (last seen), in Unix ms. Its
// lifetime is the key's TTL, min(idle TTL, deadline), so Redis itself
// removes expired sessions. A renewed key's tombstone is a hash with t. The
// sessions of a user are sorted sets Prefix+{g}+"u:"+user, one per group,
// changed by the same script as the record (see UserSessions). Every operation that must see a whole record, or change one
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
	"hash/fnv"
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

	// WaitReplicas, when positive, makes every record write wait until that
	// many replicas have it (WAIT, on the connection that wrote), for at
	// most WaitTimeout (default 1s), before it succeeds: a write the store
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
// connection of its own (the caller closes it), so that WAIT counts that
// write.
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

// Keys. A session key belongs to one of groups groups (a hash of the key);
// its record is prefix{g}key and the index of a user's sessions in that
// group is prefix{g}u:user, where g is the group's hex digit. The {g} hash
// tag puts a record and the index entry that names it in one Redis Cluster
// slot, so every script below touches one slot: the index changes in the
// same atomic step as the records it names, on one Redis or a Cluster.
const groups = 16

func group(key string) byte {
	h := fnv.New32a()
	_, _ = h.Write([]byte(key))
	return "0123456789abcdef"[h.Sum32()%groups]
}

// RecordKey is the Redis key of the record of key.
func (s *Store) RecordKey(key string) string {
	return s.prefix + "{" + string(group(key)) + "}" + key
}

// indexKey is the Redis key of user's index in key's group.
func (s *Store) indexKey(key, user string) string {
	return s.indexKeyIn(group(key), user)
}

func (s *Store) indexKeyIn(g byte, user string) string {
	return s.prefix + "{" + string(g) + "}u:" + user
}

// Scripts. KEYS[1] is the record's key, KEYS[2] the index of its user in its
// group (unused for a record without a user, ARGV user ""). A record is
// valid when the key is a hash whose v is an integer and which has d and g;
// a tombstone is a hash with t; liveness is Redis's own expiry (PEXPIRE at
// min(ttl, deadline)). The index is a sorted set of keys scored by their
// expiry (Unix ms), and expires itself at its highest score.
const luaValid = `
local function valid(k)
  if redis.call('TYPE', k).ok ~= 'hash' then return false end
  local f = redis.call('HMGET', k, 'v', 'd', 'g')
  return f[1] and #f[1] <= 18 and string.match(f[1], '^[1-9][0-9]*$') and f[2] and f[3]
end
local function tomb(k)
  return redis.call('TYPE', k).ok == 'hash' and redis.call('HEXISTS', k, 't') == 1
end
local function index(idx, key, user, score)
  if user == '' then return end
  redis.call('ZADD', idx, score, key)
  local top = redis.call('ZRANGE', idx, -1, -1, 'WITHSCORES')
  redis.call('PEXPIREAT', idx, top[2])
end
local function unindex(idx, key, user)
  if user == '' or not user then return end
  redis.call('ZREM', idx, key)
end
`

var (
	// ARGV: data, pttl ms, generation, user, agent, created ms, deadline
	// ms, now ms, key. Returns 1 if created, 0 if a valid record or a
	// tombstone exists.
	createScript = goredis.NewScript(luaValid + `
if valid(KEYS[1]) or tomb(KEYS[1]) then return 0 end
if redis.call('TYPE', KEYS[1]).ok ~= 'none' then redis.call('DEL', KEYS[1]) end
redis.call('HSET', KEYS[1], 'v', 1, 'd', ARGV[1], 'g', ARGV[3], 'u', ARGV[4], 'a', ARGV[5], 'c', ARGV[6], 'dl', ARGV[7], 'ls', ARGV[8])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
index(KEYS[2], ARGV[9], ARGV[4], ARGV[8] + ARGV[2])
return 1`)

	// Returns {v, d, g, pttl, u, a, c, dl, ls}, {'t'} for a tombstone, or
	// false.
	loadScript = goredis.NewScript(luaValid + `
if tomb(KEYS[1]) then return {'t'} end
if not valid(KEYS[1]) then return false end
local f = redis.call('HMGET', KEYS[1], 'v', 'd', 'g', 'u', 'a', 'c', 'dl', 'ls')
return {f[1], f[2], f[3], redis.call('PTTL', KEYS[1]), f[4] or '', f[5] or '', f[6] or '0', f[7] or '0', f[8] or '0'}`)

	// ARGV: expected version, expected generation, '1' for a write ('' for
	// a touch: data and version kept), ttl ms, now ms, key, user, new data.
	// Returns
	// {v, pttl} when committed, 0 on a conflict, false when the record is
	// gone, 't' for a tombstone.
	commitScript = goredis.NewScript(luaValid + `
if tomb(KEYS[1]) then return 't' end
if not valid(KEYS[1]) then return false end
local f = redis.call('HMGET', KEYS[1], 'v', 'g', 'dl', 'u')
if f[1] ~= ARGV[1] or f[2] ~= ARGV[2] or (f[4] or '') ~= ARGV[7] then return 0 end
local pttl = tonumber(ARGV[4])
local dl = tonumber(f[3] or '0')
if dl > 0 and dl - tonumber(ARGV[5]) < pttl then pttl = dl - tonumber(ARGV[5]) end
if pttl <= 0 then
  redis.call('DEL', KEYS[1])
  unindex(KEYS[2], ARGV[6], ARGV[7])
  return false
end
local v = tonumber(f[1])
if ARGV[3] == '1' then
  v = redis.call('HINCRBY', KEYS[1], 'v', 1)
  redis.call('HSET', KEYS[1], 'd', ARGV[8])
end
redis.call('HSET', KEYS[1], 'ls', ARGV[5])
redis.call('PEXPIRE', KEYS[1], pttl)
index(KEYS[2], ARGV[6], ARGV[7], tonumber(ARGV[5]) + pttl)
return {v, redis.call('PTTL', KEYS[1])}`)

	// ARGV: expected version, generation, grace ms, key, user. Replaces
	// the record with a tombstone (or nothing, grace 0) and removes its
	// index entry. Returns 1 when done, 0 on a conflict, false when the
	// record is gone, 't' for a tombstone.
	buryScript = goredis.NewScript(luaValid + `
if tomb(KEYS[1]) then return 't' end
if not valid(KEYS[1]) then return false end
local f = redis.call('HMGET', KEYS[1], 'v', 'g', 'u')
if f[1] ~= ARGV[1] or f[2] ~= ARGV[2] or (f[3] or '') ~= ARGV[5] then return 0 end
redis.call('DEL', KEYS[1])
unindex(KEYS[2], ARGV[4], ARGV[5])
if tonumber(ARGV[3]) > 0 then
  redis.call('HSET', KEYS[1], 't', 1)
  redis.call('PEXPIRE', KEYS[1], ARGV[3])
end
return 1`)

	// ARGV: key, user. Deletes the record (or tombstone) and its index
	// entry. Returns 1 when done, 0 when the record's user is another.
	deleteScript = goredis.NewScript(luaValid + `
local u = ''
if redis.call('TYPE', KEYS[1]).ok == 'hash' then u = redis.call('HGET', KEYS[1], 'u') or '' end
if u ~= ARGV[2] then return 0 end
redis.call('DEL', KEYS[1])
unindex(KEYS[2], ARGV[1], ARGV[2])
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

func unixMs(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}

func fromUnixMs(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.UnixMilli(n)
}

// pttl is the life of a record written at now: ttl, cut at deadline. It is
// not positive when the deadline has passed.
func pttl(now time.Time, ttl time.Duration, deadline time.Time) int64 {
	return store.Lifetime(now, ttl, deadline).Sub(now).Milliseconds()
}

// Create implements store.Store.
func (s *Store) Create(ctx context.Context, key string, data []byte, meta store.Meta, ttl time.Duration) error {
	if err := s.check(ctx, &ttl); err != nil {
		return err
	}
	ok, err := s.create(ctx, key, data, meta, ttl)
	if err != nil {
		return s.wrap("create", err)
	}
	if !ok {
		return store.ErrExists
	}
	return nil
}

func (s *Store) create(ctx context.Context, key string, data []byte, meta store.Meta, ttl time.Duration) (bool, error) {
	now := time.Now()
	life := pttl(now, ttl, meta.Deadline)
	if life <= 0 {
		return false, fmt.Errorf("deadline %v has passed", meta.Deadline)
	}
	run, conn := s.scripter()
	if conn != nil {
		defer conn.Close()
	}
	n, err := createScript.Run(ctx, run, []string{s.RecordKey(key), s.indexKey(key, meta.User)},
		data, life, newGeneration(), meta.User, meta.Agent, unixMs(meta.Created), unixMs(meta.Deadline), now.UnixMilli(), key).Int()
	if err == nil && n == 1 {
		err = s.replicated(ctx, conn)
	}
	return n == 1, err
}

// record is a loaded record and the generation that identifies it.
type record struct {
	store.Record
	gen string
}

func (s *Store) load(ctx context.Context, key string) (record, error) {
	sent := time.Now()
	res, err := loadScript.Run(ctx, s.rdb, []string{s.RecordKey(key)}).Slice()
	return parseLoad(sent, res, err)
}

// parseLoad reads loadScript's answer to a call sent at sent. The expiry is
// counted from sent, not from the answer's arrival: the PTTL was read
// between the two, so a large record's transfer never adds to its life.
func parseLoad(sent time.Time, res []any, err error) (record, error) {
	if errors.Is(err, goredis.Nil) {
		return record{}, store.ErrNotFound
	}
	if err != nil {
		return record{}, fmt.Errorf("load: %w", err)
	}
	if len(res) == 1 {
		return record{}, store.ErrRenewed
	}
	if len(res) != 9 {
		return record{}, fmt.Errorf("load: %d values in the answer, want 9", len(res))
	}
	str := func(i int) string { v, _ := res[i].(string); return v }
	num := func(i int) int64 { n, _ := strconv.ParseInt(str(i), 10, 64); return n }
	version, err := strconv.ParseUint(str(0), 10, 64)
	pttl, _ := res[3].(int64)
	if err != nil || strconv.FormatUint(version, 10) != str(0) || pttl <= 0 {
		// No expiry (-1) is not a record this store wrote.
		return record{}, store.ErrNotFound
	}
	rec := record{
		Record: store.Record{
			Data:    []byte(str(1)),
			Expires: sent.Add(time.Duration(pttl) * time.Millisecond),
			Version: version,
			Meta:    store.Meta{User: str(4), Agent: str(5), Created: fromUnixMs(num(6)), Deadline: fromUnixMs(num(7))},
		},
		gen: str(2),
	}
	rec.LastSeen = fromUnixMs(num(8))
	if dl := rec.Deadline; !dl.IsZero() && rec.Expires.After(dl) {
		rec.Expires = dl // PTTL read late, not a longer life
	}
	return rec, nil
}

// Load implements store.Store.
func (s *Store) Load(ctx context.Context, key string) (store.Record, error) {
	if err := s.check(ctx, nil); err != nil {
		return store.Record{}, err
	}
	r, err := s.load(ctx, key)
	return r.Record, s.wrap("load", err)
}

// commit runs commitScript for cur, with data (nil: a touch). It returns
// the new version and expiry, or conflict.
func (s *Store) commit(ctx context.Context, key string, cur record, data []byte, ttl time.Duration) (version uint64, expires time.Time, conflict bool, err error) {
	now := time.Now()
	flag, newData := "", []byte{}
	if data != nil {
		flag, newData = "1", data
	}
	args := []any{strconv.FormatUint(cur.Version, 10), cur.gen, flag, ms(ttl), now.UnixMilli(), key, cur.User, newData}
	run, conn := s.scripter()
	if conn != nil {
		defer conn.Close()
	}
	res, err := commitScript.Run(ctx, run, []string{s.RecordKey(key), s.indexKey(key, cur.User)}, args...).Result()
	switch {
	case errors.Is(err, goredis.Nil):
		return 0, time.Time{}, false, store.ErrNotFound
	case err != nil:
		return 0, time.Time{}, false, err
	}
	switch v := res.(type) {
	case string:
		return 0, time.Time{}, false, store.ErrRenewed
	case []any:
		if len(v) == 2 {
			n, _ := v[0].(int64)
			p, _ := v[1].(int64)
			if err := s.replicated(ctx, conn); err != nil {
				return 0, time.Time{}, false, err
			}
			return uint64(n), now.Add(time.Duration(p) * time.Millisecond), false, nil
		}
	}
	return 0, time.Time{}, true, nil
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
	for attempt := 0; ; attempt++ {
		if attempt == MaxConflicts {
			return store.Record{}, fmt.Errorf("%w (%d tries)", ErrConflict, attempt)
		}
		if s.closed.Load() {
			return store.Record{}, ErrClosed
		}
		cur, err := s.load(ctx, key)
		if err != nil {
			return store.Record{}, s.wrap("update", err)
		}
		data, err := fn(cur.Data)
		if err != nil {
			return store.Record{}, err
		}
		if data == nil {
			data = []byte{}
		}
		version, expires, conflict, err := s.commit(ctx, key, cur, data, ttl)
		if err != nil {
			return store.Record{}, s.wrap("update", err)
		}
		if !conflict {
			rec := cur.Record
			rec.Data = append([]byte(nil), data...)
			rec.Version, rec.Expires, rec.LastSeen = version, expires, time.Now()
			if dl := rec.Deadline; !dl.IsZero() && rec.Expires.After(dl) {
				rec.Expires = dl
			}
			return rec, nil
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

// Touch implements store.Store. It reads the record first (the index entry
// to raise is its user's), then commits the new expiry if the record did
// not change in between.
func (s *Store) Touch(ctx context.Context, key string, ttl time.Duration) error {
	if err := s.check(ctx, &ttl); err != nil {
		return err
	}
	for attempt := 0; ; attempt++ {
		if attempt == MaxConflicts {
			return fmt.Errorf("%w (%d tries)", ErrConflict, attempt)
		}
		cur, err := s.load(ctx, key)
		if err != nil {
			return s.wrap("touch", err)
		}
		_, _, conflict, err := s.commit(ctx, key, cur, nil, ttl)
		if err != nil || !conflict {
			return s.wrap("touch", err)
		}
		if err := backoff(ctx, attempt); err != nil {
			return err
		}
	}
}

// Renew implements store.Store. The two keys may be in different slots, so
// it is two atomic steps: the new record (and its index entry) is created
// from the old one's data, then the old record is replaced by its
// tombstone (and its index entry removed) if it did not change meanwhile;
// if it did, the new record is deleted and Renew starts again. Between the
// steps both records exist for a moment; a failure between them leaves
// the old session as it was and the new one to expire (never an index
// entry without its record).
func (s *Store) Renew(ctx context.Context, oldKey, newKey string, meta store.Meta, ttl, grace time.Duration) (store.Record, error) {
	if err := s.check(ctx, &ttl); err != nil {
		return store.Record{}, err
	}
	if oldKey == newKey {
		return store.Record{}, store.ErrExists
	}
	unlock, err := s.lock(ctx, oldKey)
	if err != nil {
		return store.Record{}, err
	}
	defer unlock()
	for attempt := 0; ; attempt++ {
		if attempt == MaxConflicts {
			return store.Record{}, fmt.Errorf("%w (%d tries)", ErrConflict, attempt)
		}
		old, err := s.load(ctx, oldKey)
		if err != nil {
			return store.Record{}, s.wrap("renew", err)
		}
		created, err := s.create(ctx, newKey, old.Data, meta, ttl)
		if err != nil {
			return store.Record{}, s.wrap("renew", err)
		}
		if !created {
			return store.Record{}, store.ErrExists
		}
		undo := func() { _ = s.deleteOwned(context.WithoutCancel(ctx), newKey, meta.User) }
		res, err := buryScript.Run(ctx, s.rdb, []string{s.RecordKey(oldKey), s.indexKey(oldKey, old.User)},
			strconv.FormatUint(old.Version, 10), old.gen, max(grace.Milliseconds(), 0), oldKey, old.User).Result()
		switch {
		case errors.Is(err, goredis.Nil):
			undo()
			return store.Record{}, store.ErrNotFound
		case err != nil:
			undo()
			return store.Record{}, s.wrap("renew", err)
		case res == "t":
			undo()
			return store.Record{}, store.ErrRenewed
		case res == int64(1):
			now := time.Now()
			return store.Record{
				Data:     old.Data,
				Expires:  store.Lifetime(now, ttl, meta.Deadline),
				Version:  1,
				LastSeen: now,
				Meta:     meta,
			}, nil
		}
		undo() // changed in between: copy its newer data
		if err := backoff(ctx, attempt); err != nil {
			return store.Record{}, err
		}
	}
}

// Delete implements store.Store.
func (s *Store) Delete(ctx context.Context, key string) error {
	if err := s.check(ctx, nil); err != nil {
		return err
	}
	for range 10 {
		user, err := s.rdb.HGet(ctx, s.RecordKey(key), "u").Result()
		if err != nil && !errors.Is(err, goredis.Nil) {
			if strings.Contains(err.Error(), "WRONGTYPE") {
				return s.wrap("delete", s.rdb.Del(ctx, s.RecordKey(key)).Err())
			}
			return s.wrap("delete", err)
		}
		done, err := s.deleteScript(ctx, key, user)
		if err != nil || done {
			return s.wrap("delete", err)
		}
	}
	return fmt.Errorf("redis store: delete: the record keeps changing")
}

func (s *Store) deleteScript(ctx context.Context, key, user string) (bool, error) {
	n, err := deleteScript.Run(ctx, s.rdb, []string{s.RecordKey(key), s.indexKey(key, user)}, key, user).Int()
	return n == 1, err
}

// deleteOwned deletes key if it is user's.
func (s *Store) deleteOwned(ctx context.Context, key, user string) error {
	_, err := s.deleteScript(ctx, key, user)
	return err
}

// UserSessions implements store.Store. It reads user's index in each group
// and the records it names (two pipelined round trips), and removes the
// entries whose record is gone: an expired session is paid for once, and
// the index of a user whose sessions all expired expires with them.
func (s *Store) UserSessions(ctx context.Context, user string) ([]store.UserSession, error) {
	if err := s.check(ctx, nil); err != nil {
		return nil, err
	}
	if user == "" {
		return nil, nil
	}
	pipe := s.rdb.Pipeline()
	ranges := make([]*goredis.StringSliceCmd, groups)
	for g := range groups {
		ranges[g] = pipe.ZRange(ctx, s.indexKeyIn("0123456789abcdef"[g], user), 0, -1)
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return nil, s.wrap("user sessions", err)
	}
	var keys []string
	for _, r := range ranges {
		keys = append(keys, r.Val()...)
	}
	if len(keys) == 0 {
		return nil, nil
	}
	pipe = s.rdb.Pipeline()
	sent := time.Now()
	loads := make([]*goredis.Cmd, len(keys))
	for i, k := range keys {
		// EVAL, not EVALSHA: a pipeline cannot fall back on NOSCRIPT.
		loads[i] = loadScript.Eval(ctx, pipe, []string{s.RecordKey(k)})
	}
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, goredis.Nil) {
		return nil, s.wrap("user sessions", err)
	}
	var list []store.UserSession
	var dead []string
	for i, c := range loads {
		res, err := c.Slice()
		r, err := parseLoad(sent, res, err)
		switch {
		case errors.Is(err, store.ErrNotFound), errors.Is(err, store.ErrRenewed), err == nil && r.User != user:
			dead = append(dead, keys[i])
		case err != nil:
			return nil, s.wrap("user sessions", err)
		default:
			list = append(list, store.UserSession{Key: keys[i], Expires: r.Expires, LastSeen: r.LastSeen, Meta: r.Meta})
		}
	}
	if len(dead) > 0 {
		pipe = s.rdb.Pipeline()
		for _, k := range dead {
			pipe.ZRem(ctx, s.indexKey(k, user), k)
		}
		if _, err := pipe.Exec(ctx); err != nil {
			return nil, s.wrap("user sessions", err)
		}
	}
	return list, nil
}

// IndexLen returns the number of entries user's index holds, live or not.
// It is meant for tests.
func (s *Store) IndexLen(ctx context.Context, user string) (int, error) {
	n := 0
	for g := range groups {
		c, err := s.rdb.ZCard(ctx, s.indexKeyIn("0123456789abcdef"[g], user)).Result()
		if err != nil {
			return 0, err
		}
		n += int(c)
	}
	return n, nil
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
