// Package memory is an in-process store.Store for tests and throwaway runs:
// nothing survives the process and nothing is shared between processes.
//
// Records live in a map split into shards by a hash of the key, each shard
// behind its own mutex, so concurrent calls on different keys rarely wait for
// each other (on two cores, contention on one global lock would cap
// throughput). A call holds its shard's lock for the whole read-modify-write,
// which is what makes Update atomic; the UpdateFunc therefore runs under that
// lock and must not call back into the Store.
//
// The per-user index (UserSessions) is a map of its own behind one mutex,
// changed while the shard lock of the record it names is held: a record and
// its index entry come and go together, expiry included.
//
// Expired records are dropped lazily when a call meets them, and a sweeper
// goroutine removes the rest every Options.SweepInterval, one shard at a time
// so it never stops the whole store. Close stops the sweeper and drops every
// record; later calls return ErrClosed.
//
// Data is copied on the way in and on the way out: no caller can change a
// stored record through a slice it passed or received.
package memory

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tandem-go/tandem/server/store"
)

// ErrClosed is returned by every method called after Close.
var ErrClosed = errors.New("memory: store closed")

// DefaultSweepInterval is how often the sweeper runs when
// Options.SweepInterval is zero.
const DefaultSweepInterval = time.Minute

// shardCount is a power of two well above the core counts this runs on, so two
// hot keys rarely share a lock.
const shardCount = 64

// Options configures a Store. The zero value is ready to use.
type Options struct {
	// SweepInterval is how often expired records are removed in the
	// background. Zero means DefaultSweepInterval; a negative value disables
	// the sweeper (expired records are then only removed when touched by a
	// call, and are never returned either way).
	SweepInterval time.Duration
}

// Store is an in-memory store.Store. Create it with New or NewWithOptions.
type Store struct {
	seed   maphash.Seed
	shards [shardCount]shard
	users  users
	closed atomic.Bool

	stop      chan struct{}
	done      chan struct{}
	closeOnce sync.Once
}

var _ store.Store = (*Store)(nil)

type shard struct {
	mu      sync.Mutex
	entries map[string]entry
	// Pad to a cache line so neighbouring shards' locks do not share one.
	_ [64 - 16]byte
}

type entry struct {
	data     []byte
	expires  time.Time
	lastSeen time.Time
	version  uint64
	meta     store.Meta
	tomb     bool // a renewed key's tombstone: no data, ErrRenewed until expires
}

func (e entry) live(now time.Time) bool { return now.Before(e.expires) }

func (e entry) record() store.Record {
	return store.Record{Data: clone(e.data), Expires: e.expires, Version: e.version, LastSeen: e.lastSeen, Meta: e.meta}
}

// users is the per-user index: user -> keys of its sessions. It is changed
// while the shard lock of the key it names is held, in the same step as the
// record; lock order is shard, then users.mu.
type users struct {
	mu sync.Mutex
	m  map[string]map[string]struct{}
}

