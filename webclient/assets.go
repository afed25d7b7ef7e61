//go:build !js

package webclient

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"mime"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"sync"

	"github.com/andybalholm/brotli"
)

// Content codings the handler serves, best first.
const (
	encBrotli = "br"
	encGzip   = "gzip"
)

// Suffixes of the pre-compressed copies that the build writes beside a file
// (see webclient/cmd/precompress). They are variants, never served by name.
var encSuffix = map[string]string{encBrotli: ".br", encGzip: ".gz"}

// largeAsset is the size from which compressing in memory is worth a note
// in the log and a faster setting.
const largeAsset = 1 << 20

// asset is one file of the web directory, read once at start-up: the
// handler's version is a hash of what it serves, so a file changed on disk
// is served only after a restart, together with a new version.
type asset struct {
	name        string // path under /web/, such as "app.css"
	contentType string
	sum         [sha256.Size]byte
	hash        string // short hex of sum: the ETag and the ?v= of its URL
	raw         []byte

	variants map[string]*variant // by content coding; nil when not compressible
	log      *slog.Logger
}

// variant is a compressed copy, read from the build's pre-compressed file
// or made on first use.
type variant struct {
	once sync.Once
	data []byte // nil when compression did not pay
}

// loaded keeps the assets already read, by directory, so that the page's
// handlers of one process (the API port's and the SPA port's, or the many
// servers of a test binary) share one copy of app.wasm and its compressed
// variants instead of each reading and hashing its own.
var loaded struct {
	mu   sync.Mutex
	dirs map[string]loadedDir
}

type loadedDir struct {
	stamp  string // names, sizes and modification times of every file
	assets map[string]*asset
}

// loadAssets returns the assets of dir, read again only when a file in it
// changed since the last call.
func loadAssets(dir string, log *slog.Logger) (map[string]*asset, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("webclient: %w", err)
	}
	stamp, err := dirStamp(abs)
	if err != nil {
		return nil, fmt.Errorf("webclient: %w", err)
	}
	loaded.mu.Lock()
	defer loaded.mu.Unlock()
	if c, ok := loaded.dirs[abs]; ok && c.stamp == stamp {
		return c.assets, nil
	}
	assets, err := readAssets(abs, log)
	if err != nil {
		return nil, err
	}
	if loaded.dirs == nil {
		loaded.dirs = map[string]loadedDir{}
	}
	loaded.dirs[abs] = loadedDir{stamp: stamp, assets: assets}
	return assets, nil
}

// dirStamp describes every file under dir by name, size and modification
// time: cheap to compute, and different after any rebuild.
func dirStamp(dir string) (string, error) {
	var b strings.Builder
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		fmt.Fprintf(&b, "%s %d %d\n", p, fi.Size(), fi.ModTime().UnixNano())
		return nil
	})
	return b.String(), err
}

