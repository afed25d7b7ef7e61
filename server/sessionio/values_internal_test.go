package sessionio

import (
	"bytes"
	"encoding/gob"
	"errors"
	"fmt"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"
)

// gobPoint is a registered type of the application: outside the compact
// format, it goes through gob.
type gobPoint struct{ X, Y int }

// role is a named string: outside the compact format, so it keeps its type.
type role string

func init() {
	gob.Register(gobPoint{})
	gob.Register(map[string]any{})
	gob.Register(role(""))
	gob.Register(time.Time{})
}

// gobEncode is encodeValues as it was before the compact format: every
// record in stores written by earlier versions looks like this.
func gobEncode(tb testing.TB, v Values) []byte {
	tb.Helper()
	var buf bytes.Buffer
	if err := gob.NewEncoder(&buf).Encode(v); err != nil {
		tb.Fatal(err)
	}
	return buf.Bytes()
}

// tenValues is a session of ten basic values.
var tenValues = Values{
	"count":  42,
	"user":   "ada@example.com",
	"name":   "Ada Lovelace",
	"role":   "admin",
	"uid":    int64(1815),
	"logins": uint32(12),
	"admin":  true,
	"score":  98.5,
	"csrf":   []byte("0123456789abcdef0123456789abcdef"),
	"locale": "en-GB",
}

// Every type of the compact format round-trips with its exact type and
// value, and reads back the same as its gob encoding does (an empty []byte
// comes back nil in both).
func TestValuesCompactRoundTrip(t *testing.T) {
	negZero := math.Copysign(0, -1)
	tests := []struct {
		name   string
		given  Values
		expect Values // nil: given
	}{
		{name: "ok, empty", given: Values{}},
		{name: "ok, nil", given: nil, expect: Values{}},
		{name: "ok, string", given: Values{"s": "hello", "e": "", "u": "héllo, 世界 \x00\xff"}},
		{name: "ok, bool", given: Values{"t": true, "f": false}},
		{name: "ok, int", given: Values{"0": 0, "1": 1, "-1": -1, "min": math.MinInt, "max": math.MaxInt, "256": 256}},
		{name: "ok, int8", given: Values{"0": int8(0), "min": int8(math.MinInt8), "max": int8(math.MaxInt8)}},
		{name: "ok, int16", given: Values{"0": int16(0), "min": int16(math.MinInt16), "max": int16(math.MaxInt16)}},
		{name: "ok, int32", given: Values{"0": int32(0), "min": int32(math.MinInt32), "max": int32(math.MaxInt32)}},
		{name: "ok, int64", given: Values{"0": int64(0), "min": int64(math.MinInt64), "max": int64(math.MaxInt64)}},
		{name: "ok, uint", given: Values{"0": uint(0), "max": uint(math.MaxUint)}},
		{name: "ok, uint8", given: Values{"0": uint8(0), "max": uint8(math.MaxUint8)}},
		{name: "ok, uint16", given: Values{"0": uint16(0), "max": uint16(math.MaxUint16)}},
		{name: "ok, uint32", given: Values{"0": uint32(0), "max": uint32(math.MaxUint32)}},
		{name: "ok, uint64", given: Values{"0": uint64(0), "max": uint64(math.MaxUint64)}},
		{name: "ok, float32", given: Values{"0": float32(0), "-0": float32(negZero), "nan": float32(math.NaN()), "inf": float32(math.Inf(-1)), "max": float32(math.MaxFloat32), "tiny": float32(math.SmallestNonzeroFloat32)}},
		{name: "ok, float64", given: Values{"0": 0.0, "-0": negZero, "nan": math.NaN(), "inf": math.Inf(1), "max": math.MaxFloat64, "tiny": math.SmallestNonzeroFloat64, "pi": math.Pi}},
		{name: "ok, []byte", given: Values{"b": []byte{0, 1, 0xff}}},
		{name: "ok, empty and nil []byte read back nil", given: Values{"empty": []byte{}, "nil": []byte(nil)}, expect: Values{"empty": []byte(nil), "nil": []byte(nil)}},
		{name: "ok, unicode and empty keys", given: Values{"": 1, "ключ": "значение", "🔑": true, "a\x00b": 2}},
		{name: "ok, long key and value", given: Values{strings.Repeat("k", 300): strings.Repeat("v", 70000)}},
		{name: "ok, ten values", given: tenValues},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			expect := tt.expect
			if expect == nil {
				expect = tt.given
			}
			data, err := encodeValues(tt.given)
			if err != nil {
				t.Fatal(err)
			}
			if len(data) < 3 || data[0] != fastMark || data[1] != fastVersion {
				t.Fatalf("encoded % x: not the compact format", data[:min(len(data), 8)])
			}
			got, err := decodeValues(data)
			if err != nil {
				t.Fatal(err)
			}
			if !sameValue(reflect.ValueOf(got), reflect.ValueOf(expect)) {
				t.Errorf("round trip gave %#v, want %#v", got, expect)
			}
			fromGob, err := decodeValues(gobEncode(t, tt.given))
			if err != nil {
				t.Fatal(err)
			}
			if !sameValue(reflect.ValueOf(got), reflect.ValueOf(fromGob)) {
				t.Errorf("the compact format gave %#v, gob gives %#v", got, fromGob)
			}
			again, err := encodeValues(got)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(again, data) {
				t.Errorf("encodings differ: % x, then % x", data, again)
			}
		})
	}
}

