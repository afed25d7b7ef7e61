// Package storetest is the conformance suite that every store.Store backend
// passes, so that the session layer can rely on the interface's contract and
// not on one backend's habits.
//
// A backend's test calls Run with a function that makes a fresh Harness for
// each subtest:
//
//	func TestConformance(t *testing.T) {
//		storetest.Run(t, func(tb testing.TB) storetest.Harness {
//			s := memory.New()
//			tb.Cleanup(func() { s.Close() })
//			return storetest.Harness{Store: s}
//		})
//	}
//
// The suite is backend-neutral: it talks to the Store through the interface
// only, reaches the raw representation only through Harness.Corrupt, uses keys
// unique to each subtest (so backends sharing one server, such as Redis, may
// run subtests in parallel), and checks expiry times with a tolerance of
// Slack, since backends keep time at different precisions (Redis PX counts
// milliseconds).
//
// Expiry is tested in real time with TTLs of a few hundred milliseconds.
// Those subtests run in parallel with each other, so the whole suite takes
// about a second of wall time.
//
// BenchmarkUpdate and BenchmarkUpdateParallel are shared the same way, so
// backends are measured by one yardstick:
//
//	func BenchmarkUpdate(b *testing.B) { storetest.BenchmarkUpdate(b, newHarness) }
package storetest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tandem-go/tandem/server/store"
)

// Harness is what a backend hands the suite for one subtest.
type Harness struct {
	// Store is a working store. The harness function closes it with
	// tb.Cleanup; Close may then be its second call.
	Store store.Store

	// Corrupt plants, under key, a raw record the backend cannot parse
	// (wrong length, wrong type, missing fields: whatever is corrupt for that
	// backend). Nil if the backend has no raw form (memory); the corrupt
	// record subtests are then skipped.
	Corrupt func(tb testing.TB, key string)

	// IndexSize returns how many entries the backend holds in its index of
	// user's sessions, live or not. Nil if the backend cannot tell; the
	// check that expired sessions leave nothing behind is then skipped.
	IndexSize func(tb testing.TB, user string) int
}

// Slack is the tolerance on every expiry time the suite checks.
const Slack = 50 * time.Millisecond

// ttlLong is the TTL of records that must not expire during a subtest.
const ttlLong = time.Hour

// ttlShort is the TTL of records that the expiry subtests watch expire. It is
// long enough that a "still live" check made shortly after a write holds even
// on a loaded CI machine running every package at once with -race (400 ms
// was seen to fail there once).
const ttlShort = time.Second

// Run runs the conformance suite. newHarness is called once per subtest and
// must return a harness around a working Store that no other subtest writes
// to under the same keys.
func Run(t *testing.T, newHarness func(tb testing.TB) Harness) {
	t.Run("create and load", func(t *testing.T) { testCreateLoad(t, newHarness) })
	t.Run("create", func(t *testing.T) { testCreate(t, newHarness) })
	// The two groups that sleep run side by side, after the others.
	t.Run("missing", func(t *testing.T) { t.Parallel(); testMissing(t, newHarness) })
	t.Run("update", func(t *testing.T) { testUpdate(t, newHarness) })
	t.Run("touch", func(t *testing.T) { testTouch(t, newHarness) })
	t.Run("delete", func(t *testing.T) { testDelete(t, newHarness) })
	t.Run("copies", func(t *testing.T) { testCopies(t, newHarness) })
	t.Run("concurrent", func(t *testing.T) { testConcurrent(t, newHarness) })
	t.Run("idle expiry", func(t *testing.T) { t.Parallel(); testIdleExpiry(t, newHarness) })
	t.Run("context", func(t *testing.T) { testContext(t, newHarness) })
	t.Run("ping", func(t *testing.T) { testPing(t, newHarness) })
	t.Run("close", func(t *testing.T) { testClose(t, newHarness) })
	runUsers(t, newHarness)
}

