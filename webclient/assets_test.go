//go:build !js

package webclient

import (
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// Handlers of one directory share one copy of its assets, and a rebuild
// (a file changed on disk) is read again.
func TestLoadAssetsSharesAndNoticesRebuilds(t *testing.T) {
	log := slog.New(slog.DiscardHandler)
	dir := webDir(t, wasmBytes("one"), nil)
	a, err := loadAssets(dir, log)
	if err != nil {
		t.Fatal(err)
	}
	b, err := loadAssets(dir, log)
	if err != nil {
		t.Fatal(err)
	}
	if a["app.wasm"] != b["app.wasm"] {
		t.Error("two loads of an unchanged directory read app.wasm twice")
	}

	wasm := filepath.Join(dir, "app.wasm")
	if err := os.WriteFile(wasm, []byte(wasmBytes("two")), 0o644); err != nil {
		t.Fatal(err)
	}
	later := time.Now().Add(time.Second)
	if err := os.Chtimes(wasm, later, later); err != nil {
		t.Fatal(err)
	}
	c, err := loadAssets(dir, log)
	if err != nil {
		t.Fatal(err)
	}
	if c["app.wasm"] == a["app.wasm"] || c["app.wasm"].hash == a["app.wasm"].hash {
		t.Error("a rebuilt app.wasm was served from the old copy")
	}
}
