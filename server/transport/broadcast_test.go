package transport_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/zishang520/socket.io/servers/socket/v3"
	"github.com/zishang520/socket.io/v3/pkg/types"

	"github.com/tandem-go/tandem/internal/tandemtest"
	"github.com/tandem-go/tandem/server/transport"
)

// sioServer is a Socket.IO server on the package's transports and the
// pre-framed broadcast; every socket joins the rooms join names for it and
// is sent to conns once it has.
type sioServer struct {
	URL   string
	IO    *socket.Server
	B     *transport.BroadcastBuilder
	conns chan *socket.Socket
}

func newSIOServer(tb testing.TB, b *transport.BroadcastBuilder, join func(*socket.Socket) []socket.Room) *sioServer {
	tb.Helper()
	return newSIOServerOn(tb, b, join)
}

// newSIOServerOn is newSIOServer with any adapter (B is nil unless it is a
// BroadcastBuilder).
func newSIOServerOn(tb testing.TB, a socket.AdapterConstructor, join func(*socket.Socket) []socket.Room) *sioServer {
	tb.Helper()
	opts := socket.DefaultServerOptions()
	opts.SetServeClient(false)
	transport.Register(opts, transport.WebSocketBuilder{})
	opts.SetAdapter(a)
	io := socket.NewServer(nil, opts)
	b, _ := a.(*transport.BroadcastBuilder)
	s := &sioServer{IO: io, B: b, conns: make(chan *socket.Socket, 64)}
	_ = io.On("connection", func(args ...any) {
		so := args[0].(*socket.Socket)
		if join != nil {
			so.Join(join(so)...)
		}
		s.conns <- so
	})
	ts := httptest.NewServer(io.ServeHandler(opts))
	tb.Cleanup(func() { ts.Close(); io.Close(nil) })
	s.URL = ts.URL
	return s
}

func (s *sioServer) next(tb testing.TB) *socket.Socket {
	tb.Helper()
	select {
	case so := <-s.conns:
		return so
	case <-time.After(10 * time.Second):
		tb.Fatal("no connection")
		return nil
	}
}

// received returns the arguments of the events named name a client socket
// saw up to the event "end" (which the test sends last).
func received(tb testing.TB, c *tandemtest.Socket, name string) []string {
	tb.Helper()
	var got []string
	for {
		e, ok := c.Next(20 * time.Second)
		if !ok {
			tb.Fatalf("no \"end\"; saw %v", c.Seen())
		}
		switch e.Name {
		case "end":
			return got
		case name:
			got = append(got, string(e.Args[0]))
		}
	}
}

// Interleaved unicast and room emits reach every recipient once each and in
// order, whatever its connection: WebSocket from the start, polling only,
// and polling upgrading to WebSocket while the emits go out.
func TestPreframedBroadcastMixedRecipients(t *testing.T) {
	d := tandemtest.NewDriver(t)
	srv := newSIOServer(t, &transport.BroadcastBuilder{}, func(*socket.Socket) []socket.Room { return []socket.Room{"room"} })
	// The upgrading ones last: their upgrade starts when they connect.
	kinds := []tandemtest.Transport{tandemtest.WebSocket, tandemtest.WebSocket, tandemtest.Polling, tandemtest.Polling, tandemtest.Both, tandemtest.Both}
	var clients []*tandemtest.Socket
	var sockets []*socket.Socket
	for _, k := range kinds {
		// Open, not Dial: the server has the socket as soon as the client
		// does, and the emits start before the upgrades end.
		clients = append(clients, d.Open(srv.URL, tandemtest.Options{Transport: k}))
		sockets = append(sockets, srv.next(t))
	}
	// The Both clients upgrade while these go out: emits go on until they
	// have (and a few more), one in three a unicast to each socket.
	upgraded := func() bool {
		for i, so := range sockets {
			if kinds[i] == tandemtest.Both && !so.Conn().Upgraded() {
				return false
			}
		}
		return true
	}
	midUpgrade := !upgraded()
	var want []string
	deadline := time.Now().Add(10 * time.Second)
	for i, after := 0, 0; after < 300 && time.Now().Before(deadline); i++ {
		want = append(want, strconv.Itoa(i))
		if i%3 == 0 {
			for _, so := range sockets {
				so.Emit("m", i)
			}
		} else {
			srv.IO.To("room").Emit("m", i)
		}
		if upgraded() {
			after++
		} else if i%10 == 0 {
			time.Sleep(time.Millisecond) // let the upgrades make progress
		}
	}
	if !upgraded() {
		t.Fatal("the Both clients did not upgrade within 10s")
	}
	for _, so := range sockets {
		so.Emit("end")
	}
	for i, c := range clients {
		if got := received(t, c, "m"); !slices.Equal(got, want) {
			t.Errorf("client %d (%s) got %d events, out of order or not once each:\n%v", i, kinds[i], len(got), got)
		}
	}
	pre, lib := srv.B.Deliveries()
	t.Logf("deliveries: %d pre-framed, %d through the library; %d emits, upgrades under way at the first: %v", pre, lib, len(want), midUpgrade)
	if pre == 0 || lib == 0 {
		t.Errorf("deliveries %d pre-framed, %d through the library; want both paths taken", pre, lib)
	}
}

