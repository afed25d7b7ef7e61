package tandemtest

import (
	"errors"
	"fmt"
	"os"
	"testing"
)

// A Redis process started on a port another process holds is not taken
// for ready because that other process answers: start reports the port
// taken, so startProc tries another. (The other one answered PING first,
// and a cluster was once made of another test's plain Redis.)
func TestRedisProcOnATakenPortIsNotReady(t *testing.T) {
	bin := NeedRedis(t)
	conf := func(port int) string {
		return fmt.Sprintf("bind 127.0.0.1\nport %d\nappendonly no\nsave \"\"\nlogfile \"\"\n", port)
	}
	first := startProc(t, bin, conf)
	dir := t.TempDir()
	second := &RedisProc{tb: t, bin: bin, dir: dir, conf: conf, Port: first.Port}
	t.Cleanup(func() { second.Kill(); _ = os.RemoveAll(dir) })
	for range 5 {
		if err := second.start(); !errors.Is(err, errPortTaken) {
			t.Fatalf("a second redis-server on %d's port: %v, want errPortTaken", first.Port, err)
		}
	}
}
