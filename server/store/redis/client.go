package redis

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	goredis "github.com/redis/go-redis/v9"
)

// Kind is the Redis deployment a URL names.
type Kind int

// The three deployments NewClient connects to.
const (
	Single   Kind = iota // one server: redis://, rediss://, unix://
	Sentinel             // a master found through Sentinel: redis+sentinel://, rediss+sentinel://
	Cluster              // Redis Cluster: redis+cluster://, rediss+cluster://
)

func (k Kind) String() string {
	return [...]string{"single", "sentinel", "cluster"}[k]
}

// IsURL reports whether s names a Redis deployment in one of the forms
// NewClient takes (not whether it is valid).
func IsURL(s string) bool {
	for _, p := range []string{"redis://", "rediss://", "unix://", "redis+sentinel://", "rediss+sentinel://", "redis+cluster://", "rediss+cluster://"} {
		if strings.HasPrefix(s, p) {
			return true
		}
	}
	return false
}

// KindOf is the deployment url names.
func KindOf(url string) Kind {
	switch {
	case strings.HasPrefix(url, "redis+sentinel://"), strings.HasPrefix(url, "rediss+sentinel://"):
		return Sentinel
	case strings.HasPrefix(url, "redis+cluster://"), strings.HasPrefix(url, "rediss+cluster://"):
		return Cluster
	}
	return Single
}

// Check parses url as Open would, without connecting.
func Check(url string) error {
	url, _, err := WaitReplicas(url)
	if err != nil {
		return err
	}
	_, err = parse(url)
	return err
}

// NewClient returns a client of the deployment url names, with tandem's
// timeouts (see ParseURL):
//
//   - one server: redis://[:password@]host:port/db, rediss:// for TLS, or
//     unix:///path/redis.sock?db=N;
//   - Sentinel: redis+sentinel://[:password@]sentinel1:26379/db?master_name=NAME&addr=sentinel2:26379&addr=sentinel3:26379
//     (rediss+sentinel:// for TLS); the password is the master's and the
//     sentinels';
//   - Cluster: redis+cluster://[:password@]seed1:7000?addr=seed2:7000&addr=seed3:7000
//     (rediss+cluster:// for TLS); database 0 only.
//
// go-redis's query options (dial_timeout=3s, …) work in every form. hooks
// are added to the client of every connection, each node's on Cluster, so
// their DialHook sees every connection dialed.
//
// On Cluster a PUBLISH goes to the master of its channel's slot (see
// publishBySlot), so that the messages of one channel reach every
// subscriber in the order they were published, and a failed dial or
// command makes the client read the slot map again (see reloadOnFailure),
// so that it follows a failover at once.
func NewClient(url string, hooks ...goredis.Hook) (goredis.UniversalClient, Kind, error) {
	o, err := parse(url)
	if err != nil {
		return nil, 0, err
	}
	var c goredis.UniversalClient
	switch o := o.(type) {
	case *goredis.Options:
		c = goredis.NewClient(o)
	case *goredis.FailoverOptions:
		c = goredis.NewFailoverClient(o)
	case *goredis.ClusterOptions:
		cc := goredis.NewClusterClient(o)
		cc.AddHook(publishBySlot{})
		reload := reloadOnFailure{cc}
		cc.AddHook(reload)
		cc.OnNewNode(func(n *goredis.Client) {
			n.AddHook(reload)
			for _, h := range hooks {
				n.AddHook(h)
			}
		})
		return cc, Cluster, nil
	}
	for _, h := range hooks {
		c.AddHook(h)
	}
	return c, KindOf(url), nil
}

// parse returns the go-redis options of url: *Options, *FailoverOptions
// or *ClusterOptions.
func parse(url string) (any, error) {
	switch KindOf(url) {
	case Sentinel:
		o, err := goredis.ParseFailoverURL(strings.Replace(url, "+sentinel://", "://", 1))
		if err != nil {
			return nil, fmt.Errorf("redis store: %w", err)
		}
		if o.MasterName == "" {
			return nil, fmt.Errorf("redis store: a Sentinel URL needs master_name=NAME")
		}
		o.Username, o.Password = o.SentinelUsername, o.SentinelPassword
		timeouts(url, &o.DialTimeout, &o.ReadTimeout, &o.WriteTimeout, &o.PoolTimeout, &o.MaxRetries)
		return o, nil
	case Cluster:
		o, err := goredis.ParseClusterURL(strings.Replace(url, "+cluster://", "://", 1))
		if err != nil {
			return nil, fmt.Errorf("redis store: %w", err)
		}
		timeouts(url, &o.DialTimeout, &o.ReadTimeout, &o.WriteTimeout, &o.PoolTimeout, &o.MaxRetries)
		return o, nil
	}
	return ParseURL(url)
}