// Rooms, except, local, volatile, a socket's own broadcast (itself
// excluded) and a binary emit in the middle: each recipient gets what the
// library's adapter would send it, once, in order.
func TestPreframedBroadcastFlags(t *testing.T) {
	d := tandemtest.NewDriver(t)
	rooms := map[string][]socket.Room{}
	var order []string
	b := &transport.BroadcastBuilder{}
	srv := newSIOServer(t, b, nil)
	// Three sockets: a in r1; b in r1 and r2; c in r2.
	names := []string{"a", "b", "c"}
	rooms["a"] = []socket.Room{"r1"}
	rooms["b"] = []socket.Room{"r1", "r2"}
	rooms["c"] = []socket.Room{"r2"}
	clients := map[string]*tandemtest.Socket{}
	sockets := map[string]*socket.Socket{}
	for _, name := range names {
		clients[name] = d.Dial(srv.URL, tandemtest.Options{})
		so := srv.next(t)
		so.Join(rooms[name]...)
		sockets[name] = so
		order = append(order, name)
	}
	sio := srv.IO
	steps := []struct {
		emit func(v string)
		to   []string
	}{
		{func(v string) { sio.To("r1").Emit("m", v) }, []string{"a", "b"}},
		{func(v string) { sio.To("r1", "r2").Emit("m", v) }, []string{"a", "b", "c"}},
		{func(v string) { sio.To("r1").Except("r2").Emit("m", v) }, []string{"a"}},
		{func(v string) { sio.Except("r1").Emit("m", v) }, []string{"c"}},
		{func(v string) { sio.Local().To("r2").Emit("m", v) }, []string{"b", "c"}},
		{func(v string) { sio.Volatile().To("r2").Emit("m", v) }, []string{"b", "c"}},
		{func(v string) { sio.Emit("m", v) }, []string{"a", "b", "c"}},
		{func(v string) { sockets["b"].To("r1").Emit("m", v) }, []string{"a"}},
		{func(v string) { sockets["b"].Broadcast().Emit("m", v) }, []string{"a", "c"}},
		{func(v string) { sio.To("r1").Emit("m", v, []byte{1, 2, 3}) }, []string{"a", "b"}}, // binary: the library's path
		{func(v string) { sockets["c"].Emit("m", v) }, []string{"c"}},
		{func(v string) { sio.To(socket.Room(sockets["a"].Id())).Emit("m", v) }, []string{"a"}},
	}
	want := map[string][]string{}
	for round := range 3 {
		for i, st := range steps {
			v := fmt.Sprintf("%d.%d", round, i)
			st.emit(v)
			for _, name := range st.to {
				want[name] = append(want[name], strconv.Quote(v))
			}
		}
	}
	for _, name := range order {
		sockets[name].Emit("end")
	}
	for _, name := range order {
		if got := received(t, clients[name], "m"); !slices.Equal(got, want[name]) {
			t.Errorf("socket %s got\n%v\nwant\n%v", name, got, want[name])
		}
	}
	pre, lib := b.Deliveries()
	var total uint64
	for round := 0; round < 3; round++ {
		for i, st := range steps {
			if i != 9 && i != 10 { // the binary emit and the unicast are not the adapter's text broadcasts
				total += uint64(len(st.to))
			}
		}
	}
	if pre != total || lib != 0 {
		t.Errorf("deliveries %d pre-framed, %d through the library; want %d and 0 (every recipient is on WebSocket)", pre, lib, total)
	}
}

