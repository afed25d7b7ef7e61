package sessionio

import (
	"bytes"
	"encoding/gob"
	"errors"
	"math"
	"math/big"
	"net/url"
	"runtime"
	"strings"
	"testing"
	"time"
)

// gobTree is a recursive registered type with pointers, slices, maps,
// interfaces and an embedded struct.
type gobTree struct {
	gobPoint
	Name     string
	Left     *gobTree
	Right    *gobTree
	Kids     []gobTree
	Tags     map[string][]byte
	Any      any
	Grid     [3][2]int8
	Floats   []float32
	C        complex64
	When     time.Time
	WhenP    *time.Time
	unexport int //nolint:unused // gob skips it
}

func init() {
	gob.Register(map[string]int{})
	gob.Register([]any{})
	gob.Register(gobTree{})
	gob.Register([3]int{})
	gob.Register(map[int][]gobPoint{})
	gob.Register(map[gobPoint]string{})
	gob.Register(new(big.Int))
	gob.Register(&url.URL{})
	gob.Register([]map[string]any{})
	gob.Register(map[string]map[string]int{})
	gob.Register([][]byte{})
	gob.Register(uint64(0))
}

func gobShapes() []Values {
	at := time.Date(2026, 12, 1, 22, 0, 0, 5, time.FixedZone("x", 3600))
	big1, _ := new(big.Int).SetString("123456789012345678901234567890", 10)
	bigMap := map[string]int{}
	bigSlice := []any{}
	for i := range 1000 {
		bigMap[strings.Repeat("k", i%7)+string(rune('a'+i%26))+strings.Repeat("z", i/26)] = i
		bigSlice = append(bigSlice, i, "s", gobPoint{i, -i})
	}
	leaf := &gobTree{Name: "leaf", When: at}
	tree := gobTree{
		gobPoint: gobPoint{1, 2}, Name: "root", Left: leaf, Right: &gobTree{Left: leaf, Any: map[string]any{"deep": []any{1, "x", nil}}},
		Kids: []gobTree{{Name: "k1"}, {}, {Tags: map[string][]byte{"t": {1, 2, 3}, "": nil}}},
		Tags: map[string][]byte{"a": []byte("bytes")}, Any: &gobTree{Name: "in any"},
		Grid: [3][2]int8{{1, -1}, {0, 0}, {127, -128}}, Floats: []float32{0, 1.5, float32(math.Inf(-1))}, C: complex(1, -2),
		When: at, WhenP: &at,
	}
	return []Values{
		{},
		{"count": 42},
		tenValues,
		{"at": time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), "p": gobPoint{1, 2}, 7: int8(-3)},
		{"at": time.Date(2026, 11, 30, 6, 0, 0, 0, time.UTC)},
		{"p": gobPoint{3, 4}},
		{"m": map[string]any{"a": 1}},
		{"s": []string{"a", "b"}},
		{"r": role("admin")},
		{1: "one"},
		{"x": nil},
		{"c": complex(1, 2)},
		{"count": 1, "name": "Ada", "p": gobPoint{1, 2}},
		{"m": map[string]int{"a": 1}},
		{"m": map[string]int{}},
		{"m": bigMap},
		{"s": bigSlice},
		{"s": []any{}},
		{"nested": map[string]any{"a": map[string]any{"b": map[string]any{"c": []any{map[string]any{"d": 1}}}}}},
		{"maps": []map[string]any{{"a": 1}, {}, {"b": gobPoint{}}}},
		{"mm": map[string]map[string]int{"x": {"y": 1}, "z": {}}},
		{"points": map[int][]gobPoint{1: {{1, 2}, {3, 4}}, 2: nil, -3: {}}},
		{"keys": map[gobPoint]string{{1, 2}: "a", {}: ""}},
		{"arr": [3]int{1, 0, -1}},
		{"tree": tree, "ptree": &tree},
		{"big": big1, "zero": new(big.Int)},
		{"url": &url.URL{Scheme: "https", Host: "example.com", Path: "/a b"}},
		{"bb": [][]byte{{}, {0}, bytes.Repeat([]byte{0xff}, 300)}},
		{"u": uint64(math.MaxUint64), "i": math.MinInt64, "f": math.MaxFloat64, "s": strings.Repeat("x", 70000)},
		{gobPoint{1, 2}: []any{role("r"), time.Time{}, map[string]any{"t": at}}},
		{"zero": gobPoint{}, "empty": "", "f": false},
	}
}

