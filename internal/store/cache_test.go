package store_test

import (
	"context"
	"errors"
	"testing"

	"github.com/custodia-project/custodia/internal/store"
)

// stamped is a store whose change stamp the test sets.
type stamped struct {
	store.Store
	stamp uint64
	ok    bool
}

func (s *stamped) Stamp() (uint64, bool) { return s.stamp, s.ok }

func TestReadCache(t *testing.T) {
	ctx := context.Background()
	s := &stamped{stamp: 7, ok: true}
	c := store.NewReadCache[string, int](s, 100)
	at, ok := c.Stamp()
	if !ok || at != 7 {
		t.Fatalf("Stamp = %d, %v", at, ok)
	}
	c.Put("a", 1, at, 10)
	if v, ok := c.Get(ctx, "a"); !ok || v != 1 {
		t.Fatalf("Get after Put = %d, %v", v, ok)
	}
	if _, ok := c.Get(ctx, "b"); ok {
		t.Fatal("Get of a key never put")
	}
	// A committed change: everything read before it is stale.
	s.stamp = 8
	if _, ok := c.Get(ctx, "a"); ok {
		t.Fatal("Get after the stamp moved returned a stale value")
	}
	// A value read under the old stamp (a read that raced the change)
	// is not filed.
	c.Put("a", 1, 7, 10)
	if _, ok := c.Get(ctx, "a"); ok {
		t.Fatal("a value read under an older stamp was served")
	}
	c.Put("a", 2, 8, 10)
	if v, ok := c.Get(ctx, "a"); !ok || v != 2 {
		t.Fatalf("Get of a value read under the current stamp = %d, %v", v, ok)
	}
	// An older read arriving after a newer one changes nothing.
	c.Put("b", 3, 7, 10)
	if v, ok := c.Get(ctx, "a"); !ok || v != 2 {
		t.Fatalf("a late stale Put dropped the current entries: %d, %v", v, ok)
	}
	// Past the cost bound the cache starts over; a value dearer than the
	// bound is never kept.
	c.Put("big", 4, 8, 95)
	if _, ok := c.Get(ctx, "a"); ok {
		t.Fatal("cost bound not enforced")
	}
	if v, ok := c.Get(ctx, "big"); !ok || v != 4 {
		t.Fatalf("Get(big) = %d, %v", v, ok)
	}
	c.Put("huge", 5, 8, 101)
	if _, ok := c.Get(ctx, "huge"); ok {
		t.Fatal("a value over the bound was kept")
	}
	// A store that cannot promise a stamp keeps nothing.
	s.ok = false
	if _, ok := c.Get(ctx, "big"); ok {
		t.Fatal("Get without a stamp")
	}
	none := store.NewReadCache[string, int](&stamped{}, 100)
	if _, ok := none.Stamp(); ok {
		t.Fatal("Stamp over a store that gives none")
	}
	var plain store.Store
	if _, ok := store.NewReadCache[string, int](plain, 100).Stamp(); ok {
		t.Fatal("Stamp over a store that is not a Stamper")
	}
}

// shared is a store whose stamp other processes move: the test sets the
// database's stamp (db) apart from the one this process has seen.
type shared struct {
	stamped
	db     uint64
	checks int
}

func (s *shared) StampLags() bool { return true }

func (s *shared) ConfirmStamp(_ context.Context, stamp uint64) error {
	s.checks++
	s.stamp = max(s.stamp, s.db) // the read teaches the newest stamp
	if stamp != s.db {
		return store.ErrStale
	}
	return nil
}

func TestReadCacheConfirmed(t *testing.T) {
	s := &shared{stamped: stamped{stamp: 3, ok: true}, db: 3}
	c := store.NewReadCache[string, int](s, 100)
	at, _ := c.Stamp()
	c.Put("a", 1, at, 10)
	plain := context.Background()
	if _, ok := c.Get(plain, "a"); ok {
		t.Fatal("a lagging store's cache served a request that will not confirm")
	}
	if err := store.ConfirmReads(plain, s); err != nil || s.checks != 0 {
		t.Fatalf("ConfirmReads without a Confirm: %v, %d reads", err, s.checks)
	}

	// Served and confirmed: the database's stamp had not moved.
	ctx := store.WithConfirm(plain)
	if err := store.ConfirmReads(ctx, s); err != nil || s.checks != 0 {
		t.Fatalf("ConfirmReads with nothing served: %v, %d reads", err, s.checks)
	}
	if v, ok := c.Get(ctx, "a"); !ok || v != 1 {
		t.Fatalf("Get with a Confirm = %d, %v", v, ok)
	}
	if err := store.ConfirmReads(ctx, s); err != nil || s.checks != 1 {
		t.Fatalf("ConfirmReads of a current value: %v, %d reads", err, s.checks)
	}
	if err := store.ConfirmReads(ctx, s); err != nil || s.checks != 1 {
		t.Fatalf("a confirmed request confirmed again: %v, %d reads", err, s.checks)
	}

	// Another node changed something: what was served is stale, and the
	// request stays stale.
	ctx = store.WithConfirm(plain)
	c.Get(ctx, "a")
	s.db = 4
	if err := store.ConfirmReads(ctx, s); !errors.Is(err, store.ErrStale) {
		t.Fatalf("ConfirmReads after another node's change = %v", err)
	}
	if err := store.ConfirmReads(ctx, s); !errors.Is(err, store.ErrStale) {
		t.Fatalf("a stale request confirmed later = %v", err)
	}
	// The confirmation taught this process the new stamp: the entry is
	// gone for every request.
	if _, ok := c.Get(store.WithConfirm(plain), "a"); ok {
		t.Fatal("a stale entry served after its stamp was learned")
	}

	// Values served under two stamps cannot all be current.
	c.Put("a", 1, 4, 10)
	ctx = store.WithConfirm(plain)
	c.Get(ctx, "a")
	s.stamp, s.db = 5, 5
	c.Put("b", 2, 5, 10)
	if _, ok := c.Get(ctx, "b"); !ok {
		t.Fatal("Get(b)")
	}
	if err := store.ConfirmReads(ctx, s); !errors.Is(err, store.ErrStale) {
		t.Fatalf("ConfirmReads of values served under two stamps = %v", err)
	}
}
