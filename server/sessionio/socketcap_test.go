package sessionio

import (
	"errors"
	"sync"
	"testing"
)

// The socket caps count exactly under concurrency: reservations taken and
// released from many goroutines, each release called twice at once (a
// socket's disconnect and its connection's close), leave nothing counted,
// and never let a session or a client over its cap.
func TestSocketCapsExactUnderConcurrency(t *testing.T) {
	const perSession, perClient = 3, 5
	c := newSocketCaps(perSession, perClient)
	var wg sync.WaitGroup
	var mu sync.Mutex
	held := map[string]int{}
	over := 0
	for g := range 16 {
		wg.Go(func() {
			id, client := "s"+string(rune('a'+g%4)), "c"+string(rune('a'+g%2))
			for range 500 {
				free, err := c.reserve(id, client)
				if err != nil {
					if !errors.Is(err, ErrTooManySessionSockets) && !errors.Is(err, ErrTooManyClientSockets) {
						t.Errorf("reserve: %v", err)
					}
					continue
				}
				mu.Lock()
				held[id]++
				held[client]++
				if held[id] > perSession || held[client] > perClient {
					over++
				}
				mu.Unlock()
				mu.Lock()
				held[id]--
				held[client]--
				mu.Unlock()
				var both sync.WaitGroup
				both.Go(free)
				both.Go(free)
				both.Wait()
			}
		})
	}
	wg.Wait()
	if over != 0 {
		t.Errorf("%d reservations over a cap", over)
	}
	if len(c.bySession) != 0 || len(c.byClient) != 0 {
		t.Fatalf("counts left after every release: %v %v", c.bySession, c.byClient)
	}
	// Up to the caps again, exactly.
	for i := range perSession {
		if _, err := c.reserve("s", "c"); err != nil {
			t.Fatalf("reservation %d: %v", i+1, err)
		}
	}
	if _, err := c.reserve("s", "c"); !errors.Is(err, ErrTooManySessionSockets) {
		t.Fatalf("reservation over the session cap: %v", err)
	}
	if _, err := c.reserve("t", "c"); err != nil {
		t.Fatalf("4th of the client: %v", err)
	}
	if _, err := c.reserve("u", "c"); err != nil {
		t.Fatalf("5th of the client: %v", err)
	}
	if _, err := c.reserve("v", "c"); !errors.Is(err, ErrTooManyClientSockets) {
		t.Fatalf("reservation over the client cap: %v", err)
	}
	if s, cl := c.counts("s", "c"); s != perSession || cl != perClient {
		t.Fatalf("counts %d and %d, want %d and %d", s, cl, perSession, perClient)
	}
}
