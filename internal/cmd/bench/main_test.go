package main

import (
	"bytes"
	"encoding/json"
	"os"
	"strconv"
	"testing"

	"github.com/tandem-go/tandem/internal/bench"
	"github.com/tandem-go/tandem/server/sessionio"
)

// TestMain runs the serve mode when run starts this test binary as the
// server's child process, as it starts the bench command.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == "serve" {
		os.Exit(serve(os.Args[2:]))
	}
	os.Exit(m.Run())
}

// The server bench starts takes all of its sockets from the one load
// address: more than a client address may open by default
// (SOCKETS_PER_CLIENT), and every one receives every count. When the cap
// came in, the bench's server kept it, and 872 of 1000 sockets were
// refused.
func TestStartedServerTakesMoreSocketsThanOneAddressMay(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a server and connects sockets")
	}
	sockets := sessionio.DefaultSocketsPerClient + 72
	var out bytes.Buffer
	if code := run([]string{"-sockets", strconv.Itoa(sockets), "-rate", "50", "-duration", "1s", "-grace", "2s"}, &out); code != 0 {
		t.Fatalf("bench exited %d; output %q", code, out.String())
	}
	var res bench.Result
	if err := json.Unmarshal(out.Bytes(), &res); err != nil {
		t.Fatalf("the result %q: %v", out.String(), err)
	}
	if res.Sockets.Connected != sockets || res.Sockets.Failed != 0 {
		t.Errorf("%d of %d sockets connected, %d failed: %v", res.Sockets.Connected, sockets, res.Sockets.Failed, res.Sockets.Errors)
	}
	if res.HTTP.OK == 0 || res.Delivery.Missed != 0 || res.Delivery.Received == 0 {
		t.Errorf("%d requests answered, %d deliveries received, %d missed", res.HTTP.OK, res.Delivery.Received, res.Delivery.Missed)
	}
}
