package webclient

import (
	"context"
	"errors"
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
		expectErr string
	}{
		{name: "ok, count", status: 200, body: `{"count":3}`, expect: 3},
		{name: "ok, new session", status: 200, body: `{"count":0}`, expect: 0},
		{name: "nok, not json", status: 200, body: `3`, expectErr: "GET /session: bad answer: json: cannot unmarshal number into Go value of type shared.SessionInfo"},
		{name: "nok, negative", status: 200, body: `{"count":-2}`, expectErr: "GET /session: bad answer: negative count -2"},
		{name: "nok, store down", status: 503, body: `{"error":"store unavailable"}`, expectErr: "GET /session: 503 Service Unavailable: store unavailable"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, got := apiServer(t, tt.status, "application/json", tt.body)
			n, err := c.session(context.Background())
			if tt.expectErr != "" {
				if err == nil || err.Error() != tt.expectErr {
					t.Fatalf("err %v, want %q", err, tt.expectErr)
				}
			} else if err != nil || n != tt.expect {
				t.Fatalf("session = %d, %v; want %d", n, err, tt.expect)
			}
			if got.Method != http.MethodGet || got.URL.Path != shared.RouteSession {
				t.Errorf("request %s %s", got.Method, got.URL.Path)
			}
		})
	}
}

func TestAPILogout(t *testing.T) {
	c, got := apiServer(t, http.StatusNoContent, "", "")
	if err := c.logout(context.Background()); err != nil {
		t.Fatalf("logout: %v", err)
	}
	if got.Method != http.MethodPost || got.URL.Path != shared.RouteLogout {
		t.Errorf("request %s %s", got.Method, got.URL.Path)
	}

	c, _ = apiServer(t, http.StatusForbidden, "application/json", `{"error":"origin not allowed"}`)
	var ae *apiError
	if err := c.logout(context.Background()); !errors.As(err, &ae) || ae.Status != 403 {
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
	for _, route := range []string{shared.RouteSession, shared.RouteIncr, shared.RouteLogout} {
		req, err := c.newRequest(context.Background(), http.MethodPost, route)
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
