package server_test

import (
	"os"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/zishang520/socket.io/servers/socket/v3"

	"github.com/tandem-go/tandem/internal/tandemtest"
	"github.com/tandem-go/tandem/server"
)

// The measurement behind issue 17's adapter decision (README, "Every tab
// converges"): sessionio's relay (ServerSideEmit) from one Socket.IO
// server to another through the classic adapter and through the Redis
// Streams adapter of adapters/redis v3.0.2, on one redis-server: relayed
// messages per second, their delivery p99, and what each does with Redis
// down for 10 s. Run with TANDEM_ADAPTER_COMPARE=1 (it takes about 40 s):
//
//	TANDEM_ADAPTER_COMPARE=1 go test -count=1 -v -run TestAdapterCompare ./server/
func TestAdapterCompare(t *testing.T) {
	if os.Getenv("TANDEM_ADAPTER_COMPARE") == "" {
		t.Skip("a measurement; set TANDEM_ADAPTER_COMPARE=1")
	}
	for _, kind := range []string{"classic", "streams"} {
		t.Run(kind, func(t *testing.T) {
			rds := tandemtest.StartRedis(t)
			var servers []*socket.Server
			var errs []func() int64
			var closes []func() error
			for range 2 {
				b, e, c, err := server.BenchAdapter(rds.URL(0), kind == "streams")
				if err != nil {
					t.Fatal(err)
				}
				errs, closes = append(errs, e), append(closes, c)
				opts := socket.DefaultServerOptions()
				opts.SetAdapter(b)
				servers = append(servers, socket.NewServer(nil, opts))
			}
			t.Cleanup(func() {
				for i, s := range servers {
					s.Close(nil)
					_ = closes[i]()
				}
			})
			var (
				mu   sync.Mutex
				lat  []time.Duration
				seen = map[float64]bool{}
			)
			_ = servers[1].Of("/", nil).On("bench", func(args ...any) {
				sent, _ := args[0].(float64)
				n, _ := args[1].(float64)
				mu.Lock()
				lat = append(lat, time.Since(time.Unix(0, int64(sent))))
				seen[n] = true
				mu.Unlock()
			})
			received := func() int { mu.Lock(); defer mu.Unlock(); return len(seen) }
			send := func(n int) error {
				return servers[0].Of("/", nil).ServerSideEmit("bench", float64(time.Now().UnixNano()), float64(n))
			}
			// Warm up until node 2 hears node 1.
			for i := 0; received() == 0; i++ {
				if err := send(-1 - i); err != nil && i%50 == 0 {
					t.Logf("%s: warm-up send: %v", kind, err)
				}
				if i == 500 {
					// What the Streams adapter did here (README): record it,
					// it is the measurement.
					t.Logf("%s: node 2 heard nothing of node 1's ServerSideEmit in 10 s", kind)
					return
				}
				time.Sleep(20 * time.Millisecond) // polling for the subscription
			}
			mu.Lock()
			lat, seen = nil, map[float64]bool{}
			mu.Unlock()

			const n = 5000
			start := time.Now()
			for i := range n {
				if err := send(i); err != nil {
					t.Fatal(err)
				}
			}
			for received() < n && time.Since(start) < 30*time.Second {
				time.Sleep(5 * time.Millisecond) // polling for the last deliveries
			}
			took := time.Since(start)
			mu.Lock()
			slices.Sort(lat)
			p50, p99 := lat[len(lat)/2], lat[len(lat)*99/100]
			got := len(seen)
			mu.Unlock()
			t.Logf("%s: %d of %d relayed in %v: %.0f deliveries/s, p50 %v, p99 %v", kind, got, n, took.Round(time.Millisecond), float64(got)/took.Seconds(), p50.Round(time.Microsecond), p99.Round(time.Microsecond))

			// Redis down for 10 s, one message every 100 ms meanwhile.
			mu.Lock()
			seen = map[float64]bool{}
			mu.Unlock()
			errsBefore := errs[0]() + errs[1]()
			rds.Stop()
			down := time.Now()
			failed := 0
			for i := 0; time.Since(down) < 10*time.Second; i++ {
				if send(100000+i) != nil {
					failed++
				}
				time.Sleep(100 * time.Millisecond) // the stream's pace
			}
			rds.Start()
			back := time.Now()
			for i := 0; ; i++ {
				if send(200000+i) == nil {
					mu.Lock()
					ok := seen[float64(200000+i)]
					mu.Unlock()
					if ok || i > 0 && received() > 0 {
						break
					}
				}
				if time.Since(back) > 20*time.Second {
					t.Logf("%s: nothing relayed 20 s after Redis came back", kind)
					break
				}
				time.Sleep(20 * time.Millisecond) // polling for the recovery
			}
			mu.Lock()
			during := 0
			for k := range seen {
				if k >= 100000 && k < 200000 {
					during++
				}
			}
			mu.Unlock()
			t.Logf("%s: 10 s outage: %d sends failed, %d sent during it delivered after, adapter error events %d, relaying again %v after Redis came back",
				kind, failed, during, errs[0]()+errs[1]()-errsBefore, time.Since(back).Round(time.Millisecond))
		})
	}
}