// Everything gob encodes, the walker accepts and decodeValues reads back.
func TestCheckGobAcceptsWhatGobEncodes(t *testing.T) {
	for i, v := range gobShapes() {
		data := gobEncode(t, v)
		if err := checkGob(data); err != nil {
			t.Errorf("shape %d (%d bytes): walker refused: %v", i, len(data), err)
			continue
		}
		if _, err := decodeValues(data); err != nil {
			t.Errorf("shape %d: decodeValues: %v", i, err)
		}
	}
}

// Several values encoded by one gob.Encoder: later records carry no type
// definitions for types sent before. decodeValues reads one record with a
// fresh decoder, so only the first is a record; the walker must still
// follow a stream of several messages the way gob does.
func TestCheckGobStreamOfSeveralMessages(t *testing.T) {
	var buf bytes.Buffer
	if err := gob.NewEncoder(&buf).Encode(Values{"t": gobTree{Name: "a", Any: []any{gobPoint{1, 2}}}}); err != nil {
		t.Fatal(err)
	}
	if err := checkGob(buf.Bytes()); err != nil {
		t.Fatal(err)
	}
}

// damagedMapRecord is the record of Values{"m": map[string]int{"a": 1}}
// with the inner map's count patched to 1<<28 and the message length
// fixed up: gob alone allocates about 1.3 GB for it.
func damagedMapRecord(t *testing.T) []byte {
	t.Helper()
	data := gobEncode(t, Values{"m": map[string]int{"a": 1}})
	// Split into messages; the value is the last one.
	var msgs [][]byte
	for rest := data; len(rest) > 0; {
		n, k, err := readGobUint(rest)
		if err != nil {
			t.Fatal(err)
		}
		msgs = append(msgs, rest[k:k+int(n)])
		rest = rest[k+int(n):]
	}
	last := msgs[len(msgs)-1]
	// The map inside the interface: delta 0, count 1, key "a", value 1 (zig-zag 2).
	at := bytes.LastIndex(last, []byte("\x00\x01\x01a\x02"))
	if at < 0 {
		t.Fatalf("no map entry in % x", last)
	}
	patched := append([]byte{}, last[:at+1]...)
	patched = append(patched, 0xfc, 0x10, 0x00, 0x00, 0x00) // 1<<28
	patched = append(patched, last[at+2:]...)
	var out []byte
	for _, m := range append(msgs[:len(msgs)-1:len(msgs)-1], patched) {
		out = append(out, encodeGobUint(uint64(len(m)))...)
		out = append(out, m...)
	}
	return out
}

func encodeGobUint(x uint64) []byte {
	if x <= 0x7f {
		return []byte{byte(x)}
	}
	var b []byte
	for ; x > 0; x >>= 8 {
		b = append([]byte{byte(x)}, b...)
	}
	return append([]byte{byte(-len(b))}, b...)
}

// A record declaring a map of 1<<28 entries in a few bytes is refused
// before gob allocates the map.
func TestDecodeValuesRefusesHugeGobMapCount(t *testing.T) {
	data := damagedMapRecord(t)
	t.Logf("damaged record: %d bytes", len(data))
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	v, err := decodeValues(data)
	runtime.ReadMemStats(&after)
	if err == nil {
		t.Fatalf("decodeValues accepted the damaged record: %d values", len(v))
	}
	t.Logf("error: %v", err)
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 4<<20 {
		t.Fatalf("decodeValues allocated %d bytes for a %d-byte record", alloc, len(data))
	}
}

// Damaged lengths anywhere are refused, by the walker or by gob, never
// with a large allocation or a panic.
func TestCheckGobRefusesOversizedCounts(t *testing.T) {
	tests := []struct {
		name string
		data []byte
	}{
		{"nok, empty", nil},
		{"nok, message longer than the record", []byte{0x7f, 0x01}},
		{"nok, uint of 9 bytes", []byte{0x0a, 0xf7, 1, 2, 3, 4, 5, 6, 7, 8, 9}},
		{"nok, value of an undefined type", []byte{0x03, 0x80, 0x00, 0x00}},
		{"nok, type definition with a low id", []byte{0x03, 0x03, 0x00, 0x00}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := checkGob(tt.data); err == nil {
				t.Fatal("accepted")
			}
		})
	}
}

