package webclient

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/tandem-go/tandem/shared"
)

// apiServer answers every request with status and body, and records the
// request it got.
func apiServer(tb testing.TB, status int, contentType, body string) (*apiClient, *http.Request) {
	tb.Helper()
	got := new(http.Request)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		*got = *r.Clone(context.Background())
		if contentType != "" {
			w.Header().Set("Content-Type", contentType)
		}
		w.WriteHeader(status)
		_, _ = w.Write([]byte(body))
	}))
	tb.Cleanup(srv.Close)
	return newAPIClient(srv.URL+"/", srv.Client()), got
}

func TestAPIIncr(t *testing.T) {
	tests := []struct {
		name        string
		status      int
		contentType string
		body        string
		expect      int
		expectErr   string
	}{
		{name: "ok, count", status: 200, contentType: "text/plain", body: "7", expect: 7},
		{name: "ok, trailing newline", status: 200, contentType: "text/plain", body: "12\n", expect: 12},
		{name: "nok, not a number", status: 200, body: "seven", expectErr: `POST /incr: bad answer "seven": want a count`},
		{name: "nok, negative", status: 200, body: "-1", expectErr: `POST /incr: bad answer "-1": want a count`},
		{
			name: "nok, cross-origin refused", status: 403, contentType: "application/json",
			body: `{"error":"origin not allowed"}`, expectErr: "POST /incr: 403 Forbidden: origin not allowed",
		},
		{
			name: "nok, too many sessions", status: 429, contentType: "application/json",
			body: `{"error":"too many new sessions"}`, expectErr: "POST /incr: 429 Too Many Requests: too many new sessions",
		},
		{
			name: "nok, store unavailable", status: 503, contentType: "application/json",
			body: `{"error":"store unavailable"}`, expectErr: "POST /incr: 503 Service Unavailable: store unavailable",
		},
		{name: "nok, plain text error", status: 500, body: "boom", expectErr: "POST /incr: 500 Internal Server Error: boom"},
		{name: "nok, html error page", status: 502, body: "<html>bad gateway</html>", expectErr: "POST /incr: 502 Bad Gateway"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, got := apiServer(t, tt.status, tt.contentType, tt.body)
			n, err := c.incr(context.Background())
			if tt.expectErr != "" {
				if err == nil || err.Error() != tt.expectErr {
					t.Fatalf("err %v, want %q", err, tt.expectErr)
				}
			} else if err != nil || n != tt.expect {
				t.Fatalf("incr = %d, %v; want %d", n, err, tt.expect)
			}
			if got.Method != http.MethodPost || got.URL.Path != shared.RouteIncr {
				t.Errorf("request %s %s, want POST %s", got.Method, got.URL.Path, shared.RouteIncr)
			}
		})
	}
}

func TestAPISession(t *testing.T) {
	tests := []struct {
		name      string
		status    int
		body      string
		expect    int
		user      string
		expectErr string
	}{
		{name: "ok, count", status: 200, body: `{"count":3}`, expect: 3},
		{name: "ok, new session", status: 200, body: `{"count":0}`, expect: 0},
		{name: "ok, signed in", status: 200, body: `{"count":2,"user":"ada"}`, expect: 2, user: "ada"},
		{name: "nok, a user name outside the allowed form", status: 200, body: `{"count":2,"user":"<b>"}`, expectErr: `GET /session: bad answer: user "<b>"`},
		{name: "nok, not json", status: 200, body: `3`, expectErr: "GET /session: bad answer: json: cannot unmarshal number into Go value of type shared.SessionInfo"},
		{name: "nok, negative", status: 200, body: `{"count":-2}`, expectErr: "GET /session: bad answer: negative count -2"},
		{name: "nok, store down", status: 503, body: `{"error":"store unavailable"}`, expectErr: "GET /session: 503 Service Unavailable: store unavailable"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, got := apiServer(t, tt.status, "application/json", tt.body)
			info, err := c.session(context.Background())
			if tt.expectErr != "" {
				if err == nil || err.Error() != tt.expectErr {
					t.Fatalf("err %v, want %q", err, tt.expectErr)
				}
			} else if err != nil || info.Count != tt.expect || info.User != tt.user {
				t.Fatalf("session = %+v, %v; want %d, %q", info, err, tt.expect, tt.user)
			}
			if got.Method != http.MethodGet || got.URL.Path != shared.RouteSession {
				t.Errorf("request %s %s", got.Method, got.URL.Path)
			}
		})
	}
}

func TestAPILogout(t *testing.T) {
	c, got := apiServer(t, http.StatusNoContent, "", "")
	if err := c.logout(context.Background(), false); err != nil {
		t.Fatalf("logout: %v", err)
	}
	if got.Method != http.MethodPost || got.URL.Path != shared.RouteLogout {
		t.Errorf("request %s %s", got.Method, got.URL.Path)
	}

	c, _ = apiServer(t, http.StatusForbidden, "application/json", `{"error":"origin not allowed"}`)
	var ae *apiError
	if err := c.logout(context.Background(), false); !errors.As(err, &ae) || ae.Status != 403 {
		t.Fatalf("logout refused: %v, want an *apiError with 403", err)
	}
}

