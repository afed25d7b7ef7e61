package transport_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"testing/iotest"
	"unicode/utf8"

	"github.com/gobwas/ws"

	"github.com/tandem-go/tandem/server/transport"
)

// clientFrame is one masked frame as a client sends it.
func clientFrame(fin bool, op ws.OpCode, payload []byte) []byte {
	var b bytes.Buffer
	h := ws.Header{Fin: fin, OpCode: op, Masked: true, Mask: [4]byte{1, 2, 3, 4}, Length: int64(len(payload))}
	_ = ws.WriteHeader(&b, h)
	p := bytes.Clone(payload)
	ws.Cipher(p, h.Mask, 0)
	b.Write(p)
	return b.Bytes()
}

func frames(fs ...[]byte) io.Reader { return bytes.NewReader(bytes.Join(fs, nil)) }

func TestReader(t *testing.T) {
	const limit = 64
	tests := []struct {
		name   string
		given  io.Reader
		expect []transport.Message
		code   ws.StatusCode // the close that ends the stream; 0: io.EOF
	}{
		{"ok, one text message", frames(clientFrame(true, ws.OpText, []byte("40"))),
			[]transport.Message{{Op: ws.OpText, Payload: []byte("40")}}, 0},
		{"ok, fragments with a ping between them", frames(
			clientFrame(false, ws.OpText, []byte("42[")),
			clientFrame(true, ws.OpPing, []byte("p")),
			clientFrame(false, ws.OpContinuation, []byte(`"a"`)),
			clientFrame(true, ws.OpContinuation, []byte("]")),
		), []transport.Message{{Op: ws.OpPing, Payload: []byte("p")}, {Op: ws.OpText, Payload: []byte(`42["a"]`)}}, 0},
		{"ok, binary", frames(clientFrame(true, ws.OpBinary, []byte{0, 1, 2})),
			[]transport.Message{{Op: ws.OpBinary, Payload: []byte{0, 1, 2}}}, 0},
		{"ok, exactly the limit over two fragments", frames(
			clientFrame(false, ws.OpText, bytes.Repeat([]byte("a"), limit/2)),
			clientFrame(true, ws.OpContinuation, bytes.Repeat([]byte("a"), limit/2)),
		), []transport.Message{{Op: ws.OpText, Payload: bytes.Repeat([]byte("a"), limit)}}, 0},
		{"ok, close echoes the code", frames(clientFrame(true, ws.OpClose, ws.NewCloseFrameBody(4001, "bye"))), nil, 4001},
		{"ok, close without a code", frames(clientFrame(true, ws.OpClose, nil)), nil, ws.StatusNormalClosure},
		{"nok, one byte over the limit", frames(clientFrame(true, ws.OpText, bytes.Repeat([]byte("a"), limit+1))), nil, ws.StatusMessageTooBig},
		{"nok, over the limit in fragments", frames(
			clientFrame(false, ws.OpText, bytes.Repeat([]byte("a"), limit)),
			clientFrame(true, ws.OpContinuation, []byte("a")),
		), nil, ws.StatusMessageTooBig},
		{"nok, a header claiming 2^62 bytes", frames(func() []byte {
			var b bytes.Buffer
			_ = ws.WriteHeader(&b, ws.Header{Fin: true, OpCode: ws.OpText, Masked: true, Length: 1 << 62})
			return b.Bytes()
		}()), nil, ws.StatusMessageTooBig},
		{"nok, compressed (rsv1)", frames(func() []byte {
			var b bytes.Buffer
			_ = ws.WriteHeader(&b, ws.Header{Fin: true, Rsv: ws.Rsv(true, false, false), OpCode: ws.OpText, Masked: true, Length: 1})
			b.WriteByte('x')
			return b.Bytes()
		}()), nil, ws.StatusProtocolError},
		{"nok, unmasked", frames(func() []byte {
			var b bytes.Buffer
			_ = ws.WriteHeader(&b, ws.Header{Fin: true, OpCode: ws.OpText, Length: 1})
			b.WriteByte('x')
			return b.Bytes()
		}()), nil, ws.StatusProtocolError},
		{"nok, continuation without a start", frames(clientFrame(true, ws.OpContinuation, []byte("x"))), nil, ws.StatusProtocolError},
		{"nok, new message inside a fragmented one", frames(
			clientFrame(false, ws.OpText, []byte("a")),
			clientFrame(true, ws.OpText, []byte("b")),
		), nil, ws.StatusProtocolError},
		{"nok, fragmented ping", frames(clientFrame(false, ws.OpPing, []byte("p"))), nil, ws.StatusProtocolError},
		{"nok, ping over 125 bytes", frames(clientFrame(true, ws.OpPing, bytes.Repeat([]byte("p"), 126))), nil, ws.StatusProtocolError},
		{"nok, reserved opcode", frames(clientFrame(true, 0x3, []byte("x"))), nil, ws.StatusProtocolError},
		{"nok, text that is not UTF-8", frames(clientFrame(true, ws.OpText, []byte{0xff, 0xfe})), nil, ws.StatusInvalidFramePayloadData},
		{"nok, one-byte close", frames(clientFrame(true, ws.OpClose, []byte{3})), nil, ws.StatusProtocolError},
		{"nok, close code 1005 is not sent", frames(clientFrame(true, ws.OpClose, ws.NewCloseFrameBody(ws.StatusNoStatusRcvd, ""))), nil, ws.StatusProtocolError},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := transport.NewReader(tt.given, limit)
			var got []transport.Message
			for {
				m, err := r.Next()
				if err == nil {
					got = append(got, m)
					continue
				}
				var ce *transport.CloseError
				switch {
				case errors.As(err, &ce):
					if ce.Code != tt.code {
						t.Fatalf("closed with %d (%v); want %d", ce.Code, err, tt.code)
					}
				case errors.Is(err, io.EOF) && tt.code == 0:
				default:
					t.Fatalf("error %v; want close %d", err, tt.code)
				}
				break
			}
			if len(got) != len(tt.expect) {
				t.Fatalf("messages %q; want %q", got, tt.expect)
			}
			for i := range got {
				if got[i].Op != tt.expect[i].Op || !bytes.Equal(got[i].Payload, tt.expect[i].Payload) {
					t.Fatalf("message %d: %v %q; want %v %q", i, got[i].Op, got[i].Payload, tt.expect[i].Op, tt.expect[i].Payload)
				}
			}
		})
	}
}

