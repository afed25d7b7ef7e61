package sessionio

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"encoding/gob"
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
)

// Values are a session's data, the same type as gorilla's
// sessions.Session.Values, so HTTP handlers and socket handlers read the same
// thing. Every value round-trips with its exact type (an int stays an int,
// an int64 an int64).
//
// When every key is a string and every value is a string, bool, int, int8,
// int16, int32, int64, uint, uint8, uint16, uint32, uint64, float32, float64
// or []byte, the values are stored in a compact binary format of sessionio's
// own: it costs a small fraction of encoding/gob's time and allocations, and
// the session is encoded and decoded on every change. Anything else (other
// key types, named types, time.Time, structs, nested maps, other slices) is
// encoded with encoding/gob, as gorilla's own stores do: register your own
// types with gob.Register before storing them. Records written by earlier
// versions, all gob, still read; a record in the compact format cannot be
// read by a version that predates it (it is treated as unreadable, that is,
// as a session gone). An empty []byte reads back as a nil []byte, as it does
// with gob.
type Values = map[any]any

// The compact format: fastMark, fastVersion, a uvarint entry count, then per
// entry in increasing key order a uvarint key length and the key's bytes,
// one tag byte and the value's payload.
//
// fastMark tells it apart from gob. A gob stream is a sequence of messages,
// each preceded by its byte count (Encoder.writeMessage, encodeUint: a count
// of up to 0x7F is that one byte, a larger one starts with its negated byte
// length, 0xF8 to 0xFF). Every message starts with a type ID, a non-zero
// signed integer (-id for a type definition, sendActualType; the value's
// type ID before a value, sendTypeId), and gob's encodeInt writes a non-zero
// integer as at least one non-zero byte. So no message is empty, no count
// is zero, and no gob stream starts with 0x00.
const (
	fastMark    = 0x00
	fastVersion = 1
)

// Tags of the compact format; zero is not a tag.
const (
	tagString byte = iota + 1
	tagBool        // one byte, 0 or 1
	tagInt         // zig-zag varint, as encoding/binary's Varint
	tagInt8
	tagInt16
	tagInt32
	tagInt64
	tagUint // uvarint
	tagUint8
	tagUint16
	tagUint32
	tagUint64
	tagFloat32 // IEEE 754 bits, 4 bytes little-endian
	tagFloat64 // IEEE 754 bits, 8 bytes little-endian
	tagBytes   // uvarint length and the bytes, as tagString
)

// minEntry is the fewest bytes an entry takes: a key length, a tag and a
// payload of at least one byte.
const minEntry = 3

var errMalformed = errors.New("malformed compact record")

func encodeValues(v Values) ([]byte, error) {
	if data, ok := encodeFast(v); ok {
		return data, nil
	}
	var buf bytes.Buffer
	if err := gob.NewEncoder(&buf).Encode(v); err != nil {
		return nil, fmt.Errorf("sessionio: encode values: %w", err)
	}
	return buf.Bytes(), nil
}

func decodeValues(data []byte) (Values, error) {
	if len(data) == 0 {
		return Values{}, nil
	}
	if data[0] == fastMark {
		v, err := decodeFast(data[1:])
		if err != nil {
			return nil, fmt.Errorf("decode values: %w", err)
		}
		return v, nil
	}
	// gob allocates a map of the size a record declares before reading
	// it: checkGob refuses counts larger than the record (gobcheck.go).
	if err := checkGob(data); err != nil {
		return nil, fmt.Errorf("decode values: %w", err)
	}
	v, err := decodeGob(data)
	if err != nil {
		return nil, fmt.Errorf("decode values: %w", err)
	}
	return v, nil
}

// decodeGob decodes a gob record. encoding/gob (Go 1.26) panics, rather
// than failing, on a map key whose type cannot be a map key (a []byte in an
// interface, say: "hash of unhashable type []uint8", FuzzDecodeValues found
// it): its decodeMap calls reflect's SetMapIndex without checking, and its
// catchError re-panics whatever is not its own error. A damaged record is
// an error here, never a panic.
func decodeGob(data []byte) (v Values, err error) {
	defer func() {
		if p := recover(); p != nil {
			v, err = nil, fmt.Errorf("gob: %v", p)
		}
	}()
	v = Values{}
	if err := gob.NewDecoder(bytes.NewReader(data)).Decode(&v); err != nil {
		return nil, err
	}
	return v, nil
}

type entry struct {
	key string
	val any
}

