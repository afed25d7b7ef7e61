package sessionio_test

import (
	"context"
	"crypto/tls"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/gorilla/sessions"

	"github.com/tandem-go/tandem/internal/tandemtest"
	"github.com/tandem-go/tandem/server/sessionio"
	"github.com/tandem-go/tandem/server/store"
	"github.com/tandem-go/tandem/server/store/memory"
)

// setCookies returns the Set-Cookie headers of w with each cookie's value
// replaced by "V" (values are random), and the values themselves.
func setCookies(w *httptest.ResponseRecorder) (headers, values []string) {
	for _, h := range w.Header().Values("Set-Cookie") {
		name, rest, _ := strings.Cut(h, "=")
		value, attrs, _ := strings.Cut(rest, ";")
		if value != "" {
			values = append(values, value)
			value = "V"
		}
		if attrs != "" {
			attrs = ";" + attrs
		}
		headers = append(headers, name+"="+value+attrs)
	}
	return headers, values
}

// Save through gorilla's API honours MaxAge, refuses any other Options that
// differ from Config.Cookie (an error, no cookie, no store write), and writes
// exactly the configured cookie.
func TestSaveOptions(t *testing.T) {
	const (
		plain   = "sid=V; Path=/; HttpOnly; SameSite=Lax"
		expired = "sid=; Path=/; Max-Age=0; HttpOnly; SameSite=Lax"
	)
	tests := []struct {
		name     string
		cookie   sessionio.Cookie        // given: the configured cookie
		existing bool                    // given: the request carries a live session {"n": 1}
		tls      bool                    // given: the request came over TLS
		change   func(*sessions.Options) // when: the handler changes the session's Options
		expect   []string                // expect: the Set-Cookie headers, values as "V"
		expectN  any                     // expect: the stored "n" afterwards (nil: no session)
		nok      bool                    // expect: Save returns an error
	}{
		{"ok, new session, default options", sessionio.Cookie{}, false, false, nil, []string{plain}, 2, false},
		{"ok, existing session, default options: no cookie to rewrite", sessionio.Cookie{}, true, false, nil, nil, 2, false},
		{"ok, new session, MaxAge > 0 honoured", sessionio.Cookie{}, false, false, func(o *sessions.Options) { o.MaxAge = 3600 },
			[]string{"sid=V; Path=/; Max-Age=3600; HttpOnly; SameSite=Lax"}, 2, false},
		{"ok, existing session, MaxAge > 0 rewrites its cookie", sessionio.Cookie{}, true, false, func(o *sessions.Options) { o.MaxAge = 60 },
			[]string{"sid=V; Path=/; Max-Age=60; HttpOnly; SameSite=Lax"}, 2, false},
		{"ok, existing session, MaxAge < 0 deletes it and expires the cookie", sessionio.Cookie{}, true, false, func(o *sessions.Options) { o.MaxAge = -1 },
			[]string{expired}, nil, false},
		{"ok, new session, MaxAge < 0 creates nothing and expires the cookie", sessionio.Cookie{}, false, false, func(o *sessions.Options) { o.MaxAge = -1 },
			[]string{expired}, nil, false},
		{"ok, nil Options are the configured cookie", sessionio.Cookie{}, false, false, nil, []string{plain}, 2, false},
		{"ok, configured attributes all written",
			sessionio.Cookie{Name: "__Host-s", Secure: true, SameSite: http.SameSiteNoneMode, Partitioned: true}, true, false, func(o *sessions.Options) { o.MaxAge = 10 },
			[]string{"__Host-s=V; Path=/; Max-Age=10; HttpOnly; Secure; SameSite=None; Partitioned"}, 2, false},
		{"ok, configured Path and Domain written", sessionio.Cookie{Path: "/app", Domain: "example.com", SameSite: http.SameSiteStrictMode}, false, false, nil,
			[]string{"sid=V; Path=/app; Domain=example.com; HttpOnly; SameSite=Strict"}, 2, false},
		{"ok, TLS request: Secure even when not configured", sessionio.Cookie{}, false, true, nil,
			[]string{"sid=V; Path=/; HttpOnly; Secure; SameSite=Lax"}, 2, false},
		{"nok, other Path", sessionio.Cookie{}, true, false, func(o *sessions.Options) { o.Path = "/admin" }, nil, 1, true},
		{"nok, other Path on a new session", sessionio.Cookie{}, false, false, func(o *sessions.Options) { o.Path = "/admin" }, nil, nil, true},
		{"nok, other Domain", sessionio.Cookie{}, true, false, func(o *sessions.Options) { o.Domain = "example.com" }, nil, 1, true},
		{"nok, Secure on plain HTTP when not configured", sessionio.Cookie{}, true, false, func(o *sessions.Options) { o.Secure = true }, nil, 1, true},
		{"nok, Secure dropped when configured", sessionio.Cookie{Secure: true}, true, false, func(o *sessions.Options) { o.Secure = false }, nil, 1, true},
		{"nok, other SameSite", sessionio.Cookie{}, true, false, func(o *sessions.Options) { o.SameSite = http.SameSiteStrictMode }, nil, 1, true},
		{"nok, Partitioned when not configured", sessionio.Cookie{Secure: true}, true, false, func(o *sessions.Options) { o.Partitioned = true }, nil, 1, true},
		{"nok, HttpOnly dropped", sessionio.Cookie{}, true, false, func(o *sessions.Options) { o.HttpOnly = false }, nil, 1, true},
		{"nok, other Path with MaxAge < 0: nothing deleted", sessionio.Cookie{}, true, false, func(o *sessions.Options) { o.MaxAge = -1; o.Path = "/x" }, nil, 1, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// given
			st := memory.New()
			m, err := sessionio.New(sessionio.Config{
				Store:  st,
				Keys:   [][]byte{[]byte(strings.Repeat("k", 32))},
				Cookie: tt.cookie,
				Logger: tandemtest.Logger(t),
			})
			if err != nil {
				t.Fatal(err)
			}
			defer m.Close()
			request := func() *http.Request {
				r := httptest.NewRequest(http.MethodPost, "/", nil)
				if tt.tls {
					r.TLS = &tls.ConnectionState{}
				}
				return r
			}
			r := request()
			if tt.existing {
				w := httptest.NewRecorder()
				if _, err := m.Update(w, request(), func(v sessionio.Values) error { v["n"] = 1; return nil }, nil); err != nil {
					t.Fatal(err)
				}
				for _, c := range w.Result().Cookies() {
					r.AddCookie(c)
				}
			}

			// when
			s, err := m.Get(r, m.CookieName())
			if err != nil || s.IsNew == tt.existing {
				t.Fatalf("Get: IsNew %v, %v; want IsNew %v", s.IsNew, err, !tt.existing)
			}
			s.Values["n"] = 2
			if tt.change != nil {
				tt.change(s.Options)
			}
			w := httptest.NewRecorder()
			err = s.Save(r, w)

			// expect
			if (err != nil) != tt.nok {
				t.Fatalf("Save: %v; want an error: %v", err, tt.nok)
			}
			if tt.nok && !strings.Contains(err.Error(), "Config.Cookie") {
				t.Errorf("Save: %v; want an error naming Config.Cookie", err)
			}
			headers, values := setCookies(w)
			if strings.Join(headers, "\n") != strings.Join(tt.expect, "\n") {
				t.Errorf("Set-Cookie:\n%q\nwant\n%q", headers, tt.expect)
			}
			if want := map[bool]int{false: 0, true: 1}[tt.expectN != nil]; st.Len() != want {
				t.Errorf("store holds %d sessions; want %d", st.Len(), want)
			}
			key := m.KeyOf(s)
			if tt.expectN == nil {
				if key != "" {
					if _, err := st.Load(context.Background(), key); !errors.Is(err, store.ErrNotFound) {
						t.Errorf("store record after the delete: %v; want ErrNotFound", err)
					}
				}
				return
			}
			// The session, read back with the cookie the browser now holds,
			// has the expected value.
			next := request()
			switch {
			case len(values) > 1:
				t.Fatalf("Save set %d cookies", len(values))
			case len(values) == 1:
				if tt.existing && values[0] != r.Cookies()[0].Value {
					t.Errorf("Save of an existing session set the value %q; want its cookie %q", values[0], r.Cookies()[0].Value)
				}
				next.AddCookie(&http.Cookie{Name: m.CookieName(), Value: values[0]})
			default:
				for _, c := range r.Cookies() {
					next.AddCookie(c)
				}
			}
			got, err := m.New(next, m.CookieName())
			if err != nil || got.IsNew || got.Values["n"] != tt.expectN {
				t.Errorf("read back: IsNew %v, n=%v, %v; want the session with n=%v", got.IsNew, got.Values["n"], err, tt.expectN)
			}
		})
	}
}

