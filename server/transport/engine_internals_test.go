package transport

import (
	"testing"

	"github.com/zishang520/socket.io/servers/socket/v3"
)

// The pre-framed broadcast reads three private fields of
// zishang520/socket.io v3.0.6 (engine_internals.go) and relies on the
// adapter's FetchSockets calling back before it returns. Another version
// of the library must fail here, not fall back to the library's path
// unnoticed: re-read Client.WriteToEngine and the engine socket's
// sendPacket and flush, then change the probe.
func TestPreframedInternalsPinned(t *testing.T) {
	if !preframedOK() {
		t.Fatalf("the library's internals are not the ones the pre-framed broadcast was checked against: %+v", internals())
	}
	io := socket.NewServer(nil, nil)
	defer io.Close(nil)
	called := false
	io.Sockets().Adapter().FetchSockets(&socket.BroadcastOptions{})(func([]socket.SocketDetails, error) { called = true })
	if !called {
		t.Fatal("the in-process adapter's FetchSockets no longer calls back before it returns")
	}
}
