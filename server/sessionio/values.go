package sessionio

import (
	"bytes"
	"encoding/gob"
	"fmt"
	"maps"
)

// Values are a session's data, the same type as gorilla's
// sessions.Session.Values, so HTTP handlers and socket handlers read the same
// thing. Values are encoded with encoding/gob, as gorilla's own stores do:
// basic types round-trip exactly (an int stays an int); register your own
// types with gob.Register before storing them.
type Values = map[any]any

func encodeValues(v Values) ([]byte, error) {
	var buf bytes.Buffer
	if err := gob.NewEncoder(&buf).Encode(v); err != nil {
		return nil, fmt.Errorf("sessionio: encode values: %w", err)
	}
	return buf.Bytes(), nil
}

func decodeValues(data []byte) (Values, error) {
	v := Values{}
	if len(data) == 0 {
		return v, nil
	}
	if err := gob.NewDecoder(bytes.NewReader(data)).Decode(&v); err != nil {
		return nil, fmt.Errorf("decode values: %w", err)
	}
	return v, nil
}

// cloneValues returns a shallow copy, so callers can read a snapshot while
// the original moves on.
func cloneValues(v Values) Values {
	if v == nil {
		return Values{}
	}
	return maps.Clone(v)
}
