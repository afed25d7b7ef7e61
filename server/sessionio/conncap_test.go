package sessionio

import "testing"

// A slot is given back exactly once, whichever of abandon and free comes
// first or how often; a full client is refused and another is not.
func TestConnCapsSlots(t *testing.T) {
	c := newConnCaps(2)
	a, ok := c.take("a")
	if !ok {
		t.Fatal("first slot refused")
	}
	b, ok := c.take("a")
	if !ok {
		t.Fatal("second slot refused")
	}
	if _, ok := c.take("a"); ok {
		t.Fatal("a third slot was taken past the cap of 2")
	}
	if _, ok := c.take("b"); !ok {
		t.Fatal("another client was refused")
	}
	a.abandon() // the engine refused that handshake
	a.abandon()
	a.free()
	if got := c.count("a"); got != 1 {
		t.Fatalf("count %d after one slot came back, want 1", got)
	}
	b.state.Store(slotAdopted) // as adopt does
	b.abandon()                // the handshake request ends: the socket keeps it
	if got := c.count("a"); got != 1 {
		t.Fatalf("count %d after abandoning an adopted slot, want 1", got)
	}
	b.free()
	b.free()
	if got := c.count("a"); got != 0 {
		t.Fatalf("count %d after the socket closed, want 0", got)
	}
	if n := len(c.byClient); n != 1 { // only "b" is left
		t.Errorf("the table holds %d clients, want 1", n)
	}
}
