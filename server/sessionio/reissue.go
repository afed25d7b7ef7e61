package sessionio

import "net/http"

// Reissue sets the request's session cookie again, signed with the current
// key, when the cookie that names its session verified only with an older
// key (a rotation of Config.Keys): once every active client has been
// through, the old key can be dropped without logging anyone out. It does
// nothing for a cookie signed with the current key, or for no valid cookie.
// Call it before the handler (a handler that sets the cookie itself, as a
// new session or a logout does, has the last word). It is safe to call
// from any goroutine.
func (m *Manager) Reissue(w http.ResponseWriter, r *http.Request) {
	for _, c := range r.CookiesNamed(m.cfg.Cookie.Name) {
		id, key, err := m.signer.verifyKey(c.Value)
		if err != nil {
			continue
		}
		if key > 0 {
			http.SetCookie(w, m.cookie(r, id))
		}
		return // the first cookie that verifies is the one the request uses
	}
}