// encodeFast encodes v in the compact format, or reports false when a key
// or a value is outside it.
func encodeFast(v Values) ([]byte, bool) {
	var room [16]entry // most sessions hold a few values: no allocation for them
	entries := room[:0]
	size := 2 + binary.MaxVarintLen64
	for k, x := range v {
		key, ok := k.(string)
		if !ok {
			return nil, false
		}
		n, ok := payloadSize(x)
		if !ok {
			return nil, false
		}
		size += binary.MaxVarintLen64 + len(key) + 1 + n
		entries = append(entries, entry{key, x})
	}
	slices.SortFunc(entries, func(a, b entry) int { return cmp.Compare(a.key, b.key) })
	buf := make([]byte, 0, size)
	buf = append(buf, fastMark, fastVersion)
	buf = binary.AppendUvarint(buf, uint64(len(entries)))
	for _, e := range entries {
		buf = binary.AppendUvarint(buf, uint64(len(e.key)))
		buf = append(buf, e.key...)
		buf = appendValue(buf, e.val)
	}
	return buf, true
}

// payloadSize bounds the bytes x takes after its tag, or reports false when
// x's type is outside the compact format. Only these exact types are in it:
// a named type (type Role string) goes to gob, which keeps its type.
func payloadSize(x any) (int, bool) {
	switch x := x.(type) {
	case string:
		return binary.MaxVarintLen64 + len(x), true
	case []byte:
		return binary.MaxVarintLen64 + len(x), true
	case bool:
		return 1, true
	case int, int8, int16, int32, int64, uint, uint8, uint16, uint32, uint64:
		return binary.MaxVarintLen64, true
	case float32:
		return 4, true
	case float64:
		return 8, true
	}
	return 0, false
}

// appendValue appends x's tag and payload; x passed payloadSize.
func appendValue(buf []byte, x any) []byte {
	switch x := x.(type) {
	case string:
		buf = append(buf, tagString)
		buf = binary.AppendUvarint(buf, uint64(len(x)))
		return append(buf, x...)
	case []byte:
		buf = append(buf, tagBytes)
		buf = binary.AppendUvarint(buf, uint64(len(x)))
		return append(buf, x...)
	case bool:
		if x {
			return append(buf, tagBool, 1)
		}
		return append(buf, tagBool, 0)
	case int:
		return binary.AppendVarint(append(buf, tagInt), int64(x))
	case int8:
		return binary.AppendVarint(append(buf, tagInt8), int64(x))
	case int16:
		return binary.AppendVarint(append(buf, tagInt16), int64(x))
	case int32:
		return binary.AppendVarint(append(buf, tagInt32), int64(x))
	case int64:
		return binary.AppendVarint(append(buf, tagInt64), x)
	case uint:
		return binary.AppendUvarint(append(buf, tagUint), uint64(x))
	case uint8:
		return binary.AppendUvarint(append(buf, tagUint8), uint64(x))
	case uint16:
		return binary.AppendUvarint(append(buf, tagUint16), uint64(x))
	case uint32:
		return binary.AppendUvarint(append(buf, tagUint32), uint64(x))
	case uint64:
		return binary.AppendUvarint(append(buf, tagUint64), x)
	case float32:
		return binary.LittleEndian.AppendUint32(append(buf, tagFloat32), math.Float32bits(x))
	case float64:
		return binary.LittleEndian.AppendUint64(append(buf, tagFloat64), math.Float64bits(x))
	}
	panic(fmt.Sprintf("sessionio: appendValue of %T", x)) // unreachable: payloadSize refused it
}

// decodeFast decodes a compact record after its fastMark. It refuses
// anything encodeFast would not have written, and checks every length
// against the bytes left before it allocates.
func decodeFast(data []byte) (Values, error) {
	if len(data) == 0 {
		return nil, fmt.Errorf("%w: no format version", errMalformed)
	}
	if data[0] != fastVersion {
		return nil, fmt.Errorf("%w: unknown format version %d", errMalformed, data[0])
	}
	r := reader{b: data[1:]}
	n, err := r.uvarint()
	if err != nil {
		return nil, fmt.Errorf("%w: entry count: %w", errMalformed, err)
	}
	if n > uint64(len(r.b))/minEntry {
		return nil, fmt.Errorf("%w: %d entries in %d bytes", errMalformed, n, len(r.b))
	}
	v := make(Values, n)
	for i := range n {
		key, err := r.bytes()
		if err != nil {
			return nil, fmt.Errorf("%w: entry %d: key: %w", errMalformed, i, err)
		}
		k := string(key)
		if _, dup := v[k]; dup {
			return nil, fmt.Errorf("%w: entry %d: duplicate key", errMalformed, i)
		}
		x, err := r.value()
		if err != nil {
			return nil, fmt.Errorf("%w: entry %d: %w", errMalformed, i, err)
		}
		v[k] = x
	}
	if len(r.b) != 0 {
		return nil, fmt.Errorf("%w: %d bytes after the last entry", errMalformed, len(r.b))
	}
	return v, nil
}

var (
	errTruncated = errors.New("truncated")
	errRange     = errors.New("value out of range")
)

