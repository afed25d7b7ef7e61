package redis_test

import (
	"context"
	"errors"
	"strconv"
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

// Issue 13 item 8: a version field spelled any other way than the store
// writes it ("01", "+1", "1.0", " 1", a 19-digit number) is a damaged
// record: absent to Load, Update and Touch at once, and replaced by
// Create. Before, "01" passed Lua's tonumber and failed every string
// compare of the commit, so Update retried forever.
func TestNonCanonicalVersionIsADamagedRecord(t *testing.T) {
	srv := tandemtest.StartRedis(t)
	s, _ := redis.Open(srv.URL(0), redis.Options{Prefix: "test:"})
	t.Cleanup(func() { s.Close() })
	raw := srv.Client(0)
	ctx := t.Context()
	for _, v := range []string{"01", "+1", "1.0", " 1", "1e3", "0", "1234567890123456789"} {
		key := storetest.Key(t, "v"+v)
		if err := raw.HSet(ctx, s.RecordKey(key), "v", v, "d", storetest.EncodeCounter(1), "g", "0123456789abcdef").Err(); err != nil {
			t.Fatal(err)
		}
		raw.Expire(ctx, s.RecordKey(key), time.Hour)
		evals := func() int64 {
			stats := raw.Info(ctx, "commandstats").Val()
			var n int64
			for _, cmd := range []string{"cmdstat_evalsha:calls=", "cmdstat_eval:calls="} {
				if i := strings.Index(stats, cmd); i >= 0 {
					f, _ := strconv.ParseInt(strings.SplitN(stats[i+len(cmd):], ",", 2)[0], 10, 64)
					n += f
				}
			}
			return n
		}
		before := evals()
		start := time.Now()
		calls := 0
		_, err := s.Update(ctx, key, time.Hour, func(d []byte) ([]byte, error) { calls++; return storetest.Increment(d) })
		if !errors.Is(err, store.ErrNotFound) || calls != 0 {
			t.Errorf("v=%q: Update = %v after %d calls of fn, want ErrNotFound without calling fn", v, err, calls)
		}
		if n := evals() - before; n > 2 || time.Since(start) > time.Second {
			t.Errorf("v=%q: Update ran %d scripts in %v", v, n, time.Since(start))
		}
		if _, err := s.Load(ctx, key); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("v=%q: Load = %v, want ErrNotFound", v, err)
		}
		if err := s.Touch(ctx, key, time.Hour); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("v=%q: Touch = %v, want ErrNotFound", v, err)
		}
		if err := s.Create(ctx, key, []byte("new"), store.Meta{}, time.Hour); err != nil {
			t.Errorf("v=%q: Create over the damaged record = %v", v, err)
		}
		if rec, err := s.Load(ctx, key); err != nil || string(rec.Data) != "new" || rec.Version != 1 {
			t.Errorf("v=%q: Load after Create = %q v%d, %v", v, rec.Data, rec.Version, err)
		}
	}
}

// Issue 13 item 8: an Update that conflicts at every try gives up after
// redis.MaxConflicts tries with ErrConflict (the server answers 503)
// instead of retrying for as long as the client waits.
func TestUpdateConflictsAreBounded(t *testing.T) {
	srv := tandemtest.StartRedis(t)
	s, _ := redis.Open(srv.URL(0), redis.Options{Prefix: "test:"})
	t.Cleanup(func() { s.Close() })
	raw := srv.Client(0)
	ctx := t.Context()
	key := storetest.Key(t, "k")
	if err := s.Create(ctx, key, storetest.EncodeCounter(0), store.Meta{}, time.Hour); err != nil {
		t.Fatal(err)
	}
	calls := 0
	_, err := s.Update(ctx, key, time.Hour, func(d []byte) ([]byte, error) {
		calls++
		// Another node commits between every read and its commit.
		if err := raw.HIncrBy(context.Background(), s.RecordKey(key), "v", 1).Err(); err != nil {
			return nil, err
		}
		return storetest.Increment(d)
	})
	if !errors.Is(err, redis.ErrConflict) || calls != redis.MaxConflicts {
		t.Errorf("Update = %v after %d tries, want ErrConflict after %d", err, calls, redis.MaxConflicts)
	}
}

// Issue 17 item 2: the conformance suite on a Redis Cluster of three
// masters (a record and its user-index entry share a hash tag, so each
// script touches one slot).
func TestConformanceOnCluster(t *testing.T) {
	rc := tandemtest.StartRedisCluster(t, 3, 0)
	raw := rc.Client(t)
	storetest.Run(t, func(tb testing.TB) storetest.Harness {
		s, err := redis.Open(rc.URL(), redis.Options{Prefix: "test:"})
		if err != nil {
			tb.Fatalf("Open: %v", err)
		}
		tb.Cleanup(func() { s.Close() })
		return storetest.Harness{
			Store: s,
			Corrupt: func(tb testing.TB, key string) {
				if err := raw.HSet(tb.Context(), s.RecordKey(key), "d", "x").Err(); err != nil {
					tb.Fatal(err)
				}
				if err := raw.Expire(tb.Context(), s.RecordKey(key), time.Hour).Err(); err != nil {
					tb.Fatal(err)
				}
			},
		}
	})
}

// On a Redis Cluster a PUBLISH goes to one master and the cluster bus
// carries it to the others, so two messages published on two masters can
// reach a subscriber in either order. go-redis routes PUBLISH, which has
// no key, to the masters in turn (its RoundRobinPicker). NewClient routes
// it by its channel's slot instead, so the messages of one channel keep
// the order they were published in: tandem's relay (a session's last
// event, then its disconnect) needs that.
func TestClusterPublishKeepsOrderPerChannel(t *testing.T) {
	rc := tandemtest.StartRedisCluster(t, 3, 0)
	pub, _, err := redis.NewClient(rc.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	sub, _, err := redis.NewClient(rc.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	ctx := t.Context()
	ps := sub.Subscribe(ctx, "order")
	defer ps.Close()
	if _, err := ps.Receive(ctx); err != nil { // the subscription's confirmation
		t.Fatal(err)
	}
	const n = 600
	for i := range n {
		if err := pub.Publish(ctx, "order", strconv.Itoa(i)).Err(); err != nil {
			t.Fatal(err)
		}
	}
	ch := ps.Channel()
	var out []int
	timeout := time.After(10 * time.Second)
	for len(out) < n {
		select {
		case m := <-ch:
			i, _ := strconv.Atoi(m.Payload)
			out = append(out, i)
		case <-timeout:
			t.Fatalf("received %d of %d messages", len(out), n)
		}
	}
	reordered := 0
	for i, v := range out {
		if v != i {
			reordered++
		}
	}
	if reordered > 0 {
		t.Errorf("%d of %d messages out of place; first 20: %v", reordered, n, out[:20])
	}
}
