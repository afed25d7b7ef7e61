package sessionio

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/tandem-go/tandem/server/store"
	"github.com/tandem-go/tandem/server/store/memory"
)

func newUsersManager(t *testing.T, users UsersConfig) *Manager {
	t.Helper()
	m, err := New(Config{Store: memory.New(), Keys: [][]byte{[]byte(strings.Repeat("k", 32))}, CheckInterval: Off, Users: users})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Close() })
	return m
}

// signedIn stores a session bound to user, created at created, and
// returns a request that carries its cookie, and its key.
func signedIn(t *testing.T, m *Manager, user, agent string, created time.Time) (*http.Request, string) {
	t.Helper()
	id := newID()
	key := keyOf(id)
	data, err := encodeValues(Values{})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.cfg.Store.Create(context.Background(), key, data, store.Meta{User: user, Agent: agent, Created: created}, time.Hour); err != nil {
		t.Fatal(err)
	}
	r := httptest.NewRequest(http.MethodGet, "/devices", nil)
	r.AddCookie(m.cookie(r, id))
	return r, key
}

func TestDevicesOfTwoUsersWithTheSameDeviceNames(t *testing.T) {
	m := newUsersManager(t, UsersConfig{})
	now := time.Now()
	ada1, adaKey1 := signedIn(t, m, "ada", "Firefox on Linux", now.Add(-2*time.Hour))
	_, adaKey2 := signedIn(t, m, "ada", "Safari on iOS", now.Add(-time.Hour))
	bob1, bobKey1 := signedIn(t, m, "bob", "Firefox on Linux", now.Add(-2*time.Hour))
	_, _ = signedIn(t, m, "bob", "Safari on iOS", now.Add(-time.Hour))

	user, list, err := m.Devices(ada1)
	if err != nil || user != "ada" || len(list) != 2 {
		t.Fatalf("ada's devices: %q %+v %v", user, list, err)
	}
	if !list[0].Current || list[0].key != adaKey1 || list[1].Current || list[1].key != adaKey2 {
		t.Errorf("ada's devices %+v: want her current one first, then the other", list)
	}
	for _, d := range list {
		if d.ID == d.key || strings.Contains(d.key, d.ID) || d.ID == "" {
			t.Errorf("device id %q reveals its key", d.ID)
		}
	}
	_, bobs, err := m.Devices(bob1)
	if err != nil || len(bobs) != 2 {
		t.Fatalf("bob's devices: %+v %v", bobs, err)
	}
	for _, d := range bobs {
		if d.key == adaKey1 || d.key == adaKey2 || d.ID == list[0].ID || d.ID == list[1].ID {
			t.Errorf("bob sees ada's session %+v", d)
		}
	}

	// Bob revokes ada's device ids: not his, 404, and nothing changes.
	for _, d := range list {
		if _, _, err := m.RevokeDevice(bob1, d.ID); !errors.Is(err, ErrUnknownDevice) {
			t.Errorf("bob revokes ada's %s: %v, want ErrUnknownDevice", d.ID, err)
		}
	}
	for _, bad := range []string{"", "x", adaKey2, list[1].ID + "x"} {
		if _, _, err := m.RevokeDevice(ada1, bad); !errors.Is(err, ErrUnknownDevice) {
			t.Errorf("revoke %q: %v, want ErrUnknownDevice", bad, err)
		}
	}
	if _, again, _ := m.Devices(ada1); len(again) != 2 {
		t.Fatalf("ada has %d devices after refused revokes, want 2", len(again))
	}

	// Ada revokes her other device: gone from the store and the list.
	key, current, err := m.RevokeDevice(ada1, list[1].ID)
	if err != nil || key != adaKey2 || current {
		t.Fatalf("revoke: %q %v %v", key, current, err)
	}
	if _, err := m.cfg.Store.Load(context.Background(), adaKey2); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("the revoked session is still in the store: %v", err)
	}
	if _, again, _ := m.Devices(ada1); len(again) != 1 || again[0].key != adaKey1 {
		t.Errorf("ada's devices after the revoke: %+v", again)
	}
	if _, again, _ := m.Devices(bob1); len(again) != 2 {
		t.Errorf("bob's devices after ada's revoke: %+v", again)
	}
	// Revoking her own device is a logout.
	if key, current, err := m.RevokeDevice(ada1, list[0].ID); err != nil || key != adaKey1 || !current {
		t.Errorf("revoke own: %q %v %v", key, current, err)
	}
	if _, _, err := m.Devices(ada1); !errors.Is(err, ErrNotSignedIn) {
		t.Errorf("devices after revoking her own session: %v, want ErrNotSignedIn", err)
	}
	_ = bobKey1
}

