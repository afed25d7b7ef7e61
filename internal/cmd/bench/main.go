// Command bench loads a tandem server (or any server with its contract, such
// as the Node recipe in ../shared/bench) and prints one JSON line: POST /incr
// requests per second and latency, "current count" delivery latency to every
// WebSocket socket of the session and missed deliveries, connected sockets,
// and the server's RSS per socket and CPU per request. See package
// internal/bench for the method, which is bench.mjs's.
//
//	go tool task bench -- -sockets 1000 -rate 1000          # starts its own server
//	go run ./internal/cmd/bench -url http://127.0.0.1:3000 -pid PID -sockets 1000 -rate 1000
//
// Without -url it starts a tandem server in a child process (itself, in its
// hidden "serve" mode: server.New with the memory store, exactly what
// server/cmd/tandem composes, on 127.0.0.1:0), with the per-address session
// creation bound lifted, and measures that process. With -profile DIR it also
// serves net/http/pprof in the child and saves a heap profile once the
// sockets are connected (heap.pprof) and a CPU profile of the load phase
// (cpu.pprof).
//
// All the load comes from one address, so a server started separately needs
// SESSION_CREATE_BURST (at least sockets/per-session + a few),
// SESSION_CREATE_RATE, SESSION_CREATE_GLOBAL_RATE (or off) and
// MAX_CONNS_PER_CLIENT (at least sockets + 100), SOCKETS_PER_CLIENT and
// ENGINE_CONNS_PER_CLIENT (off)
// lifted, or the set-up fails with 429.
package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"strconv"
	"syscall"
	"time"

	"github.com/tandem-go/tandem/internal/bench"
	"github.com/tandem-go/tandem/server"
	"github.com/tandem-go/tandem/server/sessionio"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "serve" {
		os.Exit(serve(os.Args[2:]))
	}
	os.Exit(run(os.Args[1:], os.Stdout))
}

// run loads a server and writes the result's JSON line to stdout.
func run(args []string, stdout io.Writer) int {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	var cfg bench.Config
	fs.StringVar(&cfg.URL, "url", "", "server to load, http://127.0.0.1:PORT (default: start one)")
	fs.IntVar(&cfg.PID, "pid", 0, "the server's process id, for RSS and CPU (with -url)")
	fs.IntVar(&cfg.Sockets, "sockets", 100, "WebSocket sockets to open")
	fs.IntVar(&cfg.PerSession, "per-session", 10, "sockets per session")
	fs.DurationVar(&cfg.Duration, "duration", 10*time.Second, "load phase")
	fs.Float64Var(&cfg.Rate, "rate", 0, "open loop: POST /incr per second (0: closed loop)")
	fs.IntVar(&cfg.Concurrency, "concurrency", 32, "closed loop: workers")
	fs.DurationVar(&cfg.Grace, "grace", 2*time.Second, "how long to wait for late deliveries")
	fs.IntVar(&cfg.ConnectConcurrency, "connect-concurrency", 50, "sockets connecting at once")
	store := fs.String("store", "memory", "store of the server it starts: memory or bolt")
	profile := fs.String("profile", "", "directory for heap.pprof and cpu.pprof of the server it starts")
	memRate := fs.Int("memprofilerate", 0, "with -profile: the server's runtime.MemProfileRate, e.g. 4096 for a finer heap profile (it costs CPU: not with a CPU profile you compare)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	cfg.Log = os.Stderr
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	if cfg.URL == "" {
		child, err := startServer(ctx, *store, *profile != "", *memRate)
		if err != nil {
			fmt.Fprintln(os.Stderr, "bench:", err)
			return 1
		}
		defer child.stop()
		cfg.URL, cfg.PID = child.URL, child.PID
		if *profile != "" {
			if err := os.MkdirAll(*profile, 0o755); err != nil {
				fmt.Fprintln(os.Stderr, "bench:", err)
				return 1
			}
			cfg.OnConnected = func(ctx context.Context) {
				save(ctx, child.Pprof+"/debug/pprof/heap?gc=1", filepath.Join(*profile, "heap.pprof"))
				save(ctx, child.Pprof+"/debug/pprof/goroutine?debug=1", filepath.Join(*profile, "goroutine.txt"))
				save(ctx, child.Pprof+"/debug/pprof/heap?debug=1", filepath.Join(*profile, "memstats.txt"))
			}
			secs := max(1, int(cfg.Duration.Seconds()))
			cfg.OnLoad = func(ctx context.Context) {
				save(ctx, child.Pprof+"/debug/pprof/profile?seconds="+strconv.Itoa(secs), filepath.Join(*profile, "cpu.pprof"))
			}
		}
	} else if *profile != "" {
		fmt.Fprintln(os.Stderr, "bench: -profile needs the server bench starts (no -url)")
		return 2
	}
	res, err := bench.Run(ctx, cfg)
	if res != nil {
		_ = json.NewEncoder(stdout).Encode(res)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		return 1
	}
	return 0
}

// save writes what url answers to path (bounded to two minutes).
func save(ctx context.Context, url, path string) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench: profile:", err)
		return
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench: profile:", err)
		return
	}
	defer resp.Body.Close()
	f, err := os.Create(path)
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench: profile:", err)
		return
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		fmt.Fprintln(os.Stderr, "bench: profile:", err)
	}
	if err := f.Close(); err == nil {
		fmt.Fprintln(os.Stderr, "[bench] wrote", path)
	}
}

