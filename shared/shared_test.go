package shared

import (
	"encoding/json"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// TestImportsStayPortable fails when shared (or anything it imports) reaches
// outside the standard library: the package is compiled into the WebAssembly
// client, which must not pull in Echo, gorilla, Socket.IO or server code.
func TestImportsStayPortable(t *testing.T) {
	for _, goos := range []string{"linux", "js"} {
		cmd := exec.Command("go", "list", "-deps", "-f", "{{if not .Standard}}{{.ImportPath}}{{end}}", ".")
		cmd.Env = append(cmd.Environ(), "GOOS="+goos)
		if goos == "js" {
			cmd.Env = append(cmd.Env, "GOARCH=wasm")
		}
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("GOOS=%s go list: %v\n%s", goos, err, out)
		}
		for _, dep := range strings.Fields(string(out)) {
			if dep != "github.com/tandem-go/tandem/shared" {
				t.Errorf("GOOS=%s: shared depends on %s; it may import the standard library only", goos, dep)
			}
		}
	}
}

func TestPayloadsMatchTheContract(t *testing.T) {
	tests := []struct {
		name   string
		given  any
		expect string
	}{
		{"ok, session ended", SessionEnded{Reason: ReasonLogout}, `{"reason":"logout"}`},
		{"ok, session info", SessionInfo{Count: 3}, `{"count":3}`},
		{"ok, signed-in session info", SessionInfo{Count: 3, User: "ada"}, `{"count":3,"user":"ada"}`},
		{"ok, revoked", SessionEnded{Reason: ReasonRevoked}, `{"reason":"revoked"}`},
		{"ok, expired", SessionEnded{Reason: ReasonExpired}, `{"reason":"expired"}`},
		{"ok, login", LoginRequest{User: "ada", Remember: true}, `{"user":"ada","remember":true}`},
		{"ok, login info", LoginInfo{User: "ada", Count: 2}, `{"user":"ada","count":2}`},
		{"ok, revoke", RevokeRequest{ID: "x"}, `{"id":"x"}`},
		{"ok, logout everywhere", LogoutRequest{Everywhere: true}, `{"everywhere":true}`},
		{"ok, devices", Devices{Devices: []Device{{
			ID: "d1", Current: true, Agent: "Firefox on Linux", Tabs: 2,
			Created:  time.Date(2026, 12, 1, 20, 0, 0, 0, time.UTC),
			LastSeen: time.Date(2026, 12, 1, 21, 30, 5, 0, time.UTC),
		}}}, `{"devices":[{"id":"d1","current":true,"created":"2026-12-01T20:00:00Z","lastSeen":"2026-12-01T21:30:05Z","agent":"Firefox on Linux","tabs":2}]}`},
		{"ok, no devices is an empty list", Devices{Devices: []Device{}}, `{"devices":[]}`},
		{"ok, error body", ErrorBody{Error: "nope"}, `{"error":"nope"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := json.Marshal(tt.given)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tt.expect {
				t.Errorf("got %s, want %s", got, tt.expect)
			}
		})
	}
}

func TestValidUser(t *testing.T) {
	tests := []struct {
		name   string
		given  string
		expect bool
	}{
		{"ok, letters", "ada", true},
		{"ok, every allowed kind", "Ada.Lovelace_1815-x", true},
		{"ok, one character", "a", true},
		{"ok, 64 characters", strings.Repeat("a", 64), true},
		{"nok, empty", "", false},
		{"nok, 65 characters", strings.Repeat("a", 65), false},
		{"nok, space", "ada l", false},
		{"nok, markup", "<b>ada</b>", false},
		{"nok, non-ASCII letter", "adà", false},
		{"nok, slash", "a/b", false},
		{"nok, NUL", "a\x00", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := ValidUser(tt.given); got != tt.expect {
				t.Errorf("ValidUser(%q) = %v, want %v", tt.given, got, tt.expect)
			}
		})
	}
}
