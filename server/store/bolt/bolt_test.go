package bolt

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.etcd.io/bbolt"

	"github.com/tandem-go/tandem/server/store"
	"github.com/tandem-go/tandem/server/store/storetest"
)

// openTemp opens a store on a new file in a temporary directory and closes
// it at the end of the test.
func openTemp(tb testing.TB, opts Options) *Store {
	tb.Helper()
	s, err := Open(filepath.Join(tb.TempDir(), "sessions.db"), opts)
	if err != nil {
		tb.Fatalf("Open: %v", err)
	}
	tb.Cleanup(func() { s.Close() })
	return s
}

// putRaw writes value under key, bypassing the codec.
func putRaw(tb testing.TB, s *Store, key string, value []byte) {
	tb.Helper()
	err := s.db.Update(func(tx *bbolt.Tx) error {
		return tx.Bucket(bucketName).Put([]byte(key), value)
	})
	if err != nil {
		tb.Fatalf("put raw %q: %v", key, err)
	}
}

// rawKeys returns every key physically in the bucket.
func rawKeys(tb testing.TB, s *Store) []string {
	tb.Helper()
	var keys []string
	err := s.db.View(func(tx *bbolt.Tx) error {
		return tx.Bucket(bucketName).ForEach(func(k, _ []byte) error {
			keys = append(keys, string(k))
			return nil
		})
	})
	if err != nil {
		tb.Fatalf("list keys: %v", err)
	}
	return keys
}

func newHarness(tb testing.TB) storetest.Harness {
	tb.Helper()
	s := openTemp(tb, Options{})
	return storetest.Harness{
		Store: s,
		Corrupt: func(tb testing.TB, key string) {
			tb.Helper()
			putRaw(tb, s, key, []byte("junk"))
		},
		IndexSize: func(tb testing.TB, user string) int {
			tb.Helper()
			n := 0
			err := s.db.View(func(tx *bbolt.Tx) error {
				c := tx.Bucket(usersBucket).Cursor()
				p := userPrefix(user)
				for k, _ := c.Seek(p); k != nil && bytes.HasPrefix(k, p); k, _ = c.Next() {
					n++
				}
				return nil
			})
			if err != nil {
				tb.Fatalf("index size: %v", err)
			}
			return n
		},
	}
}

func TestConformance(t *testing.T) {
	storetest.Run(t, newHarness)
}

func TestCorruptValues(t *testing.T) {
	valid := encode(time.Now().Add(time.Hour).UnixNano(), 3, []byte("data"))
	tests := []struct {
		name  string
		value []byte
	}{
		{name: "nok, empty", value: []byte{}},
		{name: "nok, one byte", value: []byte{formatV1}},
		{name: "nok, header cut short", value: valid[:headerLen-1]},
		{name: "nok, unknown format", value: append([]byte{2}, valid[1:]...)},
		{name: "nok, format zero", value: append([]byte{0}, valid[1:]...)},
		{name: "nok, version zero", value: encode(time.Now().Add(time.Hour).UnixNano(), 0, []byte("data"))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := openTemp(t, Options{SweepInterval: -1})
			ctx := t.Context()
			putRaw(t, s, "k", tt.value)

			if _, err := s.Load(ctx, "k"); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("Load = %v, want ErrNotFound", err)
			}
			if err := s.Touch(ctx, "k", time.Hour); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("Touch = %v, want ErrNotFound", err)
			}
			if err := s.Create(ctx, "k", []byte("new"), store.Meta{}, time.Hour); err != nil {
				t.Fatalf("Create over a corrupt record: %v", err)
			}
			rec, err := s.Load(ctx, "k")
			if err != nil || string(rec.Data) != "new" || rec.Version != 1 {
				t.Errorf("Load = %+v, %v; want data \"new\" at version 1", rec, err)
			}
		})
	}
	t.Run("ok, the valid value decodes", func(t *testing.T) {
		r, ok := decode(valid)
		if !ok || r.version != 3 || string(r.data) != "data" {
			t.Errorf("decode = %+v, %v", r, ok)
		}
	})
}

