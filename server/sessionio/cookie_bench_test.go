package sessionio

import (
	"strings"
	"testing"
)

// BenchmarkCookieVerify measures what every request and handshake with a
// cookie pays before the store: the shape check and the HMAC-SHA256.
func BenchmarkCookieVerify(b *testing.B) {
	k1, k2 := []byte(strings.Repeat("a", 32)), []byte(strings.Repeat("b", 32))
	value := signer{keys: [][]byte{k1}}.sign(newID())
	forged := value[:len(value)-1] + "A"
	if forged == value {
		forged = value[:len(value)-1] + "B"
	}
	for _, bc := range []struct {
		name   string
		keys   [][]byte
		value  string
		wantOK bool
	}{
		{"valid", [][]byte{k1}, value, true},
		{"valid, second of two keys", [][]byte{k2, k1}, value, true},
		{"forged", [][]byte{k1}, forged, false},
		{"malformed", [][]byte{k1}, "x", false},
	} {
		b.Run(bc.name, func(b *testing.B) {
			s := signer{keys: bc.keys}
			b.ReportAllocs()
			for b.Loop() {
				if _, err := s.verify(bc.value); (err == nil) != bc.wantOK {
					b.Fatalf("verify: %v", err)
				}
			}
		})
	}
}
