package web

import (
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"
)

// ClientAddr names the client of a request, for the limits and the logs:
// one function, so that what the limiters count and what the logs say are
// the same thing.
//
// The client is the TCP peer, unless the peer is a trusted proxy; then it
// is the right-most address of X-Forwarded-For that is not itself a trusted
// proxy (the left part of that header is whatever the client wrote, so it
// is never believed). An IPv6 client is named by its /64: one subscriber
// usually gets a whole /64, and counting every /128 apart would give each of
// them 2^64 buckets.
type ClientAddr struct {
	trusted []netip.Prefix
}

// NewClientAddr returns the client-address function for the given trusted
// proxies (TRUSTED_PROXIES; none by default).
func NewClientAddr(trusted []netip.Prefix) *ClientAddr {
	return &ClientAddr{trusted: trusted}
}

// ParseTrustedProxies parses a list of CIDRs (or single addresses, taken as
// /32 or /128).
func ParseTrustedProxies(list []string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, s := range list {
		s = strings.TrimSpace(s)
		if s == "" {
			continue
		}
		if !strings.Contains(s, "/") {
			a, err := netip.ParseAddr(s)
			if err != nil {
				return nil, fmt.Errorf("%q is not a CIDR (e.g. 10.0.0.0/8) or an IP address", s)
			}
			a = a.Unmap()
			out = append(out, netip.PrefixFrom(a, a.BitLen()))
			continue
		}
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return nil, fmt.Errorf("%q is not a CIDR (e.g. 10.0.0.0/8 or fd00::/8)", s)
		}
		if p.Addr().Is4In6() {
			p = netip.PrefixFrom(p.Addr().Unmap(), max(p.Bits()-96, 0))
		}
		out = append(out, p.Masked())
	}
	return out, nil
}

// Of returns the name of r's client: an IPv4 address, an IPv6 /64 such as
// "2001:db8:1:2::/64", or, when r.RemoteAddr is not an IP address (a test's
// fake request, a Unix socket), r.RemoteAddr itself.
func (c *ClientAddr) Of(r *http.Request) string {
	peer, ok := parseAddr(r.RemoteAddr)
	if !ok {
		return r.RemoteAddr
	}
	if !c.isTrusted(peer) {
		return group(peer)
	}
	// Right to left: each trusted proxy appended the address it saw.
	hops := r.Header.Values("X-Forwarded-For")
	for i := len(hops) - 1; i >= 0; i-- {
		parts := strings.Split(hops[i], ",")
		for j := len(parts) - 1; j >= 0; j-- {
			a, err := netip.ParseAddr(strings.TrimSpace(parts[j]))
			if err != nil {
				// A hop we cannot read: the proxy before it is unknown,
				// so the last address we trust is the client.
				return group(peer)
			}
			a = a.Unmap()
			if !c.isTrusted(a) {
				return group(a)
			}
			peer = a
		}
	}
	return group(peer)
}

// Peer returns the name of a TCP peer, and whether it is a trusted proxy
// (whose connections carry many clients, so no per-client bound on
// connections applies to it).
func (c *ClientAddr) Peer(addr net.Addr) (name string, trusted bool) {
	a, ok := parseAddr(addr.String())
	if !ok {
		return addr.String(), false
	}
	return group(a), c.isTrusted(a)
}

// FromProxy reports whether r's TCP peer is a trusted proxy, whose
// X-Forwarded-Proto and X-Forwarded-Host may name the server's own origin
// (sessionio.Config.TrustProxy).
func (c *ClientAddr) FromProxy(r *http.Request) bool {
	peer, ok := parseAddr(r.RemoteAddr)
	return ok && c.isTrusted(peer)
}

func (c *ClientAddr) isTrusted(a netip.Addr) bool {
	for _, p := range c.trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

func parseAddr(hostport string) (netip.Addr, bool) {
	ap, err := netip.ParseAddrPort(hostport)
	if err != nil {
		a, err := netip.ParseAddr(hostport)
		if err != nil {
			return netip.Addr{}, false
		}
		return a.Unmap(), true
	}
	return ap.Addr().Unmap(), true
}

// group names an address: IPv4 as is, IPv6 by its /64.
func group(a netip.Addr) string {
	a = a.WithZone("")
	if a.Is4() {
		return a.String()
	}
	p, _ := a.Prefix(64)
	return p.String()
}
