//go:build unix

package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"time"
)

const (
	// debounce is the quiet time after a file event before a rebuild, so
	// that an editor's burst of writes (or a git checkout) is one rebuild.
	debounce = 200 * time.Millisecond
	// stopTimeout bounds the server's graceful shutdown (it allows itself
	// 10 s) before the group is killed.
	stopTimeout = 15 * time.Second
)

// runner builds and supervises one server process. Only run's goroutine
// touches its fields, except kill (from the signal handler), which takes mu.
type runner struct {
	dir         string // repository root
	stdout, out io.Writer
	serverBin   string // bin/tandem, relative to dir

	mu  sync.Mutex
	srv *process // nil when no server runs
}

func newRunner(dir string, stdout, stderr io.Writer) *runner {
	return &runner{dir: dir, stdout: stdout, out: stderr, serverBin: filepath.Join("bin", "tandem")}
}

func (r *runner) say(format string, args ...any) {
	fmt.Fprintf(r.out, "devrun: "+format+"\n", args...)
}

// run builds and starts the server, then rebuilds and restarts it on
// changes until ctx ends; then it stops the server and returns nil.
func (r *runner) run(ctx context.Context) error {
	w, err := newWatcher(r.dir, func(err error) { r.say("watch: %v", err) })
	if err != nil {
		return err
	}
	defer w.close()
	r.say("watching %s; Ctrl-C stops", watchedDescription)
	defer r.stopServer()

	r.rebuild(ctx, changeServer) // the page was built by task before devrun

	var (
		pending change
		timer   = time.NewTimer(time.Hour)
	)
	timer.Stop()
	for {
		var exited <-chan struct{}
		if p := r.current(); p != nil {
			exited = p.done
		}
		select {
		case <-ctx.Done():
			return nil
		case c := <-w.changes:
			pending = max(pending, c)
			timer.Reset(debounce)
		case <-timer.C:
			c := pending
			pending = changeNone
			r.rebuild(ctx, c)
		case <-exited:
			p := r.current()
			r.setCurrent(nil)
			r.say("the server (pid %d) exited: %v; it restarts on the next change", p.cmd.Process.Pid, p.err)
		}
	}
}

// rebuild builds what c needs and, when every build succeeded, replaces
// the running server with a new one. A failed build keeps the old server.
func (r *runner) rebuild(ctx context.Context, c change) {
	if c >= changeWasm {
		r.say("rebuilding the page (WebAssembly)")
		if !r.build(ctx, "go", "tool", "task", "build:wasm") {
			return
		}
	}
	if c >= changeServer {
		r.say("building the server")
		if !r.build(ctx, "go", "build", "-o", r.serverBin, "./server/cmd/tandem") {
			return
		}
	}
	if ctx.Err() != nil {
		return
	}
	r.stopServer()
	r.startServer()
}

// build runs one build command in its own process group, killed as a group
// when ctx ends, with its output (the compiler's errors) on ours.
func (r *runner) build(ctx context.Context, name string, args ...string) bool {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = r.dir
	cmd.Stdout, cmd.Stderr = r.stdout, r.out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return killGroup(cmd.Process.Pid, syscall.SIGKILL) }
	err := cmd.Run()
	if err == nil {
		return true
	}
	if ctx.Err() != nil {
		return false // stopping
	}
	what := "no server is running"
	if p := r.current(); p != nil {
		what = fmt.Sprintf("the previous server (pid %d) keeps running", p.cmd.Process.Pid)
	}
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		r.say("build failed (the errors are above); %s; save a fix to rebuild", what)
	} else {
		r.say("build failed: %v; %s; save a fix to rebuild", err, what)
	}
	return false
}

// process is one server process, leader of its own process group.
type process struct {
	cmd  *exec.Cmd
	done chan struct{} // closed once it exited and was reaped
	err  error         // its exit status, set before done is closed
}

func (r *runner) current() *process {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.srv
}

func (r *runner) setCurrent(p *process) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.srv = p
}

func (r *runner) startServer() {
	cmd := exec.Command(r.serverBin)
	cmd.Dir = r.dir
	cmd.Stdout, cmd.Stderr = r.stdout, r.out
	// Its own group: a restart signals the group, and Ctrl-C in the
	// terminal reaches devrun only, which then stops the server in order.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		r.say("cannot start the server: %v", err)
		return
	}
	p := &process{cmd: cmd, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		if p.err == nil {
			p.err = errors.New("exit status 0")
		}
		// Whatever the server started dies with it.
		_ = killGroup(cmd.Process.Pid, syscall.SIGKILL)
		close(p.done)
	}()
	r.setCurrent(p)
	r.say("server started (pid %d)", cmd.Process.Pid)
}

// stopServer stops the running server, if any: SIGINT to its group (a
// graceful shutdown), SIGKILL after stopTimeout; it returns once the server
// exited, so that its ports are free.
func (r *runner) stopServer() {
	p := r.current()
	if p == nil {
		return
	}
	pid := p.cmd.Process.Pid
	_ = killGroup(pid, syscall.SIGINT)
	select {
	case <-p.done:
	case <-time.After(stopTimeout):
		r.say("the server (pid %d) did not stop within %v; killing it", pid, stopTimeout)
		_ = killGroup(pid, syscall.SIGKILL)
		<-p.done
	}
	r.setCurrent(nil)
	r.say("server stopped (pid %d)", pid)
}

// kill kills the server's group at once (on a second Ctrl-C).
func (r *runner) kill() {
	if p := r.current(); p != nil {
		_ = killGroup(p.cmd.Process.Pid, syscall.SIGKILL)
	}
}

func killGroup(pgid int, sig syscall.Signal) error {
	err := syscall.Kill(-pgid, sig)
	if errors.Is(err, syscall.ESRCH) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("signal %v to process group %d: %w", sig, pgid, err)
	}
	return nil
}
