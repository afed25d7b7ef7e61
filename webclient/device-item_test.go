package webclient

import (
	"testing"
	"time"

	"github.com/tandem-go/tandem/shared"
)

func TestTabsText(t *testing.T) {
	tests := []struct {
		name   string
		given  int
		expect string
	}{
		{"ok, none", 0, "no open tab"},
		{"ok, one", 1, "1 tab"},
		{"ok, several", 3, "3 tabs"},
		{"nok, negative is none", -1, "no open tab"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tabsText(tt.given); got != tt.expect {
				t.Errorf("tabsText(%d) = %q, want %q", tt.given, got, tt.expect)
			}
		})
	}
}

func TestLastSeenText(t *testing.T) {
	now := time.Date(2026, 12, 1, 21, 0, 0, 0, time.UTC)
	tests := []struct {
		name   string
		given  time.Time
		expect string
	}{
		{"ok, seconds ago", now.Add(-20 * time.Second), "active now"},
		{"ok, a clock a little ahead", now.Add(2 * time.Second), "active now"},
		{"ok, minutes", now.Add(-5*time.Minute - 10*time.Second), "seen 5 min ago"},
		{"ok, hours", now.Add(-3 * time.Hour), "seen 3 h ago"},
		{"nok, never", time.Time{}, "never seen"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := lastSeenText(now, tt.given); got != tt.expect {
				t.Errorf("lastSeenText = %q, want %q", got, tt.expect)
			}
		})
	}
}

func TestEndedText(t *testing.T) {
	tests := []struct {
		name   string
		given  string
		expect string
	}{
		{"ok, logout", shared.ReasonLogout, "You signed out"},
		{"ok, revoked", shared.ReasonRevoked, "Signed out from another device"},
		{"ok, expired", shared.ReasonExpired, "Your session expired"},
		{"nok, unknown reason reads as a sign-out", "other", "You signed out"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := endedText(tt.given); got != tt.expect {
				t.Errorf("endedText(%q) = %q, want %q", tt.given, got, tt.expect)
			}
		})
	}
}
