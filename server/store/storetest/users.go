package storetest

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/tandem-go/tandem/server/store"
)

// The subtests of the absolute lifetime (Meta.Deadline), of Renew and its
// tombstone, and of the per-user index.

// graceShort is the tombstone period of the Renew subtests that watch it end.
const graceShort = 500 * time.Millisecond

// manyExpired is the number of expired sessions one user leaves behind in the
// subtest that checks they cost the index nothing.
const manyExpired = 10_000

func runUsers(t *testing.T, newHarness func(tb testing.TB) Harness) {
	t.Run("meta", func(t *testing.T) { testMeta(t, newHarness) })
	t.Run("deadline", func(t *testing.T) { t.Parallel(); testDeadline(t, newHarness) })
	t.Run("renew", func(t *testing.T) { testRenew(t, newHarness) })
	t.Run("renew grace", func(t *testing.T) { t.Parallel(); testRenewGrace(t, newHarness) })
	t.Run("users", func(t *testing.T) { testUsers(t, newHarness) })
	t.Run("users expiry", func(t *testing.T) { t.Parallel(); testUsersExpiry(t, newHarness) })
	t.Run("users concurrent", func(t *testing.T) { testUsersConcurrent(t, newHarness) })
	t.Run("users many expired", func(t *testing.T) { t.Parallel(); testUsersManyExpired(t, newHarness) })
}

// User returns a user name unique to this test, so subtests sharing a
// backend never see each other's sessions.
func User(tb testing.TB, name string) string {
	tb.Helper()
	return Key(tb, "user-"+name)
}

func testMeta(t *testing.T, newHarness func(testing.TB) Harness) {
	h := newHarness(t)
	key := Key(t, "k")
	meta := store.Meta{User: User(t, "ada"), Agent: "Firefox on Linux", Created: time.Now().Add(-time.Minute).Round(time.Millisecond), Deadline: time.Now().Add(time.Hour).Round(time.Millisecond)}
	before := time.Now()
	mustCreateMeta(t, h.Store, key, []byte("v"), meta, ttlLong)
	rec := mustLoad(t, h.Store, key)
	assertMeta(t, rec.Meta, meta)
	assertNear(t, "LastSeen after Create", rec.LastSeen, before)

	time.Sleep(2 * Slack)
	before = time.Now()
	rec = mustUpdate(t, h.Store, key, ttlLong, appendByte('!'))
	assertMeta(t, rec.Meta, meta)
	assertNear(t, "LastSeen of Update's record", rec.LastSeen, before)
	assertNear(t, "LastSeen after Update", mustLoad(t, h.Store, key).LastSeen, before)

	time.Sleep(2 * Slack)
	before = time.Now()
	assertErr(t, "Touch", h.Store.Touch(t.Context(), key, ttlLong), nil)
	rec = mustLoad(t, h.Store, key)
	assertMeta(t, rec.Meta, meta)
	assertNear(t, "LastSeen after Touch", rec.LastSeen, before)

	// A deadline already past creates nothing.
	past := Key(t, "past")
	err := h.Store.Create(t.Context(), past, []byte("v"), store.Meta{Deadline: time.Now().Add(-time.Second)}, ttlLong)
	assertErr(t, "Create with a past deadline", err, errAny)
	assertMissing(t, h.Store, past)
}