// FuzzCheckGob: for any value built from the fuzzer's bytes, the walker
// accepts gob's encoding of it (no false positive: a refused record is a
// session deleted). For any bytes, it never panics, and what gob alone
// decodes without error the walker accepts too, except what the walker
// refuses by design (see checkGob).
func FuzzCheckGob(f *testing.F) {
	for _, v := range gobShapes()[:14] {
		f.Add(gobEncode(f, v))
	}
	f.Add([]byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17})
	f.Fuzz(func(t *testing.T, data []byte) {
		// Property 1: a value built from the bytes.
		g := valueGen{b: data}
		v := Values{}
		for len(g.b) > 0 && len(v) < 8 {
			v[g.key()] = g.value(0)
		}
		var buf bytes.Buffer
		if err := gob.NewEncoder(&buf).Encode(v); err == nil {
			if err := checkGob(buf.Bytes()); err != nil {
				t.Fatalf("walker refused gob's encoding of %#v: %v", v, err)
			}
		}
		// Property 2: the bytes as a record.
		// gob alone is run only where the walker refused for another
		// reason than a count: on those it may allocate gigabytes.
		werr := checkGob(data)
		if werr == nil || errors.Is(werr, errGobCount) || strings.Contains(werr.Error(), "two kinds") {
			return
		}
		if _, gerr := decodeGob(data); gerr == nil {
			t.Fatalf("gob decoded % x, the walker refused it: %v", data, werr)
		}
	})
}

// valueGen builds a value of a shape chosen by bytes.
type valueGen struct{ b []byte }

func (g *valueGen) byte() byte {
	if len(g.b) == 0 {
		return 0
	}
	c := g.b[0]
	g.b = g.b[1:]
	return c
}

func (g *valueGen) key() any {
	switch g.byte() % 3 {
	case 0:
		return int(g.byte()) - 128
	case 1:
		return gobPoint{int(g.byte()), 1}
	}
	return strings.Repeat("k", int(g.byte()%5)) + string(rune('a'+g.byte()%26))
}

func (g *valueGen) value(depth int) any {
	c := g.byte()
	if depth > 4 {
		c %= 8
	}
	switch c % 20 {
	case 0:
		return int(c) * 1000003
	case 1:
		return strings.Repeat("s", int(g.byte()))
	case 2:
		return bytes.Repeat([]byte{g.byte()}, int(g.byte()))
	case 3:
		return float64(g.byte()) / 3
	case 4:
		return role(strings.Repeat("r", int(g.byte()%9)))
	case 5:
		return gobPoint{int(g.byte()), -int(g.byte())}
	case 6:
		return time.Unix(int64(g.byte())*1e6, int64(g.byte())).UTC()
	case 7:
		return complex(float64(g.byte()), 1)
	case 8:
		m := map[string]int{}
		for i := range int(g.byte() % 40) {
			m[strings.Repeat("m", i)] = int(g.byte())
		}
		return m
	case 9:
		s := []any{}
		for range int(g.byte() % 6) {
			s = append(s, g.value(depth+1))
		}
		return s
	case 10:
		m := map[string]any{}
		for range int(g.byte() % 6) {
			m[strings.Repeat("n", int(g.byte()%4))] = g.value(depth + 1)
		}
		return m
	case 11:
		t := &gobTree{Name: strings.Repeat("t", int(g.byte()%3)), Any: g.value(depth + 1)}
		if g.byte()%2 == 0 {
			t.Left = &gobTree{Kids: make([]gobTree, g.byte()%4)}
		}
		t.Grid[g.byte()%3][1] = int8(g.byte())
		return *t
	case 12:
		return &gobTree{Tags: map[string][]byte{"x": bytes.Repeat([]byte{1}, int(g.byte()))}}
	case 13:
		return [3]int{int(g.byte()), 0, -int(g.byte())}
	case 14:
		m := map[int][]gobPoint{}
		for i := range int(g.byte() % 5) {
			m[i] = make([]gobPoint, g.byte()%5)
		}
		return m
	case 15:
		return new(big.Int).Lsh(big.NewInt(int64(g.byte())), uint(g.byte()))
	case 16:
		return &url.URL{Host: strings.Repeat("h", int(g.byte()%9))}
	case 17:
		return []map[string]any{{"a": g.value(depth + 1)}, nil}
	case 18:
		return map[string]map[string]int{"x": {strings.Repeat("y", int(g.byte()%3)): int(g.byte())}}
	}
	return nil
}
