package server_test

import (
	"net"
	"strings"
	"testing"

	goredis "github.com/redis/go-redis/v9"

	"github.com/tandem-go/tandem/internal/tandemtest"
	"github.com/tandem-go/tandem/server"
)

// redisACL is the Redis ACL user README.md documents for one deployment
// whose REDIS_PREFIX is prefix: its keys and channels only, and the
// commands tandem sends (keep the two in step).
func redisACL(user, password, prefix string) []any {
	args := []any{"ACL", "SETUSER", user, "reset", "on", ">" + password, "~" + prefix + "*", "&" + prefix + "*", "-@all"}
	for _, c := range strings.Fields(redisACLCommands) {
		args = append(args, "+"+c)
	}
	return args
}

// The commands of README.md's ACL line.
const redisACLCommands = "ping hello auth select evalsha eval type hmget hget hset hexists hincrby pexpire pexpireat pttl del zadd zrange zrem zcard wait publish subscribe psubscribe unsubscribe punsubscribe pubsub|numsub"

// Issue 13 item 7: two nodes that reach Redis as the documented ACL user
// (its prefix's keys and channels only) work: incr, cross-node delivery,
// logout. The same user cannot read another deployment's keys nor publish
// on its channels.
func TestClusterThroughRedisACLUser(t *testing.T) {
	rds := tandemtest.StartRedis(t)
	raw := rds.Client(0)
	if err := raw.Do(t.Context(), redisACL("app1", "app1-password", "app1:")...).Err(); err != nil {
		t.Fatalf("ACL SETUSER: %v", err)
	}
	host, port, _ := net.SplitHostPort(rds.Addr())
	url := "redis://app1:app1-password@" + net.JoinHostPort(host, port) + "/0"
	var nodes []*server.Server
	for range 2 {
		nodes = append(nodes, tandemtest.Start(t, server.Config{Store: url, RedisPrefix: "app1:"}))
	}
	drv := tandemtest.NewDriver(t)
	a := tandemtest.NewClient(t, nodes[0].URL())
	a.Incr()
	sock := drv.Dial(nodes[1].URL(), tandemtest.Options{Cookie: a.Cookie()})
	if got := a.Incr(); got != 2 {
		t.Fatalf("incr as the ACL user = %d", got)
	}
	if got := sock.Count(wait); got != 2 {
		t.Errorf("socket on node 2: count %d, want 2", got)
	}
	if got := sock.Incr(); got != 3 {
		t.Errorf("socket incr on node 2 = %d, want 3", got)
	}
	// The user's reach ends at its prefix.
	u := goredis.NewClient(&goredis.Options{Addr: rds.Addr(), Username: "app1", Password: "app1-password"})
	defer u.Close()
	if err := u.Set(t.Context(), "app2:session:x", "1", 0).Err(); err == nil || !strings.Contains(err.Error(), "NOPERM") {
		t.Errorf("SET of another prefix's key as the ACL user: %v, want NOPERM", err)
	}
	if err := u.Publish(t.Context(), "app2:socket.io-request#/#", "x").Err(); err == nil || !strings.Contains(err.Error(), "NOPERM") {
		t.Errorf("PUBLISH on another prefix's channel as the ACL user: %v, want NOPERM", err)
	}
}
