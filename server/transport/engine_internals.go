package transport

import (
	"reflect"
	"sync"
	"unsafe"

	"github.com/zishang520/socket.io/parsers/engine/v3/packet"
	"github.com/zishang520/socket.io/servers/engine/v3"
	"github.com/zishang520/socket.io/servers/socket/v3"
	"github.com/zishang520/socket.io/v3/pkg/types"
)

// The pre-framed broadcast writes to a recipient's connection only where
// the library would have written at once, and it must exclude, as the
// library's own path does, every other writer while it checks and writes.
// zishang520/socket.io v3.0.6 keeps the three things that takes private:
//
//   - socket.Client.mu, held by Client.WriteToEngine around all the
//     Engine.IO packets of one Socket.IO packet (a binary packet's
//     attachments follow it with nothing in between);
//   - the engine socket's flushMu, held by its flush() from taking the
//     write buffer to the end of the transport's Send;
//   - the engine socket's writeBuffer, the packets created but not yet
//     flushed (while polling is not writable, or during an upgrade).
//
// lockFor finds them by reflection on the library's types, once; if any
// of them is missing or has another type (another version of the
// library), preframedOK is false and every delivery takes the library's
// path. TestPreframedInternalsPinned fails then.
type engineInternals struct {
	ok          bool
	clientMu    uintptr      // offset of socket.Client.mu
	sockType    reflect.Type // the engine's *socket
	flushMu     uintptr      // offset of its flushMu
	writeBuffer uintptr      // offset of its writeBuffer
}

var internals = sync.OnceValue(probeInternals)

func probeInternals() engineInternals {
	var in engineInternals
	field := func(t reflect.Type, name string, want reflect.Type) (uintptr, bool) {
		f, ok := t.FieldByName(name)
		if !ok || len(f.Index) != 1 || f.Type != want {
			return 0, false
		}
		return f.Offset, true
	}
	var ok1, ok2, ok3 bool
	in.clientMu, ok1 = field(reflect.TypeFor[socket.Client](), "mu", reflect.TypeFor[sync.Mutex]())
	in.sockType = reflect.TypeOf(engine.MakeSocket())
	if in.sockType == nil || in.sockType.Kind() != reflect.Pointer || in.sockType.Elem().Kind() != reflect.Struct {
		return engineInternals{}
	}
	in.flushMu, ok2 = field(in.sockType.Elem(), "flushMu", reflect.TypeFor[sync.Mutex]())
	in.writeBuffer, ok3 = field(in.sockType.Elem(), "writeBuffer", reflect.TypeFor[*types.Slice[*packet.Packet]]())
	in.ok = ok1 && ok2 && ok3
	return in
}

// preframedOK reports whether the library is the one the pre-framed
// broadcast was checked against.
func preframedOK() bool { return internals().ok }

// clientMu is c's write lock (see engineInternals).
func clientMu(in *engineInternals, c *socket.Client) *sync.Mutex {
	return (*sync.Mutex)(unsafe.Add(unsafe.Pointer(c), in.clientMu))
}

// engineSocket is conn's flush lock and write buffer; ok is false for an
// engine socket of another type.
func engineSocket(in *engineInternals, conn engine.Socket) (flushMu *sync.Mutex, writeBuffer *types.Slice[*packet.Packet], ok bool) {
	if reflect.TypeOf(conn) != in.sockType {
		return nil, nil, false
	}
	p := reflect.ValueOf(conn).UnsafePointer()
	flushMu = (*sync.Mutex)(unsafe.Add(p, in.flushMu))
	writeBuffer = *(**types.Slice[*packet.Packet])(unsafe.Add(p, in.writeBuffer))
	return flushMu, writeBuffer, writeBuffer != nil
}
