package server_test

import (
	"bufio"
	"bytes"
	"compress/flate"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"net/http"
	"runtime/metrics"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gobwas/ws"

	"github.com/tandem-go/tandem/internal/tandemtest"
	"github.com/tandem-go/tandem/server"
)

// rawWS is a WebSocket client written frame by frame, for what a real
// client would never send.
type rawWS struct {
	conn net.Conn
	br   *bufio.Reader
	resp *http.Response
}

// rawWSDial sends a WebSocket handshake for a new Engine.IO connection with
// the given extra header lines (each "Name: value", sent as written) and
// reads the answer.
func rawWSDial(tb testing.TB, base, cookie string, lines ...string) *rawWS {
	tb.Helper()
	host := strings.TrimPrefix(base, "http://")
	conn, err := net.DialTimeout("tcp", host, 10*time.Second)
	if err != nil {
		tb.Fatalf("dial %s: %v", host, err)
	}
	tb.Cleanup(func() { _ = conn.Close() })
	_ = conn.SetDeadline(time.Now().Add(30 * time.Second))
	key := make([]byte, 16)
	_, _ = rand.Read(key)
	var req strings.Builder
	req.WriteString("GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: " + host + "\r\n")
	req.WriteString("Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n")
	req.WriteString("Sec-WebSocket-Key: " + base64.StdEncoding.EncodeToString(key) + "\r\n")
	if cookie != "" {
		req.WriteString("Cookie: " + cookie + "\r\n")
	}
	for _, l := range lines {
		req.WriteString(l + "\r\n")
	}
	req.WriteString("\r\n")
	if _, err := io.WriteString(conn, req.String()); err != nil {
		tb.Fatalf("write handshake: %v", err)
	}
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		tb.Fatalf("read handshake answer: %v", err)
	}
	return &rawWS{conn: conn, br: br, resp: resp}
}

// send writes one masked frame; rsv1 marks it compressed.
func (c *rawWS) send(tb testing.TB, op ws.OpCode, rsv1 bool, payload []byte) {
	tb.Helper()
	h := ws.Header{Fin: true, OpCode: op, Masked: true, Mask: ws.NewMask(), Length: int64(len(payload))}
	if rsv1 {
		h.Rsv = ws.Rsv(true, false, false)
	}
	p := bytes.Clone(payload)
	ws.Cipher(p, h.Mask, 0)
	if err := ws.WriteHeader(c.conn, h); err != nil {
		tb.Fatalf("write frame header: %v", err)
	}
	if _, err := c.conn.Write(p); err != nil && !errors.Is(err, net.ErrClosed) {
		tb.Logf("write frame payload: %v (the server may have closed first)", err)
	}
}

// sendHeader writes only a frame's header, claiming length payload bytes.
func (c *rawWS) sendHeader(tb testing.TB, op ws.OpCode, length int64) {
	tb.Helper()
	if err := ws.WriteHeader(c.conn, ws.Header{Fin: true, OpCode: op, Masked: true, Mask: ws.NewMask(), Length: length}); err != nil {
		tb.Fatalf("write frame header: %v", err)
	}
}

// read returns the next frame from the server.
func (c *rawWS) read(tb testing.TB) ws.Frame {
	tb.Helper()
	f, err := ws.ReadFrame(c.br)
	if err != nil {
		tb.Fatalf("read frame: %v", err)
	}
	return f
}

// readClose skips data frames to the server's close frame and returns its
// code.
func (c *rawWS) readClose(tb testing.TB) ws.StatusCode {
	tb.Helper()
	for {
		f := c.read(tb)
		if f.Header.OpCode == ws.OpClose {
			if len(f.Payload) < 2 {
				return ws.StatusNoStatusRcvd
			}
			return ws.StatusCode(binary.BigEndian.Uint16(f.Payload))
		}
	}
}

// readCloseOrReset is readClose that returns the read's error instead of
// failing.
func (c *rawWS) readCloseOrReset() (ws.StatusCode, error) {
	for {
		f, err := ws.ReadFrame(c.br)
		if err != nil {
			return 0, err
		}
		if f.Header.OpCode == ws.OpClose {
			if len(f.Payload) < 2 {
				return ws.StatusNoStatusRcvd, nil
			}
			return ws.StatusCode(binary.BigEndian.Uint16(f.Payload)), nil
		}
	}
}