// A header that claims a long payload makes the reader allocate what
// arrives, not what is claimed.
func TestReaderAllocatesWhatArrives(t *testing.T) {
	var b bytes.Buffer
	_ = ws.WriteHeader(&b, ws.Header{Fin: true, OpCode: ws.OpText, Masked: true, Length: 900_000})
	b.WriteString("only this")
	allocs := testing.AllocsPerRun(20, func() {
		r := transport.NewReader(bytes.NewReader(b.Bytes()), 1_000_000)
		if _, err := r.Next(); !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Fatalf("Next: %v; want unexpected EOF", err)
		}
	})
	if allocs > 20 {
		t.Fatalf("%v allocations", allocs)
	}
}

// FuzzReader: whatever a client sends, the reader returns messages within
// the limit, a close, or the stream's error; never a panic.
func FuzzReader(f *testing.F) {
	f.Add(clientFrame(true, ws.OpText, []byte("40")))
	f.Add(bytes.Join([][]byte{clientFrame(false, ws.OpText, []byte("4")), clientFrame(true, ws.OpPing, nil), clientFrame(true, ws.OpContinuation, []byte("2"))}, nil))
	f.Add(clientFrame(true, ws.OpClose, ws.NewCloseFrameBody(1000, "")))
	f.Add(clientFrame(true, ws.OpBinary, []byte(strings.Repeat("b", 200))))
	f.Add([]byte{0x81, 0xff, 0x7f, 0, 0, 0, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		const limit = 1024
		r := transport.NewReader(bytes.NewReader(data), limit)
		for range 1000 {
			m, err := r.Next()
			if err != nil {
				return
			}
			if int64(len(m.Payload)) > limit {
				t.Fatalf("a %d-byte message over the %d limit", len(m.Payload), limit)
			}
			switch {
			case m.Op != ws.OpText && m.Op != ws.OpBinary && m.Op != ws.OpPing && m.Op != ws.OpPong:
				t.Fatalf("message of opcode %v", m.Op)
			case m.Op == ws.OpText && !utf8.Valid(m.Payload):
				t.Fatalf("a text message that is not UTF-8: %q", m.Payload)
			case m.Op.IsControl() && len(m.Payload) > ws.MaxControlFramePayloadSize:
				t.Fatalf("a %d-byte %v", len(m.Payload), m.Op)
			}
		}
	})
}

// chunks is a stream that arrives in pieces: Read takes from the current
// piece, and from the next one only when it is empty (a blocking read
// waiting for more); ready says whether the current piece has bytes left.
type chunks struct{ parts [][]byte }

func (c *chunks) Read(p []byte) (int, error) {
	for len(c.parts) > 0 && len(c.parts[0]) == 0 {
		c.parts = c.parts[1:]
	}
	if len(c.parts) == 0 {
		return 0, io.EOF
	}
	n := copy(p, c.parts[0])
	c.parts[0] = c.parts[0][n:]
	return n, nil
}

func (c *chunks) ready() bool { return len(c.parts) > 0 && len(c.parts[0]) > 0 }

