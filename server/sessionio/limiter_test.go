package sessionio

import (
	"errors"
	"fmt"
	"math"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tandem-go/tandem/server/store/memory"
)

func TestCreateLimiter(t *testing.T) {
	l := newCreateLimiter(1, 3, 0, 0, 10) // burst 3, then one a second
	now := time.Unix(1000, 0)
	for i := range 3 {
		if !l.allow("a", now) {
			t.Fatalf("creation %d of the burst refused", i+1)
		}
	}
	if l.allow("a", now) {
		t.Fatal("creation beyond the burst allowed")
	}
	if !l.allow("b", now) {
		t.Fatal("another address was refused because of the first")
	}
	if !l.allow("a", now.Add(1100*time.Millisecond)) {
		t.Fatal("no token after a second")
	}
	if l.allow("a", now.Add(1200*time.Millisecond)) {
		t.Fatal("two tokens after a second")
	}
}

// The global bucket bounds every address together, and a creation it
// refuses takes no token from the address.
func TestCreateLimiterGlobalBound(t *testing.T) {
	l := newCreateLimiter(1, 2, 10, 5, 100)
	now := time.Unix(1000, 0)
	allowed := 0
	for i := range 20 {
		if l.allow(fmt.Sprint(i), now) {
			allowed++
		}
	}
	if allowed != 5 {
		t.Fatalf("20 addresses created %d sessions at once, want the global burst, 5", allowed)
	}
	if l.allow("new", now) {
		t.Fatal("a new address got past an empty global bucket")
	}
	later := now.Add(100 * time.Millisecond) // one global token back
	if !l.allow("new", later) {
		t.Fatal("an address refused only by the global bound lost its own tokens")
	}

	off := newCreateLimiter(0, 0, 0, 0, 100) // both bounds off
	for i := range 1000 {
		if !off.allow("a", now) {
			t.Fatalf("creation %d refused with every bound off", i+1)
		}
	}
	if off.size() != 0 {
		t.Error("a limiter with no per-address bound keeps a table")
	}
}

// A spray of a million distinct addresses leaves the table at its fixed
// size, at constant cost per address; the addresses seen last keep their
// buckets.
func TestCreateLimiterTableStaysBounded(t *testing.T) {
	const max = 10_000
	l := newCreateLimiter(0.001, 1, 0, 0, max) // buckets never refill here
	now := time.Unix(1000, 0)
	var before runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	start := time.Now()
	for i := range 1_000_000 {
		l.allow(strconv.Itoa(i), now)
		if i%1000 == 0 {
			if n := l.size(); n > max {
				t.Fatalf("table holds %d addresses after %d, want at most %d", n, i+1, max)
			}
		}
	}
	if n := l.size(); n != max {
		t.Fatalf("table holds %d addresses after a million, want %d", n, max)
	}
	elapsed := time.Since(start)
	var after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&after)
	t.Logf("1,000,000 addresses in %v; heap %d KB after, %d KB before", elapsed.Round(time.Millisecond), after.HeapAlloc/1024, before.HeapAlloc/1024)
	if grown := int64(after.HeapAlloc) - int64(before.HeapAlloc); grown > 64<<20 {
		t.Errorf("the heap grew by %d MB for a table of %d addresses", grown>>20, max)
	}
	if l.allow("999999", now) {
		t.Error("the last address seen lost its (empty) bucket")
	}
	if !l.allow("0", now) {
		t.Error("the first address, long evicted, did not start with a full bucket")
	}
}

