package webclient

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestStaleBuild(t *testing.T) {
	tests := []struct {
		name            string
		running, served string
		expect          bool
	}{
		{name: "ok, same build", running: "abc", served: "abc", expect: false},
		{name: "ok, rebuilt", running: "abc", served: "def", expect: true},
		{name: "ok, server unknown", running: "abc", served: "", expect: false},
		{name: "ok, running unknown", running: "", served: "def", expect: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := staleBuild(tt.running, tt.served); got != tt.expect {
				t.Errorf("staleBuild(%q, %q) = %v, want %v", tt.running, tt.served, got, tt.expect)
			}
		})
	}
}

func TestServedVersion(t *testing.T) {
	var method, path string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		method, path = r.Method, r.URL.Path
		w.Header().Set("ETag", `W/"v42"`)
	}))
	defer srv.Close()
	v, err := servedVersion(context.Background(), srv.Client(), srv.URL+"/")
	if err != nil || v != "v42" {
		t.Fatalf("servedVersion = %q, %v; want v42", v, err)
	}
	if method != http.MethodHead || path != versionProbe {
		t.Errorf("asked %s %s, want HEAD %s", method, path, versionProbe)
	}
}