func testCreateLoad(t *testing.T, newHarness func(testing.TB) Harness) {
	tests := []struct {
		name string
		data []byte
		ttl  time.Duration
	}{
		{name: "ok, text", data: []byte(`{"count":1}`), ttl: ttlLong},
		{name: "ok, empty data", data: []byte{}, ttl: ttlLong},
		{name: "ok, nil data", data: nil, ttl: ttlLong},
		{name: "ok, binary with zero bytes", data: []byte{0, 1, 0, 0xff, 0}, ttl: ttlLong},
		{name: "ok, 1 MiB", data: bytes.Repeat([]byte("0123456789abcdef"), 1<<16), ttl: ttlLong},
		{name: "ok, short ttl", data: []byte("x"), ttl: 2 * time.Second},
		{name: "ok, 30 day ttl", data: []byte("x"), ttl: 30 * 24 * time.Hour},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			ctx := t.Context()
			key := Key(t, "k")

			before := time.Now()
			if err := h.Store.Create(ctx, key, tt.data, store.Meta{}, tt.ttl); err != nil {
				t.Fatalf("Create: %v", err)
			}
			after := time.Now()

			rec := mustLoad(t, h.Store, key)
			assertData(t, rec.Data, tt.data)
			assertVersion(t, rec, 1)
			AssertExpires(t, rec.Expires, before, after, tt.ttl)
		})
	}
}

func testCreate(t *testing.T, newHarness func(testing.TB) Harness) {
	tests := []struct {
		name string
		// given prepares key and returns the record it should hold before
		// Create (nil: none).
		given      func(tb testing.TB, h Harness, key string) []byte
		ttl        time.Duration
		wantErr    error // nil, a sentinel, or errAny
		wantStored []byte
	}{
		{
			name:       "ok, new key",
			given:      func(testing.TB, Harness, string) []byte { return nil },
			ttl:        ttlLong,
			wantStored: []byte("new"),
		},
		{
			name: "ok, after delete",
			given: func(tb testing.TB, h Harness, key string) []byte {
				mustCreate(tb, h.Store, key, []byte("old"), ttlLong)
				if err := h.Store.Delete(tb.Context(), key); err != nil {
					tb.Fatalf("Delete: %v", err)
				}
				return nil
			},
			ttl:        ttlLong,
			wantStored: []byte("new"),
		},
		{
			name: "ok, over a corrupt record",
			given: func(tb testing.TB, h Harness, key string) []byte {
				plantCorrupt(tb, h, key)
				return nil
			},
			ttl:        ttlLong,
			wantStored: []byte("new"),
		},
		{
			name: "nok, live key",
			given: func(tb testing.TB, h Harness, key string) []byte {
				mustCreate(tb, h.Store, key, []byte("old"), ttlLong)
				return []byte("old")
			},
			ttl:        ttlLong,
			wantErr:    store.ErrExists,
			wantStored: []byte("old"),
		},
		{
			name: "nok, live key after updates keeps its version",
			given: func(tb testing.TB, h Harness, key string) []byte {
				mustCreate(tb, h.Store, key, []byte("old"), ttlLong)
				mustUpdate(tb, h.Store, key, ttlLong, appendByte('!'))
				return []byte("old!")
			},
			ttl:        ttlLong,
			wantErr:    store.ErrExists,
			wantStored: []byte("old!"),
		},
		{
			name:    "nok, zero ttl",
			given:   func(testing.TB, Harness, string) []byte { return nil },
			ttl:     0,
			wantErr: errAny,
		},
		{
			name:    "nok, negative ttl",
			given:   func(testing.TB, Harness, string) []byte { return nil },
			ttl:     -time.Second,
			wantErr: errAny,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			key := Key(t, "k")
			old := tt.given(t, h, key)
			var oldRec store.Record
			if old != nil {
				oldRec = mustLoad(t, h.Store, key)
			}

			before := time.Now()
			err := h.Store.Create(t.Context(), key, []byte("new"), store.Meta{}, tt.ttl)
			after := time.Now()
			assertErr(t, "Create", err, tt.wantErr)

			if tt.wantStored == nil {
				assertMissing(t, h.Store, key)
				return
			}
			rec := mustLoad(t, h.Store, key)
			assertData(t, rec.Data, tt.wantStored)
			if tt.wantErr != nil {
				// A failed Create leaves the live record exactly as it was.
				assertVersion(t, rec, oldRec.Version)
				assertSameExpires(t, rec.Expires, oldRec.Expires)
				return
			}
			assertVersion(t, rec, 1)
			AssertExpires(t, rec.Expires, before, after, tt.ttl)
		})
	}
}

