// Command tandem runs the tandem server: the Echo API, Socket.IO and the
// go-app page, sharing one session store.
//
// Every setting is an environment variable with a matching flag (the flag
// wins): PORT and -port, SESSION_STORE and -session-store, and so on; run
// with -h for the list. A bad setting stops the server at start-up with one
// line naming the variable and the fix. SIGINT or SIGTERM shut it down
// gracefully: stop accepting, close every socket, finish running requests,
// close the store.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/tandem-go/tandem/server"
	"github.com/tandem-go/tandem/server/sessionio"
)

func main() {
	os.Exit(run(os.Args[1:], os.Getenv, os.Stderr))
}

// setting is one configuration variable: its environment name, its flag,
// and how its text lands in the Config.
type setting struct {
	env, usage string
	apply      func(c *options, v string) error
}

// options is what run needs beyond server.Config.
type options struct {
	server.Config
	logLevel slog.Level
}

var settings = []setting{
	{"PORT", "API and same-origin page port (default 3000)", func(c *options, v string) error {
		p, err := port(v)
		c.Addr = ":" + p
		return err
	}},
	{"SPA_PORT", "also serve the page on this port, calling PUBLIC_URL cross-origin", func(c *options, v string) error {
		p, err := port(v)
		c.SPAAddr = ":" + p
		return err
	}},
	{"LISTEN_HOST", "host the PORT and SPA_PORT listeners bind to: an IP address or localhost (default every interface; 127.0.0.1 for loopback only)", func(c *options, v string) error {
		c.ListenHost = v
		return nil
	}},
	{"PUBLIC_URL", "API origin the cross-origin page calls (default http://localhost:$PORT)", func(c *options, v string) error {
		c.PublicURL = v
		return nil
	}},
	{"CORS_ORIGINS", "comma-separated origins allowed to call the API with credentials (default http://localhost:$SPA_PORT)", func(c *options, v string) error {
		c.CORSOrigins = list(v)
		return nil
	}},
	{"SESSION_STORE", "memory, bolt:PATH or redis://[:password@]host:port/db (rediss:// for TLS; default bolt:$DATA_DIR/sessions.db)", func(c *options, v string) error {
		c.Store = v
		return nil
	}},
	{"REDIS_PREFIX", "prefix of every Redis key and Socket.IO channel, so one Redis can serve several apps (default tandem:)", func(c *options, v string) error {
		c.RedisPrefix = v
		return nil
	}},
	{"DATA_DIR", "directory for the bolt file and the generated secret (default ./data)", func(c *options, v string) error {
		c.DataDir = v
		return nil
	}},
	{"SESSION_SECRET", "comma-separated cookie signing keys, first signs, all verify (default: generated, kept in $DATA_DIR); prefer the variable: a flag shows in the process list", func(c *options, v string) error {
		c.SessionSecrets = list(v)
		return nil
	}},
	{"SESSION_TTL", "idle lifetime of a session (default 24h)", func(c *options, v string) error {
		return duration(v, &c.SessionTTL)
	}},
	{"SESSION_MAX_AGE", "absolute lifetime of a session, from sign-in or creation, never extended (default 168h)", func(c *options, v string) error {
		return duration(v, &c.SessionMaxAge)
	}},
	{"SESSION_CHECK_INTERVAL", "how often each socket's session is checked (default 30s)", func(c *options, v string) error {
		return duration(v, &c.SessionCheckInterval)
	}},
	{"SESSION_CREATE_BURST", "sessions one client address may create at once (default 200)", func(c *options, v string) error {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return fmt.Errorf("%q is not a positive whole number", v)
		}
		c.SessionCreateBurst = n
		return nil
	}},
	{"SESSION_CREATE_RATE", "sessions per second one client address may create after the burst (default 2)", func(c *options, v string) error {
		f, err := positive(v)
		if err != nil {
			return err
		}
		c.SessionCreateRate = f
		return nil
	}},
	{"SOCKET_EVENT_BURST", "events one socket may send at once (default 200)", func(c *options, v string) error {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return fmt.Errorf("%q is not a positive whole number", v)
		}
		c.SocketEventBurst = n
		return nil
	}},
	{"SOCKET_EVENT_RATE", "events per second one socket may send after the burst (default 100)", func(c *options, v string) error {
		f, err := positive(v)
		if err != nil {
			return err
		}
		c.SocketEventRate = f
		return nil
	}},
	{"SOCKETS_PER_SESSION", "sockets one session may have open at once, or off (default 32)", func(c *options, v string) error {
		return socketCap(&c.SocketsPerSession, v)
	}},
	{"SOCKETS_PER_CLIENT", "sockets one client address may have open at once, or off (default 128)", func(c *options, v string) error {
		return socketCap(&c.SocketsPerClient, v)
	}},
	{"ENGINE_CONNS_PER_CLIENT", "Engine.IO connections one client address may have open at once, joined to a namespace or not, or off (default 128)", func(c *options, v string) error {
		return socketCap(&c.EngineConnsPerClient, v)
	}},
	{"SESSION_CREATE_GLOBAL_RATE", "sessions per second all clients together may create, or off (default 100; burst ten seconds' worth, at least 1000)", func(c *options, v string) error {
		if strings.EqualFold(v, "off") {
			c.SessionCreateGlobalRate = sessionio.Off
			return nil
		}
		f, err := positive(v)
		if err != nil {
			return fmt.Errorf("%w or off", err)
		}
		c.SessionCreateGlobalRate = f
		return nil
	}},
	{"COOKIE_SECURE", "force the cookie's Secure flag: true or false (default: on TLS requests)", func(c *options, v string) error {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return fmt.Errorf("%q is not true or false", v)
		}
		c.CookieSecure = b
		return nil
	}},
	{"COOKIE_SAMESITE", "lax, strict or none (default lax; none needs COOKIE_SECURE=true)", func(c *options, v string) error {
		c.CookieSameSite = v
		return nil
	}},
	{"MAX_SOCKET_PAYLOAD", "largest Socket.IO message in bytes (default 1000000)", func(c *options, v string) error {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 1 {
			return fmt.Errorf("%q is not a positive number of bytes", v)
		}
		c.MaxSocketPayload = n
		return nil
	}},
	{"BODY_READ_TIMEOUT", "time a client may take to send a request body (default 10s)", func(c *options, v string) error {
		return duration(v, &c.BodyReadTimeout)
	}},
	{"MAX_CONNS_PER_CLIENT", "connections one client address may hold open (default 512; trusted proxies are not bounded)", func(c *options, v string) error {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return fmt.Errorf("%q is not a positive whole number", v)
		}
		c.MaxConnsPerClient = n
		return nil
	}},
	{"TRUSTED_PROXIES", "comma-separated CIDRs of reverse proxies whose X-Forwarded-For names the client (default none: the TCP peer)", func(c *options, v string) error {
		c.TrustedProxies = list(v)
		return nil
	}},
	{"ADMIN_ADDR", "the operator's listener, host:port, for /metrics and /debug/pprof/ (default off; loopback only unless ADMIN_TOKEN is set)", func(c *options, v string) error {
		c.AdminAddr = v
		return nil
	}},
	{"ADMIN_TOKEN", "bearer token every request to ADMIN_ADDR must carry; lets ADMIN_ADDR be any address (at least 16 characters); prefer the variable: a flag shows in the process list", func(c *options, v string) error {
		c.AdminToken = v
		return nil
	}},
	{"WEB_DIR", "directory of the built client (default public/web)", func(c *options, v string) error {
		c.WebDir = v
		return nil
	}},
	{"LOG_LEVEL", "debug, info, warn or error (default info)", func(c *options, v string) error {
		if err := c.logLevel.UnmarshalText([]byte(v)); err != nil {
			return fmt.Errorf("%q is not debug, info, warn or error", v)
		}
		return nil
	}},
}

