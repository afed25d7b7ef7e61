//go:build unix

package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

func TestClassify(t *testing.T) {
	tests := []struct {
		name   string
		given  string
		expect change
	}{
		{name: "ok, server code", given: "server/web/web.go", expect: changeServer},
		{name: "ok, server command", given: "server/cmd/tandem/main.go", expect: changeServer},
		{name: "ok, shared code rebuilds the page", given: "shared/shared.go", expect: changeWasm},
		{name: "ok, page code rebuilds the page", given: "webclient/socketio/socketio.go", expect: changeWasm},
		{name: "ok, go.mod rebuilds everything", given: "go.mod", expect: changeWasm},
		{name: "ok, go.sum rebuilds everything", given: "go.sum", expect: changeWasm},
		{name: "ok, css restarts", given: "public/web/app.css", expect: changeRestart},
		{name: "ok, icon restarts", given: "public/web/icon.svg", expect: changeRestart},
		{name: "nok, a test", given: "server/server_test.go", expect: changeNone},
		{name: "nok, testdata", given: "webclient/testdata/x.go", expect: changeNone},
		{name: "nok, the built page", given: "public/web/app.wasm", expect: changeNone},
		{name: "nok, the compressed page", given: "public/web/app.wasm.br", expect: changeNone},
		{name: "nok, the socket.io client", given: "public/web/socket.io.min.js.map", expect: changeNone},
		{name: "nok, the server binary", given: "bin/tandem", expect: changeNone},
		{name: "nok, the session store", given: "data/sessions.db", expect: changeNone},
		{name: "nok, task's checksums", given: ".task/checksum/build-wasm", expect: changeNone},
		{name: "nok, an editor's swap file", given: "server/.server.go.swp", expect: changeNone},
		{name: "nok, an editor's backup", given: "server/server.go~", expect: changeNone},
		{name: "nok, not Go", given: "server/notes.txt", expect: changeNone},
		{name: "nok, the browser tests", given: "e2e/browser_test.go", expect: changeNone},
		{name: "nok, the test helpers", given: "internal/tandemtest/driver.go", expect: changeNone},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := classify(tt.given); got != tt.expect {
				t.Errorf("classify(%q) = %d, want %d", tt.given, got, tt.expect)
			}
		})
	}
}

