package memory

import (
	"context"
	"testing"
	"time"

	"github.com/tandem-go/tandem/server/store"
	"github.com/tandem-go/tandem/server/store/storetest"
)

func newHarness(tb testing.TB) storetest.Harness {
	tb.Helper()
	s := New()
	tb.Cleanup(func() { s.Close() })
	return storetest.Harness{Store: s, IndexSize: func(_ testing.TB, user string) int { return s.IndexLen(user) }}
}

func TestConformance(t *testing.T) {
	storetest.Run(t, newHarness)
}

func TestSweeperRemovesExpired(t *testing.T) {
	s := NewWithOptions(Options{SweepInterval: 20 * time.Millisecond})
	t.Cleanup(func() { s.Close() })
	ctx := t.Context()
	for i := range 100 {
		key := storetest.Key(t, "short")
		if i%2 == 0 {
			key = storetest.Key(t, "long")
		}
		ttl := 50 * time.Millisecond
		if i%2 == 0 {
			ttl = time.Hour
		}
		if err := s.Create(ctx, key, []byte("v"), store.Meta{}, ttl); err != nil {
			t.Fatalf("Create: %v", err)
		}
	}
	if got := s.Len(); got != 100 {
		t.Fatalf("Len = %d, want 100", got)
	}

	// Nothing reads the short-lived records again: only the sweeper can
	// remove them.
	deadline := time.Now().Add(2 * time.Second)
	for s.Len() != 50 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if got := s.Len(); got != 50 {
		t.Errorf("Len = %d after expiry, want 50: the sweeper left expired records", got)
	}
}

func TestSweep(t *testing.T) {
	tests := []struct {
		name        string
		ttls        []time.Duration
		wantRemoved int
	}{
		{name: "ok, empty store", wantRemoved: 0},
		{name: "ok, nothing expired", ttls: []time.Duration{time.Hour, time.Minute}, wantRemoved: 0},
		{name: "ok, some expired", ttls: []time.Duration{time.Nanosecond, time.Hour, time.Nanosecond}, wantRemoved: 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := NewWithOptions(Options{SweepInterval: -1})
			t.Cleanup(func() { s.Close() })
			for _, ttl := range tt.ttls {
				if err := s.Create(t.Context(), storetest.Key(t, "k"), nil, store.Meta{}, ttl); err != nil {
					t.Fatalf("Create: %v", err)
				}
			}
			time.Sleep(time.Millisecond)
			if got := s.sweep(); got != tt.wantRemoved {
				t.Errorf("sweep removed %d, want %d", got, tt.wantRemoved)
			}
			if got, want := s.Len(), len(tt.ttls)-tt.wantRemoved; got != want {
				t.Errorf("Len = %d, want %d", got, want)
			}
		})
	}
}

func TestCloseDisabledSweeper(t *testing.T) {
	s := NewWithOptions(Options{SweepInterval: -1})
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := s.Ping(context.Background()); err != ErrClosed {
		t.Errorf("Ping after Close = %v, want ErrClosed", err)
	}
}

func BenchmarkUpdate(b *testing.B)         { storetest.BenchmarkUpdate(b, newHarness) }
func BenchmarkUpdateParallel(b *testing.B) { storetest.BenchmarkUpdateParallel(b, newHarness) }
func BenchmarkLoad(b *testing.B)           { storetest.BenchmarkLoad(b, newHarness) }
