package webclient

import "testing"

func TestCounter(t *testing.T) {
	type step func(c *counter, marks map[string]uint64)
	snapshot := func(n int) step { return func(c *counter, _ map[string]uint64) { c.snapshot(n, "snapshot") } }
	live := func(n int) step { return func(c *counter, _ map[string]uint64) { c.live(n, "live") } }
	reset := func() step { return func(c *counter, _ map[string]uint64) { c.reset("reset") } }
	begin := func(req string) step { return func(c *counter, m map[string]uint64) { m[req] = c.begin() } }
	answer := func(req string, n int) step {
		return func(c *counter, m map[string]uint64) { c.answer(m[req], n, "answer") }
	}

	tests := []struct {
		name   string
		given  []step
		expect int
		source string
	}{
		{name: "ok, snapshot", given: []step{snapshot(4)}, expect: 4, source: "snapshot"},
		{name: "ok, answer alone", given: []step{snapshot(4), begin("a"), answer("a", 5)}, expect: 5, source: "answer"},
		{name: "ok, own event before the answer", given: []step{begin("a"), live(5), answer("a", 5)}, expect: 5, source: "answer"},
		{
			name:   "ok, another tab overtook the answer",
			given:  []step{snapshot(3), begin("a"), live(4), live(5), answer("a", 4)},
			expect: 5, source: "live",
		},
		{
			name:   "ok, an older event does not hide a newer answer",
			given:  []step{snapshot(3), begin("a"), live(4), answer("a", 5)},
			expect: 5, source: "answer",
		},
		{
			name:   "ok, live counts go down in a new session",
			given:  []step{live(9), live(1)},
			expect: 1, source: "live",
		},
		{
			name:   "ok, after a reset the answer of a new session shows",
			given:  []step{live(9), begin("a"), reset(), answer("a", 1)},
			expect: 1, source: "answer",
		},
		{
			name:   "ok, expiry: a snapshot of the new session wins",
			given:  []step{live(9), snapshot(0)},
			expect: 0, source: "snapshot",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var c counter
			marks := map[string]uint64{}
			for _, s := range tt.given {
				s(&c, marks)
			}
			if !c.known || c.value != tt.expect || c.source != tt.source {
				t.Errorf("counter shows %d from %q (known %v), want %d from %q", c.value, c.source, c.known, tt.expect, tt.source)
			}
		})
	}
}
