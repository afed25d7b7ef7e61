package server

import (
	"testing"
	"time"
)

// During a Redis outage the adapter and go-redis report thousands of errors
// a second; the log gets one line per errorLogEvery, with the count held back.
func TestLogThrottleLetsOneLinePerPeriod(t *testing.T) {
	var lt logThrottle
	if dropped, ok := lt.allow(); !ok || dropped != 0 {
		t.Fatalf("first line: allow() = %d, %v; want 0, true", dropped, ok)
	}
	for i := range 999 {
		if _, ok := lt.allow(); ok {
			t.Fatalf("line %d within the period was let through", i+2)
		}
	}
	lt.mu.Lock()
	lt.last = lt.last.Add(-errorLogEvery - time.Millisecond) // the period is over
	lt.mu.Unlock()
	if dropped, ok := lt.allow(); !ok || dropped != 999 {
		t.Fatalf("after the period: allow() = %d, %v; want 999, true", dropped, ok)
	}
	if _, ok := lt.allow(); ok {
		t.Fatal("a new period did not start with the line it let through")
	}
}
