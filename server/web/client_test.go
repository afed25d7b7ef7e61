package web

import (
	"net"
	"net/http"
	"net/netip"
	"strings"
	"testing"
)

func TestClientAddr(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name         string
		givenTrusted []string
		givenPeer    string
		givenXFF     []string // X-Forwarded-For header lines
		expect       string
	}{
		{name: "ok, IPv4 peer", givenPeer: "192.0.2.7:5000", expect: "192.0.2.7"},
		{name: "ok, IPv6 peer is named by its /64", givenPeer: "[2001:db8:1:2:aaaa:bbbb:cccc:dddd]:5000", expect: "2001:db8:1:2::/64"},
		{name: "ok, two addresses of one /64 are one client", givenPeer: "[2001:db8:1:2::1]:1", expect: "2001:db8:1:2::/64"},
		{name: "ok, IPv4-mapped IPv6 is IPv4", givenPeer: "[::ffff:192.0.2.7]:5000", expect: "192.0.2.7"},
		{name: "ok, a zone is dropped", givenPeer: "[fe80::1%eth0]:5000", expect: "fe80::/64"},
		{name: "nok, X-Forwarded-For from an untrusted peer is ignored", givenPeer: "192.0.2.7:5000", givenXFF: []string{"198.51.100.1"}, expect: "192.0.2.7"},
		{name: "nok, X-Forwarded-For ignored without trusted proxies, even from loopback", givenPeer: "127.0.0.1:5000", givenXFF: []string{"198.51.100.1"}, expect: "127.0.0.1"},
		{name: "ok, a trusted proxy names the client", givenTrusted: []string{"10.0.0.0/8"}, givenPeer: "10.1.2.3:5000", givenXFF: []string{"198.51.100.1"}, expect: "198.51.100.1"},
		{name: "ok, a trusted single address", givenTrusted: []string{"10.1.2.3"}, givenPeer: "10.1.2.3:5000", givenXFF: []string{"198.51.100.1"}, expect: "198.51.100.1"},
		{name: "nok, what the client wrote left of the proxy's entry is not believed", givenTrusted: []string{"10.0.0.0/8"}, givenPeer: "10.1.2.3:5000", givenXFF: []string{"203.0.113.9, 198.51.100.1"}, expect: "198.51.100.1"},
		{name: "ok, a chain of trusted proxies", givenTrusted: []string{"10.0.0.0/8"}, givenPeer: "10.1.2.3:5000", givenXFF: []string{"203.0.113.9, 198.51.100.1, 10.9.9.9"}, expect: "198.51.100.1"},
		{name: "ok, several header lines are one list", givenTrusted: []string{"10.0.0.0/8"}, givenPeer: "10.1.2.3:5000", givenXFF: []string{"203.0.113.9", "198.51.100.1, 10.9.9.9"}, expect: "198.51.100.1"},
		{name: "ok, an IPv6 client behind a proxy is named by its /64", givenTrusted: []string{"10.0.0.0/8"}, givenPeer: "10.1.2.3:5000", givenXFF: []string{"2001:db8:5:6::42"}, expect: "2001:db8:5:6::/64"},
		{name: "nok, a trusted proxy without X-Forwarded-For is the client", givenTrusted: []string{"10.0.0.0/8"}, givenPeer: "10.1.2.3:5000", expect: "10.1.2.3"},
		{name: "nok, garbage in X-Forwarded-For stops at the last trusted hop", givenTrusted: []string{"10.0.0.0/8"}, givenPeer: "10.1.2.3:5000", givenXFF: []string{"198.51.100.1, not-an-ip"}, expect: "10.1.2.3"},
		{name: "nok, every hop trusted: the left-most is the client", givenTrusted: []string{"10.0.0.0/8"}, givenPeer: "10.1.2.3:5000", givenXFF: []string{"10.7.7.7, 10.8.8.8"}, expect: "10.7.7.7"},
		{name: "ok, an IPv6 proxy range", givenTrusted: []string{"fd00::/8"}, givenPeer: "[fd00::1]:5000", givenXFF: []string{"192.0.2.44"}, expect: "192.0.2.44"},
		{name: "nok, not an IP address", givenPeer: "@", expect: "@"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			trusted, err := ParseTrustedProxies(tt.givenTrusted)
			if err != nil {
				t.Fatal(err)
			}
			r, _ := http.NewRequest(http.MethodGet, "/", nil)
			r.RemoteAddr = tt.givenPeer
			for _, v := range tt.givenXFF {
				r.Header.Add("X-Forwarded-For", v)
			}
			if got := NewClientAddr(trusted).Of(r); got != tt.expect {
				t.Errorf("Of = %q, want %q", got, tt.expect)
			}
		})
	}
}

