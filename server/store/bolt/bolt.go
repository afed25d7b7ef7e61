// Package bolt is a store.Store in one bbolt file: pure Go, no server to run,
// and sessions survive restarts. It is the default store for a single node.
//
// # Layout
//
// Records live in one bucket, "sessions", keyed by the caller's key. A value
// is a header (format 2: expiry, version, last seen, created, deadline,
// flags, user and agent; see raw.encode) followed by the data; values of
// format 1 (a 17-byte header: expiry and version) still read, with no
// metadata. A tombstone of a renewed key is a value with the tombstone flag
// and no data.
//
// The per-user index is a second bucket, "users", with one empty value per
// signed-in session under the length-prefixed user name and the session
// key. Every transaction that writes or deletes a record writes or deletes
// its index entry too (expiry: the sweeper deletes both; UserSessions drops
// the entries of records it finds dead).
//
// A value that does not parse (too short, another format, version 0) is a
// corrupt record: every method treats it as missing, Create overwrites it and
// the sweeper deletes it.
//
// # Durability and concurrency
//
// Writes go through bbolt's DB.Batch: concurrent writes, of any keys, are
// gathered into one read-write transaction and share one fsync. A write
// returns only after its transaction is on disk, so an acknowledged Update
// survives a crash. The price is latency: a lone write waits up to
// Options.MaxBatchDelay for company before its fsync. Because a batch may be
// retried, an UpdateFunc can run more than once per Update (the store.Store
// contract allows it); it runs inside the write transaction, so it must be
// quick and must not call the Store.
//
// Reads are bbolt read transactions and never wait for writers.
//
// # Expiry
//
// Expired records are never returned. Writes that meet one delete it; a
// sweeper goroutine removes the rest every Options.SweepInterval. It scans
// the bucket in a read transaction and deletes at most Options.SweepChunk
// records per write transaction, so it never holds the single writer lock
// for long. The scan is linear in the number of records; an expiry index
// would make it proportional to the expired ones but would double the cost
// of every Update and Touch, which are far more frequent than sweeps.
//
// # A damaged file
//
// Open refuses a damaged file with an error that names it and the way out
// (restore a backup, or move it away), so the server stops at start-up with
// one line. bbolt v1.5.0 cannot be trusted to do that alone: with
// NoFreelistSync, a read-write open rebuilds the freelist by walking every
// page in a goroutine of its own, where a damaged page panics and kills the
// process. So Open first opens the file read-only and reads it whole in
// its own goroutine, turning bbolt's panics and memory faults into errors
// (ErrDamaged). Damage met later, by a request or the sweeper, costs that
// call an ErrDamaged, never the process.
//
// # Context
//
// Every method returns the context's error if it is already done. Once a
// write has joined a batch it runs to completion: bbolt cannot cancel a
// transaction, and returning early would leave the caller not knowing
// whether the write happened. The wait is bounded by MaxBatchDelay plus one
// commit.
package bolt

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"go.etcd.io/bbolt"

	"github.com/tandem-go/tandem/server/store"
)

// ErrClosed is returned by every method called after Close.
var ErrClosed = errors.New("bolt: store closed")

// Defaults for the zero fields of Options.
const (
	DefaultLockTimeout   = time.Second
	DefaultMaxBatchDelay = time.Millisecond
	DefaultSweepInterval = time.Minute
	DefaultSweepChunk    = 1000
)

// Options configures Open. The zero value is ready to use.
type Options struct {
	// LockTimeout is how long Open waits for the file lock held by another
	// process (most likely another server on the same file) before it fails.
	// Zero means DefaultLockTimeout.
	LockTimeout time.Duration

	// MaxBatchDelay is how long a write waits for others to share its
	// transaction and fsync. Longer delays gather bigger batches under load
	// but add to every write's latency when idle. Zero means
	// DefaultMaxBatchDelay.
	MaxBatchDelay time.Duration

	// SweepInterval is how often expired records are removed in the
	// background. Zero means DefaultSweepInterval; negative disables the
	// sweeper (expired records are still never returned).
	SweepInterval time.Duration

	// SweepChunk bounds the deletions in one sweeper transaction. Zero means
	// DefaultSweepChunk.
	SweepChunk int

	// Logger receives sweeper errors. Nil means slog.Default().
	Logger *slog.Logger
}

