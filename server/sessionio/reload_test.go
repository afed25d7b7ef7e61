package sessionio

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/tandem-go/tandem/server/store"
	"github.com/tandem-go/tandem/server/store/memory"
)

// garbling hands out the data of its records scrambled, version intact.
type garbling struct{ store.Store }

func (g garbling) Load(ctx context.Context, key string) (store.Record, error) {
	rec, err := g.Store.Load(ctx, key)
	rec.Data = []byte("not gob")
	return rec, err
}

// A reload that finds the version the handle holds does not decode, and
// one that finds a newer version does.
func TestReloadDecodesOnlyANewVersion(t *testing.T) {
	st := memory.New()
	t.Cleanup(func() { _ = st.Close() })
	m, err := New(Config{Store: garbling{st}, Keys: [][]byte{[]byte(strings.Repeat("k", 32))}})
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	id := newID()
	data, err := encodeValues(Values{"count": 1})
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Create(ctx, keyOf(id), data, store.Meta{}, DefaultTTL); err != nil {
		t.Fatal(err)
	}
	rec, err := st.Load(ctx, keyOf(id))
	if err != nil {
		t.Fatal(err)
	}
	h := &Session{m: m, key: keyOf(id)}
	h.set(keyOf(id), Values{"count": 1}, rec)
	if err := h.Reload(ctx); err != nil {
		t.Fatalf("Reload of the version the handle holds: %v (it decoded)", err)
	}
	if got := h.Get("count"); got != 1 {
		t.Fatalf("count = %v, want 1", got)
	}
	if _, err := st.Update(ctx, keyOf(id), DefaultTTL, func(d []byte) ([]byte, error) { return d, nil }); err != nil {
		t.Fatal(err)
	}
	// Unreadable data is a session gone, here as on every path, and the
	// record is deleted.
	if err := h.Reload(ctx); !errors.Is(err, ErrSessionGone) {
		t.Fatalf("Reload of a newer, unreadable version: %v, want ErrSessionGone (it did not decode, or did not treat the data as gone)", err)
	}
	if _, err := st.Load(ctx, keyOf(id)); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("the unreadable record is still in the store (%v)", err)
	}
}

// The periodic check, too, decodes only a version the handle does not hold:
// with a store whose data never decodes, a check that finds the held version
// leaves the session alone, and one that finds a newer version drops it as
// unreadable.
func TestCheckDecodesOnlyANewVersion(t *testing.T) {
	st := memory.New()
	t.Cleanup(func() { _ = st.Close() })
	m, err := New(Config{Store: garbling{st}, Keys: [][]byte{[]byte(strings.Repeat("k", 32))}, CheckInterval: Off})
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	key := keyOf(newID())
	data, err := encodeValues(Values{"count": 1})
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Create(ctx, key, data, store.Meta{}, DefaultTTL); err != nil {
		t.Fatal(err)
	}
	rec, err := st.Load(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	h := &Session{m: m, key: key}
	h.set(key, Values{"count": 1}, rec)
	m.mu.Lock()
	m.live[key] = h
	m.mu.Unlock()

	m.checkAll()
	if _, err := st.Load(ctx, key); err != nil {
		t.Fatalf("a check of the version the handle holds decoded it and dropped the session: %v", err)
	}
	if _, err := st.Update(ctx, key, DefaultTTL, func(d []byte) ([]byte, error) { return d, nil }); err != nil {
		t.Fatal(err)
	}
	m.checkAll()
	if _, err := st.Load(ctx, key); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("a check of a newer version did not decode it (the unreadable session is still there: %v)", err)
	}
}