// next is a new readiness event: the next piece arrives. false: none left.
func (c *chunks) next() bool {
	for len(c.parts) > 0 && len(c.parts[0]) == 0 {
		c.parts = c.parts[1:]
	}
	return len(c.parts) > 0
}

// readAll reads messages until the stream ends, and how it ended: the
// close code, or 0 for the stream's end or error.
func readAll(next func() (transport.Message, error), more func() bool) ([]transport.Message, ws.StatusCode) {
	var got []transport.Message
	for {
		m, err := next()
		if err == nil {
			got = append(got, transport.Message{Op: m.Op, Payload: bytes.Clone(m.Payload)})
			continue
		}
		if errors.Is(err, transport.ErrNoFrame) && more != nil && more() {
			continue
		}
		var ce *transport.CloseError
		if errors.As(err, &ce) {
			return got, ce.Code
		}
		return got, 0
	}
}

// FuzzParkingReader: a stream cut into pieces anywhere, the reader parking
// (and letting go of its buffer) whenever a piece is used up at a frame
// boundary, as the epoll reader does between readiness events, reads the
// same messages and ends the same way as one read of the whole stream.
func FuzzParkingReader(f *testing.F) {
	frag := bytes.Join([][]byte{clientFrame(false, ws.OpText, []byte("42[")), clientFrame(true, ws.OpPing, []byte("p")), clientFrame(false, ws.OpContinuation, []byte(`"a"`)), clientFrame(true, ws.OpContinuation, []byte("]"))}, nil)
	f.Add(frag, []byte{6, 7, 1, 12})
	f.Add(frag, []byte{9, 7}) // parks after the first fragment and after the ping
	f.Add(bytes.Join([][]byte{clientFrame(true, ws.OpText, []byte("40")), clientFrame(true, ws.OpText, []byte("41"))}, nil), []byte{8, 3})
	f.Add(clientFrame(true, ws.OpBinary, bytes.Repeat([]byte("b"), 300)), []byte{1, 1, 200})
	f.Add(bytes.Join([][]byte{clientFrame(false, ws.OpText, bytes.Repeat([]byte("a"), 600)), clientFrame(true, ws.OpClose, ws.NewCloseFrameBody(4000, ""))}, nil), []byte{255, 255, 100})
	f.Fuzz(func(t *testing.T, data, cuts []byte) {
		const limit = 1024
		whole, wholeEnd := readAll(transport.NewReader(bytes.NewReader(data), limit).Next, nil)
		c := &chunks{}
		rest := data
		for _, k := range cuts {
			n := min(int(k), len(rest))
			c.parts = append(c.parts, rest[:n])
			rest = rest[n:]
		}
		c.parts = append(c.parts, rest)
		r := transport.NewParkingReader(c, limit, c.ready)
		parked, parkedEnd := readAll(r.Next, func() bool { r.Release(); return c.next() })
		if len(parked) != len(whole) || parkedEnd != wholeEnd {
			t.Fatalf("parked: %d messages, end %d; whole: %d messages, end %d", len(parked), parkedEnd, len(whole), wholeEnd)
		}
		for i := range whole {
			if parked[i].Op != whole[i].Op || !bytes.Equal(parked[i].Payload, whole[i].Payload) {
				t.Fatalf("message %d: %v %q; want %v %q", i, parked[i].Op, parked[i].Payload, whole[i].Op, whole[i].Payload)
			}
		}
	})
}

