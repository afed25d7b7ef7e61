package webclient

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/maxence-charriere/go-app/v10/pkg/app"

	"github.com/tandem-go/tandem/shared"
)

// Request headers that Go's js/wasm net/http turns into fetch options
// (see net/http/roundtrip_js.go): send and accept the session cookie, also
// when the API is on another origin.
const (
	fetchCredentials = "js.fetch:credentials"
	fetchMode        = "js.fetch:mode"
)

// maxAnswer bounds what the page reads of an answer.
const maxAnswer = 64 << 10

// apiClient calls the HTTP routes of the shared contract.
type apiClient struct {
	base string // API origin, no trailing slash
	hc   *http.Client
	// fetch sets the js.fetch options: only Go's js/wasm transport knows
	// them; any other rejects them as invalid header names.
	fetch bool
}

func newAPIClient(origin string, hc *http.Client) *apiClient {
	if hc == nil {
		hc = http.DefaultClient
	}
	return &apiClient{base: strings.TrimRight(origin, "/"), hc: hc, fetch: app.IsClient}
}

// apiError is an answer with an error status; Message is the server's
// shared.ErrorBody when it sent one.
type apiError struct {
	Request string // "POST /incr"
	Status  int
	Message string
}

func (e *apiError) Error() string {
	msg := fmt.Sprintf("%s: %d %s", e.Request, e.Status, http.StatusText(e.Status))
	if e.Message != "" {
		msg += ": " + e.Message
	}
	return msg
}

// unreachableError is a request that got no answer at all: server down,
// network gone, or the browser refused the answer (CORS).
type unreachableError struct {
	Request string
	Err     error
}

func (e *unreachableError) Error() string {
	return e.Request + ": the server cannot be reached (" + e.Err.Error() + ")"
}

func (e *unreachableError) Unwrap() error { return e.Err }

// session answers the session's count and signed-in user (GET /session);
// it creates the session and its cookie when there is none.
func (c *apiClient) session(ctx context.Context) (shared.SessionInfo, error) {
	var info shared.SessionInfo
	body, err := c.do(ctx, http.MethodGet, shared.RouteSession, nil, http.StatusOK)
	if err != nil {
		return info, err
	}
	if err := json.Unmarshal(body, &info); err != nil {
		return info, fmt.Errorf("GET %s: bad answer: %w", shared.RouteSession, err)
	}
	if info.Count < 0 {
		return info, fmt.Errorf("GET %s: bad answer: negative count %d", shared.RouteSession, info.Count)
	}
	if info.User != "" && !shared.ValidUser(info.User) {
		return info, fmt.Errorf("GET %s: bad answer: user %q", shared.RouteSession, truncate(info.User, 40))
	}
	return info, nil
}

// login signs the session in as user (POST /login): the server renews the
// session, so the answer carries a new cookie.
func (c *apiClient) login(ctx context.Context, user string, remember bool) (shared.LoginInfo, error) {
	var info shared.LoginInfo
	body, err := c.do(ctx, http.MethodPost, shared.RouteLogin, shared.LoginRequest{User: user, Remember: remember}, http.StatusOK)
	if err != nil {
		return info, err
	}
	if err := json.Unmarshal(body, &info); err != nil {
		return info, fmt.Errorf("POST %s: bad answer: %w", shared.RouteLogin, err)
	}
	if info.Count < 0 || !shared.ValidUser(info.User) {
		return info, fmt.Errorf("POST %s: bad answer: user %q, count %d", shared.RouteLogin, truncate(info.User, 40), info.Count)
	}
	return info, nil
}

// devices lists the signed-in user's devices (GET /devices).
func (c *apiClient) devices(ctx context.Context) ([]shared.Device, error) {
	body, err := c.do(ctx, http.MethodGet, shared.RouteDevices, nil, http.StatusOK)
	if err != nil {
		return nil, err
	}
	var list shared.Devices
	if err := json.Unmarshal(body, &list); err != nil {
		return nil, fmt.Errorf("GET %s: bad answer: %w", shared.RouteDevices, err)
	}
	return list.Devices, nil
}

// revoke ends one of the user's sessions (POST /devices/revoke).
func (c *apiClient) revoke(ctx context.Context, id string) error {
	_, err := c.do(ctx, http.MethodPost, shared.RouteDevicesRevoke, shared.RevokeRequest{ID: id}, http.StatusNoContent, http.StatusOK)
	return err
}

// incr increments the session's count (POST /incr) and answers the new one.
func (c *apiClient) incr(ctx context.Context) (int, error) {
	body, err := c.do(ctx, http.MethodPost, shared.RouteIncr, nil, http.StatusOK)
	if err != nil {
		return 0, err
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(body)))
	if err != nil || n < 0 {
		return 0, fmt.Errorf("POST %s: bad answer %q: want a count", shared.RouteIncr, truncate(string(body), 40))
	}
	return n, nil
}

// logout ends the session (POST /logout); everywhere ends every session
// of its user.
func (c *apiClient) logout(ctx context.Context, everywhere bool) error {
	var body any
	if everywhere {
		body = shared.LogoutRequest{Everywhere: true}
	}
	_, err := c.do(ctx, http.MethodPost, shared.RouteLogout, body, http.StatusNoContent, http.StatusOK)
	return err
}

// do sends a request, with body as JSON unless it is nil, and answers the
// body of an answer whose status is one of ok.
func (c *apiClient) do(ctx context.Context, method, route string, body any, ok ...int) ([]byte, error) {
	name := method + " " + route
	req, err := c.newRequest(ctx, method, route, body)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	res, err := c.hc.Do(req)
	if err != nil {
		if ctxErr := ctx.Err(); ctxErr != nil {
			return nil, fmt.Errorf("%s: %w", name, ctxErr)
		}
		return nil, &unreachableError{Request: name, Err: unwrapURLError(err)}
	}
	defer res.Body.Close()
	answer, err := io.ReadAll(io.LimitReader(res.Body, maxAnswer))
	if err != nil {
		return nil, &unreachableError{Request: name, Err: err}
	}
	for _, s := range ok {
		if res.StatusCode == s {
			return answer, nil
		}
	}
	return nil, &apiError{Request: name, Status: res.StatusCode, Message: errorMessage(answer)}
}

func (c *apiClient) newRequest(ctx context.Context, method, route string, body any) (*http.Request, error) {
	var r io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, err
		}
		r = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+route, r)
	if err != nil {
		return nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.fetch {
		req.Header.Set(fetchCredentials, "include")
		req.Header.Set(fetchMode, "cors")
	}
	req.Header.Set("Accept", "application/json, text/plain")
	return req, nil
}

// errorMessage is the error of a shared.ErrorBody, or a short excerpt of a
// body that is not one (a proxy's HTML page, say).
func errorMessage(body []byte) string {
	var eb shared.ErrorBody
	if json.Unmarshal(body, &eb) == nil && eb.Error != "" {
		return eb.Error
	}
	s := strings.TrimSpace(string(body))
	if strings.HasPrefix(s, "<") { // markup says nothing useful here
		return ""
	}
	return truncate(s, 120)
}

// unwrapURLError drops the *url.Error wrapping, which repeats the method
// and the URL the message already names.
func unwrapURLError(err error) error {
	if ue, ok := errors.AsType[*url.Error](err); ok {
		return ue.Err
	}
	return err
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
