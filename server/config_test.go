package server_test

import (
	"context"
	"errors"
	"math"
	"strings"
	"testing"

	"github.com/tandem-go/tandem/server"
)

// Issue 13, item 9: NaN passes every "< 0" check and Inf every bound; a
// rate of either would turn its limit off. server.New refuses them, naming
// the variable, for library users who fill the Config themselves.
func TestNewRefusesNaNAndInfRates(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		given     func(*server.Config)
		expectVar string
	}{
		{"nok, SessionCreateRate NaN", func(c *server.Config) { c.SessionCreateRate = math.NaN() }, "SESSION_CREATE_RATE"},
		{"nok, SessionCreateRate +Inf", func(c *server.Config) { c.SessionCreateRate = math.Inf(1) }, "SESSION_CREATE_RATE"},
		{"nok, SocketEventRate NaN", func(c *server.Config) { c.SocketEventRate = math.NaN() }, "SOCKET_EVENT_RATE"},
		{"nok, SocketEventRate +Inf", func(c *server.Config) { c.SocketEventRate = math.Inf(1) }, "SOCKET_EVENT_RATE"},
		{"nok, SessionCreateGlobalRate NaN", func(c *server.Config) { c.SessionCreateGlobalRate = math.NaN() }, "SESSION_CREATE_GLOBAL_RATE"},
		{"nok, SessionCreateGlobalRate +Inf", func(c *server.Config) { c.SessionCreateGlobalRate = math.Inf(1) }, "SESSION_CREATE_GLOBAL_RATE"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cfg := server.Config{Store: "memory", SessionSecrets: []string{strings.Repeat("k", 32)}}
			tt.given(&cfg)
			srv, err := server.New(cfg)
			if err == nil {
				_ = srv.Close(t.Context())
				t.Fatal("server.New accepted the rate")
			}
			var ce *server.ConfigError
			if !errors.As(err, &ce) || ce.Var != tt.expectVar || strings.Contains(err.Error(), "\n") {
				t.Fatalf("server.New: %v (%T), want a one-line ConfigError naming %s", err, err, tt.expectVar)
			}
		})
	}
}

// Issue 13, item 10: LISTEN_HOST binds both listeners to one host when
// their addresses name none; go tool task dev and cluster use loopback.
func TestListenHost(t *testing.T) {
	t.Parallel()
	secrets := []string{strings.Repeat("k", 32)}
	t.Run("ok, 127.0.0.1 binds both listeners to loopback", func(t *testing.T) {
		t.Parallel()
		srv, err := server.New(server.Config{Store: "memory", SessionSecrets: secrets, Addr: ":0", SPAAddr: ":0", ListenHost: "127.0.0.1"})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = srv.Close(context.Background()) })
		if err := srv.Start(); err != nil {
			t.Fatal(err)
		}
		for _, u := range []string{srv.URL(), srv.SPAURL()} {
			if !strings.HasPrefix(u, "http://127.0.0.1:") {
				t.Errorf("a listener is at %s, want 127.0.0.1", u)
			}
		}
	})
	t.Run("ok, an address with a host keeps it", func(t *testing.T) {
		t.Parallel()
		srv, err := server.New(server.Config{Store: "memory", SessionSecrets: secrets, Addr: "127.0.0.1:0", ListenHost: "::1"})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = srv.Close(context.Background()) })
		if err := srv.Start(); err != nil {
			t.Fatal(err)
		}
		if u := srv.URL(); !strings.HasPrefix(u, "http://127.0.0.1:") {
			t.Errorf("the API is at %s, want 127.0.0.1", u)
		}
	})
	for _, bad := range []string{"127.0.0.1:3000", "example.com", "0.0.0.0.0", "[::1]"} {
		t.Run("nok, "+bad, func(t *testing.T) {
			t.Parallel()
			_, err := server.New(server.Config{Store: "memory", SessionSecrets: secrets, ListenHost: bad})
			var ce *server.ConfigError
			if !errors.As(err, &ce) || ce.Var != "LISTEN_HOST" {
				t.Fatalf("server.New: %v (%T), want a ConfigError naming LISTEN_HOST", err, err)
			}
		})
	}
}
