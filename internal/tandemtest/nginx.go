package tandemtest

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"syscall"
	"testing"
	"time"
)

// Nginx is an nginx started for one test with the repository's
// deploy/nginx/tandem.conf, its upstream servers and listen address
// replaced by the test's.
type Nginx struct {
	URL  string
	proc *child
}

// NeedNginx finds nginx (on PATH or in /usr/sbin); without it the test is
// skipped, or fails under CI=true (.ci/run installs it). With -short it
// skips.
func NeedNginx(tb testing.TB) string {
	tb.Helper()
	if testing.Short() {
		tb.Skip("-short: skipping a test that runs nginx")
	}
	bin, err := exec.LookPath("nginx")
	if err != nil {
		if _, serr := os.Stat("/usr/sbin/nginx"); serr == nil {
			return "/usr/sbin/nginx"
		}
		msg := "needs nginx (apt-get install nginx): " + err.Error()
		if os.Getenv("CI") == "true" {
			tb.Fatal(msg)
		}
		tb.Skip(msg)
	}
	return bin
}

var (
	upstreamServers = regexp.MustCompile(`(?m)^\s*server 127\.0\.0\.1:\d+ ([^;]*);\n`)
	listenLine      = regexp.MustCompile(`(?m)^(\s*)listen [^;]+;`)
)

// StartNginx starts nginx in front of the given node addresses (host:port)
// on a random loopback port (another one if nginx cannot bind it, as
// StartRedis does) and stops it at the end of the test.
func StartNginx(tb testing.TB, nodes []string) *Nginx {
	tb.Helper()
	bin := NeedNginx(tb)
	site := shippedConfig(tb, "deploy/nginx/tandem.conf", upstreamServers, nodes, func(params, n string) string {
		return "    server " + n + " " + params + ";\n"
	})
	dir := tb.TempDir()
	user := ""
	if os.Geteuid() == 0 {
		user = "user root;" // workers would be nobody, who cannot write dir
	}
	for attempt := 0; ; attempt++ {
		port := 20000 + rand.IntN(30000)
		addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		siteConf := listenLine.ReplaceAllString(site, "${1}listen "+addr+";")
		if err := os.WriteFile(filepath.Join(dir, "tandem.conf"), []byte(siteConf), 0o600); err != nil {
			tb.Fatal(err)
		}
		main := fmt.Sprintf(`%s
worker_processes 1;
daemon off;
pid %[2]s/nginx.pid;
error_log %[2]s/error.log warn;
events { worker_connections 1024; }
http {
    access_log off;
    client_body_temp_path %[2]s/body;
    proxy_temp_path %[2]s/proxy;
    fastcgi_temp_path %[2]s/fastcgi;
    uwsgi_temp_path %[2]s/uwsgi;
    scgi_temp_path %[2]s/scgi;
    include %[2]s/tandem.conf;
}
`, user, dir)
		if err := os.WriteFile(filepath.Join(dir, "nginx.conf"), []byte(main), 0o600); err != nil {
			tb.Fatal(err)
		}
		n, err := startNginx(bin, dir, addr)
		if err == nil {
			tb.Cleanup(n.stop)
			return n
		}
		if !errors.Is(err, errPortTaken) || attempt == 20 {
			tb.Fatalf("start nginx: %v", err)
		}
	}
}

func startNginx(bin, dir, addr string) (*Nginx, error) {
	cmd := exec.Command(bin, "-p", dir, "-c", filepath.Join(dir, "nginx.conf"))
	errorLog := func() string {
		b, _ := os.ReadFile(filepath.Join(dir, "error.log"))
		return string(b)
	}
	proc, err := startChild(cmd, 20*time.Second, 10*time.Millisecond, func() error {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
		}
		return err
	}, errorLog, "Address already in use")
	if err != nil {
		return nil, err
	}
	return &Nginx{URL: "http://" + addr, proc: proc}, nil
}

func (n *Nginx) stop() { n.proc.stop(syscall.SIGQUIT, 10*time.Second) }