// A room emit made while packets wait in the engine socket's write buffer
// never overtakes them. The client here speaks the protocol by hand, so
// that the upgrade is where the test wants it: two unicast packets are
// emitted while the connection is still on polling with no GET pending
// (they wait in the buffer), then the client completes the upgrade, and
// the engine's "upgrade" event (emitted once the socket's transport is
// the WebSocket, before the engine flushes its buffer to it) makes a room
// emit. Written at once it would reach the client first. In the second
// case the emit comes from another goroutine while the engine flushes its
// buffer (its "flush" event: the packets are out of the buffer, not yet
// written), held off until it returned or for 100ms: the emit must wait
// for the flush.
func TestPreframedBroadcastNeverOvertakesBufferedPackets(t *testing.T) {
	t.Run("upgrade", func(t *testing.T) { testNeverOvertakes(t, "upgrade") })
	t.Run("flush", func(t *testing.T) { testNeverOvertakes(t, "flush") })
}

func testNeverOvertakes(t *testing.T, event string) {
	b := &transport.BroadcastBuilder{}
	srv := newSIOServer(t, b, func(*socket.Socket) []socket.Room { return []socket.Room{"room"} })
	base := srv.URL + "/socket.io/?EIO=4&transport=polling"
	open := pollGET(t, base)
	var hs struct{ Sid string }
	if !strings.HasPrefix(open, "0") || json.Unmarshal([]byte(open[1:]), &hs) != nil || hs.Sid == "" {
		t.Fatalf("handshake %q", open)
	}
	base += "&sid=" + hs.Sid
	pollPOST(t, base, "40")
	if got := pollGET(t, base); !strings.HasPrefix(got, "40{") {
		t.Fatalf("connect answer %q", got)
	}
	so := srv.next(t)
	c, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(srv.URL, "http")+"/socket.io/?EIO=4&transport=websocket&sid="+hs.Sid, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if err := c.WriteMessage(websocket.TextMessage, []byte("2probe")); err != nil {
		t.Fatal(err)
	}
	if _, msg, err := c.ReadMessage(); err != nil || string(msg) != "3probe" {
		t.Fatalf("probe answer %q, %v", msg, err)
	}
	// No GET is pending: these wait in the write buffer.
	so.Emit("m", "A1")
	so.Emit("m", "A2")
	upgraded := make(chan struct{})
	bDone := make(chan struct{}) // B's emit has returned, and is counted
	_ = so.Conn().Once(types.EventName(event), func(...any) {
		defer close(upgraded)
		if event == "upgrade" {
			srv.IO.To("room").Emit("m", "B")
			close(bDone)
			return
		}
		go func() {
			srv.IO.To("room").Emit("m", "B")
			close(bDone)
		}()
		// Give B the time to reach the flush lock while the flush holds
		// it (it can not finish before the flush does): this provokes the
		// overtaking the lock prevents; B arriving later weakens the test
		// but does not make it pass wrongly.
		select {
		case <-bDone:
		case <-time.After(100 * time.Millisecond):
		}
	})
	if err := c.WriteMessage(websocket.TextMessage, []byte("5")); err != nil {
		t.Fatal(err)
	}
	select {
	case <-upgraded:
	case <-time.After(10 * time.Second):
		t.Fatal("no upgrade")
	}
	select {
	case <-bDone:
	case <-time.After(10 * time.Second):
		t.Fatal("B's emit did not return")
	}
	srv.IO.To("room").Emit("m", "C") // nothing waits now: pre-framed
	so.Emit("m", "D")
	srv.IO.To("room").Emit("m", "E")
	var got []string
	for len(got) < 6 {
		_, msg, err := c.ReadMessage()
		if err != nil {
			t.Fatalf("read: %v; got %v", err, got)
		}
		if s := string(msg); s != "6" { // a noop the upgrade check may have left
			got = append(got, s)
		}
	}
	want := []string{`42["m","A1"]`, `42["m","A2"]`, `42["m","B"]`, `42["m","C"]`, `42["m","D"]`, `42["m","E"]`}
	if !slices.Equal(got, want) {
		t.Fatalf("got\n%v\nwant\n%v", got, want)
	}
	// B waits in the buffer after A1 and A2 (upgrade), or is written
	// after them once the flush is over (flush).
	wantPre, wantLib := uint64(2), uint64(1)
	if event == "flush" {
		wantPre, wantLib = 3, 0
	}
	if pre, lib := b.Deliveries(); pre != wantPre || lib != wantLib {
		t.Errorf("deliveries %d pre-framed, %d through the library; want %d and %d", pre, lib, wantPre, wantLib)
	}
}

