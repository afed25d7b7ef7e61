package sessionio

import (
	"errors"
	"fmt"
)

// checkGob walks a gob record the way encoding/gob's Decoder.Decode reads
// it, without building anything, and refuses a map, slice or array whose
// element count exceeds the bytes left in its message (every element
// takes at least one byte, so no record gob writes has one).
//
// encoding/gob (Go 1.26) allocates a map of the size the stream declares
// before reading an entry (decodeMap: reflect.MakeMapWithSize with n read
// from the stream, unchecked), so a damaged record of about a hundred
// bytes holding a registered map type can ask for a map of 1<<28 entries,
// about 1.3 GB. Strings, []byte and interface names gob checks against
// its buffer itself; slices it grows in bounded steps (saferio); the
// walker checks those counts too.
//
// The walk follows gob's decoder (decoder.go decodeTypeSequence,
// decode.go decodeStruct, decodeSingle, decodeInterface): messages are
// length-prefixed; a negative type id is followed by a wireType (a struct
// of the one kind that is set); a value is read by its wire type, so the
// local types do not matter. It is stricter than gob only where gob's
// encoder never goes: a wire type with more than one kind set, a nesting
// deeper than maxGobDepth, and a type id the stream never defined.
func checkGob(data []byte) error {
	w := gobWalker{rest: data, types: map[int32]*gobWire{}}
	id, err := w.typeSequence(false)
	if err != nil {
		return err
	}
	return w.single(id)
}

// Built-in type ids (encoding/gob type.go bootstrapType).
const (
	gobBool      = 1
	gobInt       = 2
	gobUint      = 3
	gobFloat     = 4
	gobBytes     = 5
	gobString    = 6
	gobComplex   = 7
	gobInterface = 8
	gobFirstUser = 64 // firstUserId: the lowest id a stream may define
	gobTooBig    = 1 << 30
	maxGobDepth  = 10000 // gob's own limit for values it skips (maxIgnoreNestingDepth)
)

// Kinds of a wire type: the field of gob's wireType that is set.
const (
	wireArray = iota + 1
	wireSlice
	wireStruct
	wireMap
	wireBytes // GobEncoderT, BinaryMarshalerT, TextMarshalerT: a byte string
)

type gobWire struct {
	kind      int
	key, elem int32
	fields    []int32
}

var (
	errGobTruncated = errors.New("gob record: truncated")
	// errGobCount: a count larger than the bytes left, the refusal this
	// walker exists for.
	errGobCount = errors.New("gob record: count exceeds the record")
)

type gobWalker struct {
	rest  []byte // the stream after the current message
	b     []byte // the current message's unread bytes
	types map[int32]*gobWire
	depth int
}

// readGobUint reads gob's unsigned integer: one byte up to 0x7F, else the negated
// byte count and that many big-endian bytes (decode.go decodeUint).
func readGobUint(b []byte) (uint64, int, error) {
	if len(b) == 0 {
		return 0, 0, errGobTruncated
	}
	if b[0] <= 0x7f {
		return uint64(b[0]), 1, nil
	}
	n := -int(int8(b[0]))
	if n > 8 {
		return 0, 0, errors.New("gob record: unsigned integer out of range")
	}
	if len(b) < 1+n {
		return 0, 0, errGobTruncated
	}
	var x uint64
	for _, c := range b[1 : 1+n] {
		x = x<<8 | uint64(c)
	}
	return x, 1 + n, nil
}

func (w *gobWalker) uint() (uint64, error) {
	x, n, err := readGobUint(w.b)
	if err != nil {
		return 0, err
	}
	w.b = w.b[n:]
	return x, nil
}

func (w *gobWalker) int() (int64, error) {
	u, err := w.uint()
	if u&1 != 0 {
		return ^int64(u >> 1), err
	}
	return int64(u >> 1), err
}

// typeID reads an int as gob does into a typeId (an int32).
func (w *gobWalker) typeID() (int32, error) {
	i, err := w.int()
	if err == nil && (i < -1<<31 || i > 1<<31-1) {
		err = fmt.Errorf("gob record: type id %d out of range", i)
	}
	return int32(i), err
}

// message makes the next message of the stream the current one
// (decoder.go recvMessage).
func (w *gobWalker) message() error {
	n, k, err := readGobUint(w.rest)
	if err != nil {
		return err
	}
	if n >= gobTooBig || n > uint64(len(w.rest)-k) {
		return fmt.Errorf("gob record: message of %d bytes in %d", n, len(w.rest)-k)
	}
	w.b, w.rest = w.rest[k:k+int(n)], w.rest[k+int(n):]
	return nil
}

// typeSequence reads type definitions up to a value's type id
// (decoder.go decodeTypeSequence).
func (w *gobWalker) typeSequence(isInterface bool) (int32, error) {
	for {
		if len(w.b) == 0 {
			if err := w.message(); err != nil {
				return 0, err
			}
		}
		id, err := w.typeID()
		if err != nil {
			return 0, err
		}
		if id >= 0 {
			return id, nil
		}
		if err := w.defineType(-id); err != nil {
			return 0, err
		}
		if len(w.b) > 0 {
			if !isInterface {
				return 0, errors.New("gob record: extra data in buffer")
			}
			if _, err := w.uint(); err != nil {
				return 0, err
			}
		}
	}
}

// fields reads a struct's fields, calling f with each field number, as
// decodeStruct does: deltas from -1, ending at a zero delta or at the end
// of the message.
func (w *gobWalker) fields(n int, f func(int) error) error {
	num := -1
	for len(w.b) > 0 {
		delta, err := w.uint()
		if err != nil {
			return err
		}
		if delta == 0 {
			return nil
		}
		if delta > uint64(n-1-num) {
			return errors.New("gob record: field number out of range")
		}
		num += int(delta)
		if err := f(num); err != nil {
			return err
		}
	}
	return nil
}

