package server_test

import (
	"context"
	"net"
	"path/filepath"
	"testing"
	"time"

	"github.com/tandem-go/tandem/internal/tandemtest"
	"github.com/tandem-go/tandem/server"
)

// Point 12: sessions in bbolt survive a restart. The client keeps its count
// and its socket reconnects into the same session.
func TestBoltSessionsSurviveARestart(t *testing.T) {
	dir := t.TempDir()
	// The generated secret is kept in the data directory, so the restarted
	// server verifies the old cookies without SESSION_SECRET.
	cfg := server.Config{
		Addr:           freeAddr(t),
		DataDir:        dir,
		Store:          "bolt:" + filepath.Join(dir, "sessions.db"),
		SessionSecrets: []string{},
		Logger:         tandemtest.Logger(t),
	}
	first, err := server.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := first.Start(); err != nil {
		t.Fatal(err)
	}
	node := tandemtest.NewDriver(t)
	c := tandemtest.NewClient(t, first.URL())
	c.Incr()
	c.Incr()
	s := node.Dial(first.URL(), tandemtest.Options{Cookie: c.Cookie(), Reconnect: true})

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := first.Close(ctx); err != nil {
		t.Fatalf("close: %v", err)
	}
	s.Wait("disconnect", wait)

	tandemtest.Start(t, cfg)
	if got := sessionCount(t, c); got != 2 {
		t.Fatalf("count after restart: %d, want 2", got)
	}
	s.Wait("connect", 10*time.Second)
	if got := c.Incr(); got != 3 {
		t.Fatalf("incr after restart: %d, want 3", got)
	}
	if got := s.Count(wait); got != 3 {
		t.Errorf("the reconnected socket got %d, want 3", got)
	}
	if got := s.Incr(); got != 4 {
		t.Errorf("the reconnected socket's incr acked %d, want 4", got)
	}
}

// freeAddr returns a loopback address that was free a moment ago, for a
// server that must come back on the same port.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	return addr
}