func (o Options) withDefaults() Options {
	if o.LockTimeout <= 0 {
		o.LockTimeout = DefaultLockTimeout
	}
	if o.MaxBatchDelay <= 0 {
		o.MaxBatchDelay = DefaultMaxBatchDelay
	}
	if o.SweepInterval == 0 {
		o.SweepInterval = DefaultSweepInterval
	}
	if o.SweepChunk <= 0 {
		o.SweepChunk = DefaultSweepChunk
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return o
}

var bucketName = []byte("sessions")

// Store is a store.Store backed by one bbolt file. Create it with Open.
type Store struct {
	db   *bbolt.DB
	path string
	opts Options

	closed    atomic.Bool
	stop      chan struct{}
	done      chan struct{}
	closeOnce sync.Once
	closeErr  error
}

var _ store.Store = (*Store)(nil)

// Open opens the bbolt file at path, creating it (mode 0600) and its parent
// directory (mode 0700) if needed, and starts the sweeper. It fails after
// opts.LockTimeout if another process holds the file, and at once if the
// file is not a bbolt database.
func Open(path string, opts Options) (*Store, error) {
	opts = opts.withDefaults()
	if path == "" {
		return nil, errors.New("bolt: open: empty path")
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("bolt: open %s: %w", path, err)
	}
	// A damaged page must be found here, in this goroutine, where it can
	// be turned into an error: a read-write Open with NoFreelistSync
	// rebuilds the freelist by scanning every page in a goroutine of
	// bbolt's own (DB.freepages), where a damaged page panics and kills
	// the process. tx.Check cannot help: it loads the freelist first, the
	// same way. So the file is first opened read-only (no freelist scan)
	// and walked whole.
	if err := verify(path, opts.LockTimeout); err != nil {
		return nil, err
	}
	var db *bbolt.DB
	err := safely(func() (err error) {
		db, err = bbolt.Open(path, 0o600, &bbolt.Options{
			Timeout: opts.LockTimeout,
			// Do not write the freelist on every commit; it is rebuilt by
			// a scan at open instead. This is what etcd runs with: cheaper
			// commits for a slower start.
			NoFreelistSync: true,
			FreelistType:   bbolt.FreelistMapType,
		})
		return err
	})
	if err != nil {
		return nil, openError(path, opts.LockTimeout, err)
	}
	db.MaxBatchDelay = opts.MaxBatchDelay

	err = db.Update(func(tx *bbolt.Tx) error {
		if _, err := tx.CreateBucketIfNotExists(bucketName); err != nil {
			return err
		}
		_, err := tx.CreateBucketIfNotExists(usersBucket)
		return err
	})
	if err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("bolt: open %s: bucket %q: %w", path, bucketName, err)
	}

	s := &Store{
		db:   db,
		path: path,
		opts: opts,
		stop: make(chan struct{}),
		done: make(chan struct{}),
	}
	if opts.SweepInterval < 0 {
		close(s.done)
	} else {
		go s.sweepLoop()
	}
	return s, nil
}

// ErrDamaged is wrapped by the errors of a store whose file is damaged: at
// Open (the server then refuses to start) or, for damage that appears while
// it runs, by the call that met it.
var ErrDamaged = errors.New("bolt: the database file is damaged")

func openError(path string, lockTimeout time.Duration, err error) error {
	switch {
	case errors.Is(err, bbolt.ErrTimeout):
		return fmt.Errorf("bolt: open %s: file still locked by another process after %v (is another server using it?): %w",
			path, lockTimeout, err)
	case errors.Is(err, ErrDamaged):
		return fmt.Errorf("bolt: open %s: %w; restore it from a backup, or move it away to start with no sessions", path, err)
	case errors.Is(err, bbolt.ErrInvalid), errors.Is(err, bbolt.ErrVersionMismatch), errors.Is(err, bbolt.ErrChecksum):
		return fmt.Errorf("bolt: open %s: not a bbolt database, or a damaged one (%w); restore it from a backup, or move it away to start with no sessions", path, err)
	default:
		return fmt.Errorf("bolt: open %s: %w", path, err)
	}
}