// A refused creation's error matches ErrTooManySessions and says when to try
// again, in the whole seconds of a Retry-After header (rounded up, at least
// one), at the slower of the per-client and global rates.
func TestRetryAfterError(t *testing.T) {
	tests := []struct {
		name             string
		rate, globalRate float64
		wantAfter        time.Duration
		wantSeconds      int
	}{
		{"ok, one token a second", 1, 100, time.Second, 1},
		{"ok, a token every 2.5 s rounds up", 0.4, 100, 2500 * time.Millisecond, 3},
		{"ok, the global rate is the slower", 10, 0.5, 2 * time.Second, 2},
		{"ok, fast rates still say one second", 1000, 5000, time.Millisecond, 1},
		{"ok, the global bound off", 0.001, Off, 1000 * time.Second, 1000},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := &Manager{cfg: Config{CreateRate: tt.rate, CreateGlobalRate: tt.globalRate}}
			var err error = &RetryAfterError{After: m.retryAfter()}
			if !errors.Is(err, ErrTooManySessions) {
				t.Errorf("%v does not match ErrTooManySessions", err)
			}
			var ra *RetryAfterError
			if !errors.As(err, &ra) || ra.After != tt.wantAfter || ra.Seconds() != tt.wantSeconds {
				t.Errorf("after %v, %d s; want %v, %d s", ra.After, ra.Seconds(), tt.wantAfter, tt.wantSeconds)
			}
		})
	}
}

// Issue 13, item 9: New refuses a NaN or infinite rate, which would turn
// its limit off.
func TestNewRefusesNaNAndInfRates(t *testing.T) {
	for _, tt := range []struct {
		name  string
		given func(*Config)
	}{
		{"nok, CreateRate NaN", func(c *Config) { c.CreateRate = math.NaN() }},
		{"nok, CreateRate +Inf", func(c *Config) { c.CreateRate = math.Inf(1) }},
		{"nok, CreateGlobalRate NaN", func(c *Config) { c.CreateGlobalRate = math.NaN() }},
		{"nok, CreateGlobalRate +Inf", func(c *Config) { c.CreateGlobalRate = math.Inf(1) }},
		{"nok, EventRate NaN", func(c *Config) { c.EventRate = math.NaN() }},
		{"nok, EventRate +Inf", func(c *Config) { c.EventRate = math.Inf(1) }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cfg := Config{Store: memory.New(), Keys: [][]byte{make([]byte, MinKeyLen)}}
			tt.given(&cfg)
			if _, err := New(cfg); err == nil || !strings.Contains(err.Error(), "finite") {
				t.Fatalf("New: %v, want the finite-rate error", err)
			}
		})
	}
}

// Issue 13, item 5: a routed /56 (256 /64s, each with a full bucket) made
// 1026 sessions in 0.3 s and emptied the global bucket for every visitor.
// With the defaults, a /56 makes at most its own bucket's worth, a /48 or
// an IPv4 /24 at most half the global bucket, and a visitor from elsewhere
// still gets a session.
func TestCreateLimiterPrefixes(t *testing.T) {
	tests := []struct {
		name   string
		addr   func(i int) string // the i-th address of the prefix
		expect int                // at most this many creations
	}{
		{"nok, the 256 /64s of a /56", func(i int) string { return fmt.Sprintf("2001:db8:1:1%02x::/64", i) }, 2 * DefaultCreateBurst},
		{"nok, 256 /64s across the /56s of a /48", func(i int) string { return fmt.Sprintf("2001:db8:1:%02x00::/64", i) }, DefaultCreateGlobalBurst / 2},
		{"nok, the 256 addresses of an IPv4 /24", func(i int) string { return fmt.Sprintf("198.51.100.%d", i) }, DefaultCreateGlobalBurst / 2},
		{"nok, IPv6 addresses (not /64s) of a /56", func(i int) string { return fmt.Sprintf("2001:db8:1:1%02x::1", i) }, 2 * DefaultCreateBurst},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := newCreateLimiter(DefaultCreateRate, DefaultCreateBurst, DefaultCreateGlobalRate, DefaultCreateGlobalBurst, maxLimiterClients)
			now := time.Unix(1000, 0)
			made := 0
			for i := range 256 {
				for range DefaultCreateBurst + 1 {
					if l.allow(tt.addr(i), now) {
						made++
					}
				}
			}
			t.Logf("%d sessions", made)
			if made > tt.expect {
				t.Errorf("the prefix made %d sessions, want at most %d", made, tt.expect)
			}
			for _, visitor := range []string{"2001:db8:ffff:1::/64", "203.0.113.9"} {
				if !l.allow(visitor, now) {
					t.Errorf("a visitor from %s was refused after the prefix's burst", visitor)
				}
			}
		})
	}
}