func TestDevicesNeedsASignedInSession(t *testing.T) {
	m := newUsersManager(t, UsersConfig{})
	r := httptest.NewRequest(http.MethodGet, "/devices", nil)
	if _, _, err := m.Devices(r); !errors.Is(err, ErrNotSignedIn) {
		t.Errorf("no cookie: %v", err)
	}
	anon, _ := signedIn(t, m, "", "", time.Now())
	if _, _, err := m.Devices(anon); !errors.Is(err, ErrNotSignedIn) {
		t.Errorf("a session not signed in: %v", err)
	}
	w := httptest.NewRecorder()
	if _, _, err := m.RevokeDevice(anon, "x"); !errors.Is(err, ErrNotSignedIn) || len(w.Result().Cookies()) != 0 {
		t.Errorf("revoke from a session not signed in: %v", err)
	}
	// A device id as a cookie is no session.
	ada, _ := signedIn(t, m, "ada", "", time.Now())
	_, list, _ := m.Devices(ada)
	forged := httptest.NewRequest(http.MethodGet, "/devices", nil)
	forged.AddCookie(&http.Cookie{Name: m.CookieName(), Value: list[0].ID})
	if _, _, err := m.Devices(forged); !errors.Is(err, ErrNotSignedIn) {
		t.Errorf("a device id as the cookie: %v", err)
	}
}

func TestBoundUserEndsTheOldest(t *testing.T) {
	m := newUsersManager(t, UsersConfig{MaxSessions: 3})
	now := time.Now()
	var keys []string
	for i := range 5 {
		_, k := signedIn(t, m, "ada", "", now.Add(time.Duration(i)*time.Minute))
		keys = append(keys, k)
	}
	// The newest sign-in is keys[4]; keys[0] and keys[1] are the oldest.
	ended, err := m.boundUser(context.Background(), "ada", keys[4])
	if err != nil || len(ended) != 2 || !(ended[0] == keys[0] && ended[1] == keys[1]) {
		t.Fatalf("ended %v, %v; want the two oldest %v", ended, err, keys[:2])
	}
	list, _ := m.cfg.Store.UserSessions(context.Background(), "ada")
	if len(list) != 3 {
		t.Errorf("%d sessions left, want 3", len(list))
	}
	// A sign-in whose Created is older than the others' (a clock step)
	// still stays.
	_, old := signedIn(t, m, "ada", "", now.Add(-time.Hour))
	ended, _ = m.boundUser(context.Background(), "ada", old)
	if len(ended) != 1 || ended[0] != keys[2] {
		t.Errorf("ended %v, want %v (never the new sign-in)", ended, keys[2])
	}
	// Off: no bound.
	m.cfg.Users.MaxSessions = Off
	if ended, _ := m.boundUser(context.Background(), "ada", old); len(ended) != 0 {
		t.Errorf("Off ended %v", ended)
	}
}

func TestEndUserSessions(t *testing.T) {
	m := newUsersManager(t, UsersConfig{})
	_, k1 := signedIn(t, m, "ada", "", time.Now())
	_, k2 := signedIn(t, m, "ada", "", time.Now())
	_, k3 := signedIn(t, m, "ada", "", time.Now())
	_, bob := signedIn(t, m, "bob", "", time.Now())
	ended, err := m.EndUserSessions(context.Background(), "ada", k1)
	if err != nil || len(ended) != 2 || (ended[0] != k2 && ended[0] != k3) {
		t.Fatalf("ended %v %v", ended, err)
	}
	list, _ := m.cfg.Store.UserSessions(context.Background(), "ada")
	if len(list) != 1 || list[0].Key != k1 {
		t.Errorf("ada's sessions left: %+v", list)
	}
	if _, err := m.cfg.Store.Load(context.Background(), bob); err != nil {
		t.Errorf("bob's session: %v", err)
	}
}

func TestAfterSignInKeepsTheBound(t *testing.T) {
	m := newUsersManager(t, UsersConfig{MaxSessions: 2})
	now := time.Now()
	_, oldest := signedIn(t, m, "ada", "", now.Add(-2*time.Minute))
	_, _ = signedIn(t, m, "ada", "", now.Add(-time.Minute))
	_, newest := signedIn(t, m, "ada", "", now)
	m.afterSignIn(context.Background(), "ada", newest)
	list, _ := m.cfg.Store.UserSessions(context.Background(), "ada")
	if len(list) != 2 {
		t.Fatalf("%d sessions after the sign-in, want the bound of 2", len(list))
	}
	for _, s := range list {
		if s.Key == oldest {
			t.Error("the oldest session survived the sign-in that went over the bound")
		}
	}
}
