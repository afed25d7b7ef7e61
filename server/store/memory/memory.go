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
	data    []byte
	expires time.Time
	version uint64
}

func (e entry) live(now time.Time) bool { return now.Before(e.expires) }

func (e entry) record() store.Record {
	return store.Record{Data: clone(e.data), Expires: e.expires, Version: e.version}
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

// lock returns the key's shard, locked, or ErrClosed. The closed flag is read
// under the lock so that no call touches a shard after Close has emptied it.
func (s *Store) lock(ctx context.Context, key string) (*shard, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("memory: %w", err)
	}
	sh := &s.shards[maphash.String(s.seed, key)%shardCount]
	sh.mu.Lock()
	if s.closed.Load() {
		sh.mu.Unlock()
		return nil, ErrClosed
	}
	return sh, nil
}

// get returns the live entry under key, dropping it if it has expired. The
// caller holds sh.mu.
func (sh *shard) get(key string, now time.Time) (entry, bool) {
	e, ok := sh.entries[key]
	if !ok {
		return entry{}, false
	}
	if !e.live(now) {
		delete(sh.entries, key)
		return entry{}, false
	}
	return e, true
}

// Create implements store.Store.
func (s *Store) Create(ctx context.Context, key string, data []byte, ttl time.Duration) error {
	if ttl <= 0 {
		return fmt.Errorf("memory: create: ttl %v is not positive", ttl)
	}
	sh, err := s.lock(ctx, key)
	if err != nil {
		return err
	}
	defer sh.mu.Unlock()
	now := time.Now()
	if _, ok := sh.get(key, now); ok {
		return store.ErrExists
	}
	sh.entries[key] = entry{data: clone(data), expires: now.Add(ttl), version: 1}
	return nil
}

// Load implements store.Store.
func (s *Store) Load(ctx context.Context, key string) (store.Record, error) {
	sh, err := s.lock(ctx, key)
	if err != nil {
		return store.Record{}, err
	}
	defer sh.mu.Unlock()
	e, ok := sh.get(key, time.Now())
	if !ok {
		return store.Record{}, store.ErrNotFound
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
	e, ok := sh.get(key, now)
	if !ok {
		return store.Record{}, store.ErrNotFound
	}
	// fn gets a copy: if it scribbles on its argument and then fails, the
	// stored data must be unchanged.
	data, err := fn(clone(e.data))
	if err != nil {
		return store.Record{}, err
	}
	e = entry{data: clone(data), expires: now.Add(ttl), version: e.version + 1}
	sh.entries[key] = e
	return store.Record{Data: data, Expires: e.expires, Version: e.version}, nil
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
	e, ok := sh.get(key, now)
	if !ok {
		return store.ErrNotFound
	}
	e.expires = now.Add(ttl)
	sh.entries[key] = e
	return nil
}

// Delete implements store.Store.
func (s *Store) Delete(ctx context.Context, key string) error {
	sh, err := s.lock(ctx, key)
	if err != nil {
		return err
	}
	delete(sh.entries, key)
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
	})
	return nil
}

// Len returns the number of records held, expired ones not yet swept
// included. It is meant for tests and metrics.
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
				delete(sh.entries, k)
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
