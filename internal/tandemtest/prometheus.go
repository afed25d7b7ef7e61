package tandemtest

import (
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"syscall"
	"testing"
	"time"
)

// Prometheus is a Prometheus server started for one test with the
// repository's deploy/prometheus/prometheus.yml, its targets replaced by the
// test's.
type Prometheus struct {
	URL  string
	proc *child
}

// NeedPrometheus finds the prometheus binary; without it the test is
// skipped, or fails under CI=true (.ci/run installs it). With -short it
// skips.
func NeedPrometheus(tb testing.TB) string {
	tb.Helper()
	if testing.Short() {
		tb.Skip("-short: skipping a test that runs Prometheus")
	}
	bin, err := exec.LookPath("prometheus")
	if err != nil {
		msg := "needs Prometheus (apt-get install prometheus): " + err.Error()
		if os.Getenv("CI") == "true" {
			tb.Fatal(msg)
		}
		tb.Skip(msg)
	}
	return bin
}

var (
	targetLine     = regexp.MustCompile(`(?m)^(\s*)- 127\.0\.0\.1:\d+\n`)
	scrapeInterval = regexp.MustCompile(`(?m)^(\s*)scrape_interval: \S+`)
)

// StartPrometheus starts Prometheus scraping the given targets (host:port)
// every second, on a random loopback port (another one if it cannot bind
// it), and stops it at the end of the test.
func StartPrometheus(tb testing.TB, targets []string) *Prometheus {
	tb.Helper()
	bin := NeedPrometheus(tb)
	body := shippedConfig(tb, "deploy/prometheus/prometheus.yml", targetLine, targets, func(indent, t string) string {
		return indent + "- " + t + "\n"
	})
	// Every second, so that the test learns the targets' health at once.
	body = scrapeInterval.ReplaceAllString(body, "${1}scrape_interval: 1s")
	dir := tb.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "prometheus.yml"), []byte(body), 0o600); err != nil {
		tb.Fatal(err)
	}
	for attempt := 0; ; attempt++ {
		addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(20000+rand.IntN(30000)))
		p, err := startPrometheus(bin, dir, addr)
		if err == nil {
			tb.Cleanup(p.stop)
			return p
		}
		if !errors.Is(err, errPortTaken) || attempt == 20 {
			tb.Fatalf("start prometheus: %v", err)
		}
	}
}

func startPrometheus(bin, dir, addr string) (*Prometheus, error) {
	cmd := exec.Command(bin, "--config.file="+filepath.Join(dir, "prometheus.yml"),
		"--storage.tsdb.path="+filepath.Join(dir, "data"), "--web.listen-address="+addr, "--log.level=warn")
	url := "http://" + addr
	proc, err := startChild(cmd, 60*time.Second, 50*time.Millisecond, func() error {
		resp, err := http.Get(url + "/-/ready")
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("/-/ready: %s", resp.Status)
		}
		return nil
	}, nil, "address already in use")
	if err != nil {
		return nil, err
	}
	return &Prometheus{URL: url, proc: proc}, nil
}

// Target is one scrape target as Prometheus's /api/v1/targets reports it.
type Target struct {
	ScrapeURL string `json:"scrapeUrl"`
	Health    string `json:"health"`
	LastError string `json:"lastError"`
}

// Targets returns the active targets Prometheus reports.
func (p *Prometheus) Targets(tb testing.TB) []Target {
	tb.Helper()
	resp, err := http.Get(p.URL + "/api/v1/targets?state=active")
	if err != nil {
		tb.Fatalf("prometheus targets: %v", err)
	}
	defer resp.Body.Close()
	var body struct {
		Status string `json:"status"`
		Data   struct {
			ActiveTargets []Target `json:"activeTargets"`
		} `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil || body.Status != "success" {
		tb.Fatalf("prometheus targets: status %q, %v", body.Status, err)
	}
	return body.Data.ActiveTargets
}

func (p *Prometheus) stop() { p.proc.stop(syscall.SIGTERM, 10*time.Second) }