func TestClientAddrPeer(t *testing.T) {
	t.Parallel()
	trusted, _ := ParseTrustedProxies([]string{"10.0.0.0/8"})
	c := NewClientAddr(trusted)
	if name, tr := c.Peer(&net.TCPAddr{IP: net.ParseIP("10.0.0.1"), Port: 1}); name != "10.0.0.1" || !tr {
		t.Errorf("Peer(10.0.0.1) = %q, %v; want trusted", name, tr)
	}
	if name, tr := c.Peer(&net.TCPAddr{IP: net.ParseIP("2001:db8::1"), Port: 1}); name != "2001:db8::/64" || tr {
		t.Errorf("Peer(2001:db8::1) = %q, %v; want 2001:db8::/64, untrusted", name, tr)
	}
}

// Only a trusted proxy's forwarding headers may name the own origin.
func TestClientAddrFromProxy(t *testing.T) {
	t.Parallel()
	trusted, _ := ParseTrustedProxies([]string{"10.0.0.0/8"})
	c := NewClientAddr(trusted)
	for peer, want := range map[string]bool{"10.1.2.3:443": true, "192.0.2.7:443": false, "@unix": false} {
		r, _ := http.NewRequest(http.MethodGet, "/", nil)
		r.RemoteAddr = peer
		if got := c.FromProxy(r); got != want {
			t.Errorf("FromProxy(%s) = %v, want %v", peer, got, want)
		}
	}
}

func TestParseTrustedProxies(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		given    []string
		expectOK bool
	}{
		{"ok, none", nil, true},
		{"ok, IPv4 and IPv6 CIDRs", []string{"10.0.0.0/8", "fd00::/8"}, true},
		{"ok, single addresses", []string{"127.0.0.1", "::1"}, true},
		{"ok, an unmasked CIDR", []string{"10.1.2.3/8"}, true},
		{"nok, a host name", []string{"proxy.internal"}, false},
		{"nok, a bad prefix length", []string{"10.0.0.0/33"}, false},
		{"nok, a port", []string{"10.0.0.1:80"}, false},
		{"nok, a star", []string{"*"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := ParseTrustedProxies(tt.given)
			if (err == nil) != tt.expectOK {
				t.Errorf("ParseTrustedProxies(%q): %v", tt.given, err)
			}
		})
	}
}

// FuzzClientAddr: X-Forwarded-For and TRUSTED_PROXIES are text from
// outside. Parsing and naming never panic; the name is an IP address, an
// IPv6 /64 or the raw peer; without trusted proxies the header changes
// nothing.
func FuzzClientAddr(f *testing.F) {
	f.Fuzz(func(t *testing.T, trusted, peer, xff string) {
		prefixes, err := ParseTrustedProxies(strings.Split(trusted, ","))
		if err != nil {
			prefixes = nil
		}
		r := &http.Request{RemoteAddr: peer, Header: http.Header{}}
		r.Header.Set("X-Forwarded-For", xff)
		got := NewClientAddr(prefixes).Of(r)
		if got != peer {
			if _, err := netip.ParseAddr(got); err != nil {
				p, err := netip.ParsePrefix(got)
				if err != nil || p.Bits() != 64 || !p.Addr().Is6() {
					t.Fatalf("Of = %q: neither an address, a /64 nor the peer %q", got, peer)
				}
			}
		}
		bare := &http.Request{RemoteAddr: peer, Header: http.Header{}}
		if plain := NewClientAddr(nil).Of(r); plain != NewClientAddr(nil).Of(bare) {
			t.Fatalf("without trusted proxies, X-Forwarded-For %q changed the client from %q to %q", xff, NewClientAddr(nil).Of(bare), plain)
		}
	})
}
