package webclient

// counter decides which count the page shows. Counts arrive three ways: a
// snapshot (GET /session, a reset on logout), a live shared.EventCurrentCount,
// and the answer to the page's own increment (POST /incr or the incr ack).
// An answer may be older than a live event that overtook it (another tab
// incremented meanwhile), so an answer does not replace a larger count that
// arrived live after its request was sent. Everything else is shown as it
// arrives: a new session legitimately starts again from zero.
type counter struct {
	value  int
	known  bool   // false until the first count arrived
	source string // where value came from, shown beside it

	events    uint64 // live events and resets seen so far
	lastEvent int    // the value of the latest of them
}

// snapshot shows n, whatever came before.
func (c *counter) snapshot(n int, source string) {
	c.value, c.known, c.source = n, true, source
}

// reset shows zero: the session ended. Answers to requests sent before it
// are shown as they come, since they belong to a new session.
func (c *counter) reset(source string) {
	c.snapshot(0, source)
	c.events++
	c.lastEvent = 0
}

// live shows n from a shared.EventCurrentCount.
func (c *counter) live(n int, source string) {
	c.snapshot(n, source)
	c.events++
	c.lastEvent = n
}

// begin marks the start of a request whose answer will be passed to answer.
func (c *counter) begin() uint64 { return c.events }

// answer shows n, the answer to a request started at mark, unless a larger
// live count arrived since the request was sent.
func (c *counter) answer(mark uint64, n int, source string) {
	if c.events != mark && c.lastEvent > n {
		return
	}
	c.snapshot(n, source)
}