// readAssets reads every regular file under dir. The assets are never
// changed afterwards (compressed variants are made once, under sync.Once),
// so handlers may share them.
func readAssets(dir string, log *slog.Logger) (map[string]*asset, error) {
	assets := make(map[string]*asset)
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		name := d.Name()
		if strings.HasPrefix(name, ".") && p != dir {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		if !d.Type().IsRegular() || isVariantName(name) {
			return nil
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		a, err := loadAsset(p, filepath.ToSlash(rel), log)
		if err != nil {
			return err
		}
		assets[a.name] = a
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("webclient: %w", err)
	}
	return assets, nil
}

func isVariantName(name string) bool {
	for _, suffix := range encSuffix {
		if strings.HasSuffix(name, suffix) {
			return true
		}
	}
	return false
}

func loadAsset(file, name string, log *slog.Logger) (*asset, error) {
	raw, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	a := &asset{
		name:        name,
		contentType: contentType(name),
		sum:         sha256.Sum256(raw),
		raw:         raw,
		log:         log,
	}
	a.hash = hex.EncodeToString(a.sum[:8])
	if !compressible(a.contentType) {
		return a, nil
	}
	a.variants = make(map[string]*variant, len(encSuffix))
	for enc, suffix := range encSuffix {
		v := new(variant)
		// A pre-compressed copy counts only if it decodes to this very
		// file: a stale one would serve an old build under a new version.
		if data, err := os.ReadFile(file + suffix); err == nil {
			if decodesTo(enc, data, a.sum) {
				v.once.Do(func() { v.data = data })
			} else {
				log.Warn("webclient: ignoring a stale pre-compressed copy", "file", file+suffix)
			}
		}
		a.variants[enc] = v
	}
	return a, nil
}

// contentType is the media type of name, from its extension.
func contentType(name string) string {
	switch path.Ext(name) {
	case ".wasm":
		return "application/wasm"
	case ".js":
		return "text/javascript; charset=utf-8"
	case ".map":
		return "application/json"
	case ".webmanifest":
		return "application/manifest+json"
	}
	if t := mime.TypeByExtension(path.Ext(name)); t != "" {
		return t
	}
	return "application/octet-stream"
}

func compressible(contentType string) bool {
	t, _, _ := strings.Cut(contentType, ";")
	switch {
	case strings.HasPrefix(t, "text/"), strings.HasSuffix(t, "+json"), strings.HasSuffix(t, "+xml"):
		return true
	}
	switch t {
	case "application/wasm", "application/json", "application/javascript", "application/xml":
		return true
	}
	return false
}

// encoded returns the body to send for content coding enc ("" for none)
// and the coding actually used.
func (a *asset) encoded(enc string) ([]byte, string) {
	v, ok := a.variants[enc]
	if !ok {
		return a.raw, ""
	}
	v.once.Do(func() { v.data = a.compress(enc) })
	if v.data == nil {
		return a.raw, ""
	}
	return v.data, enc
}

// compress makes the enc copy of a, or nil when it is not smaller.
func (a *asset) compress(enc string) []byte {
	large := len(a.raw) >= largeAsset
	if large {
		a.log.Info("webclient: compressing in memory; `go tool task build:wasm` pre-compresses it at build time",
			"file", a.name, "encoding", enc, "bytes", len(a.raw))
	}
	var buf bytes.Buffer
	var w io.WriteCloser
	switch enc {
	case encBrotli:
		q := brotli.BestCompression
		if large {
			q = 5 // seconds instead of tens of seconds for a WebAssembly binary
		}
		w = brotli.NewWriterLevel(&buf, q)
	case encGzip:
		level := gzip.BestCompression
		if large {
			level = gzip.DefaultCompression
		}
		w, _ = gzip.NewWriterLevel(&buf, level) // the level is valid
	default:
		return nil
	}
	if _, err := w.Write(a.raw); err != nil {
		return nil
	}
	if err := w.Close(); err != nil || buf.Len() >= len(a.raw) {
		return nil
	}
	return buf.Bytes()
}

// decodesTo reports whether data, encoded with enc, decodes to the content
// whose SHA-256 is sum.
func decodesTo(enc string, data []byte, sum [sha256.Size]byte) bool {
	var r io.Reader
	switch enc {
	case encBrotli:
		r = brotli.NewReader(bytes.NewReader(data))
	case encGzip:
		zr, err := gzip.NewReader(bytes.NewReader(data))
		if err != nil {
			return false
		}
		r = zr
	default:
		return false
	}
	h := sha256.New()
	if _, err := io.Copy(h, r); err != nil {
		return false
	}
	return bytes.Equal(h.Sum(nil), sum[:])
}

// negotiate picks the best of the offered codings that the Accept-Encoding
// header allows; "" means identity.
func negotiate(acceptEncoding string, offers ...string) string {
	q := make(map[string]float64)
	for _, part := range strings.Split(acceptEncoding, ",") {
		name, params, _ := strings.Cut(part, ";")
		name = strings.ToLower(strings.TrimSpace(name))
		if name == "" {
			continue
		}
		weight := 1.0
		for _, p := range strings.Split(params, ";") {
			k, v, ok := strings.Cut(strings.TrimSpace(p), "=")
			if ok && strings.EqualFold(k, "q") {
				if f, err := strconv.ParseFloat(strings.TrimSpace(v), 64); err == nil {
					weight = f
				}
			}
		}
		q[name] = weight
	}
	for _, enc := range offers {
		w, ok := q[enc]
		if !ok {
			w, ok = q["*"]
		}
		if ok && w > 0 {
			return enc
		}
	}
	return ""
}