// verify opens an existing, non-empty file read-only and reads every
// bucket, key and value in it, so that a damaged page is met here. It
// returns nil for a file that does not exist yet or is empty (a new
// database).
func verify(path string, lockTimeout time.Duration) error {
	if fi, err := os.Stat(path); err != nil || fi.Size() == 0 {
		return nil // a new database; Open reports what else may be wrong
	}
	var db *bbolt.DB
	err := safely(func() (err error) {
		db, err = bbolt.Open(path, 0o600, &bbolt.Options{ReadOnly: true, Timeout: lockTimeout})
		return err
	})
	if err != nil {
		return openError(path, lockTimeout, err)
	}
	defer db.Close()
	err = safely(func() error {
		return db.View(func(tx *bbolt.Tx) error {
			return tx.ForEach(func(name []byte, b *bbolt.Bucket) error { return walk(b) })
		})
	})
	if err != nil {
		return openError(path, lockTimeout, err)
	}
	return nil
}

// walk reads every key and value of b and its nested buckets, checking that
// keys are in order: every branch, leaf and overflow page is read.
func walk(b *bbolt.Bucket) error {
	c := b.Cursor()
	var prev []byte
	var sum byte
	for k, v := c.First(); k != nil; k, v = c.Next() {
		if prev != nil && bytes.Compare(prev, k) >= 0 {
			return fmt.Errorf("%w: keys out of order", ErrDamaged)
		}
		prev = k
		if v == nil {
			child := b.Bucket(k)
			if child == nil {
				return fmt.Errorf("%w: a nested bucket cannot be read", ErrDamaged)
			}
			if err := walk(child); err != nil {
				return err
			}
			continue
		}
		for _, x := range v {
			sum ^= x
		}
	}
	_ = sum
	return nil
}

// safely runs fn, turning a panic (bbolt asserts on a damaged page) or a
// memory fault (a page number that points outside the mapped file) into
// an ErrDamaged error: in a request, a socket handler or the sweeper, a
// damaged file must cost that call, not the process.
func safely(fn func() error) (err error) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%w: %v", ErrDamaged, r)
		}
	}()
	return fn()
}

// safely runs a bbolt transaction method (View, Update, Batch) through
// safely.
func (s *Store) safely(txn func(func(*bbolt.Tx) error) error, fn func(*bbolt.Tx) error) error {
	return safely(func() error { return txn(fn) })
}

// Path returns the file the store was opened on.
func (s *Store) Path() string { return s.path }

// check returns the error a call must fail with before it starts, if any.
func (s *Store) check(ctx context.Context, op, key string) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("bolt: %s: %w", op, err)
	}
	if s.closed.Load() {
		return ErrClosed
	}
	if len(key) == 0 || len(key) > bbolt.MaxKeySize {
		return fmt.Errorf("bolt: %s: key length %d outside 1..%d", op, len(key), bbolt.MaxKeySize)
	}
	return nil
}

func checkTTL(op string, ttl time.Duration) error {
	if ttl <= 0 {
		return fmt.Errorf("bolt: %s: ttl %v is not positive", op, ttl)
	}
	return nil
}