func FuzzDecode(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte("junk"))
	f.Add(encode(time.Now().UnixNano(), 1, nil))
	f.Add(encode(-1, 1<<63, []byte("data")))
	f.Fuzz(func(t *testing.T, v []byte) {
		r, ok := decode(v)
		if !ok {
			return
		}
		// Whatever decodes re-encodes to the same bytes.
		if got := encode(r.expires, r.version, r.data); !bytes.Equal(got, v) {
			t.Errorf("encode(decode(%x)) = %x", v, got)
		}
	})
}

func TestRestart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sessions.db")
	ctx := t.Context()

	s, err := Open(path, Options{})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	if err := s.Create(ctx, "kept", []byte("v"), store.Meta{}, time.Hour); err != nil {
		t.Fatalf("Create: %v", err)
	}
	want, err := s.Update(ctx, "kept", time.Hour, func(data []byte) ([]byte, error) {
		return append(data, '!'), nil
	})
	if err != nil {
		t.Fatalf("Update: %v", err)
	}
	if err := s.Create(ctx, "short", []byte("v"), store.Meta{}, 50*time.Millisecond); err != nil {
		t.Fatalf("Create: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	time.Sleep(60 * time.Millisecond)

	s, err = Open(path, Options{})
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	t.Cleanup(func() { s.Close() })

	got, err := s.Load(ctx, "kept")
	if err != nil {
		t.Fatalf("Load after reopen: %v", err)
	}
	if !bytes.Equal(got.Data, want.Data) || got.Version != want.Version || !got.Expires.Equal(want.Expires) {
		t.Errorf("Load after reopen = %+v, want %+v", got, want)
	}
	// Expiry is wall-clock time on disk: a record that expired while the
	// server was down stays expired.
	if _, err := s.Load(ctx, "short"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Load of a record that expired while closed = %v, want ErrNotFound", err)
	}
}

func TestOpen(t *testing.T) {
	tests := []struct {
		name string
		// given returns the path to open.
		given      func(tb testing.TB) string
		wantErr    string // substring; empty means success
		wantBefore time.Duration
	}{
		{
			name: "ok, creates missing parent directories",
			given: func(tb testing.TB) string {
				return filepath.Join(tb.TempDir(), "a", "b", "sessions.db")
			},
		},
		{
			name: "ok, existing empty file",
			given: func(tb testing.TB) string {
				path := filepath.Join(tb.TempDir(), "sessions.db")
				if err := os.WriteFile(path, nil, 0o600); err != nil {
					tb.Fatal(err)
				}
				return path
			},
		},
		{
			name: "nok, locked by another opener",
			given: func(tb testing.TB) string {
				first := openTemp(tb, Options{})
				return first.Path()
			},
			wantErr:    "locked by another process",
			wantBefore: 5 * time.Second,
		},
		{
			name: "nok, not a bbolt file",
			given: func(tb testing.TB) string {
				path := filepath.Join(tb.TempDir(), "sessions.db")
				junk := bytes.Repeat([]byte("this is not a database\n"), 1000)
				if err := os.WriteFile(path, junk, 0o600); err != nil {
					tb.Fatal(err)
				}
				return path
			},
			wantErr: "not a bbolt database",
		},
		{
			name: "nok, a few bytes of text",
			given: func(tb testing.TB) string {
				path := filepath.Join(tb.TempDir(), "sessions.db")
				if err := os.WriteFile(path, []byte("hello"), 0o600); err != nil {
					tb.Fatal(err)
				}
				return path
			},
			wantErr: "sessions.db",
		},
		{
			name: "nok, a directory",
			given: func(tb testing.TB) string {
				return tb.TempDir()
			},
			wantErr: "bolt: open",
		},
		{
			name: "nok, parent is a file",
			given: func(tb testing.TB) string {
				parent := filepath.Join(tb.TempDir(), "file")
				if err := os.WriteFile(parent, nil, 0o600); err != nil {
					tb.Fatal(err)
				}
				return filepath.Join(parent, "sessions.db")
			},
			wantErr: "bolt: open",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := tt.given(t)
			start := time.Now()
			s, err := Open(path, Options{LockTimeout: 200 * time.Millisecond})
			elapsed := time.Since(start)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("Open: %v", err)
				}
				t.Cleanup(func() { s.Close() })
				if err := s.Ping(t.Context()); err != nil {
					t.Errorf("Ping: %v", err)
				}
				return
			}
			if err == nil {
				s.Close()
				t.Fatalf("Open succeeded, want an error containing %q", tt.wantErr)
			}
			if !strings.Contains(err.Error(), tt.wantErr) || !strings.Contains(err.Error(), path) {
				t.Errorf("Open: %q, want it to contain %q and the path %q", err, tt.wantErr, path)
			}
			if tt.wantBefore > 0 && elapsed > tt.wantBefore {
				t.Errorf("Open failed after %v, want within %v", elapsed, tt.wantBefore)
			}
		})
	}
}

