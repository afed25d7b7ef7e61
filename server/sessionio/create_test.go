package sessionio_test

import (
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/tandem-go/tandem/internal/tandemtest"
	"github.com/tandem-go/tandem/server/sessionio"
	"github.com/tandem-go/tandem/server/store/memory"
)

// The global bound refuses new sessions from every address once its burst
// is spent, while the per-address bound, turned Off, refuses none.
func TestGlobalCreationBound(t *testing.T) {
	m, err := sessionio.New(sessionio.Config{
		Store:             memory.New(),
		Keys:              [][]byte{[]byte(strings.Repeat("k", 32))},
		CreateRate:        sessionio.Off,
		CreateGlobalBurst: 3,
		CreateGlobalRate:  0.001,
		Logger:            tandemtest.Logger(t),
	})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	for i := range 5 {
		r := httptest.NewRequest(http.MethodPost, "/", nil)
		r.RemoteAddr = fmt.Sprintf("192.0.2.%d:1234", i+1)
		_, err := m.Update(httptest.NewRecorder(), r, incr, nil)
		if i < 3 && err != nil {
			t.Fatalf("session %d refused within the global burst: %v", i+1, err)
		}
		if i >= 3 && !errors.Is(err, sessionio.ErrTooManySessions) {
			t.Fatalf("session %d from a new address: %v, want ErrTooManySessions", i+1, err)
		}
	}
}

// OnCreate hears of every new session, OnGone of a session a cookie names
// after it was destroyed.
func TestCreateAndGoneHooks(t *testing.T) {
	created, gone := make(chan string, 4), make(chan string, 4)
	m, err := sessionio.New(sessionio.Config{
		Store:    memory.New(),
		Keys:     [][]byte{[]byte(strings.Repeat("k", 32))},
		Logger:   tandemtest.Logger(t),
		OnCreate: func(key string) { created <- key },
		OnGone:   func(key string) { gone <- key },
	})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	r := newSessions(t, m, 1)[0]
	s, err := m.New(r, m.CookieName())
	if err != nil {
		t.Fatal(err)
	}
	key := m.KeyOf(s)
	if got := <-created; got != key {
		t.Errorf("OnCreate got %.8s…, want the new session's key %.8s…", got, key)
	}
	// Each call is a request of its own, with the same cookie: one
	// request's calls see each other's work (the destroy), and would
	// not look the destroyed session up.
	again := func() *http.Request {
		n := httptest.NewRequest(http.MethodPost, "/", nil)
		n.Header.Set("Cookie", r.Header.Get("Cookie"))
		return n
	}
	if k, err := m.Destroy(httptest.NewRecorder(), again()); err != nil || k != key {
		t.Fatalf("Destroy: %q %v", k, err)
	}
	if _, err := m.Update(httptest.NewRecorder(), again(), incr, nil); err != nil {
		t.Fatal(err)
	}
	select {
	case got := <-gone:
		if got != key {
			t.Errorf("OnGone got %.8s…, want the destroyed session's key", got)
		}
	default:
		t.Error("OnGone not called for a cookie naming a destroyed session")
	}
	if len(created) != 1 {
		t.Errorf("OnCreate called %d times for the Update that replaced the destroyed session, want 1", len(created))
	}
}
