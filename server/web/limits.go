package web

import (
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"sync"
	"syscall"
	"time"
)

// BodyDeadline bounds the time a client may take to send a request's body:
// once the headers are read, the body must arrive within d, or the read
// fails and the connection is closed after the answer. http.Server's
// ReadTimeout would do that too, but it also stays armed while the handler
// runs, and net/http's background read then cancels the request's context:
// every long poll would end after ReadTimeout. Here the deadline is set per
// request through http.ResponseController, only for requests that have a
// body, and lifted as soon as the body has been read to its end; requests
// without a body (long polls, WebSocket upgrades) are untouched. late, if
// not nil, is called once for each body the deadline cut short (for the
// metrics).
func BodyDeadline(h http.Handler, d time.Duration, late func()) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Body == nil || r.Body == http.NoBody || r.ContentLength == 0 {
			h.ServeHTTP(w, r)
			return
		}
		rc := http.NewResponseController(w)
		if err := rc.SetReadDeadline(time.Now().Add(d)); err != nil {
			h.ServeHTTP(w, r) // not a net/http connection: nothing to bound
			return
		}
		r2 := *r
		r2.Body = &deadlineBody{ReadCloser: r.Body, rc: rc, late: late}
		h.ServeHTTP(w, &r2)
	})
}

// deadlineBody lifts the read deadline once the body has been read whole,
// so that net/http's background read (which notices a client going away
// during a long handler) is not cut short.
type deadlineBody struct {
	io.ReadCloser
	rc   *http.ResponseController
	once sync.Once
	late func() // called once when the deadline cut the body short; may be nil
	cut  sync.Once
}

func (b *deadlineBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if errors.Is(err, io.EOF) {
		b.once.Do(func() { _ = b.rc.SetReadDeadline(time.Time{}) })
	}
	if b.late != nil && errors.Is(err, os.ErrDeadlineExceeded) {
		b.cut.Do(b.late)
	}
	return n, err
}

// LimitConns bounds the connections one client address may hold open at
// once: past max, a new connection is answered 429 and closed at once, so
// that one address cannot hold every file descriptor (slow clients,
// abandoned sockets). Connections from trusted proxies carry many clients
// and are not counted; the proxy in front bounds those. name is
// ClientAddr.Peer. refused, if not nil, is called for each connection
// refused (for the metrics).
func LimitConns(ln net.Listener, max int, name func(net.Addr) (string, bool), refused func()) net.Listener {
	if refused == nil {
		refused = func() {}
	}
	return &connLimiter{Listener: ln, max: max, name: name, refused: refused, open: map[string]int{}}
}

type connLimiter struct {
	net.Listener
	max     int
	name    func(net.Addr) (string, bool)
	refused func()

	mu   sync.Mutex
	open map[string]int
}

// tooManyConns is the whole answer to a connection over the bound.
var tooManyConns = func() string {
	body := `{"error":"too many connections from this address; retry later"}` + "\n"
	return "HTTP/1.1 429 Too Many Requests\r\n" +
		"Content-Type: application/json; charset=utf-8\r\n" +
		"Retry-After: 1\r\n" +
		"Connection: close\r\n" +
		"Content-Length: " + strconv.Itoa(len(body)) + "\r\n\r\n" + body
}()

func (l *connLimiter) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		key, trusted := l.name(c.RemoteAddr())
		if trusted {
			return c, nil
		}
		l.mu.Lock()
		if l.open[key] >= l.max {
			l.mu.Unlock()
			l.refused()
			go refuse(c)
			continue
		}
		l.open[key]++
		l.mu.Unlock()
		return &limitedConn{Conn: c, release: func() { l.release(key) }}, nil
	}
}

func (l *connLimiter) release(key string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.open[key]--; l.open[key] <= 0 {
		delete(l.open, key)
	}
}

// refuse answers 429 and closes, without reading: the client may not have
// sent anything yet, and must not be waited for.
func refuse(c net.Conn) {
	_ = c.SetWriteDeadline(time.Now().Add(time.Second))
	_, _ = io.WriteString(c, tooManyConns)
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.CloseWrite()
		// Drain briefly, so that the close does not reset the connection
		// before the client read the answer.
		_ = c.SetReadDeadline(time.Now().Add(time.Second))
		_, _ = io.Copy(io.Discard, io.LimitReader(c, 64<<10))
	}
	_ = c.Close()
}

// limitedConn gives its slot back once, on its first Close (net/http and a
// hijacking WebSocket library may both close it).
type limitedConn struct {
	net.Conn
	once    sync.Once
	release func()
}

func (c *limitedConn) Close() error {
	c.once.Do(c.release)
	return c.Conn.Close()
}

// SyscallConn is the wrapped connection's, so that a hijacked WebSocket
// connection's transport (server/transport) still finds its descriptor:
// for non-blocking writes and the epoll reader. limitedConn buffers
// nothing of its own.
func (c *limitedConn) SyscallConn() (syscall.RawConn, error) {
	sc, ok := c.Conn.(syscall.Conn)
	if !ok {
		return nil, errors.ErrUnsupported
	}
	return sc.SyscallConn()
}
