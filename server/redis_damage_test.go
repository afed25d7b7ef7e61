package server_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/tandem-go/tandem/internal/tandemtest"
	"github.com/tandem-go/tandem/server"
	redisstore "github.com/tandem-go/tandem/server/store/redis"
	"github.com/tandem-go/tandem/shared"
)

// Issue 13 item 8, through the server on a real redis-server: a session
// whose version field someone rewrote as "01" is a damaged record. POST
// /incr answers at once with a new session (count 1, a new cookie) instead
// of hanging until the client leaves, and the server keeps serving another
// session and /healthz.
func TestRedisNonCanonicalVersion(t *testing.T) {
	rds := tandemtest.StartRedis(t)
	node := startNodes(t, rds, 1, server.Config{})[0]
	a := tandemtest.NewClient(t, node.URL())
	a.Incr()
	a.Incr()
	old := a.Cookie()
	raw := rds.Client(0)
	key := redisstore.New(raw, redisstore.Options{Prefix: "tandem:session:"}).RecordKey(tandemtest.StoreKey(t, old))
	if err := raw.HSet(t.Context(), key, "v", "01").Err(); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	status, body, _ := a.Do(http.MethodPost, shared.RouteIncr)
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("POST /incr on the damaged session took %v", d)
	}
	if status != http.StatusOK || body != "1" || a.Cookie() == old {
		t.Errorf("POST /incr on the damaged session: %d %s (cookie replaced: %v), want 200, 1 and a new session", status, body, a.Cookie() != old)
	}
	b := tandemtest.NewClient(t, node.URL())
	if got := b.Incr(); got != 1 {
		t.Errorf("another session's incr = %d", got)
	}
	if status, body, _ := b.Do(http.MethodGet, shared.RouteHealth); status != http.StatusOK {
		t.Errorf("/healthz: %d %s", status, body)
	}
}
