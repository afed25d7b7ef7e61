package counter

import (
	"errors"
	"math"
	"testing"

	"github.com/tandem-go/tandem/server/sessionio"
)

func TestIncr(t *testing.T) {
	tests := []struct {
		name      string
		given     sessionio.Values
		expect    int
		expectErr error
	}{
		{"ok, empty session starts at one", sessionio.Values{}, 1, nil},
		{"ok, existing count grows", sessionio.Values{"count": 41}, 42, nil},
		{"ok, ill-typed value restarts the count", sessionio.Values{"count": "7"}, 1, nil},
		{"nok, overflow", sessionio.Values{"count": math.MaxInt}, math.MaxInt, ErrOverflow},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Incr(tt.given)
			if !errors.Is(err, tt.expectErr) {
				t.Fatalf("err = %v, want %v", err, tt.expectErr)
			}
			if got := Count(tt.given); got != tt.expect {
				t.Errorf("count = %d, want %d", got, tt.expect)
			}
		})
	}
}
