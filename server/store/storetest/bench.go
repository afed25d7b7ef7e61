package storetest

import (
	"github.com/tandem-go/tandem/server/store"
	"sync/atomic"
	"testing"
)

// benchData is the size of a small session (a few values and their gob or
// JSON framing); the counter lives in its first 8 bytes.
const benchData = 128

// BenchmarkUpdate measures one goroutine incrementing one record: the latency
// of a single Update with nothing to share a write with.
func BenchmarkUpdate(b *testing.B, newHarness func(tb testing.TB) Harness) {
	h := newHarness(b)
	key := Key(b, "bench")
	mustCreate(b, h.Store, key, make([]byte, benchData), ttlLong)
	ctx := b.Context()
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		if _, err := h.Store.Update(ctx, key, ttlLong, incrementPrefix); err != nil {
			b.Fatalf("Update: %v", err)
		}
		n++
	}
	b.StopTimer()
	if got := DecodeCounter(b, mustLoad(b, h.Store, key).Data[:8]); got != uint64(n) {
		b.Fatalf("counter = %d after %d updates", got, n)
	}
}

// BenchmarkUpdateParallel measures Updates from b.RunParallel goroutines:
//
//   - "distinct keys": one goroutine per CPU, each changing its own record
//     (many sessions, one client each: the common case, where backends can
//     shard or batch);
//   - "distinct keys, 32 per CPU": the same with 32 goroutines per CPU, as a
//     busy server has many requests in flight (what write batching is for);
//   - "one key": one goroutine per CPU, all changing the same record (the
//     worst-case contention).
//
// ns/op is wall time divided by all goroutines' updates, so it is the inverse
// of throughput, not the latency of one Update.
func BenchmarkUpdateParallel(b *testing.B, newHarness func(tb testing.TB) Harness) {
	distinct := func(parallelism int) func(*testing.B) {
		return func(b *testing.B) {
			h := newHarness(b)
			b.SetParallelism(parallelism)
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				key := Key(b, "bench")
				if err := h.Store.Create(b.Context(), key, make([]byte, benchData), store.Meta{}, ttlLong); err != nil {
					b.Errorf("Create: %v", err)
					return
				}
				for pb.Next() {
					if _, err := h.Store.Update(b.Context(), key, ttlLong, incrementPrefix); err != nil {
						b.Errorf("Update: %v", err)
						return
					}
				}
			})
		}
	}
	b.Run("distinct keys", distinct(1))
	b.Run("distinct keys, 32 per CPU", distinct(32))
	b.Run("one key", func(b *testing.B) {
		h := newHarness(b)
		key := Key(b, "bench")
		mustCreate(b, h.Store, key, make([]byte, benchData), ttlLong)
		var n atomic.Int64
		b.ReportAllocs()
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := h.Store.Update(b.Context(), key, ttlLong, incrementPrefix); err != nil {
					b.Errorf("Update: %v", err)
					return
				}
				n.Add(1)
			}
		})
		b.StopTimer()
		if got := DecodeCounter(b, mustLoad(b, h.Store, key).Data[:8]); got != uint64(n.Load()) {
			b.Fatalf("counter = %d after %d updates", got, n.Load())
		}
	})
}

// incrementPrefix increments the counter in the first 8 bytes and keeps the
// rest of the data.
func incrementPrefix(data []byte) ([]byte, error) {
	next, err := Increment(data[:8])
	if err != nil {
		return nil, err
	}
	copy(data, next)
	return data, nil
}

// BenchmarkLoad measures one goroutine loading one live record: what every
// socket packet and every request with a cookie costs the store.
func BenchmarkLoad(b *testing.B, newHarness func(tb testing.TB) Harness) {
	h := newHarness(b)
	key := Key(b, "bench")
	mustCreate(b, h.Store, key, make([]byte, benchData), ttlLong)
	ctx := b.Context()
	b.ReportAllocs()
	for b.Loop() {
		rec, err := h.Store.Load(ctx, key)
		if err != nil {
			b.Fatalf("Load: %v", err)
		}
		if len(rec.Data) != benchData {
			b.Fatalf("Load: %d bytes, want %d", len(rec.Data), benchData)
		}
	}
}
