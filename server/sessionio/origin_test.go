package sessionio

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/tandem-go/tandem/server/store/memory"
)

func TestNormalizeOrigin(t *testing.T) {
	tests := []struct {
		name, given, expect string
		expectErr           bool
	}{
		{"ok, plain", "http://localhost:4200", "http://localhost:4200", false},
		{"ok, case and trailing slash", "HTTPS://App.Example/", "https://app.example", false},
		{"ok, https default port dropped (browsers leave it out)", "https://app.example:443", "https://app.example", false},
		{"ok, http default port dropped", "http://app.example:80", "http://app.example", false},
		{"ok, other port kept", "https://app.example:8443", "https://app.example:8443", false},
		{"nok, wildcard", "*", "", true},
		{"nok, wildcard subdomain", "https://*.example", "", true},
		{"nok, no scheme", "localhost:4200", "", true},
		{"nok, other scheme", "ftp://x", "", true},
		{"nok, path", "http://x/app", "", true},
		{"nok, user", "http://u@x", "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := NormalizeOrigin(tt.given)
			if got != tt.expect || (err != nil) != tt.expectErr {
				t.Errorf("NormalizeOrigin(%q) = %q, %v", tt.given, got, err)
			}
		})
	}
}

func TestOriginPolicyAllows(t *testing.T) {
	p, err := newOriginPolicy([]string{"http://localhost:4200"})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name          string
		host          string
		origin, fetch string
		expect        bool
	}{
		{"ok, no Origin, no Sec-Fetch-Site (not a browser)", "api:3000", "", "", true},
		{"ok, no Origin, same-origin", "api:3000", "", "same-origin", true},
		{"ok, allowlisted, cross-site", "api:3000", "http://localhost:4200", "cross-site", true},
		{"ok, allowlisted, same-site", "api:3000", "http://localhost:4200", "same-site", true},
		{"ok, allowlisted, no Sec-Fetch-Site", "api:3000", "http://localhost:4200", "", true},
		{"ok, allowlisted, other case", "api:3000", "HTTP://LOCALHOST:4200", "", true},
		{"ok, same origin by Host", "localhost:3000", "http://localhost:3000", "same-origin", true},
		{"ok, same origin by Host, no Sec-Fetch-Site", "localhost:3000", "http://localhost:3000", "", true},
		{"ok, the browser says same-origin (Host rewritten by a proxy)", "backend:8080", "http://localhost:3000", "same-origin", true},
		{"nok, own host and scheme but the browser says cross-site", "localhost:3000", "http://localhost:3000", "cross-site", false},
		{"nok, own host over https, cross-site", "localhost:3000", "https://localhost:3000", "cross-site", false},
		{"nok, own host over another scheme, no Sec-Fetch-Site", "localhost:3000", "https://localhost:3000", "", false},
		{"nok, own host, same-site (another port is another origin)", "localhost:3000", "http://localhost:3000", "same-site", false},
		{"nok, foreign", "localhost:3000", "http://evil.example", "cross-site", false},
		{"nok, foreign, no Sec-Fetch-Site", "localhost:3000", "http://evil.example", "", false},
		{"nok, look-alike of the allowlisted origin", "localhost:3000", "http://localhost:4200.evil.example", "cross-site", false},
		{"nok, same host other port", "localhost:3000", "http://localhost:3001", "same-site", false},
		{"nok, same host other port, no Sec-Fetch-Site", "localhost:3000", "http://localhost:3001", "", false},
		{"nok, null origin", "localhost:3000", "null", "cross-site", false},
		{"nok, null origin, no Sec-Fetch-Site", "localhost:3000", "null", "", false},
		{"nok, no Origin but cross-site", "localhost:3000", "", "cross-site", false},
		{"nok, no Origin but same-site", "localhost:3000", "", "same-site", false},
		{"nok, garbage", "localhost:3000", "::::", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, _ := http.NewRequest(http.MethodGet, "http://"+tt.host+"/socket.io/", nil)
			if tt.origin != "" {
				r.Header.Set("Origin", tt.origin)
			}
			if tt.fetch != "" {
				r.Header.Set("Sec-Fetch-Site", tt.fetch)
			}
			if got := p.allows(r); got != tt.expect {
				t.Errorf("allows = %v, want %v", got, tt.expect)
			}
		})
	}
}