func testDeadline(t *testing.T, newHarness func(testing.TB) Harness) {
	h := newHarness(t)
	user := User(t, "ada")
	key := Key(t, "k")
	deadline := time.Now().Add(ttlShort)
	mustCreateMeta(t, h.Store, key, []byte("v"), store.Meta{User: user, Created: time.Now(), Deadline: deadline}, ttlLong)
	assertSameExpires(t, mustLoad(t, h.Store, key).Expires, deadline)

	// Neither a write nor a touch takes it past its deadline, however long
	// their ttl.
	time.Sleep(ttlShort / 2)
	assertSameExpires(t, mustUpdate(t, h.Store, key, ttlLong, appendByte('!')).Expires, deadline)
	assertErr(t, "Touch", h.Store.Touch(t.Context(), key, ttlLong), nil)
	assertSameExpires(t, mustLoad(t, h.Store, key).Expires, deadline)
	assertListed(t, h.Store, user, key)

	time.Sleep(time.Until(deadline.Add(Slack)))
	assertMissing(t, h.Store, key)
	assertErr(t, "Touch after the deadline", h.Store.Touch(t.Context(), key, ttlLong), store.ErrNotFound)
	_, err := h.Store.Update(t.Context(), key, ttlLong, appendByte('!'))
	assertErr(t, "Update after the deadline", err, store.ErrNotFound)
	assertListed(t, h.Store, user)
}

func testRenew(t *testing.T, newHarness func(testing.TB) Harness) {
	t.Run("ok, data moves, meta is the new one", func(t *testing.T) {
		h := newHarness(t)
		old, neu := Key(t, "old"), Key(t, "new")
		anon := store.Meta{Created: time.Now().Add(-time.Hour), Deadline: time.Now().Add(time.Hour)}
		mustCreateMeta(t, h.Store, old, EncodeCounter(7), anon, ttlLong)
		mustUpdate(t, h.Store, old, ttlLong, Increment)

		meta := store.Meta{User: User(t, "ada"), Agent: "a", Created: time.Now().Round(time.Millisecond), Deadline: time.Now().Add(2 * time.Hour).Round(time.Millisecond)}
		before := time.Now()
		rec, err := h.Store.Renew(t.Context(), old, neu, meta, ttlLong, time.Minute)
		if err != nil {
			t.Fatalf("Renew: %v", err)
		}
		after := time.Now()
		for _, r := range []store.Record{rec, mustLoad(t, h.Store, neu)} {
			if got := DecodeCounter(t, r.Data); got != 8 {
				t.Errorf("renewed counter = %d, want 8", got)
			}
			assertVersion(t, r, 1)
			assertMeta(t, r.Meta, meta)
			AssertExpires(t, r.Expires, before, after, ttlLong)
		}
		assertRenewed(t, h.Store, old)
		assertListed(t, h.Store, meta.User, neu)
	})
	t.Run("ok, zero grace leaves no tombstone", func(t *testing.T) {
		h := newHarness(t)
		old, neu := Key(t, "old"), Key(t, "new")
		mustCreate(t, h.Store, old, []byte("v"), ttlLong)
		if _, err := h.Store.Renew(t.Context(), old, neu, store.Meta{}, ttlLong, 0); err != nil {
			t.Fatalf("Renew: %v", err)
		}
		assertMissing(t, h.Store, old)
		mustLoad(t, h.Store, neu)
	})
	t.Run("ok, the new deadline bounds the new record", func(t *testing.T) {
		h := newHarness(t)
		old, neu := Key(t, "old"), Key(t, "new")
		mustCreate(t, h.Store, old, []byte("v"), ttlLong)
		deadline := time.Now().Add(time.Minute)
		rec, err := h.Store.Renew(t.Context(), old, neu, store.Meta{Deadline: deadline}, ttlLong, time.Minute)
		if err != nil {
			t.Fatalf("Renew: %v", err)
		}
		assertSameExpires(t, rec.Expires, deadline)
	})
	t.Run("nok, missing old key", func(t *testing.T) {
		h := newHarness(t)
		old, neu := Key(t, "old"), Key(t, "new")
		_, err := h.Store.Renew(t.Context(), old, neu, store.Meta{}, ttlLong, time.Minute)
		assertErr(t, "Renew", err, store.ErrNotFound)
		assertMissing(t, h.Store, neu)
		assertMissing(t, h.Store, old)
	})
	t.Run("nok, renewing a tombstone", func(t *testing.T) {
		h := newHarness(t)
		old, neu, third := Key(t, "old"), Key(t, "new"), Key(t, "third")
		mustCreate(t, h.Store, old, []byte("v"), ttlLong)
		if _, err := h.Store.Renew(t.Context(), old, neu, store.Meta{}, ttlLong, time.Minute); err != nil {
			t.Fatalf("Renew: %v", err)
		}
		_, err := h.Store.Renew(t.Context(), old, third, store.Meta{}, ttlLong, time.Minute)
		assertErr(t, "second Renew of the old key", err, store.ErrRenewed)
		assertMissing(t, h.Store, third)
	})
	t.Run("nok, new key taken", func(t *testing.T) {
		h := newHarness(t)
		user := User(t, "ada")
		old, taken := Key(t, "old"), Key(t, "taken")
		mustCreateMeta(t, h.Store, old, []byte("old"), store.Meta{User: user}, ttlLong)
		mustCreate(t, h.Store, taken, []byte("taken"), ttlLong)
		_, err := h.Store.Renew(t.Context(), old, taken, store.Meta{User: user}, ttlLong, time.Minute)
		assertErr(t, "Renew", err, store.ErrExists)
		assertData(t, mustLoad(t, h.Store, old).Data, []byte("old"))
		assertData(t, mustLoad(t, h.Store, taken).Data, []byte("taken"))
		assertListed(t, h.Store, user, old)
	})
	t.Run("ok, delete removes a tombstone", func(t *testing.T) {
		h := newHarness(t)
		old, neu := Key(t, "old"), Key(t, "new")
		mustCreate(t, h.Store, old, []byte("v"), ttlLong)
		if _, err := h.Store.Renew(t.Context(), old, neu, store.Meta{}, ttlLong, time.Minute); err != nil {
			t.Fatalf("Renew: %v", err)
		}
		assertErr(t, "Delete", h.Store.Delete(t.Context(), old), nil)
		assertMissing(t, h.Store, old)
		mustLoad(t, h.Store, neu)
	})
}