// FuzzReaderMessages: a message a client sends, in fragments of any size,
// with a ping between fragments or not, read one byte at a time or not,
// comes back whole and unchanged, once, then the stream's end; or, over
// the limit, the close 1009, and, as text that is not UTF-8, the close 1007.
func FuzzReaderMessages(f *testing.F) {
	f.Add([]byte("42[\"incr\"]"), uint16(3), true, false, true)
	f.Add([]byte{0, 1, 2, 0xff}, uint16(1), false, true, false)
	f.Add([]byte(strings.Repeat("é", 600)), uint16(0), true, true, true)
	f.Add([]byte{0xe2, 0x82}, uint16(1), false, false, true)
	f.Add([]byte{}, uint16(0), true, false, false)
	f.Fuzz(func(t *testing.T, payload []byte, fragment uint16, ping, oneByte, text bool) {
		const limit = 1024
		op := ws.OpBinary
		if text {
			op = ws.OpText
		}
		size := int(fragment)%(len(payload)+1) + 1 // 1 to len+1 bytes a fragment
		var stream [][]byte
		for i, first := 0, true; first || i < len(payload); first = false {
			end := min(i+size, len(payload))
			fop := ws.OpContinuation
			if first {
				fop = op
			}
			stream = append(stream, clientFrame(end == len(payload), fop, payload[i:end]))
			if ping && end < len(payload) {
				stream = append(stream, clientFrame(true, ws.OpPing, []byte("p")))
			}
			i = end
		}
		var in io.Reader = frames(stream...)
		if oneByte {
			in = iotest.OneByteReader(in)
		}
		r := transport.NewReader(in, limit)
		var code ws.StatusCode // 0: the message, then the end
		read := false
		switch {
		case len(payload) > limit:
			code = ws.StatusMessageTooBig
		case text && !utf8.Valid(payload):
			code = ws.StatusInvalidFramePayloadData
		}
		for {
			m, err := r.Next()
			var ce *transport.CloseError
			switch {
			case err == nil && m.Op == ws.OpPing && ping && string(m.Payload) == "p":
				continue
			case err == nil:
				if code != 0 || read {
					t.Fatalf("message %v %q; want close %d (read already: %v)", m.Op, m.Payload, code, read)
				}
				if m.Op != op || !bytes.Equal(m.Payload, payload) {
					t.Fatalf("message %v %q; want %v %q", m.Op, m.Payload, op, payload)
				}
				read = true
				continue
			case errors.As(err, &ce):
				if code == 0 || ce.Code != code {
					t.Fatalf("close %d (%v); want %d", ce.Code, err, code)
				}
			case errors.Is(err, io.EOF) && code == 0 && read:
			default:
				t.Fatalf("error %v; want %d", err, code)
			}
			return
		}
	})
}

// outcome is what a Reader made of a stream: its messages, then how it
// ended.
func outcome(t *testing.T, r *transport.Reader, park func()) []string {
	t.Helper()
	var got []string
	for range 10_000 {
		m, err := r.Next()
		var ce *transport.CloseError
		switch {
		case err == nil:
			got = append(got, fmt.Sprintf("%v %q", m.Op, m.Payload))
			continue
		case errors.Is(err, transport.ErrNoFrame) && park != nil:
			park()
			continue
		case errors.As(err, &ce):
			return append(got, fmt.Sprintf("close %d", ce.Code))
		default:
			return append(got, "error "+err.Error())
		}
	}
	t.Fatal("no end after 10000 calls of Next")
	return nil
}

// FuzzReaderResumes: the epoll path's Reader, told between any two frames
// that no byte is waiting (it returns ErrNoFrame, lets go of its buffer
// and is called again later, as by a new read goroutine), makes of a
// stream exactly what the goroutine reader makes of it: the same messages,
// fragmented ones included, and the same end. Unlike FuzzParkingReader, a
// second connection's Reader reads and parks at every pause, so that the
// pooled buffers pass between connections in between.
func FuzzReaderResumes(f *testing.F) {
	f.Add(bytes.Join([][]byte{clientFrame(false, ws.OpText, []byte("42[")), clientFrame(true, ws.OpPing, []byte("p")), clientFrame(false, ws.OpContinuation, []byte(`"a"`)), clientFrame(true, ws.OpContinuation, []byte("]"))}, nil), []byte{0xaa, 0x55})
	f.Add(bytes.Join([][]byte{clientFrame(true, ws.OpText, []byte("40")), clientFrame(true, ws.OpBinary, bytes.Repeat([]byte("b"), 300)), clientFrame(true, ws.OpClose, ws.NewCloseFrameBody(4000, ""))}, nil), []byte{0xff})
	f.Add(bytes.Join([][]byte{clientFrame(false, ws.OpBinary, bytes.Repeat([]byte("x"), 600)), clientFrame(true, ws.OpContinuation, bytes.Repeat([]byte("y"), 600))}, nil), []byte{0x01})
	f.Fuzz(func(t *testing.T, data, pauses []byte) {
		const limit = 1024
		want := outcome(t, transport.NewReader(bytes.NewReader(data), limit), nil)

		// The other connection: whole messages through the same pool.
		other := transport.NewParkingReader(bytes.NewReader(bytes.Repeat(clientFrame(true, ws.OpBinary, bytes.Repeat([]byte("o"), 200)), 64)), limit, func() bool { return true })
		bit := 0
		var r *transport.Reader
		r = transport.NewParkingReader(bytes.NewReader(data), limit, func() bool {
			if bit >= 8*len(pauses) {
				return true
			}
			b := pauses[bit/8]>>(bit%8)&1 == 0
			bit++
			return b
		})
		got := outcome(t, r, func() {
			r.Release()
			if m, err := other.Next(); err == nil && !bytes.Equal(m.Payload, bytes.Repeat([]byte("o"), 200)) {
				t.Fatalf("the other connection read %q", m.Payload)
			}
			other.Release()
		})
		if strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Fatalf("with pauses %x:\n%s\nwithout:\n%s", pauses, strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
	})
}