func pollGET(tb testing.TB, url string) string {
	tb.Helper()
	resp, err := http.Get(url)
	if err != nil {
		tb.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		tb.Fatalf("GET: %d %q %v", resp.StatusCode, body, err)
	}
	return string(body)
}

func pollPOST(tb testing.TB, url, body string) {
	tb.Helper()
	resp, err := http.Post(url, "text/plain;charset=UTF-8", strings.NewReader(body))
	if err != nil {
		tb.Fatal(err)
	}
	defer resp.Body.Close()
	if b, _ := io.ReadAll(resp.Body); resp.StatusCode != http.StatusOK || string(b) != "ok" {
		tb.Fatalf("POST: %d %q", resp.StatusCode, b)
	}
}

// A binary emit is several Engine.IO packets (the header, then each
// attachment), which the library writes holding the client's lock; a
// pre-framed write between them would make the client's decoder drop the
// connection. Binary and text room emits from two goroutines at once: the
// client decodes every one, each stream in its order. (Without the
// client's lock in writePreframed it fails with "got plaintext data when
// reconstructing a packet" at this count; at 300 it did not.)
func TestPreframedBroadcastKeepsBinaryPacketsWhole(t *testing.T) {
	d := tandemtest.NewDriver(t)
	srv := newSIOServer(t, &transport.BroadcastBuilder{}, func(*socket.Socket) []socket.Room { return []socket.Room{"room"} })
	c := d.Dial(srv.URL, tandemtest.Options{})
	so := srv.next(t)
	const n = 2000 // 4000 events: within the driver's 4096 per socket
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range n {
			srv.IO.To("room").Emit("bin", i, []byte{1, 2, 3}, []byte{4, 5})
		}
	}()
	for i := range n {
		srv.IO.To("room").Emit("txt", i)
	}
	<-done
	so.Emit("end")
	var bin, txt []string
	for {
		e, ok := c.Next(20 * time.Second)
		if !ok {
			t.Fatalf("no \"end\"; saw %d bin, %d txt, last events %v", len(bin), len(txt), c.Seen()[max(0, len(c.Seen())-3):])
		}
		if e.Name == "end" {
			break
		}
		switch e.Name {
		case "bin":
			bin = append(bin, string(e.Args[0]))
		case "txt":
			txt = append(txt, string(e.Args[0]))
		default:
			t.Fatalf("event %v", e)
		}
	}
	for name, got := range map[string][]string{"bin": bin, "txt": txt} {
		if len(got) != n {
			t.Fatalf("%s: %d events, want %d", name, len(got), n)
		}
		for i, v := range got {
			if v != strconv.Itoa(i) {
				t.Fatalf("%s: event %d is %s", name, i, v)
			}
		}
	}
}
