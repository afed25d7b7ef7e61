package tandemtest

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tandem-go/tandem/server/store"
	"github.com/tandem-go/tandem/server/store/memory"
)

// ErrBroken is what a FlakyStore returns while it is broken.
var ErrBroken = errors.New("tandemtest: store unavailable")

// FlakyStore is a memory store that can be made to fail every call, like a
// backend that went away.
type FlakyStore struct {
	store.Store
	broken atomic.Bool
}

// NewFlakyStore returns a working FlakyStore.
func NewFlakyStore() *FlakyStore { return &FlakyStore{Store: memory.New()} }

// Break makes every call fail with ErrBroken until Mend.
func (f *FlakyStore) Break() { f.broken.Store(true) }

// Mend makes the store work again.
func (f *FlakyStore) Mend() { f.broken.Store(false) }

func (f *FlakyStore) err() error {
	if f.broken.Load() {
		return ErrBroken
	}
	return nil
}

func (f *FlakyStore) Create(ctx context.Context, key string, data []byte, meta store.Meta, ttl time.Duration) error {
	if err := f.err(); err != nil {
		return err
	}
	return f.Store.Create(ctx, key, data, meta, ttl)
}

func (f *FlakyStore) Load(ctx context.Context, key string) (store.Record, error) {
	if err := f.err(); err != nil {
		return store.Record{}, err
	}
	return f.Store.Load(ctx, key)
}

func (f *FlakyStore) Update(ctx context.Context, key string, ttl time.Duration, fn store.UpdateFunc) (store.Record, error) {
	if err := f.err(); err != nil {
		return store.Record{}, err
	}
	return f.Store.Update(ctx, key, ttl, fn)
}

func (f *FlakyStore) Touch(ctx context.Context, key string, ttl time.Duration) error {
	if err := f.err(); err != nil {
		return err
	}
	return f.Store.Touch(ctx, key, ttl)
}

func (f *FlakyStore) Delete(ctx context.Context, key string) error {
	if err := f.err(); err != nil {
		return err
	}
	return f.Store.Delete(ctx, key)
}

func (f *FlakyStore) Renew(ctx context.Context, oldKey, newKey string, meta store.Meta, ttl, grace time.Duration) (store.Record, error) {
	if err := f.err(); err != nil {
		return store.Record{}, err
	}
	return f.Store.Renew(ctx, oldKey, newKey, meta, ttl, grace)
}

func (f *FlakyStore) UserSessions(ctx context.Context, user string) ([]store.UserSession, error) {
	if err := f.err(); err != nil {
		return nil, err
	}
	return f.Store.UserSessions(ctx, user)
}

func (f *FlakyStore) Ping(ctx context.Context) error {
	if err := f.err(); err != nil {
		return err
	}
	return f.Store.Ping(ctx)
}

// StoreKey returns the store key of the session named by a Cookie header
// (tandem.sid=ID.MAC): like sessionio, a SHA-256 of the ID.
func StoreKey(tb testing.TB, cookie string) string {
	tb.Helper()
	for _, part := range strings.Split(cookie, ";") {
		value, ok := strings.CutPrefix(strings.TrimSpace(part), "tandem.sid=")
		if !ok {
			continue
		}
		id, _, ok := strings.Cut(value, ".")
		if !ok {
			break
		}
		sum := sha256.Sum256([]byte(id))
		return base64.RawURLEncoding.EncodeToString(sum[:])
	}
	tb.Fatalf("no session cookie in %q", cookie)
	return ""
}
