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
//   - A record never lives past its Meta.Deadline (the absolute lifetime): no
//     write or touch extends it beyond that, whatever its ttl.
//   - Each store keeps the sessions of every user (Meta.User) in an index
//     changed in the same atomic step as the records it names: a session
//     that is deleted, renewed or expired is never listed by UserSessions,
//     and expired sessions cost the index nothing (no entry outlives its
//     record for long, nothing grows without bound).
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

// ErrExists is returned by Create when the key already holds a live record
// (or the tombstone of a renewed one).
var ErrExists = errors.New("store: session already exists")

// ErrRenewed is returned for a key that was renewed (see Store.Renew) less
// than its grace period ago: it names no session, but a caller must not
// treat it as "no session" and start a new one, since the client that holds
// it is about to use the new key.
var ErrRenewed = errors.New("store: session renewed")

// Meta is what a store keeps beside a record's data. It is fixed for the
// life of a key: only Create and Renew (which writes a new key) set it.
type Meta struct {
	// User is the user the session is bound to (signed in), or "" for none.
	// Stores index records by it (UserSessions).
	User string
	// Agent is a short description of the client, given at sign-in; opaque
	// to the store.
	Agent string
	// Created is when the session was created or signed in.
	Created time.Time
	// Deadline is the absolute end of the session: no write or touch makes
	// it live past Deadline. The zero time means no absolute end.
	Deadline time.Time
}

// Record is one stored session.
type Record struct {
	// Data is the encoded session, opaque to the store.
	Data []byte
	// Expires is when the record stops being live unless it is written or
	// touched again before then; never after Meta.Deadline.
	Expires time.Time
	// Version starts at 1 on Create (and Renew) and grows by one with every
	// Update.
	Version uint64
	// LastSeen is the time of the record's last Create, Renew, Update or
	// Touch.
	LastSeen time.Time
	Meta
}

// UserSession is one live session of a user, as UserSessions lists it.
type UserSession struct {
	Key      string
	Expires  time.Time
	LastSeen time.Time
	Meta
}

// Lifetime is the expiry of a record written at now with the idle lifetime
// ttl: ttl from now, but never past deadline.
func Lifetime(now time.Time, ttl time.Duration, deadline time.Time) time.Time {
	e := now.Add(ttl)
	if !deadline.IsZero() && deadline.Before(e) {
		return deadline
	}
	return e
}

// UpdateFunc computes a record's new data from its current data. It may be
// called more than once for one Update (optimistic backends retry on
// conflict), so it must depend on its argument only and have no side effects.
// Returning an error aborts the Update with that error and changes nothing.
type UpdateFunc func(data []byte) ([]byte, error)

// Store keeps session records. Implementations are safe for concurrent use.
//
// Every method that writes takes the idle lifetime ttl: the record expires ttl
// after the write unless written or touched again, and never after its
// Meta.Deadline. ttl must be positive; a write with ttl <= 0 fails and
// changes nothing.
//
// Load, Update and Touch of a key renewed less than its grace period ago
// return ErrRenewed; of a key with no live record, ErrNotFound.
type Store interface {
	// Create stores a new record at version 1 with meta. It returns
	// ErrExists if key already holds a live record or a tombstone. A meta
	// whose Deadline has passed fails and changes nothing.
	Create(ctx context.Context, key string, data []byte, meta Meta, ttl time.Duration) error

	// Load returns the live record under key. Load does not extend the
	// record's life; see Touch.
	Load(ctx context.Context, key string) (Record, error)

	// Update atomically replaces the record's data with fn(data), increments
	// its version, sets it to expire ttl from now (at the latest at its
	// Deadline), and returns the new record. It returns an error, without
	// calling fn, if there is no live record.
	Update(ctx context.Context, key string, ttl time.Duration, fn UpdateFunc) (Record, error)

	// Touch sets a live record to expire ttl from now (at the latest at its
	// Deadline) without changing its data or version.
	Touch(ctx context.Context, key string, ttl time.Duration) error

	// Renew moves the live record under oldKey to newKey, in one step as
	// far as any reader can tell: the record under newKey has oldKey's data,
	// version 1 and meta (ttl as for Create), oldKey's record and its index
	// entry are gone, and oldKey holds a tombstone for grace (Load, Update
	// and Touch of it return ErrRenewed; Create of it ErrExists). It returns
	// the new record; ErrNotFound or ErrRenewed, changing nothing, when
	// oldKey holds no live record; ErrExists when newKey is taken.
	Renew(ctx context.Context, oldKey, newKey string, meta Meta, ttl, grace time.Duration) (Record, error)

	// Delete removes the record (or tombstone) under key and its index
	// entry. Deleting a missing key is not an error.
	Delete(ctx context.Context, key string) error

	// UserSessions lists the live sessions whose Meta.User is user, in no
	// particular order. An unknown user has none.
	UserSessions(ctx context.Context, user string) ([]UserSession, error)

	// Ping reports whether the backend answers.
	Ping(ctx context.Context) error

	// Close releases the backend. Methods called after Close return errors.
	Close() error
}
