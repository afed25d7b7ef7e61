package shared

import (
	"encoding/json"
	"os/exec"
	"strings"
	"testing"
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
