package sessionio_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/sessions"

	"github.com/tandem-go/tandem/internal/tandemtest"
	"github.com/tandem-go/tandem/server/sessionio"
	"github.com/tandem-go/tandem/server/store/memory"
)

// newManager returns a Manager on a memory store that lets one address
// create many sessions.
func newManager(t *testing.T) *sessionio.Manager {
	t.Helper()
	m, err := sessionio.New(sessionio.Config{
		Store:            memory.New(),
		Keys:             [][]byte{[]byte(strings.Repeat("k", 32))},
		CreateRate:       sessionio.Off,
		CreateGlobalRate: sessionio.Off,
		Logger:           tandemtest.Logger(t),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Close() })
	return m
}

// newSessions creates n sessions and returns a request carrying the cookie
// of each.
func newSessions(t *testing.T, m *sessionio.Manager, n int) []*http.Request {
	t.Helper()
	reqs := make([]*http.Request, n)
	for i := range reqs {
		w := httptest.NewRecorder()
		if _, err := m.Update(w, httptest.NewRequest(http.MethodPost, "/", nil), func(v sessionio.Values) error { v["n"] = 0; return nil }, nil); err != nil {
			t.Fatal(err)
		}
		r := httptest.NewRequest(http.MethodPost, "/", nil)
		for _, c := range w.Result().Cookies() {
			r.AddCookie(c)
		}
		reqs[i] = r
	}
	return reqs
}

func incr(v sessionio.Values) error {
	n, _ := v["n"].(int)
	v["n"] = n + 1
	return nil
}

// within fails the test unless f returns before the deadline.
func within(t *testing.T, d time.Duration, what string, f func()) {
	t.Helper()
	done := make(chan struct{})
	go func() { defer close(done); f() }()
	select {
	case <-done:
	case <-time.After(d):
		t.Fatalf("%s did not return within %v (deadlock?)", what, d)
	}
}

// A committed callback may change another session. With locks shared by
// several sessions (the former 64 stripes) one of these 1000 pairs would
// share a lock, and the nested Update would wait for itself forever.
func TestCommittedMayUpdateAnotherSession(t *testing.T) {
	m := newManager(t)
	const pairs = 1000
	reqs := newSessions(t, m, 2*pairs)
	within(t, 30*time.Second, "1000 Updates whose committed updates another session", func() {
		for i := range pairs {
			a, b := reqs[2*i], reqs[2*i+1]
			_, err := m.Update(httptest.NewRecorder(), a, incr, func(*sessions.Session) {
				if _, err := m.Update(httptest.NewRecorder(), b, incr, nil); err != nil {
					t.Errorf("nested Update: %v", err)
				}
			})
			if err != nil {
				t.Error(err)
				return
			}
		}
	})
	for _, r := range reqs {
		s, err := m.Update(httptest.NewRecorder(), r, func(sessionio.Values) error { return nil }, nil)
		if err != nil {
			t.Fatal(err)
		}
		if s.Values["n"] != 1 {
			t.Fatalf("a session holds n=%v, want 1", s.Values["n"])
		}
	}
}

// A slow committed callback holds later changes of its own session only:
// changes of 1000 other sessions go through while it runs, and the change
// of its own session waits for it.
func TestSlowCommittedHoldsOnlyItsSession(t *testing.T) {
	m := newManager(t)
	reqs := newSessions(t, m, 1001)
	slow, others := reqs[0], reqs[1:]
	inside, release := make(chan struct{}), make(chan struct{})
	slowDone := make(chan struct{})
	go func() {
		defer close(slowDone)
		_, err := m.Update(httptest.NewRecorder(), slow, incr, func(*sessions.Session) {
			close(inside)
			<-release
		})
		if err != nil {
			t.Error(err)
		}
	}()
	<-inside
	within(t, 30*time.Second, "Updates of other sessions during a slow committed", func() {
		for _, r := range others {
			if _, err := m.Update(httptest.NewRecorder(), r, incr, nil); err != nil {
				t.Error(err)
			}
		}
	})

	// The same session's next change waits until committed returns.
	next := make(chan any, 1)
	go func() {
		s, err := m.Update(httptest.NewRecorder(), slow, incr, nil)
		if err != nil {
			t.Error(err)
		}
		next <- s.Values["n"]
	}()
	select {
	case v := <-next:
		t.Fatalf("a change of the session committed (n=%v) while its previous committed still ran", v)
	case <-time.After(100 * time.Millisecond):
	}
	close(release)
	<-slowDone
	select {
	case v := <-next:
		if v != 2 {
			t.Errorf("second change of the slow session gave n=%v, want 2", v)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the waiting change never ran after committed returned")
	}
}
