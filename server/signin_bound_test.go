package server_test

import (
	"encoding/json"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gorilla/websocket"

	"github.com/tandem-go/tandem/internal/tandemtest"
	"github.com/tandem-go/tandem/server"
	"github.com/tandem-go/tandem/server/sessionio"
	"github.com/tandem-go/tandem/shared"
)

// The bound on one user's sessions, through real sign-ins (POST /login
// from 101 cookie jars): the 101st sign-in ends the oldest session, whose
// socket hears "revoked" and whose cookie no longer signs in, and never the
// new one nor any other. Memory and bolt keep Created to the nanosecond;
// Redis keeps milliseconds, so two sign-ins in one millisecond tie there
// and it is left out.
func TestSignInBoundRevokesTheOldest(t *testing.T) {
	t.Parallel()
	for _, store := range []string{"memory", "bolt"} {
		t.Run("ok, "+store, func(t *testing.T) {
			t.Parallel()
			cfg := server.Config{SessionCreateBurst: 1000, SessionCreateGlobalRate: sessionio.Off}
			if store == "bolt" {
				cfg.Store = "bolt:" + filepath.Join(t.TempDir(), "sessions.db")
			}
			srv := tandemtest.Start(t, cfg)
			base := srv.URL()
			max := sessionio.DefaultMaxUserSessions

			clients := make([]*tandemtest.Client, max)
			for i := range clients {
				clients[i] = tandemtest.NewClient(t, base)
				login(t, clients[i], "ada", firefoxLinux)
			}
			// A socket of the oldest session, to hear why it ends.
			oldest, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(base, "http")+shared.SocketPath+secEIOQuery+"websocket", secHeader("Cookie", clients[0].Cookie()))
			if err != nil {
				t.Fatal(err)
			}
			defer oldest.Close()
			secWSRead(t, oldest, "0")
			secWSSend(t, oldest, "40")
			secWSRead(t, oldest, "40")
			for _, c := range []*tandemtest.Client{clients[0], clients[max-1]} {
				if got := sessionUser(t, c); got != "ada" {
					t.Fatalf("with %d sessions, a session's user is %q; want ada", max, got)
				}
			}

			newest := tandemtest.NewClient(t, base)
			login(t, newest, "ada", safariIOS)

			got := secWSRead(t, oldest, `42["`+shared.EventSessionEnded+`"`)
			var ev []json.RawMessage
			var ended shared.SessionEnded
			if err := json.Unmarshal([]byte(strings.TrimPrefix(got, "42")), &ev); err != nil || len(ev) != 2 || json.Unmarshal(ev[1], &ended) != nil || ended.Reason != shared.ReasonRevoked {
				t.Fatalf("the oldest session's socket heard %q; want %s %q", got, shared.EventSessionEnded, shared.ReasonRevoked)
			}
			if got := sessionUser(t, clients[0]); got != "" {
				t.Fatalf("the oldest session still signs in as %q", got)
			}
			if got := sessionUser(t, newest); got != "ada" {
				t.Fatalf("the newest session's user is %q; want ada", got)
			}
			for i, c := range clients[1:] {
				if got := sessionUser(t, c); got != "ada" {
					t.Fatalf("session %d of %d's user is %q; want ada (only the oldest ends)", i+2, max+1, got)
				}
			}
			if n := len(devicesOf(t, newest)); n != max {
				t.Fatalf("GET /devices lists %d sessions; want %d", n, max)
			}
		})
	}
}

// sessionUser is the user c's session is signed in as ("" for none).
func sessionUser(t *testing.T, c *tandemtest.Client) string {
	t.Helper()
	status, body, _ := c.Do(http.MethodGet, shared.RouteSession)
	if status != http.StatusOK {
		t.Fatalf("GET /session: %d %s", status, body)
	}
	var info shared.SessionInfo
	if err := json.Unmarshal([]byte(body), &info); err != nil {
		t.Fatalf("GET /session: %q: %v", body, err)
	}
	return info.User
}
