package bolt

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.etcd.io/bbolt"

	"github.com/tandem-go/tandem/server/store"
)

// A bbolt page starts with a 16-byte header: id uint64, flags uint16, count
// uint16, overflow uint32 (little-endian on the machines we run on). A branch
// page's elements follow, 16 bytes each: pos uint32, ksize uint32, pgid
// uint64.
const (
	pageHeader    = 16
	branchElement = 16
	flagBranch    = 0x01
	flagLeaf      = 0x02
)

// damagedFile writes sessions into a new store, closes it, and returns its
// path, its page size and the root page of the sessions bucket (a branch
// page: there are enough records for several leaves).
func damagedFile(tb testing.TB) (path string, pageSize int, root uint64) {
	tb.Helper()
	path = filepath.Join(tb.TempDir(), "sessions.db")
	s, err := Open(path, Options{SweepInterval: -1})
	if err != nil {
		tb.Fatal(err)
	}
	ctx := context.Background()
	for i := range 400 {
		data := bytes.Repeat([]byte{byte(i)}, 200)
		if i%50 == 0 {
			data = bytes.Repeat([]byte{byte(i)}, 20_000) // overflow pages
		}
		if err := s.Create(ctx, fmt.Sprintf("key-%04d", i), data, store.Meta{}, time.Hour); err != nil {
			tb.Fatal(err)
		}
	}
	err = s.db.View(func(tx *bbolt.Tx) error {
		root = uint64(tx.Bucket(bucketName).RootPage())
		info, err := tx.Page(int(root))
		if err != nil || info == nil || info.Type != "branch" {
			return fmt.Errorf("the bucket's root page %d is %+v (%v), want a branch page", root, info, err)
		}
		return nil
	})
	if err != nil {
		tb.Fatal(err)
	}
	pageSize = s.db.Info().PageSize
	if err := s.Close(); err != nil {
		tb.Fatal(err)
	}
	return path, pageSize, root
}

// patch overwrites the file at off with b.
func patch(tb testing.TB, path string, off int64, b []byte) {
	tb.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt(b, off); err != nil {
		tb.Fatal(err)
	}
}

func readPage(tb testing.TB, path string, pageSize int, id uint64) []byte {
	tb.Helper()
	f, err := os.Open(path)
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	p := make([]byte, pageSize)
	if _, err := f.ReadAt(p, int64(id)*int64(pageSize)); err != nil {
		tb.Fatal(err)
	}
	return p
}

// firstChild is the page number of the root branch page's first child.
func firstChild(tb testing.TB, path string, pageSize int, root uint64) uint64 {
	tb.Helper()
	p := readPage(tb, path, pageSize, root)
	return binary.LittleEndian.Uint64(p[pageHeader+8:])
}