// FuzzOrigin: CORS_ORIGINS entries and Origin headers come from outside.
// NormalizeOrigin never panics, accepts only http(s) origins without a
// wildcard, path or user, and is idempotent; the policy lets an Origin
// through only when it is in the allowlist (case aside) or names the
// request's own host, and a request without Origin only when the browser
// does not say it is cross-site.
func FuzzOrigin(f *testing.F) {
	f.Fuzz(func(t *testing.T, entry, origin, host, fetchSite string) {
		n, err := NormalizeOrigin(entry)
		if err == nil {
			u, perr := url.Parse(n)
			if perr != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || strings.Contains(n, "*") || u.User != nil || u.Path != "" {
				t.Fatalf("NormalizeOrigin(%q) = %q, not an origin", entry, n)
			}
			if again, err := NormalizeOrigin(n); err != nil || again != n {
				t.Fatalf("NormalizeOrigin(%q) = %q, but again gives %q, %v", entry, n, again, err)
			}
		}
		p, err := newOriginPolicy([]string{entry})
		if err != nil {
			return
		}
		r := &http.Request{Header: http.Header{}, Host: host}
		if origin != "" {
			r.Header.Set("Origin", origin)
		}
		if fetchSite != "" {
			r.Header.Set("Sec-Fetch-Site", fetchSite)
		}
		if !p.allows(r) {
			return
		}
		got := r.Header.Get("Origin")
		switch fetch := r.Header.Get("Sec-Fetch-Site"); {
		case fetch == "same-origin" || fetch == "none":
			// The browser vouches for the request, as for Go's
			// CrossOriginProtection.
		case fetch != "":
			if got == "" || !strings.EqualFold(got, n) {
				t.Fatalf("Sec-Fetch-Site %q with Origin %q passed an allowlist of %q", fetch, got, n)
			}
		case got == "":
		case strings.EqualFold(got, n):
		default:
			u, err := url.Parse(got)
			if err != nil || u.Host == "" || !strings.EqualFold(u.Host, host) || !strings.EqualFold(u.Scheme, "http") {
				t.Fatalf("Origin %q passed an allowlist of %q on host %q", got, n, host)
			}
		}
	})
}

// Behind a TLS-terminating proxy the own https origin is allowed: named by
// PublicURL, or by a trusted proxy's X-Forwarded-Proto (never by anyone
// else's); and the cookie is then Secure.
func TestOwnOriginBehindAProxy(t *testing.T) {
	trusted := func(r *http.Request) bool { return r.RemoteAddr == "10.0.0.1:1234" }
	tests := []struct {
		name      string
		cfg       Config
		peer      string
		forwarded string
		expect    bool
		secure    bool
	}{
		{name: "nok, no PublicURL, no trusted proxy", peer: "10.0.0.1:1234", forwarded: "https", expect: false},
		{name: "ok, PublicURL", cfg: Config{PublicURL: "https://app.example/"}, peer: "10.0.0.9:1", expect: true, secure: true},
		{name: "ok, PublicURL with the default port", cfg: Config{PublicURL: "https://app.example:443"}, peer: "10.0.0.9:1", expect: true, secure: true},
		{name: "ok, trusted proxy's X-Forwarded-Proto", cfg: Config{TrustProxy: trusted}, peer: "10.0.0.1:1234", forwarded: "https", expect: true, secure: true},
		{name: "nok, untrusted peer's X-Forwarded-Proto", cfg: Config{TrustProxy: trusted}, peer: "10.6.6.6:1", forwarded: "https", expect: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := tt.cfg
			cfg.Store = memory.New()
			cfg.Keys = [][]byte{[]byte(strings.Repeat("k", 32))}
			m, err := New(cfg)
			if err != nil {
				t.Fatal(err)
			}
			r, _ := http.NewRequest(http.MethodGet, "http://app.example/socket.io/", nil)
			r.Host = "app.example"
			r.RemoteAddr = tt.peer
			r.Header.Set("Origin", "https://app.example")
			if tt.forwarded != "" {
				r.Header.Set("X-Forwarded-Proto", tt.forwarded)
			}
			if got := m.allowsOrigin(r); got != tt.expect {
				t.Errorf("allowsOrigin = %v, want %v", got, tt.expect)
			}
			if got := m.secure(r); got != tt.secure {
				t.Errorf("secure = %v, want %v", got, tt.secure)
			}
		})
	}
}