// reader consumes a compact record.
type reader struct{ b []byte }

func (r *reader) uvarint() (uint64, error) {
	x, n := binary.Uvarint(r.b)
	if n <= 0 { // 0: too short; < 0: more than 64 bits
		return 0, errTruncated
	}
	r.b = r.b[n:]
	return x, nil
}

func (r *reader) varint() (int64, error) {
	x, n := binary.Varint(r.b)
	if n <= 0 {
		return 0, errTruncated
	}
	r.b = r.b[n:]
	return x, nil
}

// bytes returns the next length-prefixed bytes, aliasing the record.
func (r *reader) bytes() ([]byte, error) {
	n, err := r.uvarint()
	if err != nil {
		return nil, err
	}
	if n > uint64(len(r.b)) {
		return nil, fmt.Errorf("%w: length %d, %d bytes left", errTruncated, n, len(r.b))
	}
	b := r.b[:n:n]
	r.b = r.b[n:]
	return b, nil
}

func (r *reader) fixed(n int) ([]byte, error) {
	if len(r.b) < n {
		return nil, errTruncated
	}
	b := r.b[:n]
	r.b = r.b[n:]
	return b, nil
}

// signed reads a varint that must fit in [lo, hi].
func (r *reader) signed(lo, hi int64) (int64, error) {
	x, err := r.varint()
	if err == nil && (x < lo || x > hi) {
		err = fmt.Errorf("%w: %d", errRange, x)
	}
	return x, err
}

// unsigned reads a uvarint that must be at most hi.
func (r *reader) unsigned(hi uint64) (uint64, error) {
	x, err := r.uvarint()
	if err == nil && x > hi {
		err = fmt.Errorf("%w: %d", errRange, x)
	}
	return x, err
}

// readInt reads a varint that must fit in [lo, hi], T's range, as a T.
func readInt[T int | int8 | int16 | int32 | int64](r *reader, lo, hi int64) (any, error) {
	i, err := r.signed(lo, hi)
	return T(i), err
}

// readUint reads a uvarint that must be at most hi, T's maximum, as a T.
func readUint[T uint | uint8 | uint16 | uint32 | uint64](r *reader, hi uint64) (any, error) {
	u, err := r.unsigned(hi)
	return T(u), err
}

// value reads a tag and its payload.
func (r *reader) value() (any, error) {
	t, err := r.fixed(1)
	if err != nil {
		return nil, fmt.Errorf("tag: %w", err)
	}
	var x any
	switch tag := t[0]; tag {
	case tagString:
		var b []byte
		if b, err = r.bytes(); err == nil {
			x = string(b)
		}
	case tagBytes:
		var b []byte
		if b, err = r.bytes(); err == nil {
			x = []byte(nil) // an empty []byte reads back nil, as with gob
			if len(b) > 0 {
				x = bytes.Clone(b)
			}
		}
	case tagBool:
		var b []byte
		if b, err = r.fixed(1); err == nil {
			switch b[0] {
			case 0:
				x = false
			case 1:
				x = true
			default:
				err = fmt.Errorf("bool byte %d", b[0])
			}
		}
	case tagInt:
		x, err = readInt[int](r, math.MinInt, math.MaxInt)
	case tagInt8:
		x, err = readInt[int8](r, math.MinInt8, math.MaxInt8)
	case tagInt16:
		x, err = readInt[int16](r, math.MinInt16, math.MaxInt16)
	case tagInt32:
		x, err = readInt[int32](r, math.MinInt32, math.MaxInt32)
	case tagInt64:
		x, err = readInt[int64](r, math.MinInt64, math.MaxInt64)
	case tagUint:
		x, err = readUint[uint](r, math.MaxUint)
	case tagUint8:
		x, err = readUint[uint8](r, math.MaxUint8)
	case tagUint16:
		x, err = readUint[uint16](r, math.MaxUint16)
	case tagUint32:
		x, err = readUint[uint32](r, math.MaxUint32)
	case tagUint64:
		x, err = readUint[uint64](r, math.MaxUint64)
	case tagFloat32:
		var b []byte
		if b, err = r.fixed(4); err == nil {
			x = math.Float32frombits(binary.LittleEndian.Uint32(b))
		}
	case tagFloat64:
		var b []byte
		if b, err = r.fixed(8); err == nil {
			x = math.Float64frombits(binary.LittleEndian.Uint64(b))
		}
	default:
		return nil, fmt.Errorf("unknown tag %d", tag)
	}
	if err != nil {
		return nil, fmt.Errorf("value of tag %d: %w", t[0], err)
	}
	return x, nil
}

// cloneValues returns a shallow copy, so callers can read a snapshot while
// the original moves on.
func cloneValues(v Values) Values {
	if v == nil {
		return Values{}
	}
	return maps.Clone(v)
}
