// Package store defines where sessions live: one small interface, Store, with
// one implementation per backend in the packages beside this one (memory, bolt,
// redis) and one conformance suite, storetest, that every backend passes.
//
// A Store knows nothing of cookies, codecs or Socket.IO. It keeps opaque
// records under opaque keys and guarantees three things the session layer
// builds on:
//
//   - Update is an atomic read-modify-write: N concurrent Updates of one key,
//     from any number of goroutines or processes sharing the backend, are all
//     applied, none lost.
//   - A record that is missing, deleted or past its expiry is ErrNotFound to
//     every method: no method ever returns or revives an expired record.
//   - Every successful Update increments the record's Version, so callers can
//     tell a newer value from an older one.
//
// Keys are chosen by the caller; the session layer uses a hash of the session
// ID, so a backend never sees (or stores) a usable session ID.
package store

import (
	"context"
	"errors"
	"time"
)

// ErrNotFound is returned for a key that has no live record: never created,
// deleted, or expired.
var ErrNotFound = errors.New("store: session not found")

// ErrExists is returned by Create when the key already holds a live record.
var ErrExists = errors.New("store: session already exists")

// Record is one stored session.
type Record struct {
	// Data is the encoded session, opaque to the store.
	Data []byte
	// Expires is when the record stops being live unless it is written or
	// touched again before then.
	Expires time.Time
	// Version starts at 1 on Create and grows by one with every Update.
	Version uint64
}

// UpdateFunc computes a record's new data from its current data. It may be
// called more than once for one Update (optimistic backends retry on
// conflict), so it must depend on its argument only and have no side effects.
// Returning an error aborts the Update with that error and changes nothing.
type UpdateFunc func(data []byte) ([]byte, error)

// Store keeps session records. Implementations are safe for concurrent use.
//
// Every method that writes takes the idle lifetime ttl: the record expires ttl
// after the write unless written or touched again. ttl must be positive; a
// write with ttl <= 0 fails and changes nothing.
type Store interface {
	// Create stores a new record at version 1. It returns ErrExists if key
	// already holds a live record.
	Create(ctx context.Context, key string, data []byte, ttl time.Duration) error

	// Load returns the live record under key, or ErrNotFound. Load does not
	// extend the record's life; see Touch.
	Load(ctx context.Context, key string) (Record, error)

	// Update atomically replaces the record's data with fn(data), increments
	// its version, sets it to expire ttl from now, and returns the new record. It
	// returns ErrNotFound, without calling fn, if there is no live record.
	Update(ctx context.Context, key string, ttl time.Duration, fn UpdateFunc) (Record, error)

	// Touch sets a live record to expire ttl from now without changing its
	// data or version. It returns ErrNotFound if there is no live record.
	Touch(ctx context.Context, key string, ttl time.Duration) error

	// Delete removes the record. Deleting a missing key is not an error.
	Delete(ctx context.Context, key string) error

	// Ping reports whether the backend answers.
	Ping(ctx context.Context) error

	// Close releases the backend. Methods called after Close return errors.
	Close() error
}