func testRenewGrace(t *testing.T, newHarness func(testing.TB) Harness) {
	h := newHarness(t)
	old, neu := Key(t, "old"), Key(t, "new")
	mustCreate(t, h.Store, old, []byte("v"), ttlLong)
	renewed := time.Now()
	if _, err := h.Store.Renew(t.Context(), old, neu, store.Meta{}, ttlLong, graceShort); err != nil {
		t.Fatalf("Renew: %v", err)
	}
	assertRenewed(t, h.Store, old)
	time.Sleep(time.Until(renewed.Add(graceShort + Slack)))
	assertMissing(t, h.Store, old)
	// The key is free again, as any unused key.
	mustCreate(t, h.Store, old, []byte("again"), ttlLong)
}

func testUsers(t *testing.T, newHarness func(testing.TB) Harness) {
	h := newHarness(t)
	ada, bob := User(t, "ada"), User(t, "bob")
	a1, a2, a3, b1, anon := Key(t, "a1"), Key(t, "a2"), Key(t, "a3"), Key(t, "b1"), Key(t, "anon")
	for _, c := range []struct {
		key  string
		user string
	}{{a1, ada}, {a2, ada}, {a3, ada}, {b1, bob}, {anon, ""}} {
		mustCreateMeta(t, h.Store, c.key, []byte("v"), store.Meta{User: c.user, Agent: "agent " + c.key, Created: time.Now()}, ttlLong)
	}
	assertListed(t, h.Store, ada, a1, a2, a3)
	assertListed(t, h.Store, bob, b1)
	assertListed(t, h.Store, User(t, "nobody"))
	assertListed(t, h.Store, "")

	// An update or touch keeps the entry.
	mustUpdate(t, h.Store, a1, ttlLong, appendByte('!'))
	assertErr(t, "Touch", h.Store.Touch(t.Context(), a1, ttlLong), nil)
	assertListed(t, h.Store, ada, a1, a2, a3)

	// Delete forgets it.
	assertErr(t, "Delete", h.Store.Delete(t.Context(), a2), nil)
	assertListed(t, h.Store, ada, a1, a3)

	// Renew to the same user: the new key replaces the old.
	a1b := Key(t, "a1b")
	if _, err := h.Store.Renew(t.Context(), a1, a1b, store.Meta{User: ada}, ttlLong, time.Minute); err != nil {
		t.Fatalf("Renew: %v", err)
	}
	assertListed(t, h.Store, ada, a1b, a3)

	// Sign-in of an anonymous session, and a sign-in as someone else.
	anonB, a3b := Key(t, "anonb"), Key(t, "a3b")
	if _, err := h.Store.Renew(t.Context(), anon, anonB, store.Meta{User: ada}, ttlLong, time.Minute); err != nil {
		t.Fatalf("Renew: %v", err)
	}
	if _, err := h.Store.Renew(t.Context(), a3, a3b, store.Meta{User: bob}, ttlLong, time.Minute); err != nil {
		t.Fatalf("Renew: %v", err)
	}
	assertListed(t, h.Store, ada, a1b, anonB)
	assertListed(t, h.Store, bob, b1, a3b)

	// The listed entries carry the record's metadata.
	list, err := h.Store.UserSessions(t.Context(), bob)
	if err != nil {
		t.Fatalf("UserSessions: %v", err)
	}
	for _, us := range list {
		rec := mustLoad(t, h.Store, us.Key)
		assertMeta(t, us.Meta, rec.Meta)
		assertSameExpires(t, us.Expires, rec.Expires)
		if d := us.LastSeen.Sub(rec.LastSeen); d < -Slack || d > Slack {
			t.Errorf("listed LastSeen %v, record's %v", us.LastSeen, rec.LastSeen)
		}
	}
}

