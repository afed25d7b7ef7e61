package tandemtest

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"time"
)

var errPortTaken = errors.New("port taken")

// child is a server process a helper started (redis-server, a sentinel,
// nginx, Prometheus): its output kept, its exit seen.
type child struct {
	cmd   *exec.Cmd
	done  chan struct{} // closed when the process has exited
	out   Buffer        // its stdout and stderr
	extra func() string // more of its log (a file it writes), or nil
}

// startChild starts cmd and waits until ready returns nil. None of these
// servers tells when it is ready, so ready is asked every `every`, for at
// most timeout; the process's exit ends the wait at once. An exit is
// errPortTaken when the log holds one of taken (then the caller tries
// another port), else an error with the log. At the timeout the process
// is killed.
func startChild(cmd *exec.Cmd, timeout, every time.Duration, ready func() error, extra func() string, taken ...string) (*child, error) {
	c := &child{cmd: cmd, done: make(chan struct{}), extra: extra}
	cmd.Stdout, cmd.Stderr = &c.out, &c.out
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	go func() { _ = cmd.Wait(); close(c.done) }()
	name := cmd.Path[strings.LastIndexByte(cmd.Path, '/')+1:]
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		err := ready()
		if err == nil {
			return c, nil
		}
		select {
		case <-c.done:
			log := c.log()
			for _, t := range taken {
				if strings.Contains(log, t) {
					return nil, errPortTaken
				}
			}
			return nil, fmt.Errorf("%s exited: %s", name, log)
		case <-deadline.C:
			c.kill()
			return nil, fmt.Errorf("%s not ready after %v: %v; log: %s", name, timeout, err, c.log())
		case <-tick.C:
		}
	}
}

// log is what the process wrote so far.
func (c *child) log() string {
	if c.extra != nil {
		return c.out.String() + c.extra()
	}
	return c.out.String()
}

// kill kills the process (SIGKILL) and waits until it exited.
func (c *child) kill() {
	_ = c.cmd.Process.Kill()
	<-c.done
}

// stop asks the process to stop with sig and waits until it exited,
// killing it if it has not within grace.
func (c *child) stop(sig os.Signal, grace time.Duration) {
	_ = c.cmd.Process.Signal(sig)
	t := time.NewTimer(grace)
	defer t.Stop()
	select {
	case <-c.done:
	case <-t.C:
		c.kill()
	}
}

// childSlot holds the running process of a server a test may stop and
// start again (Redis, RedisProc).
type childSlot struct {
	mu sync.Mutex
	c  *child // nil: stopped
	// last is the latest process, also once stopped, for its log.
	last *child
}

func (s *childSlot) set(c *child) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.c, s.last = c, c
}

// alive reports whether the server runs (it was started and not taken).
func (s *childSlot) alive() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.c != nil
}

// take returns the running process, if any, and marks the server stopped.
func (s *childSlot) take() *child {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.c
	s.c = nil
	return c
}

func (s *childSlot) log() string {
	s.mu.Lock()
	c := s.last
	s.mu.Unlock()
	if c == nil {
		return ""
	}
	return c.log()
}