// Create implements store.Store.
func (s *Store) Create(ctx context.Context, key string, data []byte, meta store.Meta, ttl time.Duration) error {
	if err := s.check(ctx, "create", key); err != nil {
		return err
	}
	if err := checkTTL("create", ttl); err != nil {
		return err
	}
	if err := checkMeta("create", meta); err != nil {
		return err
	}
	k := []byte(key)
	var exists bool
	err := s.safely(s.db.Batch, func(tx *bbolt.Tx) error {
		b := tx.Bucket(bucketName)
		now := time.Now()
		v := b.Get(k)
		if r, ok := decode(v); ok && r.live(now) {
			exists = true
			return nil
		}
		exists = false
		if v != nil {
			if err := del(tx, k, v); err != nil {
				return err
			}
		}
		if !meta.Deadline.IsZero() && !now.Before(meta.Deadline) {
			return fmt.Errorf("deadline %v has passed", meta.Deadline)
		}
		return put(tx, k, newRaw(now, ttl, 1, meta, data))
	})
	if err != nil {
		return fmt.Errorf("bolt: create: %w", err)
	}
	if exists {
		return store.ErrExists
	}
	return nil
}

// Load implements store.Store.
func (s *Store) Load(ctx context.Context, key string) (store.Record, error) {
	if err := s.check(ctx, "load", key); err != nil {
		return store.Record{}, err
	}
	var rec store.Record
	var lerr error
	err := s.safely(s.db.View, func(tx *bbolt.Tx) error {
		r, ok := decode(tx.Bucket(bucketName).Get([]byte(key)))
		if lerr = r.err(ok, time.Now()); lerr != nil {
			return nil
		}
		// r.data points into the memory map, valid only in this
		// transaction (and read-only).
		rec = r.record(bytes.Clone(r.data))
		return nil
	})
	if err != nil {
		return store.Record{}, fmt.Errorf("bolt: load: %w", err)
	}
	if lerr != nil {
		return store.Record{}, lerr
	}
	return rec, nil
}

// Update implements store.Store. fn runs inside a write transaction shared
// with other writes, and runs again if that transaction is retried.
func (s *Store) Update(ctx context.Context, key string, ttl time.Duration, fn store.UpdateFunc) (store.Record, error) {
	if err := s.check(ctx, "update", key); err != nil {
		return store.Record{}, err
	}
	if err := checkTTL("update", ttl); err != nil {
		return store.Record{}, err
	}
	k := []byte(key)
	// Outcomes are reported through these rather than the transaction's
	// error: an error would make bbolt roll back the whole batch and rerun
	// every other write in it. Each run of the closure resets them, so they
	// hold the outcome of the run that committed.
	var (
		rec     store.Record
		missing error
		fnErr   error
	)
	err := s.safely(s.db.Batch, func(tx *bbolt.Tx) error {
		rec, missing, fnErr = store.Record{}, nil, nil
		b := tx.Bucket(bucketName)
		v := b.Get(k)
		r, ok := decode(v)
		now := time.Now()
		if missing = r.err(ok, now); missing != nil {
			if v != nil && !errors.Is(missing, store.ErrRenewed) {
				return del(tx, k, v) // expired or corrupt: tidy up while here
			}
			return nil
		}
		// fn gets a private copy: r.data is the read-only memory map.
		data, err := fn(bytes.Clone(r.data))
		if err != nil {
			fnErr = err
			return nil
		}
		next := newRaw(now, ttl, r.version+1, r.meta, data)
		if err := b.Put(k, next.encode()); err != nil {
			return err
		}
		// encode copied data, so the caller may keep and change it.
		rec = next.record(data)
		return nil
	})
	switch {
	case err != nil:
		return store.Record{}, fmt.Errorf("bolt: update: %w", err)
	case missing != nil:
		return store.Record{}, missing
	case fnErr != nil:
		return store.Record{}, fnErr
	}
	return rec, nil
}

// Touch implements store.Store. bbolt values cannot be changed in place, so
// a Touch rewrites the whole record.
func (s *Store) Touch(ctx context.Context, key string, ttl time.Duration) error {
	if err := s.check(ctx, "touch", key); err != nil {
		return err
	}
	if err := checkTTL("touch", ttl); err != nil {
		return err
	}
	k := []byte(key)
	var missing error
	err := s.safely(s.db.Batch, func(tx *bbolt.Tx) error {
		b := tx.Bucket(bucketName)
		v := b.Get(k)
		now := time.Now()
		r, ok := decode(v)
		if missing = r.err(ok, now); missing != nil {
			if v != nil && !errors.Is(missing, store.ErrRenewed) {
				return del(tx, k, v)
			}
			return nil
		}
		return b.Put(k, newRaw(now, ttl, r.version, r.meta, r.data).encode())
	})
	if err != nil {
		return fmt.Errorf("bolt: touch: %w", err)
	}
	return missing
}