// missingStates are the ways a key can have no live record. Each returns
// when the key is in that state.
var missingStates = []struct {
	name  string
	given func(tb testing.TB, h Harness, key string)
}{
	{name: "never created", given: func(testing.TB, Harness, string) {}},
	{name: "deleted", given: func(tb testing.TB, h Harness, key string) {
		mustCreate(tb, h.Store, key, []byte("gone"), ttlLong)
		if err := h.Store.Delete(tb.Context(), key); err != nil {
			tb.Fatalf("Delete: %v", err)
		}
	}},
	{name: "expired", given: func(tb testing.TB, h Harness, key string) {
		mustCreate(tb, h.Store, key, []byte("gone"), ttlShort)
		mustUpdate(tb, h.Store, key, ttlShort, appendByte('!'))
		time.Sleep(ttlShort + Slack)
	}},
	{name: "corrupt", given: plantCorrupt},
}

func testMissing(t *testing.T, newHarness func(testing.TB) Harness) {
	for _, st := range missingStates {
		t.Run("ok, "+st.name+", every method sees ErrNotFound", func(t *testing.T) {
			t.Parallel()
			h := newHarness(t)
			ctx := t.Context()
			key := Key(t, "k")
			st.given(t, h, key)

			assertMissing(t, h.Store, key)

			var called atomic.Bool
			_, err := h.Store.Update(ctx, key, ttlLong, func(data []byte) ([]byte, error) {
				called.Store(true)
				return []byte("revived"), nil
			})
			assertErr(t, "Update", err, store.ErrNotFound)
			if called.Load() {
				t.Error("Update called fn for a key with no live record")
			}
			assertMissing(t, h.Store, key)

			assertErr(t, "Touch", h.Store.Touch(ctx, key, ttlLong), store.ErrNotFound)
			assertMissing(t, h.Store, key)

			assertErr(t, "Delete", h.Store.Delete(ctx, key), nil)
			assertMissing(t, h.Store, key)
			assertErr(t, "second Delete", h.Store.Delete(ctx, key), nil)
			assertMissing(t, h.Store, key)
		})
		t.Run("ok, "+st.name+", create starts afresh at version 1", func(t *testing.T) {
			t.Parallel()
			h := newHarness(t)
			key := Key(t, "k")
			st.given(t, h, key)

			before := time.Now()
			mustCreate(t, h.Store, key, []byte("fresh"), ttlLong)
			after := time.Now()

			rec := mustLoad(t, h.Store, key)
			assertData(t, rec.Data, []byte("fresh"))
			assertVersion(t, rec, 1)
			AssertExpires(t, rec.Expires, before, after, ttlLong)
		})
	}
}

var errFn = errors.New("storetest: fn refused")

func testUpdate(t *testing.T, newHarness func(testing.TB) Harness) {
	tests := []struct {
		name    string
		updates int // successful updates before the one under test
		ttl     time.Duration
		fn      store.UpdateFunc
		wantErr error
		// wantData is the stored data afterwards; the version is
		// 1+updates, plus one if wantErr is nil.
		wantData []byte
	}{
		{
			name:     "ok, appends",
			ttl:      2 * ttlLong,
			fn:       appendByte('!'),
			wantData: []byte("v!"),
		},
		{
			name:     "ok, after three updates",
			updates:  3,
			ttl:      ttlLong,
			fn:       appendByte('?'),
			wantData: []byte("v!!!?"),
		},
		{
			name:     "ok, shorter ttl than create",
			ttl:      time.Minute,
			fn:       appendByte('!'),
			wantData: []byte("v!"),
		},
		{
			name:     "ok, replaces with nil",
			ttl:      ttlLong,
			fn:       func([]byte) ([]byte, error) { return nil, nil },
			wantData: []byte{},
		},
		{
			name:     "ok, same data still bumps the version",
			ttl:      ttlLong,
			fn:       func(data []byte) ([]byte, error) { return data, nil },
			wantData: []byte("v"),
		},
		{
			name: "ok, fn sees the current data",
			ttl:  ttlLong,
			fn: func(data []byte) ([]byte, error) {
				if string(data) != "v" {
					return nil, fmt.Errorf("fn got %q, want %q", data, "v")
				}
				return []byte("seen"), nil
			},
			wantData: []byte("seen"),
		},
		{
			name:     "nok, fn error",
			ttl:      ttlLong,
			fn:       func([]byte) ([]byte, error) { return nil, errFn },
			wantErr:  errFn,
			wantData: []byte("v"),
		},
		{
			name: "nok, fn error after scribbling on its argument",
			ttl:  ttlLong,
			fn: func(data []byte) ([]byte, error) {
				for i := range data {
					data[i] = 'X'
				}
				return data, errFn
			},
			wantErr:  errFn,
			wantData: []byte("v"),
		},
		{
			name:     "nok, fn error wrapped",
			updates:  2,
			ttl:      ttlLong,
			fn:       func([]byte) ([]byte, error) { return nil, fmt.Errorf("wrapped: %w", errFn) },
			wantErr:  errFn,
			wantData: []byte("v!!"),
		},
		{
			name:     "nok, zero ttl",
			ttl:      0,
			fn:       appendByte('!'),
			wantErr:  errAny,
			wantData: []byte("v"),
		},
		{
			name:     "nok, negative ttl",
			ttl:      -time.Second,
			fn:       appendByte('!'),
			wantErr:  errAny,
			wantData: []byte("v"),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			key := Key(t, "k")
			mustCreate(t, h.Store, key, []byte("v"), ttlLong)
			for range tt.updates {
				mustUpdate(t, h.Store, key, ttlLong, appendByte('!'))
			}
			old := mustLoad(t, h.Store, key)

			before := time.Now()
			got, err := h.Store.Update(t.Context(), key, tt.ttl, tt.fn)
			after := time.Now()
			assertErr(t, "Update", err, tt.wantErr)

			rec := mustLoad(t, h.Store, key)
			assertData(t, rec.Data, tt.wantData)
			if tt.wantErr != nil {
				assertVersion(t, rec, old.Version)
				assertSameExpires(t, rec.Expires, old.Expires)
				return
			}
			assertVersion(t, rec, old.Version+1)
			AssertExpires(t, rec.Expires, before, after, tt.ttl)
			// The returned record is the stored one.
			assertData(t, got.Data, tt.wantData)
			assertVersion(t, got, rec.Version)
			assertSameExpires(t, got.Expires, rec.Expires)
		})
	}
}