// The same values encode to the same bytes, whatever the map's order.
func TestValuesCompactIsDeterministic(t *testing.T) {
	first, err := encodeValues(tenValues)
	if err != nil {
		t.Fatal(err)
	}
	for range 20 {
		v := Values{}
		for k, x := range tenValues { // a fresh map, built in another order
			v[k] = x
		}
		data, err := encodeValues(v)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(data, first) {
			t.Fatalf("encodings differ: % x, then % x", first, data)
		}
	}
}

// Anything outside the compact format goes through gob, as before, and
// round-trips.
func TestValuesOutsideTheCompactFormatUseGob(t *testing.T) {
	tests := []struct {
		name  string
		given Values
	}{
		{"ok, time.Time", Values{"at": time.Date(2026, 11, 30, 6, 0, 0, 0, time.UTC)}},
		{"ok, registered struct", Values{"p": gobPoint{3, 4}}},
		{"ok, nested map", Values{"m": map[string]any{"a": 1}}},
		{"ok, slice other than []byte", Values{"s": []string{"a", "b"}}},
		{"ok, named type", Values{"r": role("admin")}},
		{"ok, non-string key", Values{1: "one"}},
		{"ok, nil value", Values{"x": nil}},
		{"ok, complex", Values{"c": complex(1, 2)}},
		{"ok, one odd value among basic ones", Values{"count": 1, "name": "Ada", "p": gobPoint{1, 2}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			data, err := encodeValues(tt.given)
			if err != nil {
				t.Fatal(err)
			}
			if data[0] == fastMark {
				t.Fatalf("encoded in the compact format: % x", data)
			}
			got, err := decodeValues(data)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.given) {
				t.Errorf("round trip gave %#v, want %#v", got, tt.given)
			}
		})
	}
}

// Records written by earlier versions, gob-encoded, still read, whatever
// they hold.
func TestValuesOldGobRecordsStillRead(t *testing.T) {
	for _, v := range []Values{
		{},
		{"count": 42},
		tenValues,
		{"at": time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), "p": gobPoint{1, 2}, 7: int8(-3)},
	} {
		old := gobEncode(t, v)
		got, err := decodeValues(old)
		if err != nil {
			t.Fatalf("decode of a gob record of %#v: %v", v, err)
		}
		if !sameValue(reflect.ValueOf(got), reflect.ValueOf(v)) {
			t.Errorf("gob record read as %#v, want %#v", got, v)
		}
	}
}