// heapAllocated is the bytes the process has allocated on the heap so far.
func heapAllocated() uint64 {
	s := []metrics.Sample{{Name: "/gc/heap/allocs:bytes"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

// deflateBomb is a permessage-deflate payload (RFC 7692: the final empty
// block's tail removed) that inflates to n bytes.
func deflateBomb(tb testing.TB, n int) []byte {
	tb.Helper()
	var b bytes.Buffer
	w, _ := flate.NewWriter(&b, flate.BestCompression)
	zeros := make([]byte, 1<<20)
	for i := 0; i < n; i += len(zeros) {
		_, _ = w.Write(zeros)
	}
	_ = w.Flush()
	return bytes.TrimSuffix(b.Bytes(), []byte{0, 0, 0xff, 0xff})
}

// Issue 13 item 2: no client can negotiate permessage-deflate, whatever its
// Upgrade header looks like (a token list, two lines, any case), straight
// to the node or through the shipped nginx config. Without compression,
// MAX_SOCKET_PAYLOAD holds on what is read: a longer frame is refused with
// 1009, and a compressed frame (a deflate bomb that would inflate to 128
// MB) is a protocol error that allocates nothing of the kind. Not parallel:
// the heap figure is the process's.
func TestWebSocketCompressionCannotBeNegotiated(t *testing.T) {
	srv := tandemtest.Start(t, server.Config{MaxSocketPayload: 1 << 20})
	ngx := tandemtest.StartNginx(t, []string{strings.TrimPrefix(srv.URL(), "http://")})
	c := tandemtest.NewClient(t, srv.URL())
	c.Incr()
	bomb := deflateBomb(t, 128<<20)
	if len(bomb) >= 1<<20 {
		t.Fatalf("the bomb is %d bytes; it must fit under the payload limit", len(bomb))
	}
	offer := "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits"
	forms := []struct {
		name  string
		lines []string
		// nginx 1.22 forwards the first Upgrade line only ($http_upgrade):
		// "h2c" is no WebSocket upgrade, and the node refuses it.
		nginxRefuses bool
	}{
		{"one line", []string{"Upgrade: websocket", offer}, false},
		{"a token list", []string{"Upgrade: websocket, h2c", offer}, false},
		{"two lines", []string{"Upgrade: h2c", "Upgrade: websocket", offer}, true},
		{"two lines, websocket first", []string{"Upgrade: websocket", "Upgrade: h2c", offer}, false},
		{"any case", []string{"upgrade: WebSocket, H2C", "sec-websocket-extensions: permessage-deflate"}, false},
		{"two offers", []string{"Upgrade: websocket, h2c", "Sec-WebSocket-Extensions: x-webkit-deflate-frame", offer}, false},
	}
	for _, via := range []struct{ name, base string }{{"direct", srv.URL()}, {"nginx", ngx.URL}} {
		for _, form := range forms {
			t.Run(via.name+", "+form.name, func(t *testing.T) {
				if via.base == ngx.URL && form.nginxRefuses {
					conn := rawWSDial(t, via.base, c.Cookie(), form.lines...)
					if conn.resp.StatusCode != http.StatusBadRequest || len(conn.resp.Header.Values("Sec-WebSocket-Extensions")) != 0 {
						t.Fatalf("handshake answered %s %v; want 400 (nginx forwarded Upgrade: h2c)", conn.resp.Status, conn.resp.Header)
					}
					return
				}
				open := func() *rawWS {
					t.Helper()
					conn := rawWSDial(t, via.base, c.Cookie(), form.lines...)
					if conn.resp.StatusCode != http.StatusSwitchingProtocols {
						t.Fatalf("handshake answered %s; want 101", conn.resp.Status)
					}
					if ext := conn.resp.Header.Values("Sec-WebSocket-Extensions"); len(ext) != 0 {
						t.Fatalf("the server negotiated %q; want no extension", ext)
					}
					if f := conn.read(t); f.Header.OpCode != ws.OpText || !bytes.HasPrefix(f.Payload, []byte("0{")) {
						t.Fatalf("first frame %v %q; want the open packet", f.Header.OpCode, f.Payload)
					}
					return conn
				}

				conn := open()
				conn.sendHeader(t, ws.OpText, 1<<20+1)
				if code := conn.readClose(t); code != ws.StatusMessageTooBig {
					t.Fatalf("a frame over MAX_SOCKET_PAYLOAD: close %d; want 1009", code)
				}

				conn = open()
				before := heapAllocated()
				conn.send(t, ws.OpText, true, bomb)
				// The node refuses at the frame's header and closes with
				// most of the payload unread, so its kernel may reset the
				// connection before the close frame reaches the client
				// (through nginx, usually).
				if code, err := conn.readCloseOrReset(); err == nil && code != ws.StatusProtocolError {
					t.Fatalf("a compressed frame: close %d; want 1002", code)
				} else if err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, syscall.ECONNRESET) {
					t.Fatalf("a compressed frame: %v; want close 1002 or a reset", err)
				}
				if grew := heapAllocated() - before; grew > 32<<20 {
					t.Fatalf("a %d-byte compressed frame made the process allocate %d MB", len(bomb), grew>>20)
				}
			})
		}
	}
	if got := c.Incr(); got != 2 {
		t.Fatalf("the server after the bad frames: incr = %d, want 2", got)
	}
}
