//go:build unix

package main

import (
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/fsnotify/fsnotify"
)

// change is what a file event calls for; a larger change includes the
// smaller ones.
type change int

const (
	changeNone    change = iota
	changeRestart        // public/web asset: the server reads them at start-up
	changeServer         // server code: rebuild the server
	changeWasm           // code of the page too: rebuild app.wasm, then the server
)

// watchedTrees are watched recursively; in the repository root only go.mod
// and go.sum matter.
var watchedTrees = []string{"server", "shared", "webclient", filepath.Join("public", "web")}

const watchedDescription = "server/, shared/, webclient/, public/web/, go.mod and go.sum"

// classify says what a change of path (relative to the repository root,
// slash- or OS-separated) calls for.
func classify(path string) change {
	path = filepath.ToSlash(filepath.Clean(path))
	base := filepath.Base(path)
	if strings.HasPrefix(base, ".") || strings.HasSuffix(base, "~") {
		return changeNone // editor swap and backup files
	}
	if path == "go.mod" || path == "go.sum" {
		return changeWasm
	}
	top, _, _ := strings.Cut(path, "/")
	switch top {
	case "server", "shared", "webclient":
		if !strings.HasSuffix(base, ".go") || strings.HasSuffix(base, "_test.go") || skipDirIn(path) {
			return changeNone
		}
		if top == "server" {
			return changeServer
		}
		return changeWasm
	case "public":
		dir := filepath.ToSlash(filepath.Dir(path))
		if dir != "public/web" || isBuildOutput(base) {
			return changeNone
		}
		return changeRestart
	}
	return changeNone
}

// isBuildOutput is true for the files of public/web that builds write (see
// .gitignore): watching them would restart after every page build.
func isBuildOutput(base string) bool {
	return base == "app.wasm" || strings.HasPrefix(base, "app.wasm.") || strings.HasPrefix(base, "socket.io.min.js")
}

// skipDir is true for directories the go tool ignores.
func skipDir(name string) bool {
	return name == "testdata" || name == "node_modules" || strings.HasPrefix(name, ".") || strings.HasPrefix(name, "_")
}

func skipDirIn(path string) bool {
	parts := strings.Split(filepath.ToSlash(filepath.Dir(path)), "/")
	for _, p := range parts {
		if skipDir(p) {
			return true
		}
	}
	return false
}

// watcher turns fsnotify's events under root into changes.
type watcher struct {
	root    string
	fs      *fsnotify.Watcher
	changes chan change
	onError func(error)
	done    chan struct{}
}

func newWatcher(root string, onError func(error)) (*watcher, error) {
	fw, err := fsnotify.NewWatcher()
	if err != nil {
		return nil, err
	}
	w := &watcher{root: root, fs: fw, changes: make(chan change), onError: onError, done: make(chan struct{})}
	if err := fw.Add(root); err != nil { // go.mod, go.sum
		_ = fw.Close()
		return nil, err
	}
	for _, t := range watchedTrees {
		if err := w.addTree(filepath.Join(root, t)); err != nil {
			_ = fw.Close()
			return nil, err
		}
	}
	go w.loop()
	return w, nil
}

// addTree watches dir and every directory below it (inotify is not
// recursive).
func (w *watcher) addTree(dir string) error {
	return filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			if os.IsNotExist(err) {
				return nil // removed meanwhile
			}
			return err
		}
		if !d.IsDir() {
			return nil
		}
		if path != dir && skipDir(d.Name()) {
			return filepath.SkipDir
		}
		return w.fs.Add(path)
	})
}

func (w *watcher) loop() {
	defer close(w.changes)
	for {
		select {
		case <-w.done:
			return
		case err, ok := <-w.fs.Errors:
			if !ok {
				return
			}
			w.onError(err)
		case ev, ok := <-w.fs.Events:
			if !ok {
				return
			}
			if ev.Op == fsnotify.Chmod {
				continue
			}
			rel, err := filepath.Rel(w.root, ev.Name)
			if err != nil {
				continue
			}
			c := classify(rel)
			if ev.Has(fsnotify.Create) && w.inTree(rel) {
				// A new directory (mkdir, git checkout): watch it and
				// count what is already in it.
				if fi, err := os.Stat(ev.Name); err == nil && fi.IsDir() && !skipDirIn(rel+"/x") {
					if err := w.addTree(ev.Name); err != nil {
						w.onError(err)
					}
					c = max(c, w.treeChange(rel))
				}
			}
			if c == changeNone {
				continue
			}
			select {
			case w.changes <- c:
			case <-w.done:
				return
			}
		}
	}
}

func (w *watcher) inTree(rel string) bool {
	rel = filepath.ToSlash(rel)
	for _, t := range watchedTrees {
		if strings.HasPrefix(rel, filepath.ToSlash(t)+"/") {
			return true
		}
	}
	return false
}

// treeChange is the largest change the files under the new directory rel
// call for.
func (w *watcher) treeChange(rel string) change {
	c := changeNone
	_ = filepath.WalkDir(filepath.Join(w.root, rel), func(path string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			if r, err := filepath.Rel(w.root, path); err == nil {
				c = max(c, classify(r))
			}
		}
		return nil
	})
	return c
}

func (w *watcher) close() {
	close(w.done)
	_ = w.fs.Close()
}
