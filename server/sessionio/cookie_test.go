package sessionio

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/tandem-go/tandem/server/store/memory"
)

func TestSignerVerify(t *testing.T) {
	oldKey := []byte(strings.Repeat("o", 32))
	newKey := []byte(strings.Repeat("n", 32))
	s := signer{keys: [][]byte{newKey, oldKey}}
	id := newID()
	good := s.sign(id)
	signedWithOld := signer{keys: [][]byte{oldKey}}.sign(id)
	signedElsewhere := signer{keys: [][]byte{[]byte(strings.Repeat("x", 32))}}.sign(id)
	flip := func(v string, i int) string {
		b := []byte(v)
		if b[i] == 'A' {
			b[i] = 'B'
		} else {
			b[i] = 'A'
		}
		return string(b)
	}
	tests := []struct {
		name   string
		given  string
		expect string // the ID, or "" for a refusal
	}{
		{"ok, signed with the first key", good, id},
		{"ok, signed with a rotated-out key that still verifies", signedWithOld, id},
		{"nok, signed with an unknown key", signedElsewhere, ""},
		{"nok, MAC tampered", flip(good, len(good)-1), ""},
		{"nok, ID tampered", flip(good, 0), ""},
		{"nok, truncated", good[:len(good)-1], ""},
		{"nok, extended", good + "A", ""},
		{"nok, empty", "", ""},
		{"nok, no separator", strings.Replace(good, ".", "A", 1), ""},
		{"nok, ID with characters outside base64url", "+" + good[1:], ""},
		{"nok, non-ASCII of the right length", strings.Repeat("é", cookieLen/2) + ".", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := s.verify(tt.given)
			if got != tt.expect || (err == nil) != (tt.expect != "") {
				t.Errorf("verify(%q) = %q, %v; want %q", tt.given, got, err, tt.expect)
			}
		})
	}
}

func TestNewIDsAreDistinctAndWellFormed(t *testing.T) {
	seen := map[string]bool{}
	for range 1000 {
		id := newID()
		if !validID(id) || seen[id] {
			t.Fatalf("newID gave %q (valid %v, repeated %v)", id, validID(id), seen[id])
		}
		seen[id] = true
	}
}

func TestKeyOfHidesTheID(t *testing.T) {
	id := newID()
	k := keyOf(id)
	if k == id || strings.Contains(k, id[:8]) || keyOf(id) != k || keyOf(newID()) == k {
		t.Errorf("keyOf(%q) = %q: want a stable hash that reveals nothing of the ID", id, k)
	}
}

// FuzzVerify: whatever a client sends as a cookie, verify never panics and
// accepts only what sign produced.
func FuzzVerify(f *testing.F) {
	s := signer{keys: [][]byte{[]byte(strings.Repeat("k", 32))}}
	f.Add(s.sign(newID()))
	f.Add("")
	f.Add(strings.Repeat(".", cookieLen))
	f.Fuzz(func(t *testing.T, value string) {
		id, err := s.verify(value)
		if err != nil {
			return
		}
		if s.sign(id) != value {
			t.Fatalf("verify accepted %q, which sign(%q) does not produce", value, id)
		}
	})
}

// FuzzCookieHeader: whatever Cookie header a request carries (duplicated
// names, quotes, garbage, a valid cookie among others), reading the session
// ID from it and re-issuing it never panic; an ID comes only from a cookie
// one of the keys signed, and a cookie is re-issued only when an older key
// signed it, with the current key.
func FuzzCookieHeader(f *testing.F) {
	cur, old := []byte(strings.Repeat("n", 32)), []byte(strings.Repeat("o", 32))
	m, err := New(Config{Store: memory.New(), Keys: [][]byte{cur, old}})
	if err != nil {
		f.Fatal(err)
	}
	oldSigner := signer{keys: [][]byte{old}}
	f.Fuzz(func(t *testing.T, header string, oldValid bool) {
		if oldValid {
			header += "; " + DefaultCookieName + "=" + oldSigner.sign(newID())
		}
		r := &http.Request{Header: http.Header{"Cookie": {header}}}
		id, ok := m.idFromRequest(r)
		if ok && !validID(id) {
			t.Fatalf("idFromRequest(%q) = %q, not an ID", header, id)
		}
		w := httptest.NewRecorder()
		m.Reissue(w, r)
		set := w.Result().Cookies()
		switch {
		case len(set) > 1:
			t.Fatalf("Reissue(%q) set %d cookies", header, len(set))
		case len(set) == 1:
			got, key, err := m.signer.verifyKey(set[0].Value)
			if err != nil || key != 0 || !ok || got != id {
				t.Fatalf("Reissue(%q) set %q (key %d, %v), want the request's ID %q signed with the current key", header, set[0].Value, key, err, id)
			}
		}
	})
}
