package server_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/tandem-go/tandem/internal/tandemtest"
	"github.com/tandem-go/tandem/server"
	"github.com/tandem-go/tandem/server/sessionio"
	"github.com/tandem-go/tandem/server/store/memory"
	"github.com/tandem-go/tandem/shared"
)

// A polling POST whose session was just deleted makes sessionio close the
// connection (the per-packet reload finds no session) while that POST is
// still being handled. zishang520/socket.io v3.0.6 answers the pending data
// request from the closing goroutine (polling.DoClose writes 429) while the
// POST's own goroutine writes its "ok": both write one http.Header map, a
// data race that -race reports and that can otherwise end the process with
// "fatal error: concurrent map writes". sessionio serializes its closes of a
// connection with that connection's POSTs, so the loop below must run clean
// under -race. Each POST carries many events, so that the POST is still
// decoding when the first event's reload closes the connection.
func TestPollingCloseDuringPOST(t *testing.T) {
	t.Parallel()
	const runs, workers = 2000, 4
	st := memory.New()
	srv := tandemtest.Start(t, server.Config{Backend: st, SessionCreateBurst: 2 * runs, SessionCreateGlobalRate: sessionio.Off})
	payload := `421["incr"]` + strings.Repeat("\x1e"+`42["noise"]`, 50)
	var (
		mu       sync.Mutex
		failures []error
		answers  = map[string]int{}
	)
	run := func() error {
		c := tandemtest.NewClient(t, srv.URL())
		if status, body, _ := c.Do(http.MethodGet, shared.RouteSession); status != http.StatusOK {
			return fmt.Errorf("GET /session: %d %q", status, body)
		}
		cookie := c.Cookie()
		p, err := pollOpen(srv.URL(), cookie)
		if err != nil {
			return err
		}
		if err := p.postErr("40"); err != nil {
			return err
		}
		if status, body, err := p.do(http.MethodGet, ""); err != nil || !strings.HasPrefix(body, "40") {
			return fmt.Errorf("connect answered %d %q %v", status, body, err)
		}
		if err := st.Delete(context.Background(), tandemtest.StoreKey(t, cookie)); err != nil {
			return err
		}
		status, body, err := p.do(http.MethodPost, payload)
		if err != nil {
			return fmt.Errorf("POST: %v", err)
		}
		answer := fmt.Sprintf("%d %s", status, body)
		mu.Lock()
		answers[answer]++
		mu.Unlock()
		if status != http.StatusOK && status != http.StatusTooManyRequests && status != http.StatusBadRequest {
			return fmt.Errorf("POST answered %s", answer)
		}
		// The connection ends: a poll gets the close packet or is refused.
		for range 10 {
			status, body, err := p.do(http.MethodGet, "")
			if err != nil {
				return fmt.Errorf("poll after the session was deleted: %v", err)
			}
			if status != http.StatusOK || hasPacket(body, "1") {
				return nil
			}
		}
		return errors.New("the connection of a deleted session stayed open")
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
	t.Logf("POST answers over %d runs: %v", runs, answers)
	for i, err := range failures {
		if i == 5 {
			t.Errorf("... and %d more", len(failures)-5)
			break
		}
		t.Error(err)
	}
	if status, body, _ := secDo(t, http.MethodGet, srv.URL()+shared.RouteHealth, nil); status != http.StatusOK {
		t.Errorf("GET /healthz after the loop: %d %q", status, body)
	}
}

// hasPacket reports whether a polling payload holds the packet pkt.
func hasPacket(payload, pkt string) bool {
	for _, p := range strings.Split(payload, "\x1e") {
		if p == pkt {
			return true
		}
	}
	return false
}
