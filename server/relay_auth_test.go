package server_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/tandem-go/tandem/internal/tandemtest"
	"github.com/tandem-go/tandem/server"
	"github.com/tandem-go/tandem/shared"
)

// Issue 13 item 7, on a real redis-server: someone who can PUBLISH on the
// shared Redis forges relay messages. A genuine message captured on the
// request channel and altered (another count, a huge version, as another
// node), one with a made-up MAC, and messages in the old unsigned
// format: node 2 drops each (RelayDropped counts the
// signed-looking ones), its socket hears none of them, and the session's
// next real change still reaches it.
func TestClusterRelayRefusesForgedMessages(t *testing.T) {
	rds := tandemtest.StartRedis(t)
	nodes := startNodes(t, rds, 2, server.Config{})
	drv := tandemtest.NewDriver(t)
	a := tandemtest.NewClient(t, nodes[0].URL())
	a.Incr()
	sock := drv.Dial(nodes[1].URL(), tandemtest.Options{Cookie: a.Cookie()})
	key := tandemtest.StoreKey(t, a.Cookie())

	const channel = "tandem:socket.io-request#/#"
	raw := rds.Client(0)
	sub := raw.Subscribe(t.Context(), channel)
	defer sub.Close()
	if _, err := sub.Receive(t.Context()); err != nil {
		t.Fatal(err)
	}
	if got := a.Incr(); got != 2 || sock.Count(wait) != 2 {
		t.Fatalf("incr = %d before the forgeries", got)
	}
	msg, err := sub.ReceiveMessage(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	var captured map[string]any
	if err := json.Unmarshal([]byte(msg.Payload), &captured); err != nil {
		t.Fatalf("the relay message is not JSON: %q", msg.Payload)
	}
	data, _ := captured["data"].([]any)
	if len(data) != 3 {
		t.Fatalf("captured relay data %v, want event, payload, MAC", data)
	}
	publish := func(data []any) {
		t.Helper()
		m := map[string]any{}
		for k, v := range captured {
			m[k] = v
		}
		m["uid"] = "forger"
		m["data"] = data
		b, _ := json.Marshal(m)
		if err := raw.Publish(t.Context(), channel, string(b)).Err(); err != nil {
			t.Fatal(err)
		}
	}
	var payload map[string]any
	if err := json.Unmarshal([]byte(data[1].(string)), &payload); err != nil {
		t.Fatal(err)
	}
	payload["a"] = []any{999}
	payload["v"] = 1 << 52
	altered, _ := json.Marshal(payload)
	dropped := server.RelayDropped(nodes[1])
	publish([]any{data[0], string(altered), data[2]})                             // altered, old MAC
	publish([]any{data[0], string(altered), "00" + data[2].(string)[2:]})         // altered, made-up MAC
	publish([]any{"sessionio:emit", key, 1 << 52, shared.EventCurrentCount, 999}) // the old unsigned format
	publish([]any{"sessionio:disconnect", key})
	deadline := time.Now().Add(wait)
	for server.RelayDropped(nodes[1])-dropped < 2 {
		if time.Now().After(deadline) {
			t.Fatalf("node 2 dropped %d forged messages, want 2", server.RelayDropped(nodes[1])-dropped)
		}
		time.Sleep(10 * time.Millisecond) // polling for node 2 to read them
	}
	if got := a.Incr(); got != 3 {
		t.Fatalf("incr after the forgeries = %d, want 3", got)
	}
	if got := sock.Count(wait); got != 3 {
		t.Errorf("socket on node 2: count %d after the forgeries, want 3 (a forged count arrived, or a forged version silenced it)", got)
	}
	for _, e := range sock.Seen() {
		if e.Name == "disconnect" {
			t.Errorf("the socket was disconnected by a forged message")
		}
	}
}
