package sessionio

import (
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/zishang520/socket.io/servers/socket/v3"
)

// fakeTimers records the functions userHub schedules, to run them by hand.
type fakeTimers struct {
	mu  sync.Mutex
	fns []func()
}

func (f *fakeTimers) afterFunc(_ time.Duration, fn func()) *time.Timer {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.fns = append(f.fns, fn)
	return nil
}

// fire runs the timers scheduled so far and reports how many there were.
func (f *fakeTimers) fire() int {
	f.mu.Lock()
	fns := f.fns
	f.fns = nil
	f.mu.Unlock()
	for _, fn := range fns {
		fn()
	}
	return len(fns)
}

func TestUserHubCoalesces(t *testing.T) {
	timers := &fakeTimers{}
	u := &userHub{afterFunc: timers.afterFunc}
	sent := map[socket.Room]int{}
	send := func(r socket.Room) func() { return func() { sent[r]++ } }
	a, b := userRoom("ada"), userRoom("bob")

	// The first change is sent at once; ten more within the quiet time
	// make one more send, at its end.
	u.trigger(a, time.Second, send(a))
	for range 10 {
		u.trigger(a, time.Second, send(a))
	}
	u.trigger(b, time.Second, send(b)) // another user waits for no one
	if sent[a] != 1 || sent[b] != 1 {
		t.Fatalf("sent %v before any quiet time ended, want one each", sent)
	}
	if n := timers.fire(); n != 2 {
		t.Fatalf("%d timers, want one per room", n)
	}
	if sent[a] != 2 || sent[b] != 1 {
		t.Fatalf("sent %v after the quiet time, want ada's pending change sent, bob's none", sent)
	}
	// ada's second send opened a new quiet time, with nothing in it: the
	// room is forgotten, and its next change is sent at once.
	if n := timers.fire(); n != 1 {
		t.Fatalf("%d timers, want ada's one", n)
	}
	if timers.fire() != 0 || len(u.rooms) != 0 {
		t.Fatalf("rooms %v left after quiet times with no change", u.rooms)
	}
	u.trigger(a, time.Second, send(a))
	if sent[a] != 3 {
		t.Errorf("sent %v: a change after a quiet time was not sent at once", sent)
	}
}

func TestUserRoomAndDeviceIDHideTheirInputs(t *testing.T) {
	if userRoom("ada") == userRoom("Ada") || strings.Contains(string(userRoom("ada")), "ada") {
		t.Errorf("userRoom: %q, %q", userRoom("ada"), userRoom("Ada"))
	}
	m := &Manager{cfg: Config{Keys: [][]byte{[]byte(strings.Repeat("k", 32))}}}
	key := keyOf("some-id")
	id := m.deviceID(key)
	if id == key || strings.Contains(key, id) || len(id) != 22 || id != m.deviceID(key) || id == m.deviceID(keyOf("other")) {
		t.Errorf("deviceID %q of key %q", id, key)
	}
	m.signer = signer{keys: m.cfg.Keys}
	if _, err := m.signer.verify(id); err == nil {
		t.Error("a device id verifies as a signed session ID")
	}
}

func TestAddTabs(t *testing.T) {
	keys := [][]byte{[]byte(strings.Repeat("k", 32))}
	m := &Manager{relayKeys: relayKeys(keys), log: slog.New(slog.DiscardHandler)}
	other := &Manager{relayKeys: relayKeys([][]byte{[]byte(strings.Repeat("o", 32))}), log: m.log}
	answer := func(m *Manager, body string) []any {
		p, mac := m.seal(body)
		return []any{p, mac}
	}
	counts := map[string]int{"k1": 1}
	m.addTabs(counts, answer(m, `{"k1":2,"k2":1}`))
	m.addTabs(counts, answer(m, `{"k2":1,"k3":-4}`))
	m.addTabs(counts, []any{`{"k1":50}`})                     // unsealed: ignored
	m.addTabs(counts, answer(other, `{"k1":50}`))             // sealed with other keys: ignored
	m.addTabs(counts, []any{answer(m, `{"k1":50}`)[0], "00"}) // bad MAC: ignored
	m.addTabs(counts, []any{42})                              // not the shape: ignored
	m.addTabs(counts, answer(m, "not json"))                  // ignored
	if counts["k1"] != 3 || counts["k2"] != 2 || counts["k3"] != 0 {
		t.Errorf("counts %v", counts)
	}
	if got := m.RelayDropped(); got != 4 {
		t.Errorf("RelayDropped = %d, want 4 (unsealed, other keys, bad MAC, wrong shape)", got)
	}
}
