package server_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/tandem-go/tandem/internal/tandemtest"
	"github.com/tandem-go/tandem/server"
	"github.com/tandem-go/tandem/shared"
)

// Issue 6, item 7: the server never sees TLS behind a TLS proxy, so an
// https PUBLIC_URL (or COOKIE_SECURE) makes the cookie Secure, and then
// __Host- prefixed: a cookie without the prefix (which a sibling subdomain
// or a plain-http page could set) is no session. The handshake of a socket
// reads the same cookie.
func TestCookieFollowsPublicURL(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name         string
		given        server.Config
		expectName   string
		expectSecure bool
	}{
		{"ok, http PUBLIC_URL: plain cookie", server.Config{PublicURL: "http://tandem.example"}, "tandem.sid", false},
		{"ok, https PUBLIC_URL: Secure, __Host- cookie", server.Config{PublicURL: "https://tandem.example"}, "__Host-tandem.sid", true},
		{"ok, COOKIE_SECURE: Secure, __Host- cookie", server.Config{CookieSecure: true}, "__Host-tandem.sid", true},
		{"ok, https PUBLIC_URL with SameSite none", server.Config{PublicURL: "https://tandem.example", CookieSameSite: "none"}, "__Host-tandem.sid", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv := tandemtest.Start(t, tt.given)
			status, body, hdr := secDo(t, http.MethodPost, srv.URL()+shared.RouteIncr, nil)
			cookies := (&http.Response{Header: hdr}).Cookies()
			if status != http.StatusOK || body != "1" || len(cookies) != 1 {
				t.Fatalf("POST /incr: %d %q, cookies %v", status, body, hdr.Values("Set-Cookie"))
			}
			ck := cookies[0]
			raw := hdr.Get("Set-Cookie")
			if ck.Name != tt.expectName || ck.Secure != tt.expectSecure || ck.Path != "/" || ck.Domain != "" || !ck.HttpOnly {
				t.Fatalf("Set-Cookie %q: want name %s, Secure %v, Path=/, no Domain, HttpOnly", raw, tt.expectName, tt.expectSecure)
			}
			valid := ck.Name + "=" + ck.Value
			if got := secCount(t, srv.URL(), valid); got != 1 {
				t.Errorf("GET /session with the cookie: count %d, want 1", got)
			}
			// The handshake finds the session: no new cookie.
			status, body, hdr = secPollingHandshake(t, srv.URL(), secHeader("Cookie", valid))
			if status != http.StatusOK || hdr.Get("Set-Cookie") != "" {
				t.Errorf("polling handshake with the cookie: %d %q, Set-Cookie %q", status, body, hdr.Get("Set-Cookie"))
			}
			if !tt.expectSecure {
				return
			}
			// The same signed value under the unprefixed name, as a cookie
			// set by a sibling subdomain would come, is no session, even
			// ahead of the real one.
			for _, given := range []string{"tandem.sid=" + ck.Value, "tandem.sid=" + ck.Value + "; x=y"} {
				status, body, hdr := secDo(t, http.MethodPost, srv.URL()+shared.RouteIncr, secHeader("Cookie", given))
				if status != http.StatusOK || body != "1" || !strings.HasPrefix(hdr.Get("Set-Cookie"), "__Host-tandem.sid=") {
					t.Errorf("POST /incr with %q: %d %q, Set-Cookie %q; want a fresh session", given, status, body, hdr.Get("Set-Cookie"))
				}
			}
			if got := secCount(t, srv.URL(), valid); got != 1 {
				t.Errorf("the session's count is %d, want 1", got)
			}
		})
	}
}
