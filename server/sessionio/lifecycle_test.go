package sessionio_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/zishang520/socket.io/servers/socket/v3"

	"github.com/tandem-go/tandem/internal/tandemtest"
	"github.com/tandem-go/tandem/server/sessionio"
	"github.com/tandem-go/tandem/server/store"
	"github.com/tandem-go/tandem/server/store/memory"
)

// Misusing the lifecycle is an error, found before anything changes, never
// a panic (Close then Attach used to panic with "close of closed channel";
// a second Attach changed the options and the server before panicking).
func TestLifecycleMisuseIsAnError(t *testing.T) {
	t.Run("attach after close", func(t *testing.T) {
		m := newManager(t)
		if err := m.Close(); err != nil {
			t.Fatal(err)
		}
		io := socket.NewServer(nil, nil)
		defer io.Close(nil)
		opts := socket.DefaultServerOptions()
		h, err := m.Attach(io, opts)
		if !errors.Is(err, sessionio.ErrClosed) || h != nil {
			t.Fatalf("Attach after Close: %v, %v; want ErrClosed", h, err)
		}
		if opts.Cors() != nil {
			t.Error("a refused Attach changed the options")
		}
		if err := m.Emit("k", "e"); !errors.Is(err, sessionio.ErrNotAttached) {
			t.Errorf("Emit after a refused Attach: %v, want ErrNotAttached", err)
		}
	})
	t.Run("attach twice", func(t *testing.T) {
		m := newManager(t)
		io := socket.NewServer(nil, nil)
		defer io.Close(nil)
		if _, err := m.Attach(io, nil); err != nil {
			t.Fatal(err)
		}
		io2 := socket.NewServer(nil, nil)
		defer io2.Close(nil)
		opts := socket.DefaultServerOptions()
		h, err := m.Attach(io2, opts)
		if !errors.Is(err, sessionio.ErrAlreadyAttached) || h != nil {
			t.Fatalf("second Attach: %v, %v; want ErrAlreadyAttached", h, err)
		}
		if opts.Cors() != nil {
			t.Error("a refused Attach changed the options")
		}
		if io2.Engine() != nil {
			t.Error("a refused Attach started serving the second server")
		}
	})
	t.Run("close and shutdown are idempotent", func(t *testing.T) {
		for _, attach := range []bool{false, true} {
			m := newManager(t)
			if attach {
				io := socket.NewServer(nil, nil)
				defer io.Close(nil)
				if _, err := m.Attach(io, nil); err != nil {
					t.Fatal(err)
				}
			}
			var wg sync.WaitGroup
			for range 8 {
				wg.Add(2)
				go func() { defer wg.Done(); _ = m.Close() }()
				go func() {
					defer wg.Done()
					ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
					defer cancel()
					if err := m.Shutdown(ctx); err != nil {
						t.Errorf("Shutdown: %v", err)
					}
				}()
			}
			wg.Wait()
			if err := m.Close(); err != nil {
				t.Fatal(err)
			}
		}
	})
}

// unreadables are store records that do not decode: one that no gob
// decoder accepts, and a compact record (values.go) that claims more entries
// than it holds.
var unreadables = []struct {
	name string
	data []byte
}{
	{"not gob", []byte("\xff\x00 not gob")},
	{"truncated compact record", []byte("\x00\x01\x05")},
}

// Session data that cannot be decoded is no session, on every path: the
// gorilla Get sees a new session, Update makes a new session instead of
// failing until the TTL ends, a socket handshake gets a new session too,
// and the unreadable record is deleted.
func TestUnreadableSessionIsNotFoundEverywhere(t *testing.T) {
	for _, u := range unreadables {
		t.Run(u.name, func(t *testing.T) { testUnreadableSession(t, u.data) })
	}
}

func testUnreadableSession(t *testing.T, unreadable []byte) {
	st := memory.New()
	m, err := sessionio.New(sessionio.Config{
		Store:  st,
		Keys:   [][]byte{[]byte(strings.Repeat("k", 32))},
		Logger: tandemtest.Logger(t),
	})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	ctx := context.Background()

	// corrupt makes a session and overwrites its record; it returns a
	// request carrying its cookie, and its key.
	corrupt := func() (*http.Request, string) {
		r := newSessions(t, m, 1)[0]
		s, err := m.New(r, m.CookieName())
		if err != nil || s.IsNew {
			t.Fatalf("fresh session: %v, IsNew %v", err, s.IsNew)
		}
		key := m.KeyOf(s)
		if _, err := st.Update(ctx, key, time.Hour, func([]byte) ([]byte, error) { return unreadable, nil }); err != nil {
			t.Fatal(err)
		}
		return r, key
	}
	isGone := func(key string) {
		t.Helper()
		if _, err := st.Load(ctx, key); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("the unreadable record is still in the store (%v)", err)
		}
	}

	r, key := corrupt()
	if s, err := m.New(r, m.CookieName()); err != nil || !s.IsNew {
		t.Errorf("New of an unreadable session: IsNew %v, %v; want a new session", s.IsNew, err)
	}
	isGone(key)

	r, key = corrupt()
	w := httptest.NewRecorder()
	s, err := m.Update(w, r, incr, nil)
	if err != nil {
		t.Fatalf("Update of an unreadable session: %v", err)
	}
	if m.KeyOf(s) == key || s.Values["n"] != 1 || len(w.Result().Cookies()) != 1 {
		t.Errorf("Update of an unreadable session gave key changed=%v n=%v cookies=%v; want a new session holding the change", m.KeyOf(s) != key, s.Values["n"], w.Result().Cookies())
	}
	isGone(key)

	r, key = corrupt()
	io := socket.NewServer(nil, nil)
	defer io.Close(nil)
	h, err := m.Attach(io, nil)
	if err != nil {
		t.Fatal(err)
	}
	req := httptest.NewRequest(http.MethodGet, "/socket.io/?EIO=4&transport=polling", nil)
	for _, c := range r.Cookies() {
		req.AddCookie(c)
	}
	w = httptest.NewRecorder()
	h.ServeHTTP(w, req)
	if w.Code != http.StatusOK || len(w.Result().Cookies()) != 1 {
		t.Errorf("handshake with an unreadable session: %d %q, cookies %v; want 200 and a new session's cookie", w.Code, w.Body.String(), w.Result().Cookies())
	}
	isGone(key)
}
