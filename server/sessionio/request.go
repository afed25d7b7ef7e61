package sessionio

import (
	"context"
	"net/http"
	"strings"
	"sync"

	"github.com/tandem-go/tandem/server/store"
)

// reqState is what the Manager's calls made during one HTTP request know of
// its session, so that each call sees what the earlier ones did (the way
// scs keeps the session in the request's context): Update then Renew renews
// the session Update created, Renew then Update changes the renewed one,
// two Updates make one session, Update then Destroy deletes what Update
// created. It lives in the request's context, put there by the first call.
type reqState struct {
	mu sync.Mutex // one call of the request at a time
	// id is the session ID the request now has: from its cookie until a
	// call creates, renews or destroys the session. "" for none.
	id string
	// loaded is set once meta holds the metadata of id's record.
	loaded bool
	meta   store.Meta
}

// remember notes the metadata of the request's session.
func (st *reqState) remember(meta store.Meta) { st.loaded, st.meta = true, meta }

type reqStateKey struct{ m *Manager }

// state returns r's request state, making it (from r's cookie) on the first
// call of the request. Like gorilla's registry, it replaces *r with a copy
// carrying the state in its context, so later calls that are handed the same
// *http.Request (Echo's c.Request(), net/http's r) find it.
func (m *Manager) state(r *http.Request) *reqState {
	if st, ok := r.Context().Value(reqStateKey{m}).(*reqState); ok {
		return st
	}
	st := &reqState{}
	st.id, _ = m.idFromRequest(r)
	*r = *r.WithContext(context.WithValue(r.Context(), reqStateKey{m}, st))
	return st
}

// lockState locks r's state for one call and returns it.
func (m *Manager) lockState(r *http.Request) (*reqState, func()) {
	st := m.state(r)
	st.mu.Lock()
	return st, st.mu.Unlock
}

// writeCookie sets the session cookie c on w, replacing any session cookie an
// earlier call of the same request set: one request, one Set-Cookie.
func (m *Manager) writeCookie(w http.ResponseWriter, c *http.Cookie) {
	h := w.Header()
	prefix := m.cfg.Cookie.Name + "="
	kept := h.Values("Set-Cookie")[:0:0]
	for _, v := range h.Values("Set-Cookie") {
		if !strings.HasPrefix(v, prefix) {
			kept = append(kept, v)
		}
	}
	h.Del("Set-Cookie")
	for _, v := range kept {
		h.Add("Set-Cookie", v)
	}
	http.SetCookie(w, c)
}