// A compact record that is damaged in any way is an error wrapped as the gob
// errors are ("decode values: ..."), never a panic nor a partial map.
func TestValuesCompactCorruptRecords(t *testing.T) {
	valid, err := encodeValues(Values{"a": "xyz", "b": int64(-300), "c": 2.5, "d": []byte{1, 2}, "e": true, "f": float32(1)})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		data string
	}{
		{"nok, no version", "\x00"},
		{"nok, version 0", "\x00\x00\x00"},
		{"nok, version 2", "\x00\x02\x00"},
		{"nok, no count", "\x00\x01"},
		{"nok, count overflows 64 bits", "\x00\x01\xff\xff\xff\xff\xff\xff\xff\xff\xff\x02"},
		{"nok, count beyond the bytes", "\x00\x01\x02\x01a\x02\x01"},
		{"nok, huge count", "\x00\x01\xff\xff\xff\xff\xff\xff\xff\xff\x7f\x01a\x02\x01"},
		{"nok, huge key length", "\x00\x01\x01\xff\xff\xff\xff\xff\xff\xff\xff\x7f"},
		{"nok, key length beyond the bytes", "\x00\x01\x01\x05ab\x02\x01"},
		{"nok, huge string length", "\x00\x01\x01\x01a\x01\xff\xff\xff\xff\xff\xff\xff\xff\x7fxyz"},
		{"nok, huge []byte length", "\x00\x01\x01\x01a\x0f\xff\xff\xff\xff\xff\xff\xff\xff\x01xyz"},
		{"nok, tag 0", "\x00\x01\x01\x01a\x00\x01"},
		{"nok, tag 16", "\x00\x01\x01\x01a\x10\x01"},
		{"nok, tag 255", "\x00\x01\x01\x01a\xff\x01"},
		{"nok, bool byte 2", "\x00\x01\x01\x01a\x02\x02"},
		{"nok, int8 out of range", "\x00\x01\x01\x01a\x04\x80\x02"},
		{"nok, int16 out of range", "\x00\x01\x01\x01a\x05\x80\x80\x04"},
		{"nok, int32 out of range", "\x00\x01\x01\x01a\x06\x80\x80\x80\x80\x10"},
		{"nok, uint8 out of range", "\x00\x01\x01\x01a\x09\x80\x02"},
		{"nok, uint16 out of range", "\x00\x01\x01\x01a\x0a\x80\x80\x04"},
		{"nok, uint32 out of range", "\x00\x01\x01\x01a\x0b\x80\x80\x80\x80\x10"},
		{"nok, varint overflows 64 bits", "\x00\x01\x01\x01a\x07\xff\xff\xff\xff\xff\xff\xff\xff\xff\x02"},
		{"nok, short float32", "\x00\x01\x01\x01a\x0d\x00\x00\x00"},
		{"nok, short float64", "\x00\x01\x01\x01a\x0e\x00\x00\x00\x00\x00\x00\x00"},
		{"nok, trailing byte", string(valid) + "\x00"},
		{"nok, duplicate key", "\x00\x01\x02\x01a\x02\x01\x01a\x02\x00"},
	}
	for i := 1; i < len(valid); i++ {
		tests = append(tests, struct{ name, data string }{fmt.Sprintf("nok, truncated to %d bytes", i), string(valid[:i])})
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, err := decodeValues([]byte(tt.data))
			if err == nil {
				t.Fatalf("decoded % x as %#v, want an error", tt.data, v)
			}
			if v != nil || !errors.Is(err, errMalformed) || !strings.HasPrefix(err.Error(), "decode values: ") {
				t.Errorf("got %#v, %q; want no values and a decode values error", v, err)
			}
		})
	}
	if _, err := decodeValues(valid); err != nil { // the cases fail for their damage only
		t.Fatalf("the valid record: %v", err)
	}
}

// A gob record whose map key is a []byte, which no map key can be, is an
// error: encoding/gob panics on it ("hash of unhashable type []uint8").
func TestValuesGobUnhashableKeyIsAnError(t *testing.T) {
	// gobEncode(Values{1: []byte("AB")}) and gobEncode(Values{"AB": 1})
	// give these parts: the map's type, then the map of one entry.
	const (
		mapType = "\r\x7f\x04\x01\x02\xff\x80\x00\x01\x10\x01\x10\x00\x00"
		mapID   = "\xff\x80\x00"
		bytesIn = "\a[]uint8\n\x04\x00\x02AB" // an interface holding []byte("AB")
		intIn   = "\x03int\x04\x02\x00\x02"   // an interface holding 1
	)
	for _, entry := range []string{bytesIn + intIn, intIn + bytesIn} {
		msg := mapID + "\x01" + entry
		data := []byte(mapType + string([]byte{byte(len(msg))}) + msg)
		v, err := decodeValues(data)
		if strings.HasPrefix(entry, bytesIn) {
			if err == nil || !strings.HasPrefix(err.Error(), "decode values: ") {
				t.Errorf("decode of a []byte map key: %#v, %v; want a decode values error", v, err)
			}
		} else if b, _ := v[1].([]byte); err != nil || string(b) != "AB" {
			t.Errorf("decode of a []byte value: %#v, %v; want {1: AB}", v, err) // the same parts are valid gob
		}
	}
}

