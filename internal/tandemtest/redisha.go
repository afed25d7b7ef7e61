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
	"strings"
	"sync"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"
)

// Redis Cluster and Sentinel on loopback, for the high-availability tests.
// Their processes listen on TCP ports picked at random in 24000-24499 (a
// cluster node's bus port is its port + 500); a process that cannot bind
// its port is started again on another, so no port is assumed free.

// RedisProc is one redis-server or redis-sentinel process of a test.
type RedisProc struct {
	tb   testing.TB
	bin  string
	args []string
	dir  string
	Port int
	conf func(port int) string

	proc childSlot

	clientMu sync.Mutex
	client   *goredis.Client // see Client
}

// Addr is the process's 127.0.0.1:port.
func (p *RedisProc) Addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(p.Port)) }

// Client is the process's client, made at the first call (the polls of
// WaitFailover and describe share it) and closed at the end of the test.
func (p *RedisProc) Client() *goredis.Client {
	p.clientMu.Lock()
	defer p.clientMu.Unlock()
	if p.client == nil {
		c := goredis.NewClient(&goredis.Options{Addr: p.Addr(), DialTimeout: time.Second, MaxRetries: -1})
		p.tb.Cleanup(func() { _ = c.Close() })
		p.client = c
	}
	return p.client
}

func (p *RedisProc) log() string { return p.proc.log() }

// Kill kills the process (SIGKILL) and waits until it exited.
func (p *RedisProc) Kill() {
	if c := p.proc.take(); c != nil {
		c.kill()
	}
}

// Start starts a killed process again on its port, with the same
// configuration.
func (p *RedisProc) Start() {
	p.tb.Helper()
	if err := p.start(); err != nil {
		p.tb.Fatalf("restart %s: %v", filepath.Base(p.bin), err)
	}
}

// StartAsReplicaOf starts a killed redis-server again on its port as a
// replica of addr (host:port), as an operator brings a failed master back
// after a failover, rather than as an empty master (its configuration has
// no persistence) that the sentinels convert later: in
// TestClusterSentinelFailover the first write confirmed by a replica then
// comes 2.3-7.3 s after the kill instead of up to 17.5 s.
func (p *RedisProc) StartAsReplicaOf(addr string) {
	p.tb.Helper()
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		p.tb.Fatalf("replica of %q: %v", addr, err)
	}
	conf := p.conf
	p.conf = func(myPort int) string { return conf(myPort) + "replicaof " + host + " " + port + "\n" }
	defer func() { p.conf = conf }()
	p.Start()
}

// startProc starts bin with the configuration conf(port) in a directory of
// its own, on a random free port, and waits until it answers PING.
func startProc(tb testing.TB, bin string, conf func(port int) string, args ...string) *RedisProc {
	tb.Helper()
	dir, err := os.MkdirTemp("", "tandem-redisha-")
	if err != nil {
		tb.Fatal(err)
	}
	p := &RedisProc{tb: tb, bin: bin, args: args, dir: dir, conf: conf}
	tb.Cleanup(func() {
		p.Kill()
		_ = os.RemoveAll(dir)
	})
	for attempt := 0; ; attempt++ {
		p.Port = 24000 + rand.IntN(500)
		err := p.start()
		if err == nil {
			return p
		}
		if !errors.Is(err, errPortTaken) || attempt == 30 {
			tb.Fatalf("start %s: %v", filepath.Base(bin), err)
		}
	}
}

func (p *RedisProc) start() error {
	path := filepath.Join(p.dir, "redis.conf")
	if err := os.WriteFile(path, []byte(p.conf(p.Port)), 0o600); err != nil {
		return err
	}
	cmd := exec.Command(p.bin, append([]string{path}, p.args...)...)
	cmd.Dir = p.dir
	c := goredis.NewClient(&goredis.Options{Addr: p.Addr(), MaxRetries: -1, DialTimeout: time.Second})
	defer c.Close()
	// Ready once the process on the port is this one: another test's
	// process may hold the port (tests of other packages use the same
	// range) and answer a PING before this one fails to bind it, which
	// happened in CI (redis-cli --cluster create: "is not configured as a
	// cluster node").
	proc, err := startChild(cmd, 30*time.Second, 10*time.Millisecond, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		info, err := c.Info(ctx, "server").Result()
		if err != nil {
			return err
		}
		if want := fmt.Sprintf("process_id:%d\r\n", cmd.Process.Pid); !strings.Contains(info, want) {
			return fmt.Errorf("port %d is another process's", p.Port)
		}
		return nil
	}, nil, "Address already in use", "Could not create server TCP listening socket")
	if err != nil {
		return err
	}
	p.proc.set(proc)
	return nil
}

