package server_test

import (
	"context"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tandem-go/tandem/internal/tandemtest"
	"github.com/tandem-go/tandem/server"
	"github.com/tandem-go/tandem/shared"
)

// Point 12: sessions in bbolt survive a restart. The client keeps its count
// and its socket reconnects into the same session.
func TestBoltSessionsSurviveARestart(t *testing.T) {
	dir := t.TempDir()
	port := tandemtest.HoldPort(t) // the socket reconnects to the same address
	// The generated secret is kept in the data directory, so the restarted
	// server verifies the old cookies without SESSION_SECRET.
	cfg := server.Config{
		Listener:       port.Listener(),
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

	cfg.Listener = port.Listener()
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

// Point 13: SESSION_SECRET rotates. A new key put first signs new cookies
// while the old one still verifies existing ones; once the old key is
// dropped, its cookies are no session.
func TestSecretRotation(t *testing.T) {
	dir := t.TempDir()
	oldKey, newKey := strings.Repeat("o", 32), strings.Repeat("n", 32)
	boot := func(keys ...string) *server.Server {
		return tandemtest.Start(t, server.Config{
			Store:          "bolt:" + filepath.Join(dir, "sessions.db"),
			SessionSecrets: keys,
		})
	}
	stop := func(s *server.Server) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := s.Close(ctx); err != nil {
			t.Fatal(err)
		}
	}

	srv := boot(oldKey)
	old := tandemtest.NewClient(t, srv.URL())
	old.Incr()
	old.Incr()
	stale := old.Cookie() // a client that will not come back during the rotation
	stop(srv)

	srv = boot(newKey, oldKey)
	old.Base = srv.URL()
	status, body, hdr := old.Do(http.MethodGet, shared.RouteSession)
	if status != http.StatusOK || body != `{"count":2}`+"\n" {
		t.Fatalf("a cookie signed with the old key after rotation: %d %q, want count 2", status, body)
	}
	// Issue 6, item 11: it comes back signed with the new key, for the same
	// session.
	if !strings.HasPrefix(hdr.Get("Set-Cookie"), "tandem.sid=") || old.Cookie() == stale {
		t.Fatalf("the old-key cookie was not re-issued: Set-Cookie %q", hdr.Get("Set-Cookie"))
	}
	if got := sessionCount(t, old); got != 2 {
		t.Fatalf("the re-issued cookie: count %d, want 2", got)
	}
	fresh := tandemtest.NewClient(t, srv.URL())
	fresh.Incr()
	if _, _, hdr := fresh.Do(http.MethodGet, shared.RouteSession); hdr.Get("Set-Cookie") != "" {
		t.Errorf("a cookie signed with the current key was re-issued: %q", hdr.Get("Set-Cookie"))
	}
	stop(srv)

	srv = boot(newKey)
	old.Base, fresh.Base = srv.URL(), srv.URL()
	if got := sessionCount(t, fresh); got != 1 {
		t.Errorf("a cookie signed with the new key after the old was dropped: count %d, want 1", got)
	}
	if got := old.Incr(); got != 3 {
		t.Errorf("a re-issued cookie after the old key was dropped: incr %d, want 3 (the same session)", got)
	}
	gone := tandemtest.NewClient(t, srv.URL())
	gone.SetCookie(stale)
	if got := gone.Incr(); got != 1 {
		t.Errorf("a cookie signed with a dropped key: incr %d, want a new session's 1", got)
	}
}