// TestDevFromFreshClone is what a new user does: clone the repository, run
// the README's `go tool task dev`, use both listeners, edit a server file
// (first with a compile error, then a good change), press Ctrl-C; then run
// it again, and kill task. Nothing may be left running.
func TestDevFromFreshClone(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: skipping the fresh-clone `go tool task dev` test (npm ci and a WebAssembly build)")
	}
	for _, tool := range []string{"git", "go", "node", "npm"} {
		if _, err := exec.LookPath(tool); err != nil {
			msg := fmt.Sprintf("`go tool task dev` needs %s: %v", tool, err)
			if os.Getenv("CI") == "true" {
				t.Fatal(msg)
			}
			t.Skip(msg)
		}
	}
	// 60 s to 160 s on a shared 2-core machine at load averages of 8 to 26
	// (most of it the first run's npm ci, page and server builds); the
	// bound only stops a hang.
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	start := time.Now()
	phase := func(what string) { t.Logf("%5.1fs %s", time.Since(start).Seconds(), what) }

	// The committed state: what a clone gets.
	src := strings.TrimSpace(run(t, ".", "git", "rev-parse", "--show-toplevel"))
	head := strings.TrimSpace(run(t, src, "git", "rev-parse", "HEAD"))
	dir := filepath.Join(t.TempDir(), "tandem")
	run(t, "", "git", "clone", "--quiet", "--no-checkout", src, dir)
	run(t, dir, "git", "checkout", "--quiet", head)

	// First run, in the clean clone.
	phase("cloned")
	d := startDev(ctx, t, dir)
	phase("first run: serving")
	if d.attempt == 0 { // a retry on other ports reuses the first attempt's builds
		first := d.log.upTo(d.startedAt)
		if n := countLines(first, "task: [build:js]", "npm ci"); n != 1 {
			t.Errorf("the first run ran npm ci %d times before the server started, want 1", n)
		}
		if n := countLines(first, "task: [build:wasm]", "GOARCH=wasm go build"); n != 1 {
			t.Errorf("the first run built the WebAssembly %d times before the server started, want 1", n)
		}
	}
	d.checkServes(ctx, t)

	// A compile error: shown, and the previous server keeps serving.
	file := filepath.Join(dir, "server", "server.go")
	orig, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	from := d.log.len()
	writeFile(t, file, string(orig)+"\nfunc devrunBroken() { devrunUndefinedName() }\n")
	d.log.wait(ctx, t, from, regexp.MustCompile(`undefined: devrunUndefinedName`))
	d.log.wait(ctx, t, from, regexp.MustCompile(`devrun: build failed .*; the previous server \(pid `+strconv.Itoa(d.serverPID)+`\) keeps running`))
	if err := syscall.Kill(d.serverPID, 0); err != nil {
		t.Fatalf("the previous server (pid %d) is gone after a failed build: %v", d.serverPID, err)
	}
	d.checkServes(ctx, t)
	phase("compile error shown, previous server kept")

	// A good change: the server is rebuilt and replaced.
	from = d.log.len()
	writeFile(t, file, string(orig)+"\n// Changed by TestDevFromFreshClone.\n")
	d.checkRestart(ctx, t, from)
	phase("server file changed: new server")

	// A change in shared/: the page is rebuilt too.
	from = d.log.len()
	shared := filepath.Join(dir, "shared", "shared.go")
	sharedOrig, err := os.ReadFile(shared)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, shared, string(sharedOrig)+"\n// Changed by TestDevFromFreshClone.\n")
	d.log.wait(ctx, t, from, regexp.MustCompile(`task: \[build:wasm\] GOOS=js GOARCH=wasm go build`))
	d.checkRestart(ctx, t, from)
	phase("shared/ changed: page rebuilt, new server")

	// Ctrl-C: the terminal sends SIGINT to the whole foreground process group.
	if err := syscall.Kill(-d.cmd.Process.Pid, syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	if err := d.exit(ctx); err != nil {
		t.Errorf("`go tool task dev` after Ctrl-C: %v, want exit status 0", err)
	}
	checkNothingLeft(t, dir, d)
	phase("Ctrl-C: nothing left")

	// A later run reuses the builds; killing task (no signal reaches
	// devrun) must stop the server too.
	d = startDev(ctx, t, dir)
	d.checkServes(ctx, t)
	phase("second run: serving")
	taskPID := childOf(t, d.cmd.Process.Pid)
	if err := syscall.Kill(taskPID, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = d.exit(ctx)
	waitNothingLeft(ctx, t, dir, d)
	phase("task killed: nothing left")
}

// dev is one `go tool task dev` in its own process group, as in a terminal.
type dev struct {
	cmd           *exec.Cmd
	log           *lineLog
	done          chan struct{}
	err           error
	port, spaPort int
	attempt       int // 0 unless the first ports were taken
	serverPID     int
	startedAt     int // index of the log line "server started"
}

var (
	reStarted = regexp.MustCompile(`devrun: server started \(pid (\d+)\)`)
	reAPI     = regexp.MustCompile(`msg="API listening" url=http://127\.0\.0\.1:(\d+)`)
	reSPA     = regexp.MustCompile(`msg="cross-origin page listening" url=http://127\.0\.0\.1:(\d+)`)
	reInUse   = regexp.MustCompile(`cannot listen on`)
)

// startDev runs `go tool task dev` in dir on a pair of ports below the
// kernel's ephemeral range: those are never handed out for 127.0.0.1:0 (how
// every other test listens) or for outgoing connections, so only a service
// with a fixed port can hold one. The server then says "cannot listen" and
// exits, and startDev tries another pair; it trusts the ports only once the
// server it started logged that it listens on them.
func startDev(ctx context.Context, t *testing.T, dir string) *dev {
	t.Helper()
	low := ephemeralLow(t)
	for attempt := 0; attempt < 5; attempt++ {
		port := 10000 + rand.IntN(low-10000-1)
		d := &dev{log: newLineLog(), done: make(chan struct{}), port: port, spaPort: port + 1, attempt: attempt}
		d.cmd = exec.Command("go", "tool", "task", "dev")
		d.cmd.Dir = dir
		// ADMIN_ADDR: the task's fixed 127.0.0.1:9464 would collide with any other run.
		d.cmd.Env = append(os.Environ(), "PORT="+strconv.Itoa(d.port), "SPA_PORT="+strconv.Itoa(d.spaPort), "ADMIN_ADDR=127.0.0.1:0")
		d.cmd.Stdout, d.cmd.Stderr = d.log, d.log
		d.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		// A server left behind would hold the output pipe open: Wait
		// returns anyway, and the test says what is left.
		d.cmd.WaitDelay = 10 * time.Second
		if err := d.cmd.Start(); err != nil {
			t.Fatal(err)
		}
		go func() {
			d.err = d.cmd.Wait()
			d.log.close()
			close(d.done)
		}()
		t.Cleanup(func() {
			_ = syscall.Kill(-d.cmd.Process.Pid, syscall.SIGKILL)
			killLeftovers(dir) // the server runs in a group of its own
			<-d.done
			if t.Failed() {
				t.Logf("output of `go tool task dev` (PORT=%d SPA_PORT=%d):\n%s", d.port, d.spaPort, strings.Join(d.log.upTo(d.log.len()), "\n"))
			}
		})
		if d.waitServer(ctx, t, 0) {
			return d
		}
		t.Logf("ports %d and %d are taken; trying others", d.port, d.spaPort)
		_ = syscall.Kill(-d.cmd.Process.Pid, syscall.SIGINT)
		_ = d.exit(ctx)
	}
	t.Fatal("no free pair of ports after 5 attempts")
	return nil
}

// waitServer waits, from log line from on, for a server start and both of
// its listeners on the expected ports. It returns false when the ports were
// taken.
func (d *dev) waitServer(ctx context.Context, t *testing.T, from int) bool {
	t.Helper()
	i, m := d.log.wait(ctx, t, from, reStarted)
	pid, _ := strconv.Atoi(m[1])
	j, m := d.log.wait(ctx, t, i+1, regexp.MustCompile(reAPI.String()+"|"+reInUse.String()))
	if reInUse.MatchString(m[0]) {
		return false
	}
	if m[1] != strconv.Itoa(d.port) {
		t.Fatalf("the API listens on port %s, want PORT=%d", m[1], d.port)
	}
	_, m = d.log.wait(ctx, t, j+1, regexp.MustCompile(reSPA.String()+"|"+reInUse.String()))
	if reInUse.MatchString(m[0]) {
		return false
	}
	if m[1] != strconv.Itoa(d.spaPort) {
		t.Fatalf("the page listens on port %s, want SPA_PORT=%d", m[1], d.spaPort)
	}
	d.serverPID, d.startedAt = pid, i
	return true
}

// checkRestart checks that, from log line from on, the server was replaced
// by a new process that serves.
func (d *dev) checkRestart(ctx context.Context, t *testing.T, from int) {
	t.Helper()
	old := d.serverPID
	d.log.wait(ctx, t, from, regexp.MustCompile(`devrun: server stopped \(pid `+strconv.Itoa(old)+`\)`))
	if !d.waitServer(ctx, t, from) {
		t.Fatalf("the new server cannot listen on ports %d and %d again", d.port, d.spaPort)
	}
	if d.serverPID == old {
		t.Fatalf("the server still runs as pid %d after the change", old)
	}
	if err := syscall.Kill(old, 0); !errors.Is(err, syscall.ESRCH) {
		t.Errorf("the old server (pid %d) still exists after the restart: %v", old, err)
	}
	d.checkServes(ctx, t)
}

// checkServes checks both listeners: the page on each, /healthz, the page
// on SPA_PORT calling the API on PORT, and the API allowing that origin.
func (d *dev) checkServes(ctx context.Context, t *testing.T) {
	t.Helper()
	api := fmt.Sprintf("http://localhost:%d", d.port)
	spa := fmt.Sprintf("http://localhost:%d", d.spaPort)
	for _, base := range []string{api, spa} {
		code, hdr, body := get(ctx, t, base+"/", nil)
		if code != 200 || !strings.HasPrefix(hdr.Get("Content-Type"), "text/html") || !strings.Contains(body, `src="/app.js"`) {
			t.Errorf("GET %s/: %d %q, want the page:\n%.300s", base, code, hdr.Get("Content-Type"), body)
		}
	}
	if code, _, body := get(ctx, t, api+"/healthz", nil); code != 200 {
		t.Errorf("GET %s/healthz: %d %s, want 200", api, code, body)
	}
	if _, _, body := get(ctx, t, spa+"/app.js", nil); !strings.Contains(body, api) {
		t.Errorf("the page on %s does not call the API at %s", spa, api)
	}
	code, hdr, body := get(ctx, t, api+"/session", http.Header{"Origin": {spa}})
	if code != 200 || hdr.Get("Access-Control-Allow-Origin") != spa || hdr.Get("Access-Control-Allow-Credentials") != "true" {
		t.Errorf("GET %s/session from origin %s: %d, Access-Control-Allow-Origin %q, credentials %q: %s",
			api, spa, code, hdr.Get("Access-Control-Allow-Origin"), hdr.Get("Access-Control-Allow-Credentials"), body)
	}
}

// exit waits for `go tool task dev` to end.
func (d *dev) exit(ctx context.Context) error {
	select {
	case <-d.done:
		return d.err
	case <-ctx.Done():
		return fmt.Errorf("still running: %w", ctx.Err())
	}
}

// checkNothingLeft checks, right after `go tool task dev` exited, that no
// process of the clone is left and both ports are closed.
func checkNothingLeft(t *testing.T, dir string, d *dev) {
	t.Helper()
	if left := processesIn(dir); len(left) > 0 {
		t.Errorf("processes left running in the clone: %s", strings.Join(left, "; "))
	}
	if err := syscall.Kill(-d.serverPID, 0); !errors.Is(err, syscall.ESRCH) {
		t.Errorf("the server's process group %d is still there: %v", d.serverPID, err)
	}
	for _, p := range []int{d.port, d.spaPort} {
		if c, err := net.DialTimeout("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p)), 5*time.Second); err == nil {
			c.Close()
			t.Errorf("port %d still accepts connections", p)
		}
	}
}

// waitNothingLeft waits until no process of the clone is left (devrun
// notices its parent's death within a second, then stops the server).
func waitNothingLeft(ctx context.Context, t *testing.T, dir string, d *dev) {
	t.Helper()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for len(processesIn(dir)) > 0 {
		select {
		case <-ctx.Done():
			t.Fatalf("processes left running in the clone after task was killed: %s", strings.Join(processesIn(dir), "; "))
		case <-tick.C:
		}
	}
	checkNothingLeft(t, dir, d)
}

// processesIn lists the processes whose executable or working directory is
// in dir: go, task, devrun and the server of a `go tool task dev` there.
func processesIn(dir string) []string {
	entries, _ := os.ReadDir("/proc")
	var left []string
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		for _, link := range []string{"exe", "cwd"} {
			target, err := os.Readlink(filepath.Join("/proc", e.Name(), link))
			if err == nil && (target == dir || strings.HasPrefix(target, dir+"/")) {
				cmdline, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
				left = append(left, fmt.Sprintf("pid %d %s", pid, bytes.ReplaceAll(bytes.TrimRight(cmdline, "\x00"), []byte{0}, []byte{' '})))
				break
			}
		}
	}
	return left
}