// Issue 6, item 10: a damaged file stops Open with a clear error naming the
// file and the way out, and never panics (a panic in bbolt's freelist
// goroutine would kill this test binary): truncated, both meta pages
// damaged, a damaged branch page, a child pointer outside the file (a memory
// fault, not a panic, without SetPanicOnFault), garbage in a leaf.
func TestOpenDamagedFile(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		// given damages the file at path.
		given    func(tb testing.TB, path string, pageSize int, root uint64)
		expectOK bool
	}{
		{"nok, truncated to 100 bytes", func(tb testing.TB, path string, _ int, _ uint64) {
			if err := os.Truncate(path, 100); err != nil {
				tb.Fatal(err)
			}
		}, false},
		{"nok, truncated to half", func(tb testing.TB, path string, _ int, _ uint64) {
			fi, _ := os.Stat(path)
			if err := os.Truncate(path, fi.Size()/2); err != nil {
				tb.Fatal(err)
			}
		}, false},
		{"nok, both meta pages damaged", func(tb testing.TB, path string, pageSize int, _ uint64) {
			patch(tb, path, 0, bytes.Repeat([]byte{0xAB}, 2*pageSize))
		}, false},
		{"ok, one meta page damaged: bbolt uses the other", func(tb testing.TB, path string, pageSize int, _ uint64) {
			patch(tb, path, int64(pageSize)+pageHeader, bytes.Repeat([]byte{0xAB}, 64))
		}, true},
		{"nok, the bucket's root page is garbage", func(tb testing.TB, path string, pageSize int, root uint64) {
			patch(tb, path, int64(root)*int64(pageSize), bytes.Repeat([]byte{0xAB}, pageSize))
		}, false},
		{"nok, a child pointer far outside the file", func(tb testing.TB, path string, pageSize int, root uint64) {
			b := make([]byte, 8)
			binary.LittleEndian.PutUint64(b, 1<<28) // 1 TB into the mapping's address range
			patch(tb, path, int64(root)*int64(pageSize)+pageHeader+8, b)
		}, false},
		{"nok, a child pointer just past the end of the file", func(tb testing.TB, path string, pageSize int, root uint64) {
			fi, _ := os.Stat(path)
			b := make([]byte, 8)
			binary.LittleEndian.PutUint64(b, uint64(fi.Size()/int64(pageSize))+3)
			patch(tb, path, int64(root)*int64(pageSize)+pageHeader+8, b)
		}, false},
		{"nok, a leaf's element count is garbage", func(tb testing.TB, path string, pageSize int, root uint64) {
			leaf := firstChild(tb, path, pageSize, root)
			if p := readPage(tb, path, pageSize, leaf); binary.LittleEndian.Uint16(p[8:]) != flagLeaf {
				tb.Fatalf("page %d is not a leaf", leaf)
			}
			patch(tb, path, int64(leaf)*int64(pageSize)+10, []byte{0xFF, 0xFF})
		}, false},
		{"nok, a leaf is garbage", func(tb testing.TB, path string, pageSize int, root uint64) {
			leaf := firstChild(tb, path, pageSize, root)
			patch(tb, path, int64(leaf)*int64(pageSize)+pageHeader, bytes.Repeat([]byte{0xFF}, pageSize-pageHeader))
		}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			path, pageSize, root := damagedFile(t)
			tt.given(t, path, pageSize, root)
			s, err := Open(path, Options{SweepInterval: -1})
			if tt.expectOK {
				if err != nil {
					t.Fatalf("Open: %v", err)
				}
				defer s.Close()
				if _, err := s.Load(context.Background(), "key-0001"); err != nil && !errors.Is(err, store.ErrNotFound) {
					t.Errorf("Load: %v", err)
				}
				return
			}
			if err == nil {
				s.Close()
				t.Fatal("Open accepted a damaged file")
			}
			msg := err.Error()
			if !strings.Contains(msg, path) || !strings.Contains(msg, "damaged") || !strings.Contains(msg, "backup") {
				t.Errorf("Open: %q; want the path, that it is damaged, and the way out", msg)
			}
			t.Logf("Open: %v", err)
		})
	}
}

// syncBuffer is a log destination read while the sweeper writes to it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// Issue 6, item 10: damage that appears while the store runs (the file is
// mapped, so the damaged bytes are what bbolt reads next) costs the calls
// that meet it an ErrDamaged, and the sweeper logs it; neither panics.
func TestDamageWhileRunning(t *testing.T) {
	t.Parallel()
	path, pageSize, root := damagedFile(t)
	log := &syncBuffer{}
	s, err := Open(path, Options{SweepInterval: 20 * time.Millisecond, Logger: slog.New(slog.NewTextHandler(log, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	if _, err := s.Load(ctx, "key-0001"); err != nil {
		t.Fatalf("Load before the damage: %v", err)
	}
	b := make([]byte, 8)
	binary.LittleEndian.PutUint64(b, 1<<28)
	patch(t, path, int64(root)*int64(pageSize)+pageHeader+8, b)

	if _, err := s.Load(ctx, "key-0000"); !errors.Is(err, ErrDamaged) {
		t.Errorf("Load through the damaged page: %v, want ErrDamaged", err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(log.String(), "damaged") {
		if time.Now().After(deadline) {
			t.Fatalf("the sweeper did not report the damage; log:\n%s", log)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := s.Ping(ctx); err != nil {
		t.Logf("Ping: %v", err)
	}
}
