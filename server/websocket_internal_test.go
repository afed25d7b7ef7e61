package server

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// Once hijacked, the wrapper holds no reference to net/http's writer (and
// through it the connection's buffers), and behaves as a hijacked writer.
func TestHijackOnceLetsGoOfTheWriter(t *testing.T) {
	type result struct {
		held                 bool
		writeErr, secondErr  error
		headerUsable, hijack bool
	}
	got := make(chan result, 1)
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := &hijackOnce{w: w}
		h.Header().Set("X-Before", "1")
		conn, _, err := h.Hijack()
		var res result
		res.hijack = err == nil
		if err == nil {
			_ = conn.Close()
		}
		res.held = h.writer() != nil
		_, res.writeErr = h.Write([]byte("x"))
		h.WriteHeader(http.StatusTeapot) // a no-op, not a panic
		h.Flush()
		h.Header().Set("X-After", "1")
		res.headerUsable = h.Header().Get("X-After") == "1"
		_, _, res.secondErr = h.Hijack()
		got <- res
	}))
	defer ts.Close()
	resp, err := http.Get(ts.URL)
	if err == nil {
		resp.Body.Close()
		t.Fatalf("GET answered %s; the connection should have been hijacked and closed", resp.Status)
	}
	select {
	case res := <-got:
		if !res.hijack || res.held || !errors.Is(res.writeErr, http.ErrHijacked) || !errors.Is(res.secondErr, http.ErrHijacked) || !res.headerUsable {
			t.Fatalf("after Hijack: %+v", res)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("handler did not finish")
	}
}
