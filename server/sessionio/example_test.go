package sessionio_test

import (
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strings"
	"time"

	"github.com/gorilla/sessions"
	"github.com/gorilla/websocket"
	"github.com/labstack/echo-contrib/session"
	"github.com/labstack/echo/v4"
	"github.com/zishang520/socket.io/servers/socket/v3"

	"github.com/tandem-go/tandem/server/sessionio"
	"github.com/tandem-go/tandem/server/store/memory"
)

// An Echo app whose HTTP handlers and Socket.IO sockets share one session:
// an HTTP request changes it atomically and tells every tab; a socket event
// reads it; a logout ends it and disconnects every tab. Pages of
// https://app.example.com may open sockets with the user's cookie; other
// origins are refused.
func Example() {
	m, err := sessionio.New(sessionio.Config{
		Store:          memory.New(),
		Keys:           [][]byte{[]byte(strings.Repeat("s", 32))}, // use real random keys
		AllowedOrigins: []string{"https://app.example.com"},
	})
	if err != nil {
		panic(err)
	}
	defer m.Close()

	sio := socket.NewServer(nil, nil)
	defer sio.Close(nil)
	sio.On("connection", func(args ...any) {
		s := args[0].(*socket.Socket)
		sess := m.FromSocket(s) // reloaded before every packet
		s.On("whoami", func(args ...any) {
			if ack, ok := args[len(args)-1].(socket.Ack); ok {
				ack([]any{sess.Get("visits")}, nil)
			}
		})
	})
	sh, err := m.Attach(sio, nil)
	if err != nil {
		panic(err)
	}

	e := echo.New()
	e.Any("/socket.io/*", echo.WrapHandler(sh))
	e.POST("/visit", func(c echo.Context) error {
		s, err := m.Update(c.Response(), c.Request(), func(v sessionio.Values) error {
			n, _ := v["visits"].(int)
			v["visits"] = n + 1
			return nil
		}, func(s *sessions.Session) {
			_ = m.Emit(m.KeyOf(s), "visits", s.Values["visits"]) // every tab, every node
		})
		if err != nil {
			return err
		}
		return c.String(http.StatusOK, fmt.Sprint(s.Values["visits"]))
	}, session.Middleware(m))
	e.POST("/logout", func(c echo.Context) error {
		key, err := m.Destroy(c.Response(), c.Request())
		if err != nil {
			return err
		}
		if key != "" {
			_ = m.Emit(key, "bye")
			_ = m.Disconnect(key) // no reconnect: the tabs know why
		}
		return c.NoContent(http.StatusNoContent)
	})

	srv := httptest.NewServer(e)
	defer srv.Close()
	jar, _ := cookiejar.New(nil)
	client := &http.Client{Jar: jar}
	post := func(path string) string {
		resp, err := client.Post(srv.URL+path, "", nil)
		if err != nil {
			panic(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}
	fmt.Println("visits:", post("/visit"))
	fmt.Println("visits:", post("/visit"))

	// A tab of the allowed origin, with the session's cookie.
	u, _ := url.Parse(srv.URL)
	cookie := jar.Cookies(u)[0]
	tab, status := dial(srv.URL, "https://app.example.com", cookie)
	fmt.Println("tab:", status)
	fmt.Println("whoami:", tab.emitAck(`["whoami"]`))
	_, status = dial(srv.URL, "https://evil.example", cookie)
	fmt.Println("other origin:", status)

	fmt.Println("visits:", post("/visit"))
	fmt.Println("tab hears:", tab.next())
	post("/logout")
	fmt.Println("tab hears:", tab.next())
	fmt.Println("tab hears:", tab.next())
	// Output:
	// visits: 1
	// visits: 2
	// tab: 101 Switching Protocols
	// whoami: [2]
	// other origin: 403 Forbidden
	// visits: 3
	// tab hears: ["visits",3]
	// tab hears: ["bye"]
	// tab hears: disconnect
}

// tab is a bare Socket.IO client over WebSocket (a browser would use the
// socket.io JavaScript client).
type tab struct{ c *websocket.Conn }

// dial opens a socket from a page of origin, connected to the main
// namespace, and returns it with the HTTP status of the upgrade.
func dial(base, origin string, cookie *http.Cookie) (*tab, string) {
	h := http.Header{"Origin": {origin}, "Cookie": {cookie.String()}}
	c, resp, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(base, "http")+"/socket.io/?EIO=4&transport=websocket", h)
	if err != nil {
		return nil, resp.Status
	}
	t := &tab{c}
	t.read()      // Engine.IO open
	t.write("40") // connect to "/"
	t.read()      // connected
	return t, resp.Status
}

func (t *tab) write(msg string) {
	if err := t.c.WriteMessage(websocket.TextMessage, []byte(msg)); err != nil {
		panic(err)
	}
}

// read returns the next Socket.IO packet, answering pings.
func (t *tab) read() string {
	for {
		_ = t.c.SetReadDeadline(time.Now().Add(10 * time.Second))
		_, b, err := t.c.ReadMessage()
		if err != nil {
			panic(err)
		}
		if string(b) == "2" {
			t.write("3")
			continue
		}
		return string(b)
	}
}

// emitAck emits an event with an ack and returns the ack's arguments.
func (t *tab) emitAck(event string) string {
	t.write("421" + event)
	return strings.TrimPrefix(t.read(), "431")
}

// next returns the next event the server sent, or "disconnect".
func (t *tab) next() string {
	p := t.read()
	if p == "41" {
		return "disconnect"
	}
	return strings.TrimPrefix(p, "42")
}

// closed reads until the connection ends and returns "closed", or the
// packet it got instead.
func (t *tab) closed() string {
	for {
		_ = t.c.SetReadDeadline(time.Now().Add(10 * time.Second))
		_, b, err := t.c.ReadMessage()
		if err != nil {
			return "closed"
		}
		if string(b) == "2" {
			t.write("3")
			continue
		}
		return string(b)
	}
}
