//go:build linux

package transport

import (
	"bufio"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// The epoll reader. One poller per process (like Go's own netpoller: the
// descriptors of every server's connections share it) waits for its
// connections' bytes on one goroutine. Each registration is one-shot
// (EPOLLONESHOT): an event disarms it, the poller starts a goroutine that
// reads until no byte is left, and that goroutine re-arms it as the last
// thing it does. So at most one goroutine reads a connection at a time and
// its messages reach the engine in order; the registration is
// level-triggered, so bytes that arrive between the last read and the
// re-arm fire at once. An idle connection holds no goroutine, no bufio
// buffer and no message buffer.
//
// Registrations are keyed by an id of the poller's, never by the
// descriptor's number: every epoll_ctl goes through RawConn.Control, which
// holds the descriptor open for its duration and fails once the connection
// is closed, and a connection leaves epoll (EPOLL_CTL_DEL, then out of the
// id table) before it is closed; an event that was already on its way for
// a dropped id finds nothing in the table.

// epollConn is a WebSocket's state in the poller.
type epollConn struct {
	p  *poller // nil: not polled; set under wmu before the registration
	id uint64
	br *bufio.Reader // while a read goroutine runs

	// reading: a read goroutine owns the Reader. Set by the poller before it
	// starts one, cleared by it before it re-arms; the atomic orders the
	// goroutines' use of the Reader, which the kernel's events alone do
	// not (for the race detector either).
	reading atomic.Bool
	parked  atomic.Int64 // when the last read goroutine ended (UnixNano)
}

// poller is the process's epoll instance and its registrations.
type poller struct {
	epfd int

	mu     sync.Mutex
	next   uint64
	conns  map[uint64]*WebSocket
	idle   time.Duration // the shortest idle timeout of a registration; 0: none
	broken bool          // epoll_wait failed: no more registrations
}

var (
	pollerOnce sync.Once
	thePoller  *poller
	pollerErr  error
)

// readBuffers are the bufio readers of connections being read.
var readBuffers = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, readBufferSize) }}

// events: EPOLLHUP and EPOLLERR are reported without asking; each event,
// whatever it is, makes a read goroutine that finds out by reading.
const events = unix.EPOLLIN | unix.EPOLLRDHUP | unix.EPOLLONESHOT

func sharedPoller() (*poller, error) {
	pollerOnce.Do(func() {
		fd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
		if err != nil {
			pollerErr = fmt.Errorf("transport: epoll_create1: %w", err)
			return
		}
		thePoller = &poller{epfd: fd, conns: map[uint64]*WebSocket{}}
		go thePoller.wait()
	})
	return thePoller, pollerErr
}

// poll registers the connection with the poller; false: it is read by the
// goroutine reader instead.
func (w *WebSocket) poll() bool {
	if goroutineReader.Load() || w.raw == nil {
		return false
	}
	p, err := sharedPoller()
	if err != nil {
		return false
	}
	w.rd.ready = w.readable
	w.ep.parked.Store(time.Now().UnixNano())
	w.wmu.Lock()
	defer w.wmu.Unlock()
	if w.gone {
		w.rd.ready = nil
		return false // the goroutine reader sees the end and closes the transport
	}
	p.mu.Lock()
	if p.broken {
		p.mu.Unlock()
		w.rd.ready = nil
		return false
	}
	p.next++
	w.ep.p, w.ep.id = p, p.next
	p.conns[w.ep.id] = w
	if w.idle > 0 && (p.idle == 0 || w.idle < p.idle) {
		p.idle = w.idle
	}
	p.mu.Unlock()
	if err := p.ctl(w, unix.EPOLL_CTL_ADD); err != nil {
		p.mu.Lock()
		delete(p.conns, w.ep.id)
		p.mu.Unlock()
		w.ep.p = nil
		w.rd.ready = nil
		return false
	}
	return true
}

// unpollLocked takes the connection out of epoll; it reports whether it
// was polled. Called with wmu held, before the connection is closed.
func (w *WebSocket) unpollLocked() bool {
	p := w.ep.p
	if p == nil {
		return false
	}
	_ = p.ctl(w, unix.EPOLL_CTL_DEL) // fails only if already closed: then it left epoll with its descriptor
	p.mu.Lock()
	delete(p.conns, w.ep.id)
	p.mu.Unlock()
	return true
}

// ctl applies op to the connection's registration, with its descriptor held
// open; it fails if the connection is closed.
func (p *poller) ctl(w *WebSocket, op int) error {
	var cerr error
	err := w.raw.Control(func(fd uintptr) {
		ev := unix.EpollEvent{Events: events, Fd: int32(uint32(w.ep.id)), Pad: int32(uint32(w.ep.id >> 32))}
		cerr = unix.EpollCtl(p.epfd, op, int(fd), &ev)
	})
	if err != nil {
		return err
	}
	return cerr
}