func testUsersExpiry(t *testing.T, newHarness func(testing.TB) Harness) {
	h := newHarness(t)
	user := User(t, "ada")
	idle, dead, kept := Key(t, "idle"), Key(t, "dead"), Key(t, "kept")
	start := time.Now()
	mustCreateMeta(t, h.Store, idle, []byte("v"), store.Meta{User: user}, ttlShort)
	mustCreateMeta(t, h.Store, dead, []byte("v"), store.Meta{User: user, Deadline: start.Add(ttlShort)}, ttlLong)
	mustCreateMeta(t, h.Store, kept, []byte("v"), store.Meta{User: user}, ttlLong)
	assertListed(t, h.Store, user, idle, dead, kept)
	time.Sleep(time.Until(start.Add(ttlShort + Slack)))
	assertListed(t, h.Store, user, kept)
}

// testUsersConcurrent races sign-ins (Renew of anonymous sessions to the
// user), revokes (Delete) of signed-in ones, and listings: at the end the
// index names exactly the sessions that survived.
func testUsersConcurrent(t *testing.T, newHarness func(testing.TB) Harness) {
	h := newHarness(t)
	user := User(t, "ada")
	const n = 40
	anon := make([]string, n)
	signed := make([]string, n)
	for i := range n {
		anon[i] = Key(t, fmt.Sprintf("anon%d", i))
		signed[i] = Key(t, fmt.Sprintf("signed%d", i))
		mustCreate(t, h.Store, anon[i], []byte("v"), ttlLong)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 3*n)
	var mu sync.Mutex
	var want []string
	for i := range n {
		wg.Go(func() {
			if _, err := h.Store.Renew(t.Context(), anon[i], signed[i], store.Meta{User: user}, ttlLong, time.Minute); err != nil {
				errs <- fmt.Errorf("Renew %d: %w", i, err)
				return
			}
			if i%2 == 0 {
				if err := h.Store.Delete(t.Context(), signed[i]); err != nil {
					errs <- fmt.Errorf("Delete %d: %w", i, err)
				}
				return
			}
			mu.Lock()
			want = append(want, signed[i])
			mu.Unlock()
		})
		wg.Go(func() {
			list, err := h.Store.UserSessions(t.Context(), user)
			if err != nil {
				errs <- fmt.Errorf("UserSessions: %w", err)
				return
			}
			for _, us := range list {
				if us.User != user || !slices.Contains(signed, us.Key) {
					errs <- fmt.Errorf("UserSessions listed %q of user %q", us.Key, us.User)
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	assertListed(t, h.Store, user, want...)
}

// testUsersManyExpired leaves manyExpired expired sessions to one user: the
// listing is empty and, once it ran (or the backend's sweeper did), the
// backend holds nothing for them (Harness.IndexSize).
func testUsersManyExpired(t *testing.T, newHarness func(testing.TB) Harness) {
	h := newHarness(t)
	user := User(t, "many")
	start := time.Now()
	// Many writers at once, so that backends that batch writes (bbolt
	// shares one fsync among them) are not measured by their fsyncs.
	const workers = 64
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Go(func() {
			for i := w; i < manyExpired; i += workers {
				if err := h.Store.Create(t.Context(), Key(t, fmt.Sprintf("e%d", i)), []byte("v"), store.Meta{User: user}, ttlShort); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("Create: %v", err)
	}
	created := time.Now()
	t.Logf("creating %d sessions took %v", manyExpired, created.Sub(start))
	time.Sleep(time.Until(created.Add(ttlShort + Slack)))
	assertListed(t, h.Store, user)
	listStart := time.Now()
	assertListed(t, h.Store, user)
	t.Logf("listing a user with %d expired sessions, after the first listing: %v", manyExpired, time.Since(listStart))
	if h.IndexSize != nil {
		if n := h.IndexSize(t, user); n != 0 {
			t.Errorf("the backend still holds %d index entries for a user whose %d sessions expired", n, manyExpired)
		}
	}
}

func assertMeta(tb testing.TB, got, want store.Meta) {
	tb.Helper()
	if got.User != want.User || got.Agent != want.Agent || !got.Created.Equal(want.Created) || !got.Deadline.Equal(want.Deadline) {
		tb.Errorf("Meta = %+v, want %+v", got, want)
	}
}

func assertNear(tb testing.TB, what string, got, want time.Time) {
	tb.Helper()
	if d := got.Sub(want); d < -Slack || d > Slack {
		tb.Errorf("%s = %v, want about %v", what, got.Round(0), want.Round(0))
	}
}

// assertRenewed checks that key holds a tombstone: ErrRenewed for Load,
// Update and Touch (and not ErrNotFound), ErrExists for Create.
func assertRenewed(tb testing.TB, s store.Store, key string) {
	tb.Helper()
	_, err := s.Load(tb.Context(), key)
	assertErr(tb, "Load of the old key", err, store.ErrRenewed)
	_, err = s.Update(tb.Context(), key, ttlLong, func([]byte) ([]byte, error) {
		return nil, errors.New("fn called for a tombstone")
	})
	assertErr(tb, "Update of the old key", err, store.ErrRenewed)
	assertErr(tb, "Touch of the old key", s.Touch(tb.Context(), key, ttlLong), store.ErrRenewed)
	assertErr(tb, "Create of the old key", s.Create(tb.Context(), key, []byte("x"), store.Meta{}, ttlLong), store.ErrExists)
	if errors.Is(err, store.ErrNotFound) {
		tb.Errorf("a tombstone must not be ErrNotFound")
	}
}

// assertListed checks that UserSessions lists exactly keys for user.
func assertListed(tb testing.TB, s store.Store, user string, keys ...string) {
	tb.Helper()
	list, err := s.UserSessions(tb.Context(), user)
	if err != nil {
		tb.Fatalf("UserSessions: %v", err)
	}
	got := make([]string, 0, len(list))
	for _, us := range list {
		got = append(got, us.Key)
		if us.User != user {
			tb.Errorf("UserSessions(%q) listed %q bound to %q", user, us.Key, us.User)
		}
	}
	slices.Sort(got)
	want := slices.Sorted(slices.Values(keys))
	if !slices.Equal(got, want) {
		tb.Errorf("UserSessions(%q) = %q, want %q", user, got, want)
	}
}
