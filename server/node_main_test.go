package server_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"testing"

	"github.com/tandem-go/tandem/server"
)

// envNode makes the test binary a tandem node of its own (see startProcessNode)
// instead of running the tests: its value is the Redis URL of the cluster.
const envNode = "TANDEM_TEST_PROCESS_NODE"

func TestMain(m *testing.M) {
	if url := os.Getenv(envNode); url != "" {
		os.Exit(runProcessNode(url))
	}
	os.Exit(m.Run())
}

// runProcessNode serves one node until it is signalled (or killed: the
// point of a node in a process of its own), printing its URL first.
func runProcessNode(redisURL string) int {
	dir, err := os.MkdirTemp("", "tandem-node-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	srv, err := server.New(server.Config{
		Addr:           "127.0.0.1:0",
		Store:          redisURL,
		SessionSecrets: []string{strings.Repeat("k", 32)}, // tandemtest.Start's
		DataDir:        dir,
		Logger:         slog.New(slog.DiscardHandler),
	})
	if err == nil {
		err = srv.Start()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmt.Println(srv.URL())
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	<-ctx.Done()
	_ = srv.Close(context.Background())
	return 0
}