func testTouch(t *testing.T, newHarness func(testing.TB) Harness) {
	tests := []struct {
		name    string
		ttl     time.Duration
		wantErr error
	}{
		// Touch sets the expiry to ttl from now, whichever way that moves it.
		{name: "ok, longer ttl", ttl: 3 * ttlLong},
		{name: "ok, shorter ttl", ttl: time.Minute},
		{name: "nok, zero ttl", ttl: 0, wantErr: errAny},
		{name: "nok, negative ttl", ttl: -time.Second, wantErr: errAny},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			key := Key(t, "k")
			mustCreate(t, h.Store, key, []byte("v"), ttlLong)
			mustUpdate(t, h.Store, key, ttlLong, appendByte('!'))
			old := mustLoad(t, h.Store, key)

			before := time.Now()
			err := h.Store.Touch(t.Context(), key, tt.ttl)
			after := time.Now()
			assertErr(t, "Touch", err, tt.wantErr)

			rec := mustLoad(t, h.Store, key)
			assertData(t, rec.Data, []byte("v!"))
			assertVersion(t, rec, 2)
			if tt.wantErr != nil {
				assertSameExpires(t, rec.Expires, old.Expires)
				return
			}
			AssertExpires(t, rec.Expires, before, after, tt.ttl)
		})
	}
}

func testDelete(t *testing.T, newHarness func(testing.TB) Harness) {
	t.Run("ok, live key", func(t *testing.T) {
		h := newHarness(t)
		key, other := Key(t, "k"), Key(t, "other")
		mustCreate(t, h.Store, key, []byte("v"), ttlLong)
		mustCreate(t, h.Store, other, []byte("w"), ttlLong)

		assertErr(t, "Delete", h.Store.Delete(t.Context(), key), nil)
		assertMissing(t, h.Store, key)
		// Only that key.
		assertData(t, mustLoad(t, h.Store, other).Data, []byte("w"))
	})
}