// Save refuses a session of another name: gorilla's registry saves every
// session a request asked for, even one the store refused in Get, and
// saving it as the session cookie would replace the user's session.
func TestSaveOtherName(t *testing.T) {
	// given
	m := newManager(t)
	r := newSessions(t, m, 1)[0]
	s, err := m.Get(r, "flash")
	if err == nil {
		t.Fatal("Get of another name: no error")
	}
	s.Values["x"] = 1

	// when
	w := httptest.NewRecorder()
	err = sessions.Save(r, w)

	// expect
	if err == nil || w.Header().Get("Set-Cookie") != "" {
		t.Fatalf("registry Save of session %q: %v, Set-Cookie %q; want an error and no cookie", "flash", err, w.Header().Get("Set-Cookie"))
	}
	own, err := m.New(r, m.CookieName())
	if err != nil || own.IsNew || own.Values["n"] != 0 {
		t.Errorf("the user's session after: IsNew %v, %v, %v; want it unchanged", own.IsNew, own.Values, err)
	}
}

// New checks Config.Cookie: __Host- rules, SameSite=None and Partitioned
// need Secure, the name must be a cookie name.
func TestNewCookieConfig(t *testing.T) {
	tests := []struct {
		name   string
		given  sessionio.Cookie
		expect string // a part of New's error, or "" when accepted
	}{
		{"ok, defaults", sessionio.Cookie{}, ""},
		{"ok, __Host- Secure with the default Path", sessionio.Cookie{Name: "__Host-s", Secure: true}, ""},
		{"ok, __Host- Secure with Path /", sessionio.Cookie{Name: "__Host-s", Secure: true, Path: "/"}, ""},
		{"ok, SameSite=None with Secure", sessionio.Cookie{SameSite: http.SameSiteNoneMode, Secure: true}, ""},
		{"ok, Partitioned with Secure", sessionio.Cookie{Partitioned: true, Secure: true}, ""},
		{"ok, Domain and Path without the prefix", sessionio.Cookie{Domain: "example.com", Path: "/app"}, ""},
		{"nok, __Host- with a Domain", sessionio.Cookie{Name: "__Host-s", Secure: true, Domain: "example.com"}, "__Host-"},
		{"nok, __Host- with Path /app", sessionio.Cookie{Name: "__Host-s", Secure: true, Path: "/app"}, "__Host-"},
		{"nok, __Host- not Secure", sessionio.Cookie{Name: "__Host-s"}, "__Host-"},
		{"nok, SameSite=None without Secure", sessionio.Cookie{SameSite: http.SameSiteNoneMode}, "SameSite=None"},
		{"nok, Partitioned without Secure", sessionio.Cookie{Partitioned: true}, "Partitioned"},
		{"nok, name with a space", sessionio.Cookie{Name: "a b"}, "not a valid cookie name"},
		{"nok, name with a semicolon", sessionio.Cookie{Name: "a;b"}, "not a valid cookie name"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := sessionio.New(sessionio.Config{
				Store:  memory.New(),
				Keys:   [][]byte{[]byte(strings.Repeat("k", 32))},
				Cookie: tt.given,
				Logger: tandemtest.Logger(t),
			})
			if err == nil {
				defer m.Close()
			}
			switch {
			case tt.expect == "" && err != nil:
				t.Errorf("New: %v; want it accepted", err)
			case tt.expect != "" && (err == nil || !strings.Contains(err.Error(), tt.expect)):
				t.Errorf("New: %v; want an error about %q", err, tt.expect)
			}
		})
	}
}
