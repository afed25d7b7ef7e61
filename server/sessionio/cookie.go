package sessionio

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"strings"
)

// A session ID is 32 random bytes in unpadded base64url (43 characters). The
// cookie carries the ID and its HMAC-SHA256 under the signing key, joined by
// a dot. Nothing else travels in the cookie: the values live in the store.
const (
	idBytes   = 32
	idLen     = 43 // base64.RawURLEncoding.EncodedLen(idBytes)
	macLen    = 43 // base64.RawURLEncoding.EncodedLen(sha256.Size)
	cookieLen = idLen + 1 + macLen
)

// macDomain separates these MACs from any other use of the same secret.
const macDomain = "tandem/sessionio cookie v1\x00"

var errBadCookie = errors.New("sessionio: malformed or forged session cookie")

// newID returns a fresh random session ID.
func newID() string {
	var b [idBytes]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+)
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// signer signs session IDs with the first key and verifies them with any.
type signer struct {
	keys [][]byte
}

func (s signer) mac(key []byte, id string) string {
	h := hmac.New(sha256.New, key)
	h.Write([]byte(macDomain))
	h.Write([]byte(id))
	var sum [sha256.Size]byte
	return base64.RawURLEncoding.EncodeToString(h.Sum(sum[:0]))
}

// sign returns the cookie value for id.
func (s signer) sign(id string) string {
	return id + "." + s.mac(s.keys[0], id)
}

// verify returns the session ID carried by a cookie value, or errBadCookie if
// the value is malformed or no key produced its MAC. It never panics,
// whatever the input.
func (s signer) verify(value string) (string, error) {
	id, _, err := s.verifyKey(value)
	return id, err
}

// verifyKey is verify that also tells which key produced the MAC: 0 is the
// current (signing) key, more an older one.
func (s signer) verifyKey(value string) (id string, key int, err error) {
	if len(value) != cookieLen || value[idLen] != '.' {
		return "", 0, errBadCookie
	}
	id, mac := value[:idLen], value[idLen+1:]
	if !validID(id) {
		return "", 0, errBadCookie
	}
	for i, k := range s.keys {
		if subtle.ConstantTimeCompare([]byte(s.mac(k, id)), []byte(mac)) == 1 {
			return id, i, nil
		}
	}
	return "", 0, errBadCookie
}

// validID reports whether id has the shape of an ID made by newID.
func validID(id string) bool {
	if len(id) != idLen {
		return false
	}
	return strings.IndexFunc(id, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_')
	}) < 0
}

// keyOf returns the name a session is known by outside its cookie: the store
// key, the Socket.IO room and the log attribute. It is a SHA-256 of the ID, so
// a store dump, an adapter message or a log line never holds a usable ID.
func keyOf(id string) string {
	sum := sha256.Sum256([]byte(id))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// logKey is the short form of a session key used in log lines.
func logKey(key string) string {
	if len(key) > 12 {
		return key[:12]
	}
	return key
}