func testCopies(t *testing.T, newHarness func(testing.TB) Harness) {
	tests := []struct {
		name string
		// when mutates a slice that the caller passed to or got from the
		// store after the call returned.
		when func(tb testing.TB, s store.Store, key string)
	}{
		{name: "ok, data passed to Create", when: func(tb testing.TB, s store.Store, key string) {
			data := []byte("v!")
			if err := s.Delete(tb.Context(), key); err != nil {
				tb.Fatalf("Delete: %v", err)
			}
			mustCreate(tb, s, key, data, ttlLong)
			copy(data, "XX")
		}},
		{name: "ok, data returned by Load", when: func(tb testing.TB, s store.Store, key string) {
			copy(mustLoad(tb, s, key).Data, "XX")
		}},
		{name: "ok, data returned by Update", when: func(tb testing.TB, s store.Store, key string) {
			if err := s.Delete(tb.Context(), key); err != nil {
				tb.Fatalf("Delete: %v", err)
			}
			mustCreate(tb, s, key, []byte("v"), ttlLong)
			copy(mustUpdate(tb, s, key, ttlLong, appendByte('!')).Data, "XX")
		}},
		{name: "ok, slice returned by fn, kept by the caller", when: func(tb testing.TB, s store.Store, key string) {
			kept := []byte("v!")
			mustUpdate(tb, s, key, ttlLong, func([]byte) ([]byte, error) { return kept, nil })
			copy(kept, "XX")
		}},
		{name: "ok, argument of fn, kept by the caller", when: func(tb testing.TB, s store.Store, key string) {
			var kept []byte
			mustUpdate(tb, s, key, ttlLong, func(data []byte) ([]byte, error) {
				kept = data
				return data, nil
			})
			copy(kept, "XX")
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			key := Key(t, "k")
			mustCreate(t, h.Store, key, []byte("v"), ttlLong)
			mustUpdate(t, h.Store, key, ttlLong, appendByte('!'))

			tt.when(t, h.Store, key)

			assertData(t, mustLoad(t, h.Store, key).Data, []byte("v!"))
		})
	}
}

