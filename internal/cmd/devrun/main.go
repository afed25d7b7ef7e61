//go:build unix

// Command devrun is what `go tool task dev` runs once the page and the
// socket.io client are built: it builds bin/tandem, starts it, and rebuilds
// and restarts it when a source changes, until Ctrl-C.
//
//   - A change under server/ rebuilds the server; under shared/ or webclient/
//     (or go.mod, go.sum) it rebuilds the WebAssembly page first
//     (`go tool task build:wasm`), then the server. A change of a committed
//     file in public/web (css, icons) restarts the server, which reads them
//     at start-up. Tests, build outputs, data/ and node_modules are ignored.
//   - The server runs as its own binary in its own process group. A restart
//     sends SIGINT to the group, waits for the server to exit (SIGKILL after
//     15 s), and only then starts the new one, so nothing is left behind and
//     the ports are free.
//   - A failed build prints the compiler's errors and keeps the previous
//     server running: the page stays usable while the error is fixed, and
//     the next save rebuilds. A server that exits on its own (a bad setting,
//     a port in use) is not restarted until the next change.
//   - SIGINT, SIGTERM or SIGHUP (Ctrl-C reaches it, and task forwards
//     nothing) stop the server gracefully and exit 0; a second one kills at
//     once. So does the death of the parent (task), so that a killed task
//     leaves no server behind.
//
// It is a small program of our own rather than task's watch mode, which
// cancels a running server on every file event and does not restart it, or
// a live-reload tool, which would add a dependency tree to go.mod for what
// fits in a few hundred lines on top of fsnotify.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"
)

func main() {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	r := newRunner(".", os.Stdout, os.Stderr)

	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	go func() {
		<-sigs
		cancel()
		<-sigs
		r.say("second signal: killing the server")
		r.kill()
		os.Exit(1)
	}()
	go exitWithParent(cancel)

	if err := r.run(ctx); err != nil {
		r.say("%v", err)
		os.Exit(1)
	}
}

// exitWithParent cancels when the process that started devrun is gone (task
// killed, say): devrun is then re-parented and nothing would stop it.
func exitWithParent(cancel context.CancelFunc) {
	parent := os.Getppid()
	t := time.NewTicker(500 * time.Millisecond)
	defer t.Stop()
	for range t.C {
		if os.Getppid() != parent {
			fmt.Fprintln(os.Stderr, "devrun: the parent process is gone; stopping")
			cancel()
			return
		}
	}
}
