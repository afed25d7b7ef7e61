package sessionio

import (
	"testing"

	"github.com/zishang520/socket.io/servers/socket/v3"
)

// wrapping is an adapter constructor that wraps another one, as
// server/transport's pre-framed broadcast does (sessionio never imports it).
type wrapping struct{ inner socket.AdapterConstructor }

func (w *wrapping) New(nsp socket.Namespace) socket.Adapter { return w.inner.New(nsp) }
func (w *wrapping) Unwrap() socket.AdapterConstructor       { return w.inner }

// remote stands for an adapter that reaches other nodes.
type remote struct{ socket.AdapterBuilder }

func TestClusteredLooksThroughWrappers(t *testing.T) {
	for _, tc := range []struct {
		name string
		a    socket.AdapterConstructor
		want bool
	}{
		{"ok, in-process", &socket.AdapterBuilder{}, false},
		{"ok, in-process wrapped twice", &wrapping{&wrapping{&socket.AdapterBuilder{}}}, false},
		{"ok, session-aware wrapped", &wrapping{&socket.SessionAwareAdapterBuilder{}}, false},
		{"ok, another adapter", &remote{}, true},
		{"ok, another adapter wrapped", &wrapping{&remote{}}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			opts := socket.DefaultServerOptions()
			opts.SetAdapter(tc.a)
			io := socket.NewServer(nil, opts)
			defer io.Close(nil)
			if got := clustered(io); got != tc.want {
				t.Fatalf("clustered = %v, want %v", got, tc.want)
			}
		})
	}
}