func testConcurrent(t *testing.T, newHarness func(testing.TB) Harness) {
	t.Run("ok, 1000 concurrent updates of one key are all applied", func(t *testing.T) {
		const n = 1000
		h := newHarness(t)
		key := Key(t, "counter")
		mustCreate(t, h.Store, key, EncodeCounter(7), ttlLong)
		mustUpdate(t, h.Store, key, ttlLong, Increment) // version 2, counter 8

		// Yielding between reading and returning the counter widens the
		// window in which a non-atomic read-modify-write loses updates.
		slowIncrement := func(data []byte) ([]byte, error) {
			runtime.Gosched()
			return Increment(data)
		}
		var wg sync.WaitGroup
		errs := make(chan error, n)
		for range n {
			wg.Go(func() {
				if _, err := h.Store.Update(t.Context(), key, ttlLong, slowIncrement); err != nil {
					errs <- err
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Errorf("Update: %v", err)
		}

		rec := mustLoad(t, h.Store, key)
		if got := DecodeCounter(t, rec.Data); got != 8+n {
			t.Errorf("counter = %d, want %d: updates were lost", got, 8+n)
		}
		assertVersion(t, rec, 2+n)
	})

	t.Run("ok, concurrent updates of many keys", func(t *testing.T) {
		const keys, perKey = 50, 20
		h := newHarness(t)
		names := make([]string, keys)
		for i := range names {
			names[i] = Key(t, fmt.Sprintf("k%d", i))
			mustCreate(t, h.Store, names[i], EncodeCounter(0), ttlLong)
		}

		var wg sync.WaitGroup
		for range perKey {
			for _, key := range names {
				wg.Go(func() {
					if _, err := h.Store.Update(t.Context(), key, ttlLong, Increment); err != nil {
						t.Errorf("Update: %v", err)
					}
					// Readers alongside writers see a whole record: data
					// and version from the same write.
					rec, err := h.Store.Load(t.Context(), key)
					if err != nil {
						t.Errorf("Load: %v", err)
						return
					}
					if len(rec.Data) != 8 || binary.BigEndian.Uint64(rec.Data) != rec.Version-1 {
						t.Errorf("Load: data %x with version %d: torn record", rec.Data, rec.Version)
					}
				})
			}
		}
		wg.Wait()

		for _, key := range names {
			rec := mustLoad(t, h.Store, key)
			if got := DecodeCounter(t, rec.Data); got != perKey {
				t.Errorf("%s: counter = %d, want %d", key, got, perKey)
			}
			assertVersion(t, rec, 1+perKey)
		}
	})

	t.Run("ok, concurrent creates of one key: exactly one wins", func(t *testing.T) {
		const n = 100
		h := newHarness(t)
		key := Key(t, "k")

		var wg sync.WaitGroup
		var won, lost atomic.Int64
		for i := range n {
			wg.Go(func() {
				err := h.Store.Create(t.Context(), key, EncodeCounter(uint64(i)), store.Meta{}, ttlLong)
				switch {
				case err == nil:
					won.Add(1)
				case errors.Is(err, store.ErrExists):
					lost.Add(1)
				default:
					t.Errorf("Create: %v", err)
				}
			})
		}
		wg.Wait()
		if won.Load() != 1 || lost.Load() != n-1 {
			t.Errorf("%d creates won and %d got ErrExists, want 1 and %d", won.Load(), lost.Load(), n-1)
		}
		assertVersion(t, mustLoad(t, h.Store, key), 1)
	})
}

func testIdleExpiry(t *testing.T, newHarness func(testing.TB) Harness) {
	// Each subtest creates a record with ttlShort, makes one call halfway
	// through its life, and looks again Slack after the original expiry.
	// Checks that a record is gone only get safer when the machine is slow;
	// checks that it is live have ttlShort/2-Slack of headroom.
	tests := []struct {
		name string
		// extend is the call halfway through the record's life that
		// should (or should not) extend it.
		extend    func(tb testing.TB, s store.Store, key string)
		wantAlive bool
	}{
		{
			name:   "ok, untouched record expires",
			extend: func(testing.TB, store.Store, string) {},
		},
		{
			name: "ok, load does not extend life",
			extend: func(tb testing.TB, s store.Store, key string) {
				mustLoad(tb, s, key)
			},
		},
		{
			name: "ok, failed update does not extend life",
			extend: func(tb testing.TB, s store.Store, key string) {
				_, err := s.Update(tb.Context(), key, ttlShort, func([]byte) ([]byte, error) { return nil, errFn })
				assertErr(tb, "Update", err, errFn)
			},
		},
		{
			name: "ok, touch extends life",
			extend: func(tb testing.TB, s store.Store, key string) {
				assertErr(tb, "Touch", s.Touch(tb.Context(), key, ttlShort), nil)
			},
			wantAlive: true,
		},
		{
			name: "ok, update extends life",
			extend: func(tb testing.TB, s store.Store, key string) {
				mustUpdate(tb, s, key, ttlShort, appendByte('!'))
			},
			wantAlive: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t)
			key := Key(t, "k")

			mustCreate(t, h.Store, key, []byte("v"), ttlShort)
			created := time.Now()
			mustLoad(t, h.Store, key)

			time.Sleep(ttlShort / 2)
			extendStart := time.Now()
			tt.extend(t, h.Store, key)
			extended := time.Now()

			time.Sleep(time.Until(created.Add(ttlShort + Slack)))
			_, err := h.Store.Load(t.Context(), key)
			if !tt.wantAlive {
				assertErr(t, "Load after the ttl", err, store.ErrNotFound)
				// Never revived, not even by a write that would extend a
				// live record.
				assertErr(t, "Touch", h.Store.Touch(t.Context(), key, ttlLong), store.ErrNotFound)
				assertMissing(t, h.Store, key)
				return
			}
			if err != nil {
				elapsed := time.Since(extendStart)
				if elapsed >= ttlShort {
					t.Fatalf("Load %v after the extending call: %v (the machine stalled past the ttl, so this run proves nothing)", elapsed, err)
				}
				t.Fatalf("Load %v after the extending call: %v, want the record live", elapsed, err)
			}

			// The extended life ends too.
			time.Sleep(time.Until(extended.Add(ttlShort + Slack)))
			assertMissing(t, h.Store, key)
		})
	}
}

func testContext(t *testing.T, newHarness func(testing.TB) Harness) {
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	expired, cancel := context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
	t.Cleanup(cancel)

	ctxs := []struct {
		name string
		ctx  context.Context
		want error
	}{
		{name: "cancelled", ctx: cancelled, want: context.Canceled},
		{name: "past deadline", ctx: expired, want: context.DeadlineExceeded},
	}
	methods := []struct {
		name string
		call func(ctx context.Context, s store.Store, key string) error
	}{
		{name: "Create", call: func(ctx context.Context, s store.Store, key string) error {
			return s.Create(ctx, key+"-new", []byte("new"), store.Meta{}, ttlLong)
		}},
		{name: "Load", call: func(ctx context.Context, s store.Store, key string) error {
			_, err := s.Load(ctx, key)
			return err
		}},
		{name: "Update", call: func(ctx context.Context, s store.Store, key string) error {
			_, err := s.Update(ctx, key, 2*ttlLong, appendByte('!'))
			return err
		}},
		{name: "Touch", call: func(ctx context.Context, s store.Store, key string) error {
			return s.Touch(ctx, key, 2*ttlLong)
		}},
		{name: "Delete", call: func(ctx context.Context, s store.Store, key string) error {
			return s.Delete(ctx, key)
		}},
		{name: "Ping", call: func(ctx context.Context, s store.Store, _ string) error {
			return s.Ping(ctx)
		}},
	}
	for _, c := range ctxs {
		for _, m := range methods {
			t.Run("nok, "+m.name+" with a "+c.name+" context", func(t *testing.T) {
				h := newHarness(t)
				key := Key(t, "k")
				mustCreate(t, h.Store, key, []byte("v"), ttlLong)
				old := mustLoad(t, h.Store, key)

				assertErr(t, m.name, m.call(c.ctx, h.Store, key), c.want)

				// Nothing changed.
				rec := mustLoad(t, h.Store, key)
				assertData(t, rec.Data, []byte("v"))
				assertVersion(t, rec, 1)
				assertSameExpires(t, rec.Expires, old.Expires)
				assertMissing(t, h.Store, key+"-new")
			})
		}
	}
}

func testPing(t *testing.T, newHarness func(testing.TB) Harness) {
	t.Run("ok, open store", func(t *testing.T) {
		h := newHarness(t)
		assertErr(t, "Ping", h.Store.Ping(t.Context()), nil)
	})
}

func testClose(t *testing.T, newHarness func(testing.TB) Harness) {
	t.Run("nok, every method after Close", func(t *testing.T) {
		h := newHarness(t)
		ctx := t.Context()
		key := Key(t, "k")
		mustCreate(t, h.Store, key, []byte("v"), ttlLong)
		if err := h.Store.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}

		assertClosed(t, "Create", h.Store.Create(ctx, Key(t, "new"), []byte("v"), store.Meta{}, ttlLong))
		assertClosed(t, "Create of the existing key", h.Store.Create(ctx, key, []byte("v"), store.Meta{}, ttlLong))
		_, err := h.Store.Load(ctx, key)
		assertClosed(t, "Load", err)
		var called atomic.Bool
		_, err = h.Store.Update(ctx, key, ttlLong, func(data []byte) ([]byte, error) {
			called.Store(true)
			return data, nil
		})
		assertClosed(t, "Update", err)
		if called.Load() {
			t.Error("Update after Close called fn")
		}
		assertClosed(t, "Touch", h.Store.Touch(ctx, key, ttlLong))
		assertClosed(t, "Delete", h.Store.Delete(ctx, key))
		assertClosed(t, "Ping", h.Store.Ping(ctx))
		// A second Close may report an error but must not panic.
		_ = h.Store.Close()
	})

	t.Run("ok, Close during concurrent use", func(t *testing.T) {
		h := newHarness(t)
		key := Key(t, "counter")
		mustCreate(t, h.Store, key, EncodeCounter(0), ttlLong)

		var wg sync.WaitGroup
		var applied atomic.Int64
		start := make(chan struct{})
		for range 50 {
			wg.Go(func() {
				<-start
				for {
					_, err := h.Store.Update(context.Background(), key, ttlLong, Increment)
					if err != nil {
						// Whatever the error, it is not a claim that the
						// record is gone.
						assertClosed(t, "Update racing Close", err)
						return
					}
					applied.Add(1)
				}
			})
		}
		close(start)
		time.Sleep(20 * time.Millisecond)
		if err := h.Store.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
		wg.Wait()
		if applied.Load() == 0 {
			t.Log("no Update finished before Close; the race was not exercised")
		}
	})
}

