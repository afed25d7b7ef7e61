package main

import (
	"os"
	"path/filepath"
	"testing"
)

func TestStampSaysWhenCopiesAreCurrent(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "app.wasm")
	write := func(name, content string) {
		t.Helper()
		if err := os.WriteFile(name, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(file, "wasm v1")
	stamp := stampOf([]byte("wasm v1"), 11, 9)
	if current(file, stamp) {
		t.Fatal("current without copies or a stamp")
	}
	write(file+".br", "br")
	write(file+".gz", "gz")
	write(stampFile(file), stamp)
	if !current(file, stamp) {
		t.Error("not current with both copies and a matching stamp")
	}
	if current(file, stampOf([]byte("wasm v1"), 9, 9)) {
		t.Error("current at another brotli quality")
	}
	if current(file, stampOf([]byte("wasm v2"), 11, 9)) {
		t.Error("current for another content")
	}
	os.Remove(file + ".gz")
	if current(file, stamp) {
		t.Error("current with a copy missing")
	}
	if filepath.Base(stampFile(file))[0] != '.' {
		t.Errorf("the stamp %s is not a dotfile: the page handler would serve it", stampFile(file))
	}
}