// waitFor polls cond every 50 ms until it holds, or fails the test after
// timeout with what and what each of details then says.
func waitFor(tb testing.TB, timeout time.Duration, what string, cond func() bool, details ...func() string) {
	tb.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			var more strings.Builder
			for _, d := range details {
				more.WriteString("\n" + d())
			}
			tb.Fatalf("%s: not within %v%s", what, timeout, more.String())
		}
		time.Sleep(50 * time.Millisecond) // polling for the processes to agree
	}
}

// RedisCluster is a Redis Cluster: masters, each with the same number of
// replicas.
type RedisCluster struct {
	Nodes []*RedisProc
}

// StartRedisCluster starts masters×(1+replicas) cluster-enabled
// redis-servers, joins them with redis-cli --cluster create (each master
// with replicas replicas), and waits until every node sees the cluster
// whole and every replica is in sync with its master.
func StartRedisCluster(tb testing.TB, masters, replicas int) *RedisCluster {
	tb.Helper()
	bin := NeedRedis(tb)
	cli := needTool(tb, "redis-cli", "redis-tools")
	rc := &RedisCluster{}
	n := masters * (1 + replicas)
	var addrs []string
	for range n {
		p := startProc(tb, bin, func(port int) string {
			return fmt.Sprintf("bind 127.0.0.1\nport %d\ncluster-enabled yes\ncluster-port %d\ncluster-config-file nodes.conf\ncluster-node-timeout 2000\nappendonly no\nsave \"\"\nlogfile \"\"\n", port, port+500)
		})
		rc.Nodes = append(rc.Nodes, p)
		addrs = append(addrs, p.Addr())
	}
	out, err := exec.Command(cli, append(append([]string{"--cluster", "create"}, addrs...), "--cluster-replicas", strconv.Itoa(replicas), "--cluster-yes")...).CombinedOutput()
	if err != nil {
		tb.Fatalf("redis-cli --cluster create: %v\n%s", err, out)
	}
	for _, p := range rc.Nodes {
		c := p.Client()
		var info string
		waitFor(tb, 20*time.Second, "cluster_state:ok on "+p.Addr(), func() bool {
			info, _ = c.ClusterInfo(context.Background()).Result()
			if !strings.Contains(info, "cluster_state:ok") || !strings.Contains(info, "cluster_known_nodes:"+strconv.Itoa(n)) {
				return false
			}
			repl, _ := c.Info(context.Background(), "replication").Result()
			return strings.Contains(repl, "role:master") || strings.Contains(repl, "master_link_status:up")
		}, func() string { return "its last CLUSTER INFO:\n" + info }, rc.describe)
	}
	return rc
}

// MasterOf is the node that is now the master of key's hash slot (a
// channel's slot, for PUBLISH, is computed the same way), as the first
// live node that answers says.
func (rc *RedisCluster) MasterOf(tb testing.TB, key string) *RedisProc {
	tb.Helper()
	for _, p := range rc.Nodes {
		if m, err := rc.slotMaster(p, key); err == nil {
			return m
		}
	}
	tb.Fatalf("no node names the master of %q's slot\n%s", key, rc.describe())
	return nil
}

// slotMaster is the master of key's slot as the live node p sees it.
func (rc *RedisCluster) slotMaster(p *RedisProc, key string) (*RedisProc, error) {
	if !p.proc.alive() {
		return nil, errors.New("not running")
	}
	c := p.Client()
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	slot, err := c.ClusterKeySlot(ctx, key).Result()
	if err != nil {
		return nil, err
	}
	shards, err := c.ClusterSlots(ctx).Result()
	if err != nil {
		return nil, err
	}
	for _, sh := range shards {
		if int64(sh.Start) <= slot && slot <= int64(sh.End) && len(sh.Nodes) > 0 {
			for _, q := range rc.Nodes {
				if q.Addr() == sh.Nodes[0].Addr {
					return q, nil
				}
			}
		}
	}
	return nil, fmt.Errorf("no master of slot %d", slot)
}

