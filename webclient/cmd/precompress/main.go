// Command precompress writes brotli (.br) and gzip (.gz) copies beside each
// file it is given, for webclient.NewHandler to serve instead of
// compressing in memory:
//
//	go run ./webclient/cmd/precompress [-brotli-quality 9] public/web/app.wasm
//
// Each copy is written to a temporary file and renamed, so a server never
// reads half a copy; the handler still checks that a copy decodes to the
// file beside it before serving it.
package main

import (
	"compress/gzip"
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
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
	)
	for _, file := range flag.Args() {
		raw, err := os.ReadFile(file)
		if err != nil {
			fmt.Fprintln(os.Stderr, "precompress:", err)
			os.Exit(1)
		}
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