func TestOpenModes(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	s, err := Open(filepath.Join(dir, "sessions.db"), Options{})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	for path, want := range map[string]os.FileMode{
		dir:                               os.ModeDir | 0o700,
		filepath.Join(dir, "sessions.db"): 0o600,
	} {
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode() != want {
			t.Errorf("%s: mode %v, want %v", path, fi.Mode(), want)
		}
	}
}

func TestSweeperRemovesExpired(t *testing.T) {
	s := openTemp(t, Options{SweepInterval: 20 * time.Millisecond})
	ctx := t.Context()
	const dead, live = 2500, 10
	// Write the records straight into the file, in one transaction, so the
	// test does not wait for thousands of batches.
	err := s.db.Update(func(tx *bbolt.Tx) error {
		b := tx.Bucket(bucketName)
		soon := time.Now().Add(100 * time.Millisecond).UnixNano()
		for i := range dead {
			if err := b.Put(fmt.Appendf(nil, "dead-%04d", i), encode(soon, 1, []byte("v"))); err != nil {
				return err
			}
		}
		return b.Put([]byte("corrupt"), []byte("junk"))
	})
	if err != nil {
		t.Fatal(err)
	}
	for i := range live {
		if err := s.Create(ctx, fmt.Sprintf("live-%d", i), []byte("v"), store.Meta{}, time.Hour); err != nil {
			t.Fatalf("Create: %v", err)
		}
	}

	deadline := time.Now().Add(5 * time.Second)
	for len(rawKeys(t, s)) != live && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	keys := rawKeys(t, s)
	if len(keys) != live {
		t.Fatalf("%d keys left in the file, want the %d live ones", len(keys), live)
	}
	for _, k := range keys {
		if !strings.HasPrefix(k, "live-") {
			t.Errorf("key %q left in the file", k)
		}
	}
}