// FuzzDecodeValues feeds decodeValues any bytes (the store's contents are
// input from elsewhere: another node, an older version, a damaged file). It
// must never panic, and what it accepts must survive another round trip.
func FuzzDecodeValues(f *testing.F) {
	for _, v := range []Values{
		{},
		{"count": 42},
		tenValues,
		{"i8": int8(-1), "i16": int16(300), "i32": int32(-70000), "u": uint(7), "u8": uint8(200), "u16": uint16(60000), "u64": uint64(math.MaxUint64), "f32": float32(-0.5), "nan": math.NaN(), "": []byte{}},
	} {
		data, err := encodeValues(v)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
		f.Add(gobEncode(f, v))
	}
	f.Add(gobEncode(f, Values{"at": time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), "p": gobPoint{1, 2}, 7: role("x"), "m": map[string]any{"a": []string{"b"}}}))
	f.Add([]byte("\x00\x01\x02\x01a\x02\x01\x01a\x02\x00"))
	f.Fuzz(func(t *testing.T, data []byte) {
		v, err := decodeValues(data)
		if err != nil {
			if v != nil {
				t.Fatalf("values %#v with error %v", v, err)
			}
			return
		}
		again, err := encodeValues(v)
		if err != nil {
			// gob decodes what it cannot encode back (a struct with
			// no exported field set, say); the compact format never does.
			if len(data) > 0 && data[0] == fastMark {
				t.Fatalf("re-encode of a compact record: %v", err)
			}
			return
		}
		w, err := decodeValues(again)
		if err != nil {
			t.Fatalf("decode of the re-encoded %#v: %v", v, err)
		}
		if !sameValue(reflect.ValueOf(w), reflect.ValueOf(v)) {
			t.Fatalf("round trip of %#v gave %#v", v, w)
		}
	})
}

// sameValue is reflect.DeepEqual with floats compared as values that keep
// their sign (-0 is not 0) and NaN equal to NaN, and map keys that are not
// equal to themselves (holding a NaN) counted rather than looked up.
func sameValue(a, b reflect.Value) bool {
	if a.IsValid() != b.IsValid() {
		return false
	}
	if !a.IsValid() {
		return true
	}
	if a.Type() != b.Type() {
		return false
	}
	switch a.Kind() {
	case reflect.Bool:
		return a.Bool() == b.Bool()
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return a.Int() == b.Int()
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		return a.Uint() == b.Uint()
	case reflect.String:
		return a.String() == b.String()
	case reflect.Float32, reflect.Float64:
		return sameFloat(a.Float(), b.Float())
	case reflect.Complex64, reflect.Complex128:
		x, y := a.Complex(), b.Complex()
		return sameFloat(real(x), real(y)) && sameFloat(imag(x), imag(y))
	case reflect.Interface, reflect.Pointer:
		if a.IsNil() || b.IsNil() {
			return a.IsNil() == b.IsNil()
		}
		return sameValue(a.Elem(), b.Elem())
	case reflect.Slice:
		if a.IsNil() != b.IsNil() {
			return false
		}
		fallthrough
	case reflect.Array:
		if a.Len() != b.Len() {
			return false
		}
		for i := range a.Len() {
			if !sameValue(a.Index(i), b.Index(i)) {
				return false
			}
		}
		return true
	case reflect.Struct:
		for i := range a.NumField() {
			if !sameValue(a.Field(i), b.Field(i)) {
				return false
			}
		}
		return true
	case reflect.Map:
		if a.IsNil() != b.IsNil() || a.Len() != b.Len() {
			return false
		}
		odd := 0
		for it := a.MapRange(); it.Next(); {
			k := it.Key()
			if !k.Equal(k) {
				odd++
				continue
			}
			if !sameValue(it.Value(), b.MapIndex(k)) {
				return false
			}
		}
		for it := b.MapRange(); it.Next(); {
			if k := it.Key(); !k.Equal(k) {
				odd--
			}
		}
		return odd == 0
	}
	panic(fmt.Sprintf("sameValue: kind %v", a.Kind()))
}

func sameFloat(x, y float64) bool {
	if math.IsNaN(x) || math.IsNaN(y) {
		return math.IsNaN(x) && math.IsNaN(y)
	}
	return x == y && math.Signbit(x) == math.Signbit(y)
}

func BenchmarkEncodeValues(b *testing.B) {
	for _, c := range benchCases {
		b.Run(c.name+"/gob", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				var buf bytes.Buffer
				if err := gob.NewEncoder(&buf).Encode(c.v); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(c.name+"/fast", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if data, err := encodeValues(c.v); err != nil || data[0] != fastMark {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkDecodeValues(b *testing.B) {
	for _, c := range benchCases {
		b.Run(c.name+"/gob", func(b *testing.B) {
			data := gobEncode(b, c.v)
			b.ReportAllocs()
			for b.Loop() {
				if _, err := decodeValues(data); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(len(data)), "record-bytes")
		})
		b.Run(c.name+"/fast", func(b *testing.B) {
			data, err := encodeValues(c.v)
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				if _, err := decodeValues(data); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(len(data)), "record-bytes")
		})
	}
}

var benchCases = []struct {
	name string
	v    Values
}{
	{"count", Values{"count": 42}},
	{"10keys", tenValues},
}