// killLeftovers kills what a failed test may have left in dir.
func killLeftovers(dir string) {
	for _, p := range processesIn(dir) {
		var pid int
		if _, err := fmt.Sscanf(p, "pid %d", &pid); err == nil {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}
}

// childOf is the only child of pid (task, under go).
func childOf(t *testing.T, pid int) int {
	t.Helper()
	entries, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	var children []int
	for _, e := range entries {
		stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...; comm may hold spaces and parentheses.
		f := strings.Fields(string(stat[bytes.LastIndexByte(stat, ')')+1:]))
		if len(f) > 1 && f[1] == strconv.Itoa(pid) {
			child, _ := strconv.Atoi(e.Name())
			children = append(children, child)
		}
	}
	if len(children) != 1 {
		t.Fatalf("pid %d has children %v, want task alone", pid, children)
	}
	return children[0]
}

func ephemeralLow(t *testing.T) int {
	t.Helper()
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		t.Skipf("cannot read the ephemeral port range: %v", err)
	}
	f := strings.Fields(string(b))
	low, err := strconv.Atoi(f[0])
	if err != nil || low < 12000 {
		t.Skipf("ephemeral ports start at %q: no room below them for the test's ports", f)
	}
	return low
}

// noKeepAlive opens a connection per request: one kept from a server that
// was since replaced would be of no use.
var noKeepAlive = &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}

