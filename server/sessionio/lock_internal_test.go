package sessionio

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tandem-go/tandem/server/store"
	"github.com/tandem-go/tandem/server/store/memory"
)

// The lock of a session exists only while someone holds or waits for it.
func TestKeyLocksAreDroppedWhenUnused(t *testing.T) {
	st := memory.New()
	m, err := New(Config{Store: st, Keys: [][]byte{[]byte(strings.Repeat("k", 32))}})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	ctx := context.Background()
	keys := []string{"a", "b", "c"}
	for _, k := range keys {
		if err := st.Create(ctx, k, nil, store.Meta{}, time.Hour); err != nil {
			t.Fatal(err)
		}
	}
	var wg sync.WaitGroup
	for i := range 300 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := m.update(ctx, keys[i%len(keys)], func(Values) error { return nil }, nil); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	m.locksMu.Lock()
	n := len(m.locks)
	m.locksMu.Unlock()
	if n != 0 {
		t.Errorf("%d session locks left after every change returned, want 0", n)
	}

	// A change waiting for a held lock gives up with its context.
	unlock, err := m.lockKey(ctx, "a")
	if err != nil {
		t.Fatal(err)
	}
	short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	if _, err := m.update(short, "a", func(Values) error { return nil }, nil); err == nil {
		t.Error("a change went through while its session's lock was held")
	}
	unlock()
	m.locksMu.Lock()
	n = len(m.locks)
	m.locksMu.Unlock()
	if n != 0 {
		t.Errorf("%d session locks left after a waiter gave up, want 0", n)
	}
}
