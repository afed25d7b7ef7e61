package server_test

import (
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