// wait is the poller's goroutine: it starts a read goroutine for each
// connection with an event, and closes connections idle for longer than
// their idle timeout (the goroutine reader's read deadline).
func (p *poller) wait() {
	evs := make([]unix.EpollEvent, 256)
	ready := make([]*WebSocket, 0, len(evs))
	lastSweep := time.Now()
	for {
		timeout := -1
		p.mu.Lock()
		idle := p.idle
		p.mu.Unlock()
		if idle > 0 {
			timeout = int(sweepEvery(idle) / time.Millisecond)
		}
		n, err := unix.EpollWait(p.epfd, evs, timeout)
		if err != nil && !errors.Is(err, unix.EINTR) {
			// Only a bug of ours (EBADF, EFAULT, EINVAL) gets here. The
			// server keeps serving: its polled connections are dropped (their
			// clients reconnect) and new ones use the goroutine reader.
			p.fail()
			return
		}
		ready = ready[:0]
		p.mu.Lock()
		for _, ev := range evs[:max(n, 0)] {
			id := uint64(uint32(ev.Fd)) | uint64(uint32(ev.Pad))<<32
			if w := p.conns[id]; w != nil {
				ready = append(ready, w)
			}
		}
		p.mu.Unlock()
		for _, w := range ready {
			// One event per arming: no read goroutine can be running.
			if w.ep.reading.CompareAndSwap(false, true) {
				go w.readPolled()
			}
		}
		clear(ready)
		if idle > 0 && time.Since(lastSweep) >= sweepEvery(idle) {
			lastSweep = time.Now()
			p.sweep()
		}
	}
}

// fail stops the poller for good: no new registration, every registered
// connection dropped.
func (p *poller) fail() {
	p.mu.Lock()
	p.broken = true
	all := make([]*WebSocket, 0, len(p.conns))
	for _, w := range p.conns {
		all = append(all, w)
	}
	p.mu.Unlock()
	for _, w := range all {
		w.wmu.Lock()
		w.dropLocked()
		w.wmu.Unlock()
	}
}

// sweepEvery is how often idle connections are looked for: the idle
// timeout is kept to within a quarter of itself (a second at most).
func sweepEvery(idle time.Duration) time.Duration {
	return min(max(idle/4, 10*time.Millisecond), time.Second)
}

// sweep drops the connections no goroutine reads that have had no byte for
// longer than their idle timeout, as the goroutine reader's read deadline
// would.
func (p *poller) sweep() {
	now := time.Now().UnixNano()
	var stale []*WebSocket
	p.mu.Lock()
	for _, w := range p.conns {
		if w.idle > 0 && !w.ep.reading.Load() && now-w.ep.parked.Load() > int64(w.idle) {
			stale = append(stale, w)
		}
	}
	p.mu.Unlock()
	for _, w := range stale {
		w.wmu.Lock()
		w.dropLocked()
		w.wmu.Unlock()
	}
}

// readable is the Reader's ready: bytes in the buffer, or, with a
// non-blocking peek, in the socket (or its end, or an error, which the
// read then returns).
func (w *WebSocket) readable() bool {
	if w.ep.br.Buffered() > 0 {
		return true
	}
	more := true
	err := w.raw.Read(func(fd uintptr) bool {
		var b [1]byte
		for {
			_, _, err := unix.Recvfrom(int(fd), b[:], unix.MSG_PEEK|unix.MSG_DONTWAIT)
			if errors.Is(err, unix.EINTR) {
				continue
			}
			more = !errors.Is(err, unix.EAGAIN)
			return true
		}
	})
	return more || err != nil
}

// readsPerTurn is how many messages a read goroutine hands to the engine
// before it lets other goroutines run.
const readsPerTurn = 16

// readPolled is a read goroutine: it reads until no byte is left (a frame
// cut short waits for its rest, under the read deadline), lets go of its
// buffers and re-arms the registration.
func (w *WebSocket) readPolled() {
	br := readBuffers.Get().(*bufio.Reader)
	br.Reset(w.conn)
	w.ep.br = br
	w.rd.r = br
	var err error
	for n := 1; ; n++ {
		if n%readsPerTurn == 0 {
			// A connection that always has bytes (a flood) must not keep
			// its P from the poller and the other connections' readers.
			runtime.Gosched()
		}
		if w.idle > 0 {
			_ = w.conn.SetReadDeadline(time.Now().Add(w.idle))
		}
		var m Message
		if m, err = w.rd.Next(); err != nil {
			break
		}
		w.handle(m)
	}
	w.rd.r, w.ep.br = nil, nil
	br.Reset(nil) // empty unless the connection is ending
	readBuffers.Put(br)
	w.rd.release()
	if err != errNoFrame {
		w.readEnded(err)
		w.OnClose()
		return
	}
	if w.idle > 0 {
		_ = w.conn.SetReadDeadline(time.Time{})
	}
	w.ep.parked.Store(time.Now().UnixNano())
	w.ep.reading.Store(false)
	// The last use of the connection's read state: from here another read
	// goroutine may run.
	if err := w.ep.p.ctl(w, unix.EPOLL_CTL_MOD); err != nil {
		// Closed meanwhile (or taken out of epoll to be closed).
		w.wmu.Lock()
		w.dropLocked()
		w.wmu.Unlock()
		w.OnClose()
	}
}

// polledLocked reports whether the connection is registered with the
// poller (for the tests). Called with wmu held.
func (w *WebSocket) polledLocked() bool { return w.ep.p != nil && !w.gone }

// polledConns is the number of registered connections (for the tests).
func polledConns() int {
	p, err := sharedPoller()
	if err != nil {
		return 0
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.conns)
}