func (u *users) add(user, key string) {
	if user == "" {
		return
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.m == nil {
		u.m = map[string]map[string]struct{}{}
	}
	keys := u.m[user]
	if keys == nil {
		keys = map[string]struct{}{}
		u.m[user] = keys
	}
	keys[key] = struct{}{}
}

func (u *users) remove(user, key string) {
	if user == "" {
		return
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	keys := u.m[user]
	delete(keys, key)
	if len(keys) == 0 {
		delete(u.m, user)
	}
}

func (u *users) keys(user string) []string {
	u.mu.Lock()
	defer u.mu.Unlock()
	list := make([]string, 0, len(u.m[user]))
	for k := range u.m[user] {
		list = append(list, k)
	}
	return list
}

// New returns a Store with default options.
func New() *Store { return NewWithOptions(Options{}) }

// NewWithOptions returns a Store configured by opts.
func NewWithOptions(opts Options) *Store {
	s := &Store{
		seed: maphash.MakeSeed(),
		stop: make(chan struct{}),
		done: make(chan struct{}),
	}
	for i := range s.shards {
		s.shards[i].entries = make(map[string]entry)
	}
	interval := opts.SweepInterval
	if interval == 0 {
		interval = DefaultSweepInterval
	}
	if interval < 0 {
		close(s.done)
		return s
	}
	go s.sweepLoop(interval)
	return s
}

func (s *Store) shardOf(key string) int { return int(maphash.String(s.seed, key) % shardCount) }

// lock returns the key's shard, locked, or ErrClosed. The closed flag is read
// under the lock so that no call touches a shard after Close has emptied it.
func (s *Store) lock(ctx context.Context, key string) (*shard, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("memory: %w", err)
	}
	sh := &s.shards[s.shardOf(key)]
	sh.mu.Lock()
	if s.closed.Load() {
		sh.mu.Unlock()
		return nil, ErrClosed
	}
	return sh, nil
}

// drop removes key's entry and its index entry. The caller holds sh.mu.
func (s *Store) drop(sh *shard, key string, e entry) {
	delete(sh.entries, key)
	if !e.tomb {
		s.users.remove(e.meta.User, key)
	}
}

// get returns the live entry under key, dropping it if it has expired; a
// tombstone is ErrRenewed. The caller holds sh.mu.
func (s *Store) get(sh *shard, key string, now time.Time) (entry, error) {
	e, ok := sh.entries[key]
	if !ok {
		return entry{}, store.ErrNotFound
	}
	if !e.live(now) {
		s.drop(sh, key, e)
		return entry{}, store.ErrNotFound
	}
	if e.tomb {
		return entry{}, store.ErrRenewed
	}
	return e, nil
}

// Create implements store.Store.
func (s *Store) Create(ctx context.Context, key string, data []byte, meta store.Meta, ttl time.Duration) error {
	if ttl <= 0 {
		return fmt.Errorf("memory: create: ttl %v is not positive", ttl)
	}
	sh, err := s.lock(ctx, key)
	if err != nil {
		return err
	}
	defer sh.mu.Unlock()
	now := time.Now()
	if !meta.Deadline.IsZero() && !now.Before(meta.Deadline) {
		return fmt.Errorf("memory: create: deadline %v has passed", meta.Deadline)
	}
	if _, err := s.get(sh, key, now); !errors.Is(err, store.ErrNotFound) {
		return store.ErrExists
	}
	sh.entries[key] = entry{data: clone(data), expires: store.Lifetime(now, ttl, meta.Deadline), lastSeen: now, version: 1, meta: meta}
	s.users.add(meta.User, key)
	return nil
}

// Load implements store.Store.
func (s *Store) Load(ctx context.Context, key string) (store.Record, error) {
	sh, err := s.lock(ctx, key)
	if err != nil {
		return store.Record{}, err
	}
	defer sh.mu.Unlock()
	e, err := s.get(sh, key, time.Now())
	if err != nil {
		return store.Record{}, err
	}
	return e.record(), nil
}

// Update implements store.Store. fn runs with the key's shard locked.
func (s *Store) Update(ctx context.Context, key string, ttl time.Duration, fn store.UpdateFunc) (store.Record, error) {
	if ttl <= 0 {
		return store.Record{}, fmt.Errorf("memory: update: ttl %v is not positive", ttl)
	}
	sh, err := s.lock(ctx, key)
	if err != nil {
		return store.Record{}, err
	}
	defer sh.mu.Unlock()
	// One clock read serves both the liveness check and the new expiry:
	// fn is quick, and on some virtual machines reading the clock is a
	// third of the cost of an Update.
	now := time.Now()
	e, err := s.get(sh, key, now)
	if err != nil {
		return store.Record{}, err
	}
	// fn gets a copy: if it scribbles on its argument and then fails, the
	// stored data must be unchanged.
	data, err := fn(clone(e.data))
	if err != nil {
		return store.Record{}, err
	}
	e = entry{data: clone(data), expires: store.Lifetime(now, ttl, e.meta.Deadline), lastSeen: now, version: e.version + 1, meta: e.meta}
	sh.entries[key] = e
	return store.Record{Data: data, Expires: e.expires, Version: e.version, LastSeen: now, Meta: e.meta}, nil
}

// Touch implements store.Store.
func (s *Store) Touch(ctx context.Context, key string, ttl time.Duration) error {
	if ttl <= 0 {
		return fmt.Errorf("memory: touch: ttl %v is not positive", ttl)
	}
	sh, err := s.lock(ctx, key)
	if err != nil {
		return err
	}
	defer sh.mu.Unlock()
	now := time.Now()
	e, err := s.get(sh, key, now)
	if err != nil {
		return err
	}
	e.expires = store.Lifetime(now, ttl, e.meta.Deadline)
	e.lastSeen = now
	sh.entries[key] = e
	return nil
}

// Renew implements store.Store. It holds both keys' shard locks, taken in
// shard order, so the move is one step.
func (s *Store) Renew(ctx context.Context, oldKey, newKey string, meta store.Meta, ttl, grace time.Duration) (store.Record, error) {
	if ttl <= 0 {
		return store.Record{}, fmt.Errorf("memory: renew: ttl %v is not positive", ttl)
	}
	if oldKey == newKey {
		return store.Record{}, store.ErrExists
	}
	if err := ctx.Err(); err != nil {
		return store.Record{}, fmt.Errorf("memory: %w", err)
	}
	a, b := s.shardOf(oldKey), s.shardOf(newKey)
	first, second := min(a, b), max(a, b)
	s.shards[first].mu.Lock()
	defer s.shards[first].mu.Unlock()
	if second != first {
		s.shards[second].mu.Lock()
		defer s.shards[second].mu.Unlock()
	}
	if s.closed.Load() {
		return store.Record{}, ErrClosed
	}
	oldSh, newSh := &s.shards[a], &s.shards[b]
	now := time.Now()
	if !meta.Deadline.IsZero() && !now.Before(meta.Deadline) {
		return store.Record{}, fmt.Errorf("memory: renew: deadline %v has passed", meta.Deadline)
	}
	old, err := s.get(oldSh, oldKey, now)
	if err != nil {
		return store.Record{}, err
	}
	if _, err := s.get(newSh, newKey, now); !errors.Is(err, store.ErrNotFound) {
		return store.Record{}, store.ErrExists
	}
	s.drop(oldSh, oldKey, old)
	if grace > 0 {
		oldSh.entries[oldKey] = entry{tomb: true, expires: now.Add(grace)}
	}
	e := entry{data: old.data, expires: store.Lifetime(now, ttl, meta.Deadline), lastSeen: now, version: 1, meta: meta}
	newSh.entries[newKey] = e
	s.users.add(meta.User, newKey)
	return e.record(), nil
}

// UserSessions implements store.Store. Each key the index names is checked
// under its shard's lock, so an entry whose record has just gone is not
// listed (and an expired one is dropped on the way).
func (s *Store) UserSessions(ctx context.Context, user string) ([]store.UserSession, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("memory: %w", err)
	}
	if s.closed.Load() {
		return nil, ErrClosed
	}
	var list []store.UserSession
	for _, key := range s.users.keys(user) {
		sh, err := s.lock(ctx, key)
		if err != nil {
			return nil, err
		}
		if e, err := s.get(sh, key, time.Now()); err == nil && e.meta.User == user {
			list = append(list, store.UserSession{Key: key, Expires: e.expires, LastSeen: e.lastSeen, Meta: e.meta})
		}
		sh.mu.Unlock()
	}
	return list, nil
}