func TestAPIUnreachable(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close() // nothing listens there any more

	_, err := newAPIClient(url, nil).incr(context.Background())
	var ue *unreachableError
	if !errors.As(err, &ue) {
		t.Fatalf("err %v (%T), want *unreachableError", err, err)
	}
	if !strings.HasPrefix(err.Error(), "POST /incr: the server cannot be reached (") || strings.Contains(err.Error(), url) {
		t.Errorf("message %q: want the request named once, without the URL repeated", err)
	}
}

func TestAPIRequestsAskForCredentials(t *testing.T) {
	c := newAPIClient("http://api.example", nil)
	c.fetch = true // as in the browser
	for _, route := range []string{shared.RouteSession, shared.RouteIncr, shared.RouteLogout, shared.RouteLogin, shared.RouteDevices, shared.RouteDevicesRevoke} {
		req, err := c.newRequest(context.Background(), http.MethodPost, route, nil)
		if err != nil {
			t.Fatal(err)
		}
		if h := req.Header.Get(fetchCredentials); h != "include" {
			t.Errorf("%s: %s = %q, want include", route, fetchCredentials, h)
		}
		if h := req.Header.Get(fetchMode); h != "cors" {
			t.Errorf("%s: %s = %q, want cors", route, fetchMode, h)
		}
		if req.URL.String() != "http://api.example"+route {
			t.Errorf("URL %s", req.URL)
		}
	}
}

// bodyServer answers every request with status and body, and records the
// request's method, path and body.
func bodyServer(tb testing.TB, status int, body string) (*apiClient, *recorded) {
	tb.Helper()
	got := &recorded{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got.method, got.path, got.body, got.contentType = r.Method, r.URL.Path, string(b), r.Header.Get("Content-Type")
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_, _ = w.Write([]byte(body))
	}))
	tb.Cleanup(srv.Close)
	return newAPIClient(srv.URL, srv.Client()), got
}

type recorded struct{ method, path, body, contentType string }

func TestAPILogin(t *testing.T) {
	c, got := bodyServer(t, 200, `{"user":"ada","count":4}`)
	info, err := c.login(context.Background(), "ada", true)
	if err != nil || info != (shared.LoginInfo{User: "ada", Count: 4}) {
		t.Fatalf("login = %+v, %v", info, err)
	}
	if got.method != http.MethodPost || got.path != shared.RouteLogin || got.body != `{"user":"ada","remember":true}` || got.contentType != "application/json" {
		t.Errorf("request %+v", got)
	}

	c, _ = bodyServer(t, 400, `{"error":"user: 1 to 64 letters, digits, '.', '_' or '-'"}`)
	if _, err := c.login(context.Background(), "a b", false); err == nil || !strings.Contains(err.Error(), "POST /login: 400 Bad Request: user: 1 to 64") {
		t.Errorf("refused login: %v", err)
	}
	c, _ = bodyServer(t, 200, `{"user":"<i>","count":4}`)
	if _, err := c.login(context.Background(), "ada", false); err == nil {
		t.Error("an answer with a user name outside the allowed form was taken")
	}
}

func TestAPIDevices(t *testing.T) {
	c, got := bodyServer(t, 200, `{"devices":[{"id":"a","current":true,"created":"2026-12-01T20:00:00Z","lastSeen":"2026-12-01T21:00:00Z","agent":"Firefox on Linux","tabs":2},{"id":"b","current":false,"created":"2026-12-01T19:00:00Z","lastSeen":"2026-12-01T19:30:00Z","agent":"Safari on iOS","tabs":0}]}`)
	list, err := c.devices(context.Background())
	if err != nil || len(list) != 2 || list[0].ID != "a" || !list[0].Current || list[0].Tabs != 2 || list[1].Agent != "Safari on iOS" || list[1].LastSeen.Minute() != 30 {
		t.Fatalf("devices = %+v, %v", list, err)
	}
	if got.method != http.MethodGet || got.path != shared.RouteDevices || got.body != "" {
		t.Errorf("request %+v", got)
	}
	c, _ = bodyServer(t, 401, `{"error":"not signed in"}`)
	var ae *apiError
	if _, err := c.devices(context.Background()); !errors.As(err, &ae) || ae.Status != 401 || ae.Message != "not signed in" {
		t.Errorf("not signed in: %v", err)
	}
}

func TestAPIRevoke(t *testing.T) {
	c, got := bodyServer(t, 204, "")
	if err := c.revoke(context.Background(), "dev1"); err != nil {
		t.Fatal(err)
	}
	if got.method != http.MethodPost || got.path != shared.RouteDevicesRevoke || got.body != `{"id":"dev1"}` {
		t.Errorf("request %+v", got)
	}
	c, _ = bodyServer(t, 404, `{"error":"no such device"}`)
	var ae *apiError
	if err := c.revoke(context.Background(), "x"); !errors.As(err, &ae) || ae.Status != 404 {
		t.Errorf("unknown device: %v", err)
	}
}

func TestAPILogoutEverywhere(t *testing.T) {
	c, got := bodyServer(t, 204, "")
	if err := c.logout(context.Background(), true); err != nil {
		t.Fatal(err)
	}
	if got.path != shared.RouteLogout || got.body != `{"everywhere":true}` {
		t.Errorf("request %+v", got)
	}
	c, got = bodyServer(t, 204, "")
	if err := c.logout(context.Background(), false); err != nil {
		t.Fatal(err)
	}
	if got.body != "" {
		t.Errorf("a plain logout sent %q", got.body)
	}
}