// Renew implements store.Store, in one write transaction.
func (s *Store) Renew(ctx context.Context, oldKey, newKey string, meta store.Meta, ttl, grace time.Duration) (store.Record, error) {
	if err := s.check(ctx, "renew", oldKey); err != nil {
		return store.Record{}, err
	}
	if err := s.check(ctx, "renew", newKey); err != nil {
		return store.Record{}, err
	}
	if err := checkTTL("renew", ttl); err != nil {
		return store.Record{}, err
	}
	if err := checkMeta("renew", meta); err != nil {
		return store.Record{}, err
	}
	if oldKey == newKey {
		return store.Record{}, store.ErrExists
	}
	ok, nk := []byte(oldKey), []byte(newKey)
	var rec store.Record
	var refused error
	err := s.safely(s.db.Batch, func(tx *bbolt.Tx) error {
		rec, refused = store.Record{}, nil
		b := tx.Bucket(bucketName)
		now := time.Now()
		ov := b.Get(ok)
		old, valid := decode(ov)
		if refused = old.err(valid, now); refused != nil {
			return nil
		}
		if r, valid := decode(b.Get(nk)); valid && r.live(now) {
			refused = store.ErrExists
			return nil
		}
		if !meta.Deadline.IsZero() && !now.Before(meta.Deadline) {
			return fmt.Errorf("deadline %v has passed", meta.Deadline)
		}
		data := bytes.Clone(old.data) // ov is about to be overwritten
		if err := del(tx, ok, ov); err != nil {
			return err
		}
		if grace > 0 {
			if err := b.Put(ok, raw{expires: now.Add(grace).UnixNano(), version: 1, tomb: true}.encode()); err != nil {
				return err
			}
		}
		if v := b.Get(nk); v != nil {
			if err := del(tx, nk, v); err != nil { // expired or corrupt
				return err
			}
		}
		next := newRaw(now, ttl, 1, meta, data)
		if err := put(tx, nk, next); err != nil {
			return err
		}
		rec = next.record(data)
		return nil
	})
	if err != nil {
		return store.Record{}, fmt.Errorf("bolt: renew: %w", err)
	}
	if refused != nil {
		return store.Record{}, refused
	}
	return rec, nil
}