// WaitReplicas takes tandem's own wait_replicas=N out of url's query and
// returns it (default 1 for Sentinel, 0 otherwise).
func WaitReplicas(url string) (string, int, error) {
	n := 0
	if KindOf(url) == Sentinel {
		n = 1
	}
	base, query, ok := strings.Cut(url, "?")
	if !ok {
		return url, n, nil
	}
	var keep []string
	for _, kv := range strings.Split(query, "&") {
		v, found := strings.CutPrefix(kv, "wait_replicas=")
		if !found {
			keep = append(keep, kv)
			continue
		}
		w, err := strconv.Atoi(v)
		if err != nil || w < 0 || w > 16 {
			return "", 0, fmt.Errorf("redis store: wait_replicas=%q: want a number of replicas, 0 to 16", v)
		}
		n = w
	}
	if len(keep) == 0 {
		return base, n, nil
	}
	return base + "?" + strings.Join(keep, "&"), n, nil
}

// timeouts sets tandem's defaults for the settings url does not give.
func timeouts(url string, dial, read, write, pool *time.Duration, retries *int) {
	for _, d := range []struct {
		name string
		v    *time.Duration
		def  time.Duration
	}{{"dial_timeout=", dial, time.Second}, {"read_timeout=", read, 2 * time.Second}, {"write_timeout=", write, 2 * time.Second}, {"pool_timeout=", pool, 2 * time.Second}} {
		if !strings.Contains(url, d.name) {
			*d.v = d.def
		}
	}
	if !strings.Contains(url, "max_retries=") {
		*retries = 1
	}
}

// publishBySlot routes a Cluster client's PUBLISH by its channel, as
// go-redis routes a command by its first key. PUBLISH has no key, so
// go-redis sends each one to the next master in turn (its default
// RoundRobinPicker); a master delivers a PUBLISH to its own subscribers at
// once and to the other masters' over the cluster bus, so two messages of
// one channel published on two masters reached a subscriber in either
// order (585 of 600 out of place in TestClusterPublishKeepsOrderPerChannel
// without this). Sent to one master per channel, they keep their order:
// that master runs them in order, and the bus is one ordered link to each
// other master. (Every SUBSCRIBE of a channel goes to its slot's master
// too, go-redis's choice for the first channel of a subscription.)
type publishBySlot struct{}

func (publishBySlot) DialHook(next goredis.DialHook) goredis.DialHook { return next }

func (publishBySlot) ProcessHook(next goredis.ProcessHook) goredis.ProcessHook {
	return func(ctx context.Context, cmd goredis.Cmder) error {
		routeBySlot(cmd)
		return next(ctx, cmd)
	}
}

func (publishBySlot) ProcessPipelineHook(next goredis.ProcessPipelineHook) goredis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []goredis.Cmder) error {
		for _, cmd := range cmds {
			routeBySlot(cmd)
		}
		return next(ctx, cmds)
	}
}

// routeBySlot makes a PUBLISH's channel (its first argument) the key it is
// routed by.
func routeBySlot(cmd goredis.Cmder) {
	if cmd.Name() == "publish" {
		cmd.SetFirstKeyPos(1)
	}
}

// reloadOnFailure makes a Cluster client read the cluster's slot map
// again (ClusterClient.ReloadState: in the background, at most one read at
// a time and one per 200 ms) when a dial fails or a command fails with
// anything but a reply of Redis. go-redis reads it again by itself only on
// a MOVED or READONLY reply, which a dead master never sends, or when the
// map is older than ClusterStateReloadInterval (60 s): after a master died
// and its replica took over, commands, PUBLISHes and subscription
// connections of its slots went to the dead address for up to a minute.
// Without this, in server.TestClusterFailoverOnRedisCluster, all 20
// relay PUBLISHes made after the failover failed (0 with it), and with
// the periodic check at 30 s sockets on both nodes missed relayed counts
// for good (3 runs of 3) while increments crawled (55-64 acknowledged
// against 249-626). A map read from a node that does not know of the
// failover yet is replaced at the next failure.
type reloadOnFailure struct{ c *goredis.ClusterClient }

func (r reloadOnFailure) DialHook(next goredis.DialHook) goredis.DialHook {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		conn, err := next(ctx, network, addr)
		if err != nil {
			r.c.ReloadState(ctx)
		}
		return conn, err
	}
}

func (r reloadOnFailure) ProcessHook(next goredis.ProcessHook) goredis.ProcessHook {
	return func(ctx context.Context, cmd goredis.Cmder) error {
		err := next(ctx, cmd)
		r.check(ctx, err)
		return err
	}
}

func (r reloadOnFailure) ProcessPipelineHook(next goredis.ProcessPipelineHook) goredis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []goredis.Cmder) error {
		err := next(ctx, cmds)
		r.check(ctx, err)
		return err
	}
}

// check asks for a new map after a failure that is not a reply of Redis
// (a refused or broken connection, a timeout).
func (r reloadOnFailure) check(ctx context.Context, err error) {
	var reply goredis.Error
	if err != nil && !errors.As(err, &reply) {
		r.c.ReloadState(ctx)
	}
}
