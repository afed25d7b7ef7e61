package sessionio_test

import (
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/tandem-go/tandem/internal/tandemtest"
	"github.com/tandem-go/tandem/server/sessionio"
	"github.com/tandem-go/tandem/server/store/memory"
)

// The global bound refuses new sessions from every address once its burst
// is spent, while the per-address bound, turned Off, refuses none.
func TestGlobalCreationBound(t *testing.T) {
	m, err := sessionio.New(sessionio.Config{
		Store:             memory.New(),
		Keys:              [][]byte{[]byte(strings.Repeat("k", 32))},
		CreateRate:        sessionio.Off,
		CreateGlobalBurst: 3,
		CreateGlobalRate:  0.001,
		Logger:            tandemtest.Logger(t),
	})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	for i := range 5 {
		r := httptest.NewRequest(http.MethodPost, "/", nil)
		r.RemoteAddr = fmt.Sprintf("192.0.2.%d:1234", i+1)
		_, err := m.Update(httptest.NewRecorder(), r, incr, nil)
		if i < 3 && err != nil {
			t.Fatalf("session %d refused within the global burst: %v", i+1, err)
		}
		if i >= 3 && !errors.Is(err, sessionio.ErrTooManySessions) {
			t.Fatalf("session %d from a new address: %v, want ErrTooManySessions", i+1, err)
		}
	}
}