// WaitFailover waits until every live node sees the cluster whole again
// (cluster_state:ok) with another node than dead as the master of key's
// slot, and returns that node.
func (rc *RedisCluster) WaitFailover(tb testing.TB, dead *RedisProc, key string, timeout time.Duration) *RedisProc {
	tb.Helper()
	var master *RedisProc
	waitFor(tb, timeout, "a replica promoted in place of "+dead.Addr(), func() bool {
		master = nil
		for _, p := range rc.Nodes {
			if p == dead || !p.proc.alive() {
				continue
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			info, _ := p.Client().ClusterInfo(ctx).Result()
			cancel()
			m, err := rc.slotMaster(p, key)
			if !strings.Contains(info, "cluster_state:ok") || err != nil || m == dead || master != nil && m != master {
				return false
			}
			master = m
		}
		return master != nil
	}, rc.describe)
	return master
}

// describe is each node's CLUSTER NODES and log, for a test's failure.
func (rc *RedisCluster) describe() string {
	var b strings.Builder
	for _, p := range rc.Nodes {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		nodes, err := p.Client().ClusterNodes(ctx).Result()
		cancel()
		fmt.Fprintf(&b, "--- node %s: CLUSTER NODES (%v):\n%s\nits log:\n%s\n", p.Addr(), err, nodes, p.log())
	}
	return b.String()
}

// URL is the cluster as a SESSION_STORE value.
func (rc *RedisCluster) URL() string {
	u := "redis+cluster://" + rc.Nodes[0].Addr()
	for i, p := range rc.Nodes[1:] {
		sep := "&"
		if i == 0 {
			sep = "?"
		}
		u += sep + "addr=" + p.Addr()
	}
	return u
}

// Client is a cluster client, closed at the end of the test.
func (rc *RedisCluster) Client(tb testing.TB) *goredis.ClusterClient {
	var addrs []string
	for _, p := range rc.Nodes {
		addrs = append(addrs, p.Addr())
	}
	c := goredis.NewClusterClient(&goredis.ClusterOptions{Addrs: addrs})
	tb.Cleanup(func() { _ = c.Close() })
	return c
}

// RedisSentinel is a master, a replica and three sentinels watching them
// as "mymaster" (quorum 2, a master is down after 1 s).
type RedisSentinel struct {
	Master, Replica *RedisProc
	Sentinels       []*RedisProc
}

// MasterName is the name the sentinels know the master by.
const MasterName = "mymaster"

// StartRedisSentinel starts the master, its replica and three sentinels,
// and waits until the sentinels know the replica and each other.
func StartRedisSentinel(tb testing.TB) *RedisSentinel {
	tb.Helper()
	bin := NeedRedis(tb)
	sbin := needTool(tb, "redis-sentinel", "redis-sentinel")
	rs := &RedisSentinel{}
	rs.Master = startProc(tb, bin, func(port int) string {
		return fmt.Sprintf("bind 127.0.0.1\nport %d\nappendonly no\nsave \"\"\nlogfile \"\"\n", port)
	})
	rs.Replica = startProc(tb, bin, func(port int) string {
		return fmt.Sprintf("bind 127.0.0.1\nport %d\nappendonly no\nsave \"\"\nlogfile \"\"\nreplicaof 127.0.0.1 %d\n", port, rs.Master.Port)
	})
	mc := rs.Master.Client()
	waitFor(tb, 20*time.Second, "the replica in sync", func() bool {
		info, _ := mc.Info(context.Background(), "replication").Result()
		return strings.Contains(info, "connected_slaves:1") && strings.Contains(info, "state=online")
	})
	for range 3 {
		rs.Sentinels = append(rs.Sentinels, startProc(tb, sbin, func(port int) string {
			return fmt.Sprintf("bind 127.0.0.1\nport %d\nlogfile \"\"\nsentinel monitor %s 127.0.0.1 %d 2\nsentinel down-after-milliseconds %s 1000\nsentinel failover-timeout %s 5000\nsentinel parallel-syncs %s 1\n",
				port, MasterName, rs.Master.Port, MasterName, MasterName, MasterName)
		}))
	}
	for _, s := range rs.Sentinels {
		c := s.Client()
		waitFor(tb, 30*time.Second, "sentinel "+s.Addr()+" knows the replica and the other sentinels", func() bool {
			m, err := c.Do(context.Background(), "SENTINEL", "MASTER", MasterName).Result()
			if err != nil {
				return false
			}
			f := strings.ReplaceAll(fmt.Sprint(m), ":", " ") // a map (RESP3) or a list
			return strings.Contains(f, "num-slaves 1") && strings.Contains(f, "num-other-sentinels 2")
		})
	}
	return rs
}

// URL is the deployment as a SESSION_STORE value.
func (rs *RedisSentinel) URL() string {
	return "redis+sentinel://" + rs.Sentinels[0].Addr() + "/0?master_name=" + MasterName +
		"&addr=" + rs.Sentinels[1].Addr() + "&addr=" + rs.Sentinels[2].Addr()
}

// WaitFailover waits until every sentinel names the same master, another
// than the killed one, and returns its address. (Bringing the old master
// back while a sentinel still names it can make the sentinels turn the
// promoted replica into its replica, which then drops its data.)
func (rs *RedisSentinel) WaitFailover(tb testing.TB, timeout time.Duration) string {
	tb.Helper()
	var addr string
	waitFor(tb, timeout, "every sentinel names the promoted replica", func() bool {
		addr = ""
		for _, s := range rs.Sentinels {
			a, err := s.Client().Do(context.Background(), "SENTINEL", "GET-MASTER-ADDR-BY-NAME", MasterName).StringSlice()
			if err != nil || len(a) != 2 {
				return false
			}
			got := net.JoinHostPort(a[0], a[1])
			if got == rs.Master.Addr() || addr != "" && got != addr {
				return false
			}
			addr = got
		}
		return true
	})
	return addr
}