// Delete implements store.Store.
func (s *Store) Delete(ctx context.Context, key string) error {
	if err := s.check(ctx, "delete", key); err != nil {
		return err
	}
	k := []byte(key)
	err := s.safely(s.db.Batch, func(tx *bbolt.Tx) error {
		if v := tx.Bucket(bucketName).Get(k); v != nil {
			return del(tx, k, v)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("bolt: delete: %w", err)
	}
	return nil
}

// UserSessions implements store.Store. It reads the user's index entries and
// their records in one read transaction; entries whose record is gone
// (expired, or damaged) are then deleted, so a user's expired sessions are
// paid for once.
func (s *Store) UserSessions(ctx context.Context, user string) ([]store.UserSession, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("bolt: user sessions: %w", err)
	}
	if s.closed.Load() {
		return nil, ErrClosed
	}
	if user == "" || len(user) > maxUserLen {
		return nil, nil
	}
	var list []store.UserSession
	var dead [][]byte
	err := s.safely(s.db.View, func(tx *bbolt.Tx) error {
		list, dead = nil, nil
		b := tx.Bucket(bucketName)
		c := tx.Bucket(usersBucket).Cursor()
		prefix := userPrefix(user)
		now := time.Now()
		for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
			key := k[len(prefix):]
			r, ok := decode(b.Get(key))
			if r.err(ok, now) != nil || r.meta.User != user {
				dead = append(dead, bytes.Clone(k))
				continue
			}
			list = append(list, store.UserSession{Key: string(key), Expires: time.Unix(0, r.expires), LastSeen: time.Unix(0, r.lastSeen), Meta: r.meta})
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("bolt: user sessions: %w", err)
	}
	if len(dead) > 0 {
		if err := s.dropEntries(user, dead); err != nil {
			return nil, fmt.Errorf("bolt: user sessions: %w", err)
		}
	}
	return list, nil
}

// dropEntries deletes index entries of user (and their records) that are
// still dead: a record may have been created again since it was read.
func (s *Store) dropEntries(user string, entries [][]byte) error {
	prefix := userPrefix(user)
	return s.safely(s.db.Batch, func(tx *bbolt.Tx) error {
		b := tx.Bucket(bucketName)
		now := time.Now()
		for _, e := range entries {
			key := e[len(prefix):]
			v := b.Get(key)
			r, ok := decode(v)
			switch {
			case ok && r.live(now) && r.meta.User == user:
				continue
			case v != nil && ok && !r.tomb && !r.live(now):
				if err := del(tx, key, v); err != nil {
					return err
				}
			}
			if err := tx.Bucket(usersBucket).Delete(e); err != nil {
				return err
			}
		}
		return nil
	})
}

// Ping implements store.Store: it fails after Close or if the database can
// no longer be read.
func (s *Store) Ping(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("bolt: ping: %w", err)
	}
	if s.closed.Load() {
		return ErrClosed
	}
	err := s.safely(s.db.View, func(tx *bbolt.Tx) error {
		if tx.Bucket(bucketName) == nil || tx.Bucket(usersBucket) == nil {
			return fmt.Errorf("bucket %q or %q missing", bucketName, usersBucket)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("bolt: ping: %w", err)
	}
	return nil
}

// Close stops the sweeper and closes the file, after the transactions in
// progress finish. Writes still waiting for their batch fail. Calling Close
// again returns the first call's result.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		s.closed.Store(true)
		select {
		case <-s.done: // sweeper disabled
		default:
			close(s.stop)
			<-s.done
		}
		if err := s.db.Close(); err != nil {
			s.closeErr = fmt.Errorf("bolt: close %s: %w", s.path, err)
		}
	})
	return s.closeErr
}

func (s *Store) sweepLoop() {
	defer close(s.done)
	t := time.NewTicker(s.opts.SweepInterval)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
			// The sweeper must never take the process down: what it meets
			// in a damaged file is an error to log, like any other.
			err := safely(func() error { _, err := s.sweep(); return err })
			switch {
			case errors.Is(err, ErrDamaged):
				s.opts.Logger.Error("bolt: sweep expired sessions: the database file is damaged; restore it from a backup", "path", s.path, "err", err)
			case err != nil:
				s.opts.Logger.Warn("bolt: sweep expired sessions", "path", s.path, "err", err)
			}
		}
	}
}

// sweep removes every expired or corrupt record, one chunk per write
// transaction, until it reaches the end of the bucket or the store closes.
func (s *Store) sweep() (removed int, err error) {
	var from []byte
	for {
		select {
		case <-s.stop:
			return removed, nil
		default:
		}
		n, next, err := s.sweepChunk(from)
		removed += n
		if err != nil || next == nil {
			return removed, err
		}
		from = next
	}
}

// sweepChunk finds up to SweepChunk dead records from key from on (from the
// start if nil) and deletes them. It returns where the next chunk starts, nil
// at the end of the bucket.
func (s *Store) sweepChunk(from []byte) (removed int, next []byte, err error) {
	dead, next, err := s.scanDead(from)
	if err != nil || len(dead) == 0 {
		return 0, next, err
	}
	removed, err = s.deleteDead(dead)
	if err != nil {
		return 0, nil, err
	}
	return removed, next, nil
}