// Key returns a key unique to this test and name, so subtests never share
// records even when they share a backend.
func Key(tb testing.TB, name string) string {
	tb.Helper()
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		tb.Fatalf("rand: %v", err)
	}
	return "storetest:" + hex.EncodeToString(b[:]) + ":" + name
}

// EncodeCounter returns data holding n, for Increment and DecodeCounter.
func EncodeCounter(n uint64) []byte { return binary.BigEndian.AppendUint64(nil, n) }

// DecodeCounter reads the counter that EncodeCounter wrote.
func DecodeCounter(tb testing.TB, data []byte) uint64 {
	tb.Helper()
	if len(data) != 8 {
		tb.Fatalf("counter data is %d bytes, want 8", len(data))
	}
	return binary.BigEndian.Uint64(data)
}

// Increment is an UpdateFunc that adds one to a counter made by EncodeCounter.
func Increment(data []byte) ([]byte, error) {
	if len(data) != 8 {
		return nil, fmt.Errorf("storetest: counter data is %d bytes, want 8", len(data))
	}
	return EncodeCounter(binary.BigEndian.Uint64(data) + 1), nil
}

// AssertExpires checks that expires is ttl after a write that happened
// between before and after, give or take Slack.
func AssertExpires(tb testing.TB, expires, before, after time.Time, ttl time.Duration) {
	tb.Helper()
	lo, hi := before.Add(ttl-Slack), after.Add(ttl+Slack)
	if expires.Before(lo) || expires.After(hi) {
		tb.Errorf("Expires = %v, want ttl %v after the write: between %v and %v",
			expires.Round(0), ttl, lo.Round(0), hi.Round(0))
	}
}