func get(ctx context.Context, t *testing.T, url string, hdr http.Header) (int, http.Header, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header[k] = v
	}
	res, err := noKeepAlive.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	return res.StatusCode, res.Header, string(body)
}

func run(t *testing.T, dir, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func countLines(lines []string, substrs ...string) int {
	n := 0
next:
	for _, l := range lines {
		for _, s := range substrs {
			if !strings.Contains(l, s) {
				continue next
			}
		}
		n++
	}
	return n
}

// lineLog collects a command's output by lines, for waiting on them.
type lineLog struct {
	mu      sync.Mutex
	partial []byte
	lines   []string
	changed chan struct{} // closed and replaced on every new line
	closed  bool
}

func newLineLog() *lineLog { return &lineLog{changed: make(chan struct{})} }

func (l *lineLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.partial = append(l.partial, p...)
	for {
		i := bytes.IndexByte(l.partial, '\n')
		if i < 0 {
			break
		}
		l.lines = append(l.lines, string(l.partial[:i]))
		l.partial = l.partial[i+1:]
		close(l.changed)
		l.changed = make(chan struct{})
	}
	return len(p), nil
}

func (l *lineLog) close() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.partial) > 0 {
		l.lines = append(l.lines, string(l.partial))
		l.partial = nil
	}
	l.closed = true
	close(l.changed)
	l.changed = make(chan struct{})
}