// scanDead lists, in a read transaction, up to SweepChunk expired or corrupt
// records from key from on, and where to carry on.
func (s *Store) scanDead(from []byte) (dead [][]byte, next []byte, err error) {
	// The scan is bounded too, so a huge live bucket does not pin one read
	// transaction (and the pages it sees) for long.
	scanLimit := 10 * s.opts.SweepChunk
	err = s.safely(s.db.View, func(tx *bbolt.Tx) error {
		c := tx.Bucket(bucketName).Cursor()
		now := time.Now()
		k, v := c.First()
		if from != nil {
			k, v = c.Seek(from)
		}
		for scanned := 0; k != nil; k, v = c.Next() {
			if len(dead) == s.opts.SweepChunk || scanned == scanLimit {
				next = bytes.Clone(k)
				return nil
			}
			scanned++
			if r, ok := decode(v); !ok || !r.live(now) {
				dead = append(dead, bytes.Clone(k))
			}
		}
		return nil
	})
	return dead, next, err
}

// deleteDead deletes, in one write transaction, those of keys that are still
// expired or corrupt: any of them may have been created again since the scan.
func (s *Store) deleteDead(keys [][]byte) (removed int, err error) {
	err = s.safely(s.db.Update, func(tx *bbolt.Tx) error {
		removed = 0
		b := tx.Bucket(bucketName)
		now := time.Now()
		for _, k := range keys {
			v := b.Get(k)
			if v == nil {
				continue
			}
			if r, ok := decode(v); ok && r.live(now) {
				continue
			}
			if err := del(tx, k, v); err != nil {
				return err
			}
			removed++
		}
		return nil
	})
	return removed, err
}

const (
	formatV1   = 1
	formatV2   = 2
	headerLen  = 1 + 8 + 8
	header2Len = headerLen + 8 + 8 + 8 + 1 + 2 + 2
	flagTomb   = 1
	maxUserLen = 1024
)

// raw is a decoded value. data aliases the value it was decoded from.
type raw struct {
	expires  int64 // Unix nanoseconds
	version  uint64
	lastSeen int64 // Unix nanoseconds; 0 in a formatV1 value
	meta     store.Meta
	tomb     bool
	data     []byte
}

func newRaw(now time.Time, ttl time.Duration, version uint64, meta store.Meta, data []byte) raw {
	return raw{
		expires:  store.Lifetime(now, ttl, meta.Deadline).UnixNano(),
		version:  version,
		lastSeen: now.UnixNano(),
		meta:     meta,
		data:     data,
	}
}

func (r raw) live(now time.Time) bool { return now.UnixNano() < r.expires }

// err is the error of a lookup that found r (ok as decode returned it):
// nil for a live record.
func (r raw) err(ok bool, now time.Time) error {
	switch {
	case !ok || !r.live(now):
		return store.ErrNotFound
	case r.tomb:
		return store.ErrRenewed
	}
	return nil
}

func (r raw) record(data []byte) store.Record {
	rec := store.Record{Data: data, Expires: time.Unix(0, r.expires), Version: r.version, Meta: r.meta}
	if r.lastSeen != 0 {
		rec.LastSeen = time.Unix(0, r.lastSeen)
	}
	return rec
}

// encode writes r in formatV2:
//
//	byte 0        format, 2
//	bytes 1-8     expiry, Unix nanoseconds, big-endian
//	bytes 9-16    version, big-endian, at least 1
//	bytes 17-24   last seen, Unix nanoseconds
//	bytes 25-32   created, Unix nanoseconds (0: zero time)
//	bytes 33-40   deadline, Unix nanoseconds (0: none)
//	byte 41       flags: 1 = tombstone of a renewed key
//	bytes 42-43   user length; 44-45 agent length
//	then user, agent, data
func (r raw) encode() []byte {
	v := make([]byte, header2Len, header2Len+len(r.meta.User)+len(r.meta.Agent)+len(r.data))
	v[0] = formatV2
	binary.BigEndian.PutUint64(v[1:9], uint64(r.expires))
	binary.BigEndian.PutUint64(v[9:17], r.version)
	binary.BigEndian.PutUint64(v[17:25], uint64(r.lastSeen))
	binary.BigEndian.PutUint64(v[25:33], uint64(unixNano(r.meta.Created)))
	binary.BigEndian.PutUint64(v[33:41], uint64(unixNano(r.meta.Deadline)))
	if r.tomb {
		v[41] = flagTomb
	}
	binary.BigEndian.PutUint16(v[42:44], uint16(len(r.meta.User)))
	binary.BigEndian.PutUint16(v[44:46], uint16(len(r.meta.Agent)))
	v = append(v, r.meta.User...)
	v = append(v, r.meta.Agent...)
	return append(v, r.data...)
}