// flagName turns SESSION_TTL into session-ttl.
func flagName(env string) string { return strings.ReplaceAll(strings.ToLower(env), "_", "-") }

// parse reads the settings from args (flags) and getenv; a flag wins over
// its variable. Errors name the variable.
func parse(args []string, getenv func(string) string, out io.Writer) (*options, error) {
	fs := flag.NewFlagSet("tandem", flag.ContinueOnError)
	fs.SetOutput(out)
	values := make(map[string]*string, len(settings))
	for _, s := range settings {
		values[s.env] = fs.String(flagName(s.env), "", s.usage+" ["+s.env+"]")
	}
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q; settings are flags or environment variables (see -h)", fs.Arg(0))
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	o := &options{}
	for _, s := range settings {
		v := getenv(s.env)
		if set[flagName(s.env)] {
			v = *values[s.env]
		}
		if v = strings.TrimSpace(v); v == "" {
			continue
		}
		if err := s.apply(o, v); err != nil {
			return nil, &server.ConfigError{Var: s.env, Problem: err.Error()}
		}
	}
	return o, nil
}

func run(args []string, getenv func(string) string, stderr io.Writer) int {
	o, err := parse(args, getenv, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintln(stderr, "tandem:", err)
		return 2
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: o.logLevel}))
	o.Logger = log
	srv, err := server.New(o.Config)
	if err != nil {
		fmt.Fprintln(stderr, "tandem:", err)
		return 2
	}
	// Catch the signals before listening: a SIGTERM that arrives once the
	// server answers must drain it, not kill it.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := srv.Start(); err != nil {
		fmt.Fprintln(stderr, "tandem:", err)
		_ = srv.Close(context.Background())
		return 1
	}
	<-ctx.Done()
	stop() // a second signal kills at once
	log.Info("shutting down")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Close(ctx); err != nil {
		log.Error("shutdown", "err", err)
		return 1
	}
	log.Info("stopped")
	return 0
}

// positive parses a positive, finite number. NaN compares false with
// everything and Inf passes every bound: either would quietly turn a limit
// off.
func positive(v string) (float64, error) {
	f, err := strconv.ParseFloat(v, 64)
	if err != nil || !(f > 0) || math.IsInf(f, 0) {
		return 0, fmt.Errorf("%q is not a positive number", v)
	}
	return f, nil
}

func port(v string) (string, error) {
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 || n > 65535 {
		return "", fmt.Errorf("%q is not a port number (1-65535)", v)
	}
	return v, nil
}

func duration(v string, d *time.Duration) error {
	x, err := time.ParseDuration(v)
	if err != nil || x <= 0 {
		return fmt.Errorf("%q is not a positive duration such as 30s or 24h", v)
	}
	*d = x
	return nil
}

func list(v string) []string {
	var out []string
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

// socketCap parses a socket cap: a positive whole number, or off.
func socketCap(dst *int, v string) error {
	if strings.EqualFold(v, "off") {
		*dst = sessionio.Off
		return nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		return fmt.Errorf("%q is not a positive whole number, nor off", v)
	}
	*dst = n
	return nil
}