// defineType reads a wireType (type.go: ArrayT, SliceT, StructT, MapT,
// GobEncoderT, BinaryMarshalerT, TextMarshalerT; each a struct whose field
// 0 is CommonType{Name string; Id typeId}).
func (w *gobWalker) defineType(id int32) error {
	if id < gobFirstUser || w.types[id] != nil {
		return errors.New("gob record: duplicate type received")
	}
	wire := &gobWire{}
	err := w.fields(7, func(kind int) error {
		if wire.kind != 0 {
			return errors.New("gob record: wire type of two kinds")
		}
		switch kind {
		case 0:
			wire.kind = wireArray
			return w.fields(3, func(i int) error {
				switch i {
				case 0:
					return w.common()
				case 1:
					return w.typeField(&wire.elem)
				}
				_, err := w.uint() // Len: decodeArray checks it against the local type
				return err
			})
		case 1, 3:
			wire.kind = wireSlice
			n := 2
			if kind == 3 {
				wire.kind, n = wireMap, 3
			}
			return w.fields(n, func(i int) error {
				switch {
				case i == 0:
					return w.common()
				case i == 1 && kind == 3:
					return w.typeField(&wire.key)
				}
				return w.typeField(&wire.elem)
			})
		case 2:
			wire.kind = wireStruct
			return w.fields(2, func(i int) error {
				if i == 0 {
					return w.common()
				}
				n, err := w.count()
				if err != nil {
					return err
				}
				wire.fields = make([]int32, n)
				for j := range wire.fields {
					err := w.fields(2, func(i int) error {
						if i == 0 {
							return w.skipBytes()
						}
						return w.typeField(&wire.fields[j])
					})
					if err != nil {
						return err
					}
				}
				return nil
			})
		default:
			wire.kind = wireBytes
			return w.fields(1, func(int) error { return w.common() })
		}
	})
	if err != nil {
		return err
	}
	w.types[id] = wire
	return nil
}

func (w *gobWalker) common() error {
	return w.fields(2, func(i int) error {
		if i == 0 {
			return w.skipBytes()
		}
		var id int32
		return w.typeField(&id)
	})
}

func (w *gobWalker) typeField(id *int32) error {
	var err error
	*id, err = w.typeID()
	return err
}

// count reads an element count and refuses one larger than the bytes left
// in the message.
func (w *gobWalker) count() (int, error) {
	n, err := w.uint()
	if err != nil {
		return 0, err
	}
	if n > uint64(len(w.b)) {
		return 0, fmt.Errorf("%w: %d elements declared, %d bytes left", errGobCount, n, len(w.b))
	}
	return int(n), nil
}

func (w *gobWalker) skipBytes() error {
	n, err := w.uint()
	if err != nil {
		return err
	}
	if n > uint64(len(w.b)) {
		return fmt.Errorf("gob record: %d bytes declared, %d left", n, len(w.b))
	}
	w.b = w.b[n:]
	return nil
}

// single reads a value as decodeValue does: a struct as its fields, any
// other type after a zero field delta (decodeSingle).
func (w *gobWalker) single(id int32) error {
	if wire := w.types[id]; wire == nil || wire.kind != wireStruct {
		delta, err := w.uint()
		if err != nil {
			return err
		}
		if delta != 0 {
			return errors.New("gob record: non-zero delta for singleton")
		}
	}
	return w.value(id)
}

// value reads one value of wire type id.
func (w *gobWalker) value(id int32) error {
	switch id {
	case gobBool, gobInt, gobUint, gobFloat:
		_, err := w.uint()
		return err
	case gobComplex:
		if _, err := w.uint(); err != nil {
			return err
		}
		_, err := w.uint()
		return err
	case gobBytes, gobString:
		return w.skipBytes()
	}
	w.depth++
	defer func() { w.depth-- }()
	if w.depth > maxGobDepth {
		return errors.New("gob record: nested too deep")
	}
	if id == gobInterface {
		return w.iface()
	}
	wire := w.types[id]
	if wire == nil {
		return fmt.Errorf("gob record: undefined type id %d", id)
	}
	switch wire.kind {
	case wireArray, wireSlice:
		n, err := w.count()
		if err != nil {
			return err
		}
		for range n {
			if err := w.value(wire.elem); err != nil {
				return err
			}
		}
		return nil
	case wireMap:
		n, err := w.count()
		if err != nil {
			return err
		}
		for range n {
			if err := w.value(wire.key); err != nil {
				return err
			}
			if err := w.value(wire.elem); err != nil {
				return err
			}
		}
		return nil
	case wireStruct:
		return w.fields(len(wire.fields), func(i int) error { return w.value(wire.fields[i]) })
	case wireBytes:
		return w.skipBytes()
	}
	return fmt.Errorf("gob record: type id %d of no kind", id)
}

// iface reads an interface value: the concrete type's name (empty for
// nil), its type definitions and id, a byte count gob does not use, and
// the value (decode.go decodeInterface).
func (w *gobWalker) iface() error {
	n, err := w.uint()
	if err != nil {
		return err
	}
	if n > uint64(len(w.b)) {
		return fmt.Errorf("gob record: interface name of %d bytes, %d left", n, len(w.b))
	}
	w.b = w.b[n:]
	if n == 0 {
		return nil
	}
	id, err := w.typeSequence(true)
	if err != nil {
		return err
	}
	if _, err := w.uint(); err != nil {
		return err
	}
	return w.single(id)
}
