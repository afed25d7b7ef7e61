package sessionio_test

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/tandem-go/tandem/internal/tandemtest"
	"github.com/tandem-go/tandem/server/sessionio"
)

// Renew gives the session a new ID and cookie with the same values; the old
// ID is dead at once; the session's sockets, over WebSocket and over
// long-polling, stay connected, move to the new room and keep working.
func TestRenewMovesTheSessionAndItsSockets(t *testing.T) {
	b := newBridge(t, sessionio.Config{CheckInterval: time.Hour})
	c := tandemtest.NewClient(t, b.url)
	if status, body, _ := c.Do(http.MethodPost, "/set?v=before"); status != http.StatusOK {
		t.Fatalf("POST /set: %d %s", status, body)
	}
	oldCookie := c.Cookie()
	node := tandemtest.NewDriver(t)
	ws := node.Dial(b.url, tandemtest.Options{Cookie: oldCookie, Transport: tandemtest.WebSocket})
	h := b.handle(t)
	poll := node.Dial(b.url, tandemtest.Options{Cookie: oldCookie, Transport: tandemtest.Polling})
	if b.handle(t) != h {
		t.Fatal("the two sockets of the session got different handles")
	}
	oldKey := h.Key()

	status, newKey, _ := c.Do(http.MethodPost, "/renew")
	if status != http.StatusOK {
		t.Fatalf("POST /renew: %d %s", status, newKey)
	}
	newCookie := c.Cookie()
	if newCookie == oldCookie || newKey == oldKey {
		t.Fatal("Renew kept the session's ID")
	}
	if h.Key() != newKey {
		t.Errorf("the sockets' handle has key %.8s…, want the new one %.8s…", h.Key(), newKey)
	}
	if got := h.Get("v"); got != "before" {
		t.Errorf("the handle holds v=%v after Renew, want the same values", got)
	}
	if got := len(b.m.Sockets(newKey)); got != 2 {
		t.Errorf("Sockets(new key) = %d sockets, want 2", got)
	}
	if got := len(b.m.Sockets(oldKey)); got != 0 {
		t.Errorf("Sockets(old key) = %d sockets, want 0", got)
	}

	// The old ID is dead: its cookie names no session.
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	r.Header.Set("Cookie", oldCookie)
	if s, err := b.m.New(r, b.m.CookieName()); err != nil || !s.IsNew {
		t.Errorf("the old cookie still names a session (IsNew %v, %v)", s.IsNew, err)
	}
	w := httptest.NewRecorder()
	if _, err := b.m.Renew(w, r); !errors.Is(err, sessionio.ErrSessionGone) {
		t.Errorf("Renew with the old cookie: %v, want ErrSessionGone", err)
	}

	// A change under the new cookie reaches both sockets through the new
	// room, and the sockets' own changes go to the renewed session.
	if status, body, _ := c.Do(http.MethodPost, "/set?v=after"); status != http.StatusOK || body != "after" {
		t.Fatalf("POST /set with the new cookie: %d %s", status, body)
	}
	for name, s := range map[string]*tandemtest.Socket{"websocket": ws, "polling": poll} {
		var got string
		s.Wait("v", 10*time.Second).Arg(t, 0, &got)
		if got != "after" {
			t.Errorf("%s socket got v=%q, want after", name, got)
		}
		raw, err := s.EmitAck("set", name)
		var acked string
		if err == nil {
			err = json.Unmarshal(raw, &acked)
		}
		if err != nil || acked != name {
			t.Fatalf("%s socket's set after Renew: %s %v", name, raw, err)
		}
		if got := h.Get("v"); got != name {
			t.Errorf("after the %s socket's set the session holds %v", name, got)
		}
	}
	if _, body, _ := c.Do(http.MethodPost, "/set?v=last"); body != "last" {
		t.Errorf("the renewed session over HTTP after the sockets' changes: %q", body)
	}
	for name, s := range map[string]*tandemtest.Socket{"websocket": ws, "polling": poll} {
		if st := s.State(); !st.Connected {
			t.Errorf("%s socket disconnected by Renew", name)
		}
	}
}
