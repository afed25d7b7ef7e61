// Command precompress writes brotli (.br) and gzip (.gz) copies beside each
// file it is given, for webclient.NewHandler to serve instead of
// compressing in memory:
//
//	go run ./webclient/cmd/precompress [-brotli-quality 9] public/web/app.wasm
//
// Each copy is written to a temporary file and renamed, so a server never
// reads half a copy; the handler still checks that a copy decodes to the
// file beside it before serving it.
//
// A stamp beside the file (.NAME.precompressed, a dotfile the page handler
// never serves) records the file's SHA-256 and the settings of its copies:
// when they match, the file is skipped, so a release build (quality 11,
// minutes on a busy machine) compresses each build of app.wasm once.
package main

import (
	"compress/gzip"
	"crypto/sha256"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"

	"github.com/andybalholm/brotli"
)

func main() {
	quality := flag.Int("brotli-quality", 9, "brotli quality, 0-11 (11 is about 12% smaller than 9 and ten times slower)")
	level := flag.Int("gzip-level", gzip.BestCompression, "gzip level, 1-9")
	flag.Usage = func() {
		fmt.Fprintln(flag.CommandLine.Output(), "usage: precompress [flags] file...")
		flag.PrintDefaults()
	}
	flag.Parse()
	if flag.NArg() == 0 {
		flag.Usage()
		os.Exit(2)
	}
	if *quality < brotli.BestSpeed || *quality > brotli.BestCompression || *level < gzip.BestSpeed || *level > gzip.BestCompression {
		fmt.Fprintln(os.Stderr, "precompress: -brotli-quality must be 0-11 and -gzip-level 1-9")
		os.Exit(2)
	}

	var (
		wg     sync.WaitGroup
		mu     sync.Mutex
		errs   []error
		stamps = map[string]string{} // by file, written once its copies are
	)
	for _, file := range flag.Args() {
		raw, err := os.ReadFile(file)
		if err != nil {
			fmt.Fprintln(os.Stderr, "precompress:", err)
			os.Exit(1)
		}
		want := stampOf(raw, *quality, *level)
		if current(file, want) {
			fmt.Printf("precompress: %s: copies up to date (%s)\n", file, want)
			continue
		}
		// Stale until both copies are written.
		_ = os.Remove(stampFile(file))
		stamps[file] = want
		jobs := map[string]func(io.Writer) io.WriteCloser{
			".br": func(w io.Writer) io.WriteCloser { return brotli.NewWriterLevel(w, *quality) },
			".gz": func(w io.Writer) io.WriteCloser {
				zw, _ := gzip.NewWriterLevel(w, *level) // the level was checked
				return zw
			},
		}
		for suffix, newWriter := range jobs {
			wg.Go(func() {
				if err := write(file+suffix, raw, newWriter); err != nil {
					mu.Lock()
					errs = append(errs, err)
					mu.Unlock()
				}
			})
		}
	}
	wg.Wait()
	for _, err := range errs {
		fmt.Fprintln(os.Stderr, "precompress:", err)
	}
	if len(errs) > 0 {
		os.Exit(1)
	}
	for file, stamp := range stamps {
		if err := os.WriteFile(stampFile(file), []byte(stamp), 0o644); err != nil {
			fmt.Fprintln(os.Stderr, "precompress:", err)
			os.Exit(1)
		}
	}
}

// stampOf describes the copies of raw made with these settings.
func stampOf(raw []byte, quality, level int) string {
	return fmt.Sprintf("sha256=%x br=%d gzip=%d", sha256.Sum256(raw), quality, level)
}

// stampFile is where the stamp of file's copies is kept.
func stampFile(file string) string {
	return filepath.Join(filepath.Dir(file), "."+filepath.Base(file)+".precompressed")
}

// current reports whether file's copies exist and were made from its
// present content with the settings of want.
func current(file, want string) bool {
	got, err := os.ReadFile(stampFile(file))
	if err != nil || string(got) != want {
		return false
	}
	for _, suffix := range []string{".br", ".gz"} {
		if _, err := os.Stat(file + suffix); err != nil {
			return false
		}
	}
	return true
}

func write(dst string, raw []byte, newWriter func(io.Writer) io.WriteCloser) (err error) {
	tmp, err := os.CreateTemp(filepath.Dir(dst), "."+filepath.Base(dst)+".tmp*") // a dotfile: never served
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	zw := newWriter(tmp)
	if _, err := zw.Write(raw); err != nil {
		return fmt.Errorf("%s: %w", dst, err)
	}
	if err := zw.Close(); err != nil {
		return fmt.Errorf("%s: %w", dst, err)
	}
	if err := tmp.Chmod(0o644); err != nil {
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), dst)
}
