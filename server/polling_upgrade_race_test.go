package server_test

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/tandem-go/tandem/internal/tandemtest"
	"github.com/tandem-go/tandem/server"
	"github.com/tandem-go/tandem/shared"
)

// Issue 13 item 1: a client upgrades a polling connection to WebSocket and
// sends the upgrade packet "5" while one of its polling POSTs is in the
// engine. The engine handles "5" on the WebSocket's reader goroutine and
// closes the polling transport from there; zishang520/socket.io v3.0.6's
// polling transport then writes a 429 on the POST's response while the
// POST's own goroutine writes its "ok" (one http.Header map: -race reports
// it, and without -race it can be "fatal error: concurrent map writes",
// the end of the process). tandem's polling transport (server/transport)
// hands that answer to the POST's goroutine. The loop must run clean under
// -race, the process must survive it, and every upgrade must complete.
// Each POST carries many noop packets so that it is still in the engine
// when "5" arrives.
func TestPollingUpgradeDuringPOST(t *testing.T) {
	t.Parallel()
	const runs, workers = 2000, 4
	srv := tandemtest.Start(t, server.Config{})
	c := tandemtest.NewClient(t, srv.URL())
	c.Incr()
	cookie := c.Cookie()
	payload := "6" + strings.Repeat("\x1e6", 2000)
	wsBase := "ws" + strings.TrimPrefix(srv.URL(), "http") + shared.SocketPath + secEIOQuery + "websocket&sid="
	var (
		mu       sync.Mutex
		failures []error
		answers  = map[string]int{}
	)
	run := func() error {
		p, err := pollOpen(srv.URL(), cookie)
		if err != nil {
			return err
		}
		conn, resp, err := websocket.DefaultDialer.Dial(wsBase+p.sid, secHeader("Cookie", cookie))
		if err != nil {
			return fmt.Errorf("upgrade dial: %v (%v)", err, secRespStatus(resp))
		}
		defer conn.Close()
		_ = conn.SetReadDeadline(time.Now().Add(secWait))
		if err := conn.WriteMessage(websocket.TextMessage, []byte("2probe")); err != nil {
			return err
		}
		if _, msg, err := conn.ReadMessage(); err != nil || string(msg) != "3probe" {
			return fmt.Errorf("probe answered %q, %v", msg, err)
		}
		posted := make(chan string, 1)
		go func() {
			status, body, err := p.do(http.MethodPost, payload)
			if err != nil {
				posted <- "error " + err.Error()
				return
			}
			posted <- fmt.Sprintf("%d %s", status, body)
		}()
		if err := conn.WriteMessage(websocket.TextMessage, []byte("5")); err != nil {
			return err
		}
		answer := <-posted
		mu.Lock()
		answers[answer]++
		mu.Unlock()
		switch answer {
		case "200 ok", "429 ", `400 {"code":1,"message":"Session ID unknown"}`, `400 {"code":3,"message":"Bad request"}`:
		default:
			return fmt.Errorf("POST answered %q", answer)
		}
		// The connection lives on over WebSocket.
		if err := conn.WriteMessage(websocket.TextMessage, []byte("40")); err != nil {
			return err
		}
		for {
			_, msg, err := conn.ReadMessage()
			if err != nil {
				return fmt.Errorf("after the upgrade: %v", err)
			}
			if strings.HasPrefix(string(msg), "40") {
				return nil
			}
			if string(msg) == "44" || strings.HasPrefix(string(msg), "44{") {
				return errors.New("CONNECT refused after the upgrade")
			}
		}
	}
	var wg sync.WaitGroup
	next := make(chan struct{})
	for range workers {
		wg.Go(func() {
			for range next {
				if err := run(); err != nil {
					mu.Lock()
					failures = append(failures, err)
					mu.Unlock()
				}
			}
		})
	}
	for range runs {
		next <- struct{}{}
	}
	close(next)
	wg.Wait()
	t.Logf("POST answers over %d upgrades: %v", runs, answers)
	for i, err := range failures {
		if i == 5 {
			t.Errorf("... and %d more", len(failures)-5)
			break
		}
		t.Error(err)
	}
	if got := c.Incr(); got != 2 {
		t.Errorf("the server after the loop: incr = %d, want 2", got)
	}
}
