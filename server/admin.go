package server

import (
	"crypto/subtle"
	"net/http"
	"net/http/pprof"

	"github.com/tandem-go/tandem/server/metrics"
	"github.com/tandem-go/tandem/shared"
)

// newMetrics makes the server's collectors, with the label values of this
// server's routes and events.
func newMetrics(backend string) *metrics.Metrics {
	routes := map[string]string{
		shared.SocketPath + "*": shared.SocketPath,
		"/*":                    "page",
	}
	for _, r := range shared.Routes {
		routes[r] = r
	}
	return metrics.New(metrics.Config{Backend: backend, Events: shared.Events, Routes: routes})
}

// backendKind is the store's kind for the metrics' backend label.
func backendKind(r *resolved) string {
	switch {
	case r.Backend != nil:
		return "custom"
	case isRedis(r.Store):
		return "redis"
	case r.Store == "memory":
		return "memory"
	default:
		return "bolt"
	}
}

// adminHandler is what the operator's listener serves: /metrics and
// /debug/pprof/, behind the bearer token when there is one. Nothing of it
// is mounted on the API or the page.
func (s *Server) adminHandler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", s.metrics.Handler())
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	token := s.cfg.AdminToken
	if token == "" {
		return mux // loopback only (checkAdmin)
	}
	want := []byte("Bearer " + token)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got := []byte(r.Header.Get("Authorization"))
		if subtle.ConstantTimeCompare(got, want) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="tandem admin"`)
			http.Error(w, "401 unauthorized: send Authorization: Bearer <ADMIN_TOKEN>", http.StatusUnauthorized)
			return
		}
		mux.ServeHTTP(w, r)
	})
}

// AdminURL is the operator's listener's base URL once Start returned, or
// "" when there is none.
func (s *Server) AdminURL() string { return listenerURL(s.adminLn) }