func unixNano(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

func fromUnixNano(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n)
}

// encode writes a formatV1 value (no metadata); tests use it to plant
// records of the earlier format.
func encode(expires int64, version uint64, data []byte) []byte {
	v := make([]byte, headerLen, headerLen+len(data))
	v[0] = formatV1
	binary.BigEndian.PutUint64(v[1:9], uint64(expires))
	binary.BigEndian.PutUint64(v[9:17], version)
	return append(v, data...)
}

// decode parses a stored value of either format. ok is false for a missing
// (nil) or corrupt value.
func decode(v []byte) (r raw, ok bool) {
	if len(v) < headerLen || (v[0] != formatV1 && v[0] != formatV2) {
		return raw{}, false
	}
	r = raw{
		expires: int64(binary.BigEndian.Uint64(v[1:9])),
		version: binary.BigEndian.Uint64(v[9:17]),
		data:    v[headerLen:],
	}
	if v[0] == formatV2 {
		if len(v) < header2Len {
			return raw{}, false
		}
		r.lastSeen = int64(binary.BigEndian.Uint64(v[17:25]))
		r.meta.Created = fromUnixNano(int64(binary.BigEndian.Uint64(v[25:33])))
		r.meta.Deadline = fromUnixNano(int64(binary.BigEndian.Uint64(v[33:41])))
		r.tomb = v[41]&flagTomb != 0
		ul, al := int(binary.BigEndian.Uint16(v[42:44])), int(binary.BigEndian.Uint16(v[44:46]))
		if len(v) < header2Len+ul+al {
			return raw{}, false
		}
		r.meta.User = string(v[header2Len : header2Len+ul])
		r.meta.Agent = string(v[header2Len+ul : header2Len+ul+al])
		r.data = v[header2Len+ul+al:]
	}
	if r.version == 0 {
		return raw{}, false
	}
	return r, true
}

// usersBucket holds the per-user index: one empty value per session of a
// user, under userPrefix(user) + session key, written and deleted in the
// same transaction as the record.
var usersBucket = []byte("users")

// userPrefix is the length-prefixed user name, so that no user's entries
// are a prefix of another's.
func userPrefix(user string) []byte {
	p := binary.BigEndian.AppendUint16(nil, uint16(len(user)))
	return append(p, user...)
}

// put writes r under k and its index entry.
func put(tx *bbolt.Tx, k []byte, r raw) error {
	if err := tx.Bucket(bucketName).Put(k, r.encode()); err != nil {
		return err
	}
	if r.meta.User == "" || r.tomb {
		return nil
	}
	return tx.Bucket(usersBucket).Put(append(userPrefix(r.meta.User), k...), nil)
}

// del deletes the value v under k and, if it names a user, its index entry.
func del(tx *bbolt.Tx, k, v []byte) error {
	if r, ok := decode(v); ok && r.meta.User != "" && !r.tomb {
		if err := tx.Bucket(usersBucket).Delete(append(userPrefix(r.meta.User), k...)); err != nil {
			return err
		}
	}
	return tx.Bucket(bucketName).Delete(k)
}

// checkMeta refuses metadata the format cannot hold: index keys are the
// user and the session key together, within bbolt.MaxKeySize.
func checkMeta(op string, meta store.Meta) error {
	if len(meta.User) > maxUserLen || len(meta.Agent) > maxUserLen {
		return fmt.Errorf("bolt: %s: user or agent longer than %d bytes", op, maxUserLen)
	}
	return nil
}
