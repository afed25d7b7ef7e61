package e2e

import (
	"encoding/json"
	"sync"
	"testing"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/tracing"
	"github.com/chromedp/chromedp"

	"github.com/tandem-go/tandem/server"
)

// wasmTrace records V8's WebAssembly trace events of one tab, by name.
type wasmTrace struct {
	mu    sync.Mutex
	names map[string]int
	done  chan struct{}
}

func traceWasm(t *testing.T, tb *tab) *wasmTrace {
	t.Helper()
	w := &wasmTrace{names: map[string]int{}, done: make(chan struct{})}
	err := chromedp.Listen(tb.ctx, func(ev any) {
		switch ev := ev.(type) {
		case *tracing.EventDataCollected:
			w.mu.Lock()
			defer w.mu.Unlock()
			for _, v := range ev.Value {
				var e struct{ Name string }
				if json.Unmarshal(v, &e) == nil {
					w.names[e.Name]++
				}
			}
		case *tracing.EventTracingComplete:
			close(w.done)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	_, err = chromedp.Call(tb.ctx, tracing.Start, tracing.StartParams{
		TransferMode: tracing.StartTransferModeReportEvents,
		TraceConfig:  &tracing.TraceConfig{IncludedCategories: []string{"v8.wasm", "disabled-by-default-v8.wasm.detailed"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	return w
}

// stop ends the trace and returns how often each event occurred.
func (w *wasmTrace) stop(t *testing.T, tb *tab) map[string]int {
	t.Helper()
	if _, err := chromedp.Call(tb.ctx, tracing.End, cdp.Empty{}); err != nil {
		t.Fatal(err)
	}
	<-w.done
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.names
}

// TestWasmCompilesWhileStreamingAndIsReusedOnReload: Chromium compiles
// app.wasm while it downloads (go-app's instantiateStreaming, fed the
// application/wasm answer), and a reload reuses the compiled module
// instead of compiling it again (issue 9, item 4). It reads V8's trace
// events: StartStreamingCompilation and OnBytesReceived on the first load;
// on reloads, GetNativeModuleFromCache with no new NewNativeModule.
func TestWasmCompilesWhileStreamingAndIsReusedOnReload(t *testing.T) {
	srv := startServer(t, server.Config{})
	browser := newBrowser(t)
	tb := newTab(t, browser, "tab")
	trace := traceWasm(t, tb)
	tb.open(srv.URL())
	tb.waitText("status", "connected")
	const reloads = 2
	for range reloads {
		if err := tb.run(loadTimeout, chromedp.Reload()); err != nil {
			t.Fatal(err)
		}
		tb.waitRunning()
		tb.waitText("status", "connected")
	}
	ev := trace.stop(t, tb)
	t.Logf("V8 events: StartStreamingCompilation %d, OnBytesReceived %d, NewNativeModule %d, GetNativeModuleFromCache %d, CompileLazy %d",
		ev["wasm.StartStreamingCompilation"], ev["wasm.OnBytesReceived"], ev["wasm.NewNativeModule"], ev["wasm.GetNativeModuleFromCache"], ev["wasm.CompileLazy"])
	if ev["wasm.StartStreamingCompilation"] != 1+reloads || ev["wasm.OnBytesReceived"] < 2 {
		t.Errorf("app.wasm was not compiled while streaming on every load: %d streaming compilations for %d loads, %d chunks",
			ev["wasm.StartStreamingCompilation"], 1+reloads, ev["wasm.OnBytesReceived"])
	}
	if ev["wasm.NewNativeModule"] != 1 || ev["wasm.GetNativeModuleFromCache"] != reloads {
		t.Errorf("compiled %d modules and reused %d over %d loads; want 1 compiled and %d reused",
			ev["wasm.NewNativeModule"], ev["wasm.GetNativeModuleFromCache"], 1+reloads, reloads)
	}
}