func appendByte(c byte) store.UpdateFunc {
	return func(data []byte) ([]byte, error) { return append(data, c), nil }
}

func plantCorrupt(tb testing.TB, h Harness, key string) {
	tb.Helper()
	if h.Corrupt == nil {
		tb.Skip("backend has no raw record form to corrupt")
	}
	h.Corrupt(tb, key)
}

func mustCreate(tb testing.TB, s store.Store, key string, data []byte, ttl time.Duration) {
	tb.Helper()
	mustCreateMeta(tb, s, key, data, store.Meta{}, ttl)
}

func mustCreateMeta(tb testing.TB, s store.Store, key string, data []byte, meta store.Meta, ttl time.Duration) {
	tb.Helper()
	if err := s.Create(tb.Context(), key, data, meta, ttl); err != nil {
		tb.Fatalf("Create(%q): %v", key, err)
	}
}

func mustLoad(tb testing.TB, s store.Store, key string) store.Record {
	tb.Helper()
	rec, err := s.Load(tb.Context(), key)
	if err != nil {
		tb.Fatalf("Load(%q): %v", key, err)
	}
	return rec
}

func mustUpdate(tb testing.TB, s store.Store, key string, ttl time.Duration, fn store.UpdateFunc) store.Record {
	tb.Helper()
	rec, err := s.Update(tb.Context(), key, ttl, fn)
	if err != nil {
		tb.Fatalf("Update(%q): %v", key, err)
	}
	return rec
}

func assertMissing(tb testing.TB, s store.Store, key string) {
	tb.Helper()
	rec, err := s.Load(tb.Context(), key)
	if !errors.Is(err, store.ErrNotFound) {
		tb.Errorf("Load(%q) = %+v, %v; want ErrNotFound", key, rec, err)
	}
}

// errAny stands for "some error, whichever" in tables.
var errAny = errors.New("any error")

func assertErr(tb testing.TB, what string, err, want error) {
	tb.Helper()
	switch {
	case want == nil && err != nil:
		tb.Errorf("%s: unexpected error %v", what, err)
	case want == errAny && err == nil:
		tb.Errorf("%s: no error, want one", what)
	case want != nil && want != errAny && !errors.Is(err, want):
		tb.Errorf("%s: error %v, want %v", what, err, want)
	}
}

// assertClosed checks the error of a call made after Close: there must be
// one, and it must not claim anything about the record, since callers treat
// ErrNotFound as "start a new session".
func assertClosed(tb testing.TB, what string, err error) {
	tb.Helper()
	if err == nil || errors.Is(err, store.ErrNotFound) || errors.Is(err, store.ErrExists) {
		tb.Errorf("%s after Close: error %v, want a closed-store error", what, err)
	}
}

func assertData(tb testing.TB, got, want []byte) {
	tb.Helper()
	if !bytes.Equal(got, want) {
		tb.Errorf("Data = %s, want %s", abbrev(got), abbrev(want))
	}
}

func abbrev(b []byte) string {
	if len(b) > 40 {
		return fmt.Sprintf("%q... (%d bytes)", b[:40], len(b))
	}
	return fmt.Sprintf("%q", b)
}

func assertVersion(tb testing.TB, rec store.Record, want uint64) {
	tb.Helper()
	if rec.Version != want {
		tb.Errorf("Version = %d, want %d", rec.Version, want)
	}
}

func assertSameExpires(tb testing.TB, got, want time.Time) {
	tb.Helper()
	if d := got.Sub(want); d < -Slack || d > Slack {
		tb.Errorf("Expires = %v, want %v (unchanged)", got.Round(0), want.Round(0))
	}
}