// ready is the line the serve mode prints once it listens.
type ready struct {
	URL   string `json:"url"`
	Pprof string `json:"pprof,omitempty"`
}

type child struct {
	ready
	PID   int
	cmd   *exec.Cmd
	stdin io.WriteCloser
}

// startServer runs this program's serve mode and waits (at most 30 s) for
// its address.
func startServer(ctx context.Context, store string, withPprof bool, memRate int) (*child, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	args := []string{"serve", "-store", store}
	if withPprof {
		args = append(args, "-pprof", "-memprofilerate", strconv.Itoa(memRate))
	}
	cmd := exec.Command(self, args...)
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe() // the child stops when this closes
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	c := &child{PID: cmd.Process.Pid, cmd: cmd, stdin: stdin}
	line := make(chan error, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		if !sc.Scan() {
			line <- fmt.Errorf("the server exited before listening: %v", sc.Err())
			return
		}
		line <- json.Unmarshal(sc.Bytes(), &c.ready)
		_, _ = io.Copy(io.Discard, stdout)
	}()
	select {
	case err = <-line:
	case <-time.After(30 * time.Second):
		err = errors.New("the server did not listen within 30s")
	case <-ctx.Done():
		err = ctx.Err()
	}
	if err != nil {
		c.stop()
		return nil, err
	}
	return c, nil
}

// stop closes the child's stdin (its signal to shut down) and waits at most
// 15 s before killing it.
func (c *child) stop() {
	_ = c.stdin.Close()
	done := make(chan struct{})
	go func() { _ = c.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(15 * time.Second):
		_ = c.cmd.Process.Kill()
		<-done
	}
}

// serve runs a tandem server for the benchmark until its stdin closes or a
// signal comes.
func serve(args []string) int {
	fs := flag.NewFlagSet("bench serve", flag.ContinueOnError)
	storeKind := fs.String("store", "memory", "memory or bolt")
	withPprof := fs.Bool("pprof", false, "also serve net/http/pprof on 127.0.0.1:0")
	memRate := fs.Int("memprofilerate", 0, "runtime.MemProfileRate (0: Go's default)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *memRate > 0 {
		runtime.MemProfileRate = *memRate
	}
	dir, err := os.MkdirTemp("", "tandem-bench-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench serve:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	st := "memory"
	switch *storeKind {
	case "memory":
	case "bolt":
		st = "bolt:" + filepath.Join(dir, "sessions.db")
	default:
		fmt.Fprintf(os.Stderr, "bench serve: -store %q: want memory or bolt\n", *storeKind)
		return 2
	}
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	srv, err := server.New(server.Config{
		Addr:                    "127.0.0.1:0",
		Store:                   st,
		DataDir:                 dir,
		SessionSecrets:          []string{hex.EncodeToString(key)},
		SessionCreateBurst:      1_000_000, // all the load comes from one address
		SessionCreateRate:       1_000_000,
		SessionCreateGlobalRate: 1_000_000,
		MaxConnsPerClient:       1_000_000,
		SocketsPerClient:        sessionio.Off,
		EngineConnsPerClient:    sessionio.Off,
		AdminAddr:               "127.0.0.1:0",                 // metrics on, as in production
		WebDir:                  filepath.Join(dir, "no-page"), // the API only
		Logger:                  slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError})),
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench serve:", err)
		return 1
	}
	if err := srv.Start(); err != nil {
		fmt.Fprintln(os.Stderr, "bench serve:", err)
		return 1
	}
	r := ready{URL: srv.URL()}
	if *withPprof {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			fmt.Fprintln(os.Stderr, "bench serve:", err)
			return 1
		}
		mux := http.NewServeMux()
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		ps := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
		go func() { _ = ps.Serve(ln) }()
		defer ps.Close()
		r.Pprof = "http://" + ln.Addr().String()
	}
	if err := json.NewEncoder(os.Stdout).Encode(r); err != nil {
		return 1
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() { _, _ = io.Copy(io.Discard, os.Stdin); stop() }()
	<-ctx.Done()
	cctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Close(cctx); err != nil {
		fmt.Fprintln(os.Stderr, "bench serve:", err)
		return 1
	}
	return 0
}
