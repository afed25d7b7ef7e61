package server_test

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/tandem-go/tandem/internal/tandemtest"
	"github.com/tandem-go/tandem/server"
	"github.com/tandem-go/tandem/server/sessionio"
	"github.com/tandem-go/tandem/shared"
)

// After a sign-in, the app answers a request that still carries the old
// cookie (sent before the sign-in's answer arrived) with 409 {"error":
// "session renewed"}, sets no cookie and creates nothing; its socket
// handshake is refused the same way. The renewed cookie works, with the
// count carried over.
func TestRenewedCookieIsA409(t *testing.T) {
	srv := tandemtest.Start(t, server.Config{})
	c := tandemtest.NewClient(t, srv.URL())
	if got := c.Incr(); got != 1 {
		t.Fatalf("first incr = %d", got)
	}
	old := c.Cookie()

	// The sign-in, as POST /login does it.
	r := httptest.NewRequest(http.MethodPost, "/login", nil)
	r.Header.Set("Cookie", old)
	w := httptest.NewRecorder()
	if _, err := srv.Sessions().SignIn(w, r, "ada", sessionio.SignInOptions{}); err != nil {
		t.Fatal(err)
	}
	renewed := w.Result().Cookies()[0]

	for _, req := range []struct{ method, path string }{{http.MethodPost, shared.RouteIncr}, {http.MethodGet, shared.RouteSession}} {
		status, body, hdr := c.Do(req.method, req.path)
		if status != http.StatusConflict || errorBody(t, body) != "session renewed" {
			t.Errorf("%s %s with the old cookie: %d %s, want 409 session renewed", req.method, req.path, status, body)
		}
		if sc := hdr.Values("Set-Cookie"); len(sc) != 0 {
			t.Errorf("%s %s with the old cookie set %q", req.method, req.path, sc)
		}
	}
	status, body, _ := c.Do(http.MethodGet, "/socket.io/?EIO=4&transport=polling")
	if status != http.StatusConflict || errorBody(t, body) != "session renewed" {
		t.Errorf("handshake with the old cookie: %d %s, want 409", status, body)
	}

	c.SetCookie(renewed.Name + "=" + renewed.Value)
	if got := c.Incr(); got != 2 {
		t.Errorf("incr with the renewed cookie = %d, want 2 (the count carries over)", got)
	}
	status, body, _ = c.Do(http.MethodGet, shared.RouteSession)
	if status != http.StatusOK {
		t.Errorf("GET /session with the renewed cookie: %d %s", status, body)
	}
}
