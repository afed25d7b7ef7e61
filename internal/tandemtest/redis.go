package tandemtest

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"
)

// Redis is a redis-server started for one test, with its own configuration
// and data directory, listening on a Unix socket in that directory and on a
// loopback TCP port.
//
// Why both: the Unix socket's path is the test's own, so the server can be
// stopped and started again at the same address with no chance that
// something else took it meanwhile (tests of an outage need exactly that);
// the TCP port is what users configure (redis://host:port/db). Redis cannot
// listen on port 0 and report the port, so StartRedis picks a random port
// and, if Redis cannot bind it, tries another: there is no window between
// finding a free port and using it, because the check is Redis's own bind.
type Redis struct {
	tb   testing.TB
	dir  string
	port int
	bin  string
	aof  bool

	proc childSlot
}

// NeedRedis finds redis-server; without it the test is skipped, or fails
// under CI=true (.ci/run installs it). With -short it skips.
func NeedRedis(tb testing.TB) string {
	tb.Helper()
	if testing.Short() {
		tb.Skip("-short: skipping a test that runs redis-server")
	}
	return needTool(tb, "redis-server", "redis-server")
}

// needTool returns the path of the program name on PATH, or skips the
// test saying which Debian package has it (it fails instead under
// CI=true, where .ci/run installs it).
func needTool(tb testing.TB, name, pkg string) string {
	tb.Helper()
	bin, err := exec.LookPath(name)
	if err != nil {
		msg := "needs " + name + " on PATH (apt-get install " + pkg + "): " + err.Error()
		if os.Getenv("CI") == "true" {
			tb.Fatal(msg)
		}
		tb.Skip(msg)
	}
	return bin
}

// StartRedis starts a redis-server for the test and stops it at its end.
func StartRedis(tb testing.TB) *Redis {
	tb.Helper()
	return startRedis(tb, false)
}

// StartRedisAOF is StartRedis with the append-only file on, synced at
// every write: a Kill loses nothing Redis acknowledged.
func StartRedisAOF(tb testing.TB) *Redis {
	tb.Helper()
	return startRedis(tb, true)
}

func startRedis(tb testing.TB, aof bool) *Redis {
	tb.Helper()
	bin := NeedRedis(tb)
	// A short directory of its own: a Unix socket path must fit in 108
	// bytes, which t.TempDir's names can exceed.
	dir, err := os.MkdirTemp("", "tandem-redis-")
	if err != nil {
		tb.Fatal(err)
	}
	r := &Redis{tb: tb, dir: dir, bin: bin, aof: aof}
	tb.Cleanup(func() {
		r.Stop()
		_ = os.RemoveAll(dir)
	})
	for attempt := 0; ; attempt++ {
		r.port = 20000 + rand.IntN(30000)
		err := r.start()
		if err == nil {
			return r
		}
		if !errors.Is(err, errPortTaken) || attempt == 20 {
			tb.Fatalf("start redis-server: %v", err)
		}
	}
}

func (r *Redis) start() error {
	conf := fmt.Sprintf(`bind 127.0.0.1
port %d
unixsocket %s
unixsocketperm 700
dir %s
dbfilename dump.rdb
save 3600 1
appendonly %s
appendfsync always
daemonize no
logfile ""
loglevel notice
`, r.port, r.Socket(), r.dir, map[bool]string{false: "no", true: "yes"}[r.aof])
	path := filepath.Join(r.dir, "redis.conf")
	if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
		return err
	}
	cmd := exec.Command(r.bin, path)
	c := goredis.NewClient(&goredis.Options{Network: "unix", Addr: r.Socket(), MaxRetries: -1, DialTimeout: time.Second})
	defer c.Close()
	proc, err := startChild(cmd, 30*time.Second, 10*time.Millisecond, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		return c.Ping(ctx).Err()
	}, nil, "Address already in use")
	if err != nil {
		return err
	}
	r.proc.set(proc)
	return nil
}

func (r *Redis) log() string { return r.proc.log() }

// Socket is the path of the server's Unix socket.
func (r *Redis) Socket() string { return filepath.Join(r.dir, "redis.sock") }

// URL is the server's Unix socket as a SESSION_STORE value, database db.
// It stays valid across Stop and Start.
func (r *Redis) URL(db int) string { return "unix://" + r.Socket() + "?db=" + strconv.Itoa(db) }

// TCPURL is the server's redis://127.0.0.1:port/db URL.
func (r *Redis) TCPURL(db int) string {
	return "redis://" + net.JoinHostPort("127.0.0.1", strconv.Itoa(r.port)) + "/" + strconv.Itoa(db)
}

// Addr is the server's TCP address.
func (r *Redis) Addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(r.port)) }

// Client returns a client of database db, closed at the end of the test.
func (r *Redis) Client(db int) *goredis.Client {
	c := goredis.NewClient(&goredis.Options{Network: "unix", Addr: r.Socket(), DB: db})
	r.tb.Cleanup(func() { _ = c.Close() })
	return c
}

// Stop shuts the server down (SIGTERM: it saves its data first, so Start
// brings the same sessions back) and waits until it exited. Stopping a
// stopped server does nothing.
func (r *Redis) Stop() {
	if c := r.proc.take(); c != nil {
		c.stop(syscall.SIGTERM, 20*time.Second)
	}
}

// Kill kills the server (SIGKILL: it saves nothing; with StartRedisAOF
// its append-only file has every write it acknowledged) and waits until
// it exited.
func (r *Redis) Kill() {
	if c := r.proc.take(); c != nil {
		c.kill()
	}
}

// Start starts a stopped server again at the same addresses, with the data
// it had.
func (r *Redis) Start() {
	r.tb.Helper()
	if err := r.start(); err != nil {
		r.tb.Fatalf("restart redis-server: %v", err)
	}
}
