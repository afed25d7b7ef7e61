package sessionio

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
)

// NormalizeOrigin checks that s is a Web origin (scheme://host[:port], no
// path, no wildcard) and returns it in the form browsers send in the Origin
// header.
func NormalizeOrigin(s string) (string, error) {
	s = strings.TrimSpace(s)
	if s == "*" || strings.Contains(s, "*") {
		return "", fmt.Errorf("%q: wildcards cannot be combined with credentials; list each origin", s)
	}
	u, err := url.Parse(s)
	if err != nil {
		return "", fmt.Errorf("%q: %w", s, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" || u.Host == "" {
		return "", fmt.Errorf("%q: want an origin such as http://localhost:4200", s)
	}
	if u.User != nil || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
		return "", fmt.Errorf("%q: an origin has no user, path, query or fragment", s)
	}
	host := u.Host
	// Browsers leave the scheme's default port out of Origin.
	if port := u.Port(); (u.Scheme == "https" && port == "443") || (u.Scheme == "http" && port == "80") {
		host = strings.TrimSuffix(host, ":"+port)
	}
	return strings.ToLower(u.Scheme + "://" + host), nil
}

// allowsOrigin is the origin check of every Engine.IO request: the policy,
// with the server's own origin as a trusted proxy names it.
func (m *Manager) allowsOrigin(r *http.Request) bool {
	if m.origins.allows(r) {
		return true
	}
	if !m.cfg.TrustProxy(r) {
		return false
	}
	proto, host := r.Header.Get("X-Forwarded-Proto"), r.Header.Get("X-Forwarded-Host")
	if host == "" {
		host = r.Host
	}
	if proto == "" {
		return false
	}
	own, err := NormalizeOrigin(strings.TrimSpace(strings.Split(proto, ",")[0]) + "://" + strings.TrimSpace(strings.Split(host, ",")[0]))
	if err != nil {
		return false
	}
	origin := r.Header.Get("Origin")
	if origin == "" {
		return false // allows already passed every request without one
	}
	n, err := NormalizeOrigin(origin)
	return err == nil && n == own
}

// originPolicy decides which browser origins may open a socket: the
// allowlist, plus the server's own origin (the Origin's host equals the
// request's Host). It is checked on every Engine.IO request, so a WebSocket
// upgrade is held to the same rule as a polling handshake: CORS headers alone
// do not stop a page on another site from opening a WebSocket with the
// user's cookies (cross-site WebSocket hijacking).
type originPolicy map[string]struct{}

func newOriginPolicy(origins []string) (originPolicy, error) {
	p := originPolicy{}
	for _, o := range origins {
		n, err := NormalizeOrigin(o)
		if err != nil {
			return nil, fmt.Errorf("sessionio: allowed origin %w", err)
		}
		p[n] = struct{}{}
	}
	return p, nil
}

// allows reports whether r may proceed, in the order of Go's
// http.CrossOriginProtection: Sec-Fetch-Site first, when the browser sent
// it (same-origin and none pass; same-site and cross-site pass only from an
// allowlisted Origin), then Origin, compared by scheme and host with the
// request's own (http, or https on TLS) or found in the allowlist. A request
// with neither header does not come from a page on another site: browsers
// send Origin on cross-origin requests and on every WebSocket handshake.
// Behind a TLS-terminating proxy the request's own scheme is unknown: set
// Config.PublicURL (it joins the allowlist) or Config.TrustProxy.
func (p originPolicy) allows(r *http.Request) bool {
	origin := r.Header.Get("Origin")
	switch r.Header.Get("Sec-Fetch-Site") {
	case "same-origin", "none":
		return true
	case "":
	default:
		return origin != "" && p.listed(origin)
	}
	if origin == "" {
		return true
	}
	return p.listed(origin) || sameOrigin(origin, r)
}

func (p originPolicy) listed(origin string) bool {
	_, ok := p[strings.ToLower(origin)]
	return ok
}

// sameOrigin reports whether origin is the request's own origin: same
// scheme and host (port included).
func sameOrigin(origin string, r *http.Request) bool {
	u, err := url.Parse(origin)
	if err != nil || u.Host == "" {
		return false
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return strings.EqualFold(u.Scheme, scheme) && strings.EqualFold(u.Host, r.Host)
}
