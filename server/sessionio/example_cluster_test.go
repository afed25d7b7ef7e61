package sessionio_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"testing"

	"github.com/gorilla/sessions"
	"github.com/labstack/echo/v4"
	goredis "github.com/redis/go-redis/v9"
	sioredis "github.com/zishang520/socket.io/adapters/redis/v3"
	"github.com/zishang520/socket.io/adapters/redis/v3/adapter"
	"github.com/zishang520/socket.io/servers/socket/v3"

	"github.com/tandem-go/tandem/internal/tandemtest"
	"github.com/tandem-go/tandem/server/sessionio"
	redisstore "github.com/tandem-go/tandem/server/store/redis"
)

// Two nodes behind one Redis (REDIS_URL, e.g. redis://127.0.0.1:6379/0):
// the store and the Socket.IO adapter both use it. The adapter goes in the
// options given to Attach (or on the server before Attach): set later, it
// would leave emits on one node, and the manager refuses (ErrAdapterChanged).
// A change made through node A reaches a tab connected to node B; a sign-in
// on A closes the tab's old connection on B; a logout on A tells the tab on
// B why before it disconnects it.
func Example_severalNodes() {
	redisURL := os.Getenv("REDIS_URL")
	if redisURL == "" {
		fmt.Println("set REDIS_URL to run this example")
		return
	}
	node := func() (*httptest.Server, func()) {
		st, err := redisstore.Open(redisURL, redisstore.Options{})
		if err != nil {
			panic(err)
		}
		m, err := sessionio.New(sessionio.Config{
			Store: st,
			Keys:  [][]byte{[]byte(strings.Repeat("s", 32))}, // the same keys on every node
		})
		if err != nil {
			panic(err)
		}
		o, _ := redisstore.ParseURL(redisURL)
		rdb := goredis.NewClient(o)
		ctx, cancel := context.WithCancel(context.Background())
		rc := sioredis.NewRedisClient(ctx, rdb)
		_ = rc.On("error", func(...any) {}) // log these in a real app
		opts := socket.DefaultServerOptions()
		opts.SetAdapter(&adapter.RedisAdapterBuilder{Redis: rc, Opts: adapter.DefaultRedisAdapterOptions()})
		sio := socket.NewServer(nil, nil)
		sh, err := m.Attach(sio, opts) // the adapter goes in with the options
		if err != nil {
			panic(err)
		}
		e := echo.New()
		e.Any("/socket.io/*", echo.WrapHandler(sh))
		e.POST("/visit", func(c echo.Context) error {
			var n int
			_, err := m.Update(c.Response(), c.Request(), func(v sessionio.Values) error {
				n, _ = v["visits"].(int)
				n++
				v["visits"] = n
				return nil
			}, nil)
			if err != nil {
				return err
			}
			_ = m.Emit(m.KeyOf(sessionOf(m, c.Request())), "visits", n) // every tab, every node
			return c.String(http.StatusOK, fmt.Sprint(n))
		})
		e.POST("/login", func(c echo.Context) error {
			// The app checked the user's credentials; then, in one step:
			_, err := m.SignIn(c.Response(), c.Request(), "ada", sessionio.SignInOptions{})
			return err
		})
		e.POST("/logout", func(c echo.Context) error {
			key, err := m.Destroy(c.Response(), c.Request())
			if err == nil && key != "" {
				err = m.End(key, sessionio.EndLogout) // "session ended", then disconnect, on every node
			}
			return err
		})
		srv := httptest.NewServer(e)
		return srv, func() {
			srv.Close()
			sio.Close(nil)
			_ = m.Close()
			cancel()
			_ = rdb.Close()
			_ = st.Close()
		}
	}
	a, closeA := node()
	defer closeA()
	b, closeB := node()
	defer closeB()

	jar, _ := cookiejar.New(nil)
	client := &http.Client{Jar: jar}
	post := func(base, path string) string {
		resp, err := client.Post(base+path, "", nil)
		if err != nil {
			panic(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return string(body)
	}
	cookie := func() *http.Cookie {
		u, _ := url.Parse(a.URL) // both nodes are on 127.0.0.1: one jar
		return jar.Cookies(u)[0]
	}
	fmt.Println("visits on A:", post(a.URL, "/visit"))
	tab, status := dial(b.URL, b.URL, cookie())
	fmt.Println("tab on B:", status)
	fmt.Println("visits on A:", post(a.URL, "/visit"))
	fmt.Println("tab on B hears:", tab.next())

	post(a.URL, "/login") // a new ID: the tab's old connection closes
	fmt.Println("tab on B after the sign-in:", tab.closed())
	tab, _ = dial(b.URL, b.URL, cookie()) // the browser reconnects with its new cookie
	post(a.URL, "/logout")
	fmt.Println("tab on B hears:", tab.next())
	fmt.Println("tab on B hears:", tab.next())
	// It prints (TestExampleSeveralNodes runs it against a real Redis):
	//
	//	visits on A: 1
	//	tab on B: 101 Switching Protocols
	//	visits on A: 2
	//	tab on B hears: ["visits",2]
	//	tab on B after the sign-in: closed
	//	tab on B hears: ["session ended",{"reason":"logout"}]
	//	tab on B hears: disconnect
}

// sessionOf is the request's session, as the earlier Update left it.
func sessionOf(m *sessionio.Manager, r *http.Request) *sessions.Session {
	s, _ := m.Get(r, m.CookieName())
	return s
}

// The several-nodes example runs against a real Redis.
func TestExampleSeveralNodes(t *testing.T) {
	rds := tandemtest.StartRedis(t)
	t.Setenv("REDIS_URL", rds.TCPURL(0))
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout := os.Stdout
	os.Stdout = w
	func() {
		defer func() { os.Stdout = stdout }()
		Example_severalNodes()
	}()
	w.Close()
	out, _ := io.ReadAll(r)
	want := `visits on A: 1
tab on B: 101 Switching Protocols
visits on A: 2
tab on B hears: ["visits",2]
tab on B after the sign-in: closed
tab on B hears: ["session ended",{"reason":"logout"}]
tab on B hears: disconnect
`
	if string(out) != want {
		t.Errorf("output:\n%s\nwant:\n%s", out, want)
	}
}
