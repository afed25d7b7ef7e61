package redis_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/tandem-go/tandem/internal/tandemtest"
	"github.com/tandem-go/tandem/server/store"
	"github.com/tandem-go/tandem/server/store/redis"
	"github.com/tandem-go/tandem/server/store/storetest"
)

// One redis-server serves the whole suite: the suite's keys are unique per
// subtest, which is what it asks of a shared backend.
func harness(tb testing.TB, srv *tandemtest.Redis, url string) storetest.Harness {
	s, err := redis.Open(url, redis.Options{Prefix: "test:"})
	if err != nil {
		tb.Fatalf("Open: %v", err)
	}
	tb.Cleanup(func() { s.Close() })
	raw := srv.Client(0)
	return storetest.Harness{
		Store: s,
		Corrupt: func(tb testing.TB, key string) {
			// A hash without its version: what a half-written or foreign
			// record looks like.
			if err := raw.HSet(tb.Context(), s.RecordKey(key), "d", "x").Err(); err != nil {
				tb.Fatal(err)
			}
			if err := raw.Expire(tb.Context(), s.RecordKey(key), time.Hour).Err(); err != nil {
				tb.Fatal(err)
			}
		},
		IndexSize: func(tb testing.TB, user string) int {
			n, err := s.IndexLen(tb.Context(), user)
			if err != nil {
				tb.Fatal(err)
			}
			return n
		},
	}
}

func TestConformance(t *testing.T) {
	srv := tandemtest.StartRedis(t)
	t.Run("tcp", func(t *testing.T) {
		storetest.Run(t, func(tb testing.TB) storetest.Harness { return harness(tb, srv, srv.TCPURL(0)) })
	})
	t.Run("unix", func(t *testing.T) {
		storetest.Run(t, func(tb testing.TB) storetest.Harness { return harness(tb, srv, srv.URL(0)) })
	})
}

// Two stores on one Redis are two nodes: their concurrent updates of one
// key conflict in Redis itself, and none is lost.
func TestUpdatesFromTwoNodes(t *testing.T) {
	srv := tandemtest.StartRedis(t)
	a, _ := redis.Open(srv.URL(0), redis.Options{})
	b, _ := redis.Open(srv.URL(0), redis.Options{})
	t.Cleanup(func() { a.Close(); b.Close() })
	ctx := t.Context()
	key := storetest.Key(t, "counter")
	if err := a.Create(ctx, key, storetest.EncodeCounter(0), store.Meta{}, time.Hour); err != nil {
		t.Fatal(err)
	}
	const n = 200
	errs := make(chan error, 2*n)
	done := make(chan struct{})
	for _, s := range []*redis.Store{a, b} {
		for range n {
			go func() {
				_, err := s.Update(ctx, key, time.Hour, storetest.Increment)
				errs <- err
			}()
		}
	}
	go func() {
		for range 2 * n {
			if err := <-errs; err != nil {
				t.Errorf("Update: %v", err)
			}
		}
		close(done)
	}()
	<-done
	rec, err := b.Load(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	if got := storetest.DecodeCounter(t, rec.Data); got != 2*n {
		t.Errorf("counter = %d, want %d", got, 2*n)
	}
	if rec.Version != 1+2*n {
		t.Errorf("version = %d, want %d", rec.Version, 1+2*n)
	}
}

// A record deleted and created again between an update's read and its
// commit is another record: the commit must not apply to it, even though
// its version is the same.
func TestUpdateDoesNotApplyToARecreatedRecord(t *testing.T) {
	srv := tandemtest.StartRedis(t)
	s, _ := redis.Open(srv.URL(0), redis.Options{})
	t.Cleanup(func() { s.Close() })
	ctx := t.Context()
	key := storetest.Key(t, "k")
	if err := s.Create(ctx, key, []byte("old"), store.Meta{}, time.Hour); err != nil {
		t.Fatal(err)
	}
	calls := 0
	rec, err := s.Update(ctx, key, time.Hour, func(data []byte) ([]byte, error) {
		calls++
		if calls == 1 {
			// Between the read and the commit, another node logs out and
			// a new session takes the key (version 1 again).
			if err := s.Delete(context.Background(), key); err != nil {
				return nil, err
			}
			if err := s.Create(context.Background(), key, []byte("new"), store.Meta{}, time.Hour); err != nil {
				return nil, err
			}
		}
		return append(data, '!'), nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if string(rec.Data) != "new!" || rec.Version != 2 || calls != 2 {
		t.Errorf("Update = %q v%d after %d calls, want \"new!\" v2 after 2", rec.Data, rec.Version, calls)
	}
}

// Keys live under the prefix, with Redis's own TTL.
func TestPrefixAndTTL(t *testing.T) {
	srv := tandemtest.StartRedis(t)
	s, _ := redis.Open(srv.URL(3), redis.Options{Prefix: "app1:"})
	t.Cleanup(func() { s.Close() })
	if err := s.Create(t.Context(), "k", []byte("v"), store.Meta{}, time.Minute); err != nil {
		t.Fatal(err)
	}
	raw := srv.Client(3)
	if !strings.HasPrefix(s.RecordKey("k"), "app1:{") {
		t.Errorf("RecordKey(k) = %q, want it under the prefix, with a hash tag", s.RecordKey("k"))
	}
	ttl, err := raw.PTTL(t.Context(), s.RecordKey("k")).Result()
	if err != nil || ttl <= 59*time.Second || ttl > time.Minute {
		t.Errorf("PTTL %s = %v, %v; want about a minute", s.RecordKey("k"), ttl, err)
	}
	if n, _ := raw.Exists(t.Context(), "k").Result(); n != 0 {
		t.Errorf("a key without the prefix exists")
	}
}

// With Redis down, every call fails fast with an error that is not
// "not found", and the store works again once Redis is back.
func TestOutage(t *testing.T) {
	srv := tandemtest.StartRedis(t)
	s, _ := redis.Open(srv.TCPURL(0), redis.Options{})
	t.Cleanup(func() { s.Close() })
	ctx := t.Context()
	if err := s.Create(ctx, "k", storetest.EncodeCounter(1), store.Meta{}, time.Hour); err != nil {
		t.Fatal(err)
	}
	srv.Stop()
	start := time.Now()
	_, err := s.Update(ctx, "k", time.Hour, storetest.Increment)
	if err == nil || errors.Is(err, store.ErrNotFound) {
		t.Errorf("Update with Redis down: %v, want an outage error", err)
	}
	if err := s.Ping(ctx); err == nil {
		t.Error("Ping with Redis down: no error")
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("two calls with Redis down took %v", d)
	}
	srv.Start()
	rec, err := s.Update(ctx, "k", time.Hour, storetest.Increment)
	if err != nil {
		t.Fatalf("Update after Redis came back: %v", err)
	}
	if got := storetest.DecodeCounter(t, rec.Data); got != 2 {
		t.Errorf("counter = %d after the outage, want 2 (kept across the restart)", got)
	}
}

func BenchmarkUpdate(b *testing.B) {
	srv := tandemtest.StartRedis(b)
	storetest.BenchmarkUpdate(b, func(tb testing.TB) storetest.Harness { return harness(tb, srv, srv.URL(0)) })
}

func BenchmarkUpdateParallel(b *testing.B) {
	srv := tandemtest.StartRedis(b)
	storetest.BenchmarkUpdateParallel(b, func(tb testing.TB) storetest.Harness { return harness(tb, srv, srv.URL(0)) })
}
