package server_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/tandem-go/tandem/internal/tandemtest"
	"github.com/tandem-go/tandem/server"
	"github.com/tandem-go/tandem/server/sessionio"
	"github.com/tandem-go/tandem/shared"
)

// capRefused waits for s's connect_error and checks its message.
func capRefused(t *testing.T, s *tandemtest.Socket, want string) {
	t.Helper()
	e := secExpectRefused(t, s)
	var err struct{ Message string }
	e.Arg(t, 0, &err)
	if err.Message != want {
		t.Fatalf("connect_error %q, want %q", err.Message, want)
	}
}

// capDialWhenFree dials until a socket connects (a slot freed by a
// disconnect is given back when the server has handled the disconnect),
// failing after a generous deadline.
func capDialWhenFree(t *testing.T, drv *tandemtest.Driver, base string, o tandemtest.Options) *tandemtest.Socket {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		s := drv.Open(base, o)
		for {
			e, ok := s.Next(time.Until(deadline))
			if !ok {
				t.Fatalf("no socket connected within the deadline; last saw %v", s.Seen())
			}
			if e.Name == "connect" {
				return s
			}
			if e.Name == "connect_error" {
				break
			}
		}
		s.Close()
		if time.Now().After(deadline) {
			t.Fatal("no socket connected within the deadline")
		}
	}
}

// Issue 6, item 5: SOCKETS_PER_SESSION caps the sockets of one session. The
// socket over the cap gets a connect error while another session still
// connects; a disconnect frees its slot, exactly once, through many
// connect/disconnect cycles.
func TestSocketsPerSessionCap(t *testing.T) {
	t.Parallel()
	const capN = 3
	srv := tandemtest.Start(t, server.Config{SocketsPerSession: capN, SocketsPerClient: sessionio.Off})
	drv := tandemtest.NewDriver(t)
	victim := secSession(t, srv.URL(), 0)
	o := tandemtest.Options{Cookie: victim.Cookie()}
	open := make([]*tandemtest.Socket, capN)
	for i := range open {
		open[i] = drv.Dial(srv.URL(), o)
	}
	capRefused(t, drv.Open(srv.URL(), o), "too many sockets for this session")
	// Another session is not affected.
	other := drv.Dial(srv.URL(), tandemtest.Options{Cookie: secSession(t, srv.URL(), 0).Cookie()})
	defer other.Close()
	// Connect/disconnect cycles on the last slot: each disconnect frees it.
	for range 10 {
		open[capN-1].Close()
		open[capN-1] = capDialWhenFree(t, drv, srv.URL(), o)
	}
	// The count is exact: the cap is reached again, not above nor below.
	capRefused(t, drv.Open(srv.URL(), o), "too many sockets for this session")
	if got := open[0].Incr(); got != 1 {
		t.Fatalf("incr on a capped session's socket gave %d, want 1", got)
	}
	for _, s := range open {
		s.Close()
	}
	// All slots freed: capN new sockets connect.
	for range capN {
		capDialWhenFree(t, drv, srv.URL(), o)
	}
}

// Issue 6, item 5: SOCKETS_PER_CLIENT caps the sockets of one client
// address, whatever their sessions. The socket over the cap gets a connect
// error and its handshake creates no session; a disconnect frees a slot.
func TestSocketsPerClientCap(t *testing.T) {
	t.Parallel()
	const capN = 3
	srv := tandemtest.Start(t, server.Config{SocketsPerClient: capN, SocketsPerSession: sessionio.Off})
	drv := tandemtest.NewDriver(t)
	open := make([]*tandemtest.Socket, capN)
	for i := range open {
		// Each socket its own session (no cookie: the handshake makes one).
		open[i] = drv.Dial(srv.URL(), tandemtest.Options{})
	}
	capRefused(t, drv.Open(srv.URL(), tandemtest.Options{}), "too many sockets for this client address")
	capRefused(t, drv.Open(srv.URL(), tandemtest.Options{Cookie: secSession(t, srv.URL(), 0).Cookie()}), "too many sockets for this client address")
	// A handshake at the cap creates no session: no cookie is set.
	status, body, hdr := secDo(t, http.MethodGet, srv.URL()+shared.SocketPath+secEIOQuery+"polling", nil)
	if status != http.StatusOK {
		t.Fatalf("polling handshake at the cap: %d %q", status, body)
	}
	if c := hdr.Values("Set-Cookie"); len(c) != 0 {
		t.Fatalf("a handshake at the cap set a cookie: %q", c)
	}
	for range 10 {
		open[0].Close()
		open[0] = capDialWhenFree(t, drv, srv.URL(), tandemtest.Options{})
	}
	capRefused(t, drv.Open(srv.URL(), tandemtest.Options{}), "too many sockets for this client address")
}