func TestSweepChunk(t *testing.T) {
	tests := []struct {
		name string
		// given lists the records: 'd' dead, 'l' live, 'c' corrupt, keyed
		// by position.
		given       string
		chunk       int
		wantRemoved []int // per chunk, in order
	}{
		{name: "ok, empty bucket", given: "", chunk: 2, wantRemoved: []int{0}},
		{name: "ok, all live", given: "llll", chunk: 2, wantRemoved: []int{0}},
		{name: "ok, fewer dead than a chunk", given: "ldl", chunk: 2, wantRemoved: []int{1}},
		{name: "ok, chunks bound each transaction", given: "dddddd", chunk: 4, wantRemoved: []int{4, 2}},
		{name: "ok, mixed", given: "dlcdlddcl", chunk: 2, wantRemoved: []int{2, 2, 2, 0}},
		{name: "ok, scan limit splits a long live run", given: strings.Repeat("l", 25) + "d", chunk: 1, wantRemoved: []int{0, 0, 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := openTemp(t, Options{SweepInterval: -1, SweepChunk: tt.chunk})
			past, future := time.Now().Add(-time.Second).UnixNano(), time.Now().Add(time.Hour).UnixNano()
			wantLeft := 0
			for i, c := range tt.given {
				key := fmt.Sprintf("k%03d", i)
				switch c {
				case 'd':
					putRaw(t, s, key, encode(past, 1, nil))
				case 'l':
					putRaw(t, s, key, encode(future, 1, nil))
					wantLeft++
				case 'c':
					putRaw(t, s, key, []byte{formatV1})
				}
			}

			var from []byte
			var got []int
			for {
				n, next, err := s.sweepChunk(from)
				if err != nil {
					t.Fatalf("sweepChunk: %v", err)
				}
				got = append(got, n)
				if next == nil || len(got) > 100 {
					break
				}
				from = next
			}
			if fmt.Sprint(got) != fmt.Sprint(tt.wantRemoved) {
				t.Errorf("removed per chunk = %v, want %v", got, tt.wantRemoved)
			}
			if left := len(rawKeys(t, s)); left != wantLeft {
				t.Errorf("%d keys left, want %d", left, wantLeft)
			}
		})
	}
}

func TestDeleteDead(t *testing.T) {
	s := openTemp(t, Options{SweepInterval: -1})
	past := time.Now().Add(-time.Second).UnixNano()
	for _, k := range []string{"dead", "revived", "corrupt"} {
		putRaw(t, s, k, encode(past, 1, nil))
	}
	putRaw(t, s, "corrupt", []byte("junk"))
	// The scan saw these four; since then "revived" was created again and
	// "gone" deleted.
	dead, _, err := s.scanDead(nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(dead) != 3 {
		t.Fatalf("scanDead found %q, want 3 keys", dead)
	}
	dead = append(dead, []byte("gone"))
	if err := s.Create(t.Context(), "revived", []byte("new"), store.Meta{}, time.Hour); err != nil {
		t.Fatalf("Create: %v", err)
	}

	removed, err := s.deleteDead(dead)
	if err != nil || removed != 2 {
		t.Errorf("deleteDead = %d, %v; want 2 removed", removed, err)
	}
	if keys := rawKeys(t, s); fmt.Sprint(keys) != "[revived]" {
		t.Errorf("keys left = %q, want only the revived one", keys)
	}
	if rec, err := s.Load(t.Context(), "revived"); err != nil || string(rec.Data) != "new" {
		t.Errorf("Load = %+v, %v", rec, err)
	}
}

func TestKeyLength(t *testing.T) {
	s := openTemp(t, Options{SweepInterval: -1})
	tests := []struct {
		name    string
		key     string
		wantErr bool
	}{
		{name: "nok, empty key", key: "", wantErr: true},
		{name: "ok, longest key", key: strings.Repeat("k", bbolt.MaxKeySize)},
		{name: "nok, key too long", key: strings.Repeat("k", bbolt.MaxKeySize+1), wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := s.Create(t.Context(), tt.key, []byte("v"), store.Meta{}, time.Hour)
			if (err != nil) != tt.wantErr {
				t.Fatalf("Create: %v, want error %v", err, tt.wantErr)
			}
			if err != nil && errors.Is(err, store.ErrNotFound) {
				t.Errorf("Create: %v, want an argument error", err)
			}
		})
	}
}

func BenchmarkUpdate(b *testing.B)         { storetest.BenchmarkUpdate(b, newHarness) }
func BenchmarkUpdateParallel(b *testing.B) { storetest.BenchmarkUpdateParallel(b, newHarness) }
func BenchmarkLoad(b *testing.B)           { storetest.BenchmarkLoad(b, newHarness) }