// Delete implements store.Store.
func (s *Store) Delete(ctx context.Context, key string) error {
	sh, err := s.lock(ctx, key)
	if err != nil {
		return err
	}
	if e, ok := sh.entries[key]; ok {
		s.drop(sh, key, e)
	}
	sh.mu.Unlock()
	return nil
}

// Ping implements store.Store: it fails only after Close.
func (s *Store) Ping(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("memory: %w", err)
	}
	if s.closed.Load() {
		return ErrClosed
	}
	return nil
}

// Close stops the sweeper and drops every record. It is safe to call more
// than once.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		s.closed.Store(true)
		select {
		case <-s.done: // sweeper disabled
		default:
			close(s.stop)
			<-s.done
		}
		for i := range s.shards {
			sh := &s.shards[i]
			sh.mu.Lock()
			sh.entries = nil
			sh.mu.Unlock()
		}
		s.users.mu.Lock()
		s.users.m = nil
		s.users.mu.Unlock()
	})
	return nil
}

// Len returns the number of records held, expired ones and tombstones not
// yet swept included. It is meant for tests and metrics.
func (s *Store) Len() int {
	n := 0
	for i := range s.shards {
		sh := &s.shards[i]
		sh.mu.Lock()
		n += len(sh.entries)
		sh.mu.Unlock()
	}
	return n
}

func (s *Store) sweepLoop(interval time.Duration) {
	defer close(s.done)
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
			s.sweep()
		}
	}
}

// sweep removes expired records, holding one shard's lock at a time.
func (s *Store) sweep() (removed int) {
	for i := range s.shards {
		sh := &s.shards[i]
		sh.mu.Lock()
		now := time.Now()
		for k, e := range sh.entries {
			if !e.live(now) {
				s.drop(sh, k, e)
				removed++
			}
		}
		sh.mu.Unlock()
	}
	return removed
}

func clone(b []byte) []byte {
	if b == nil {
		return nil
	}
	return append(make([]byte, 0, len(b)), b...)
}

// IndexLen returns the number of entries the index holds for user, expired
// ones not yet dropped included. It is meant for tests: an index that
// forgot nothing would grow here.
func (s *Store) IndexLen(user string) int {
	s.users.mu.Lock()
	defer s.users.mu.Unlock()
	return len(s.users.m[user])
}
