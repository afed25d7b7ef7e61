package sessionio_test

import (
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"strings"

	"github.com/gorilla/sessions"
	"github.com/labstack/echo-contrib/session"
	"github.com/labstack/echo/v4"
	"github.com/zishang520/socket.io/servers/socket/v3"

	"github.com/tandem-go/tandem/server/sessionio"
	"github.com/tandem-go/tandem/server/store/memory"
)

// The wiring of an Echo app whose HTTP handlers and Socket.IO sockets share
// one session: an HTTP request changes it atomically and tells every tab.
func Example() {
	m, err := sessionio.New(sessionio.Config{
		Store: memory.New(),
		Keys:  [][]byte{[]byte(strings.Repeat("s", 32))}, // use real random keys
	})
	if err != nil {
		panic(err)
	}
	defer m.Close()

	sio := socket.NewServer(nil, nil)
	sio.On("connection", func(args ...any) {
		s := args[0].(*socket.Socket)
		sess := m.FromSocket(s) // reloaded before every packet
		s.On("whoami", func(args ...any) {
			if ack, ok := args[len(args)-1].(socket.Ack); ok {
				ack([]any{sess.Get("visits")}, nil)
			}
		})
	})

	e := echo.New()
	sh, err := m.Attach(sio, nil)
	if err != nil {
		panic(err)
	}
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

	srv := httptest.NewServer(e)
	defer srv.Close()
	jar, _ := cookiejar.New(nil)
	client := &http.Client{Jar: jar}
	for range 2 {
		resp, err := client.Post(srv.URL+"/visit", "", nil)
		if err != nil {
			panic(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		fmt.Println("visits:", string(b))
	}
	// Output:
	// visits: 1
	// visits: 2
}
