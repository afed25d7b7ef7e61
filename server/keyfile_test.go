package server_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tandem-go/tandem/internal/tandemtest"
	"github.com/tandem-go/tandem/server"
)

// Issue 6, item 11: the signing key kept in the data directory is refused
// at start when other users can read (or write) it, naming SESSION_SECRET
// and the fix; one made by the server has mode 0600.
func TestKeyFileModes(t *testing.T) {
	t.Parallel()
	key := strings.Repeat("k", 64) + "\n"
	tests := []struct {
		name     string
		given    os.FileMode // the key file's mode; 0: no file
		expectOK bool
	}{
		{"ok, no file: one is generated", 0, true},
		{"ok, 0600", 0o600, true},
		{"ok, 0400", 0o400, true},
		{"nok, 0644", 0o644, false},
		{"nok, 0640 (group)", 0o640, false},
		{"nok, 0602 (others may write)", 0o602, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			path := filepath.Join(dir, "session.key")
			if tt.given != 0 {
				if err := os.WriteFile(path, []byte(key), 0o600); err != nil {
					t.Fatal(err)
				}
				if err := os.Chmod(path, tt.given); err != nil {
					t.Fatal(err)
				}
			}
			srv, err := server.New(server.Config{
				Addr:    "127.0.0.1:0",
				DataDir: dir,
				Store:   "bolt:" + filepath.Join(dir, "sessions.db"),
				Logger:  tandemtest.Logger(t),
			})
			if !tt.expectOK {
				if err == nil {
					_ = srv.Close(t.Context())
					t.Fatal("server.New accepted a key file others can read")
				}
				var ce *server.ConfigError
				if !errors.As(err, &ce) || ce.Var != "SESSION_SECRET" || !strings.Contains(ce.Problem, "chmod 600") {
					t.Fatalf("server.New: %v; want a SESSION_SECRET error saying chmod 600", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("server.New: %v", err)
			}
			_ = srv.Close(t.Context())
			fi, err := os.Stat(path)
			if err != nil {
				t.Fatal(err)
			}
			if tt.given == 0 && fi.Mode().Perm() != 0o600 {
				t.Errorf("the generated key file has mode %04o, want 0600", fi.Mode().Perm())
			}
		})
	}
}
