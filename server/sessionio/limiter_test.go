package sessionio

import (
	"fmt"
	"testing"
	"time"
)

func TestCreateLimiter(t *testing.T) {
	l := newCreateLimiter(1, 3) // burst 3, then one a second
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

func TestCreateLimiterTableStaysBounded(t *testing.T) {
	l := newCreateLimiter(1000, 1)
	now := time.Unix(1000, 0)
	for i := range maxLimiterClients {
		l.allow(fmt.Sprint(i), now)
	}
	// Long after, every bucket has refilled: the next new address prunes
	// them instead of growing the table.
	l.allow("late", now.Add(time.Hour))
	if n := len(l.clients); n > 1 {
		t.Errorf("table holds %d addresses after pruning, want 1", n)
	}
}