func (l *lineLog) len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.lines)
}

func (l *lineLog) upTo(n int) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.lines[:min(n, len(l.lines))]...)
}

// wait returns the index and submatches of the first line from index from
// on that matches re; it fails the test when the output ends or ctx does.
func (l *lineLog) wait(ctx context.Context, t *testing.T, from int, re *regexp.Regexp) (int, []string) {
	t.Helper()
	for {
		l.mu.Lock()
		for i := from; i < len(l.lines); i++ {
			if m := re.FindStringSubmatch(l.lines[i]); m != nil {
				l.mu.Unlock()
				return i, m
			}
		}
		from = max(from, len(l.lines))
		closed, changed := l.closed, l.changed
		l.mu.Unlock()
		if closed {
			t.Fatalf("`go tool task dev` ended before a line matching %q", re)
		}
		select {
		case <-changed:
		case <-ctx.Done():
			t.Fatalf("no line matching %q: %v", re, ctx.Err())
		}
	}
}

func TestWatcher(t *testing.T) {
	tests := []struct {
		name   string
		when   func(t *testing.T, root string)
		expect change
	}{
		{name: "ok, a server file", when: func(t *testing.T, root string) {
			writeFile(t, filepath.Join(root, "server", "a.go"), "package server")
		}, expect: changeServer},
		{name: "ok, a page file", when: func(t *testing.T, root string) {
			writeFile(t, filepath.Join(root, "webclient", "a.go"), "package webclient")
		}, expect: changeWasm},
		{name: "ok, a new directory with a file already in it", when: func(t *testing.T, root string) {
			tmp := filepath.Join(root, "sub.tmp")
			mkdir(t, tmp)
			writeFile(t, filepath.Join(tmp, "b.go"), "package sub")
			if err := os.Rename(tmp, filepath.Join(root, "shared", "sub")); err != nil {
				t.Fatal(err)
			}
		}, expect: changeWasm},
		{name: "ok, a file in a new directory", when: func(t *testing.T, root string) {
			mkdir(t, filepath.Join(root, "server", "sub")) // calls for nothing yet
			writeFile(t, filepath.Join(root, "server", "sub", "c.go"), "package sub")
		}, expect: changeServer},
		{name: "ok, css", when: func(t *testing.T, root string) {
			writeFile(t, filepath.Join(root, "public", "web", "app.css"), "body{}")
		}, expect: changeRestart},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := t.TempDir()
			for _, d := range append([]string{"data", "bin"}, watchedTrees...) {
				mkdir(t, filepath.Join(root, d))
			}
			w, err := newWatcher(root, func(err error) { t.Errorf("watch: %v", err) })
			if err != nil {
				t.Fatal(err)
			}
			defer w.close()
			// Writes that call for nothing come first: had they produced a
			// change, it would be received before the expected one.
			writeFile(t, filepath.Join(root, "data", "sessions.db"), "x")
			writeFile(t, filepath.Join(root, "bin", "tandem"), "x")
			writeFile(t, filepath.Join(root, "public", "web", "app.wasm"), "x")
			writeFile(t, filepath.Join(root, "server", "a_test.go"), "package server")
			writeFile(t, filepath.Join(root, "server", ".a.go.swp"), "x")
			tt.when(t, root)
			select {
			case got := <-w.changes:
				if got != tt.expect {
					t.Errorf("change %d, want %d", got, tt.expect)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("no change within 10 s")
			}
		})
	}
}

func mkdir(t *testing.T, dir string) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
}
